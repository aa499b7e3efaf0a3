"""torch ``Dataset``s over a built corpus (``gnuradio.unitocom.data``).

Build the corpus once (``./unitocom corpus build --out DIR``); these read it
through the numpy loader and hand out tensors:

* ``ImageDataset``   float32 (3, S, S) in [0, 1]  (scene images or caption images)
* ``VQADataset``     (image, question ids, answer id)
* ``CaptionDataset`` (caption ids, caption image) for text-to-image
* ``SpeechDataset``  (float32 waveform in [-1, 1] at 16 kHz, transcript ids)
"""
import numpy as np
import torch
from torch.utils.data import Dataset

from gnuradio.unitocom.data import vocab
from gnuradio.unitocom.data.loaders import CorpusSplit


def _image(array):
    return torch.from_numpy(np.array(array)).permute(2, 0, 1).float() / 255.0   # copy: memmaps are read-only


def _ids(text):
    return torch.tensor(vocab.encode(text), dtype=torch.long)


class ImageDataset(Dataset):
    """Images of corpus ``root``'s ``split`` (scenes, or caption images with ``captions``).

    Item i → float32 (3, S, S) in [0, 1]."""

    def __init__(self, root, split, captions=False):
        data = CorpusSplit(root, split)
        self.images = data.caption_images if captions else data.images

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        return _image(self.images[i])


class VQADataset(Dataset):
    """Questions of a split: item k → (scene image (3, S, S), question ids (L,) int64, answer id)."""

    def __init__(self, root, split):
        self.data = CorpusSplit(root, split)

    def __len__(self):
        return len(self.data.questions)

    def __getitem__(self, k):
        q = self.data.questions[k]
        return _image(self.data.images[q["scene"]]), _ids(q["text"]), vocab.TOKEN_ID[q["answer"]]


class CaptionDataset(Dataset):
    """Captions of a split: item i → (caption ids (L,) int64, the image drawn from it (3, S, S))."""

    def __init__(self, root, split):
        self.data = CorpusSplit(root, split)

    def __len__(self):
        return len(self.data.captions)

    def __getitem__(self, i):
        return _ids(self.data.captions[i]["text"]), _image(self.data.caption_images[i])


class SpeechDataset(Dataset):
    """Utterances of a split: item k → (float32 waveform in [-1, 1] at 16 kHz, transcript ids (L,) int64)."""

    def __init__(self, root, split):
        self.data = CorpusSplit(root, split)

    def __len__(self):
        return len(self.data.utterances)

    def __getitem__(self, k):
        audio = torch.from_numpy(self.data.audio(k).astype(np.float32) / 32768.0)
        return audio, _ids(self.data.utterances[k]["text"])
