"""Tiny MLLMs with random weights for fast tests (shapes, caches, parity, validation).

``randomize`` overwrites every weight (the zero-initialised diffusion gates and
output too) with draws large enough that greedy decoding and the denoiser
depend on their inputs: a freshly initialised model would answer every
prompt with the same word and predict ε̂ = 0, and a parity test on that
proves nothing.

``tiny_corpus`` and ``tiny_cache`` build a corpus of a few scenes and its
received-token cache once per test session (the MLLM data, trainer and
evaluation tests share them).
"""
import functools
import pathlib

import numpy as np
import torch

from gnuradio.unitocom.mllm import layout

from .model import MLLM, Config


def tiny_config(**kw):
    """A two-layer, 32-wide config (≈ 50 k parameters); ``kw`` overrides fields."""
    base = dict(dim=32, depth=2, heads=2, max_len=128, head_width=32, head_depth=2, freq_dim=16)
    return Config(**{**base, **kw})


@torch.no_grad()
def randomize(model, seed=0, gain=1.5):
    """Draw every parameter anew: matrices N(0, gain²/fan_in), vectors N(0, 0.2²) (+1 for LayerNorm scales)."""
    g = torch.Generator().manual_seed(seed)
    for name, p in model.named_parameters():
        if p.dim() >= 2:
            p.copy_(torch.randn(p.shape, generator=g) * gain / p.shape[-1] ** 0.5)
        else:
            p.copy_(torch.randn(p.shape, generator=g) * 0.2 + (1.0 if "norm" in name and "weight" in name else 0.0))
    return model


def tiny_model(seed=0, token_stats=True, **kw):
    """``randomize``d ``MLLM(tiny_config(**kw))`` in eval mode, with non-trivial token statistics."""
    torch.manual_seed(seed)
    model = randomize(MLLM(tiny_config(**kw)), seed)
    if token_stats:
        rng = np.random.default_rng(seed)
        d = model.config.token_dim
        for m in ("image", "audio"):
            model.set_token_stats(m, rng.normal(0, 0.3, d), rng.uniform(0.5, 2.0, d))
    return model.eval()


def random_prompts(task, n, seed=0, token_dim=layout.TOKEN_DIM, image_tokens=layout.IMAGE_TOKENS):
    """``n`` prompt items of ``task`` with random tokens and ids of different lengths."""
    rng = np.random.default_rng(seed)
    ids = lambda k: rng.integers(5, layout.VOCAB, size=k)   # noqa: E731
    items = []
    for i in range(n):
        if task == "vqa":
            items.append(layout.vqa(rng.normal(size=(image_tokens, token_dim)), ids(3 + 2 * i), token_dim=token_dim))
        elif task == "t2i":
            items.append(layout.t2i(ids(2 + 3 * i), token_dim=token_dim))
        elif task == "dsc":
            items.append(layout.describe(rng.normal(size=(image_tokens, token_dim)), token_dim=token_dim))
        else:
            items.append(layout.asr(rng.normal(size=(5 + 7 * i, token_dim)), token_dim=token_dim))
    return items


# --- a tiny corpus and received-token cache (built once per test session) -------------------------
TINY_CORPUS = {"train": (12, 6), "val": (6, 3), "test": (8, 6)}      # split: (scenes, utterances)


def _temp_folder(prefix):
    import atexit
    import shutil
    import tempfile
    folder = pathlib.Path(tempfile.mkdtemp(prefix=prefix))
    atexit.register(shutil.rmtree, folder, True)
    return folder


@functools.lru_cache(maxsize=None)
def tiny_corpus():
    """Path of a tiny corpus (``TINY_CORPUS`` scenes and utterances per split, seed 0; no speech without
    espeak-ng), built once per process in a temporary folder removed at exit."""
    from gnuradio.unitocom.data import corpus, speech
    root = _temp_folder("unitocom-mllm-corpus-")
    for split, (n, n_speech) in TINY_CORPUS.items():
        corpus.build_split(root, split, n, 0, 64, 3, n_speech if speech.espeak_available() else 0, None, 1)
    return root


@functools.lru_cache(maxsize=None)
def tiny_cache(copies=2):
    """Path of a received-token cache (``onnx_export.mllm.data``) of ``tiny_corpus`` with ``copies`` received
    copies of train, val and test, built once per process."""
    from .data import Builder, Models
    root = _temp_folder("unitocom-mllm-cache-")
    models = Models(threads=1)
    for split in TINY_CORPUS:
        Builder(tiny_corpus(), split, root, copies=copies, models=models, progress=False).build()
    return root
