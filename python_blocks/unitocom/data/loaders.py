"""Light numpy readers for a materialised corpus (see ``corpus``)."""
import json
import pathlib

import numpy as np

from .scenes import Obj


def _jsonl(path):
    with open(path) as f:
        return [json.loads(line) for line in f]


class CorpusSplit:
    """One split of a built corpus: arrays memory-mapped, JSON rows in lists.

    ``images[i]`` (S, S, 3) uint8; ``scenes[i]``; ``objects(i)`` → [Obj];
    ``questions`` (each with ``scene`` index); ``captions[i]`` and
    ``caption_images[i]``; ``utterances[k]`` and ``audio(k)`` → int16 @ 16 kHz.
    """

    def __init__(self, root, split):
        self.folder = pathlib.Path(root) / split
        if not (self.folder / "meta.json").is_file():
            raise FileNotFoundError(f"no built split at {self.folder} (run the corpus build first)")
        self.meta = json.loads((self.folder / "meta.json").read_text())
        self.images = np.load(self.folder / "images.npy", mmap_mode="r")
        self.caption_images = np.load(self.folder / "caption_images.npy", mmap_mode="r")
        self._audio = np.load(self.folder / "audio.npy", mmap_mode="r")
        self.scenes = _jsonl(self.folder / "scenes.jsonl")
        self.questions = _jsonl(self.folder / "questions.jsonl")
        self.captions = _jsonl(self.folder / "captions.jsonl")
        self.utterances = _jsonl(self.folder / "utterances.jsonl")

    def __len__(self):
        return len(self.scenes)

    def objects(self, i):
        return [Obj(**o) for o in self.scenes[i]["objects"]]

    def audio(self, k):
        u = self.utterances[k]
        return np.asarray(self._audio[u["offset"]:u["offset"] + u["length"]])
