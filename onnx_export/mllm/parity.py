"""Parity of an exported MLLM with the torch model it came from, on test-split items.

    ./unitocom python -m onnx_export.mllm.parity --run runs/mllm --model-dir runs/mllm/onnx \\
        --cache runs/mllm-cache [--n 200] [--out runs/mllm/parity.json]

The torch model is rebuilt from the run folder (``config.json``'s model
configuration, ``checkpoint.pt``'s weights); the ONNX graphs run behind
``gnuradio.unitocom.mllm.engine.MLLM``. On the first ``--n`` items of each
kind of the test split (clean tokens), with the same numpy generation loops
over both backends:

* greedy VQA answers, ASR transcripts and scene descriptions: the number of
  items whose words differ between torch and onnxruntime (want 0), and
  between onnxruntime with and without the kv cache (want 0);
* image tokens of ``--t2i`` captions, same noise draws: the largest absolute
  difference torch vs onnxruntime, and with vs without the cache; and torch
  vs onnxruntime with classifier-free guidance ``--guidance``;
* the denoiser on random inputs at random steps: the largest absolute and
  relative ε̂ difference (DESIGN.md's tolerance: rtol 1e-3, atol 1e-5).

Writes the numbers as JSON (``--out``) and prints them.
"""
import argparse
import json
import pathlib

import numpy as np
import torch

from gnuradio.unitocom.mllm import engine, generate, layout

from . import generate as torch_generate
from .data import Cache
from .evaluate import _ids, find_model
from .model import MLLM, Config


def load_torch(run):
    """The torch ``MLLM`` of a ``train_mllm`` run folder (its config and last checkpoint), in eval mode."""
    run = pathlib.Path(run)
    cfg = json.loads((run / "config.json").read_text())["mllm_config"]
    model = MLLM(Config.from_json(json.dumps(cfg)))
    state = torch.load(run / "checkpoint.pt", weights_only=False)
    model.load_state_dict(state["mllm"])
    return model.eval()


def _differ(a, b):
    return int(sum(not np.array_equal(x, y) for x, y in zip(a, b)))


def _draws(seed):
    rng = np.random.default_rng(seed)
    return lambda shape: rng.standard_normal(shape, dtype=np.float32)


def parity(model, files, cache, n=200, t2i=8, steps=20, seed=0, threads=1, chunk=50, guidance=3.0):
    """The numbers of the module docstring as a dict."""
    torch_backend = torch_generate.TorchBackend(model)
    ort = engine.MLLM(files=files, threads=threads, device="cpu")
    ort_nocache = engine.MLLM(files=files, threads=threads, device="cpu", use_cache=False)
    out = {"model_id": ort.model_id, "items": {}}
    qs = range(min(n, cache.n_questions))
    us = range(min(n, cache.n_utterances))
    ss = range(min(n, cache.n_scenes))
    kinds = {
        "vqa": ([layout.vqa(np.asarray(cache.images[0][cache.question_scene[q]]), _ids(cache.seq("questions", 0, q)))
                 for q in qs], engine.MAX_ANSWER_WORDS + ort.trace_words),
        "asr": ([layout.asr(np.asarray(cache.seq("audio", 0, u))) for u in us], engine.MAX_TRANSCRIPT_WORDS),
        "dsc": ([layout.describe(np.asarray(cache.images[0][s])) for s in ss], engine.MAX_DESCRIPTION_WORDS),
    }
    for kind, (items, max_new) in kinds.items():
        ref, got, nocache = [], [], []
        for i in range(0, len(items), chunk):
            part = items[i:i + chunk]
            ref += generate.text(torch_backend, part, max_new)
            got += generate.text(ort.backend, part, max_new)
            nocache += generate.text(ort_nocache.backend, part, max_new, use_cache=False)
        out["items"][kind] = len(items)
        out[f"{kind}_differ_torch_vs_onnx"] = _differ(ref, got)
        out[f"{kind}_differ_cache_vs_nocache"] = _differ(got, nocache)
    items = [layout.t2i(_ids(cache.seq("captions", 0, s))) for s in range(min(t2i, cache.n_scenes))]
    a = generate.image_tokens(torch_backend, items, layout.IMAGE_TOKENS, steps, normal=_draws(seed))
    b = generate.image_tokens(ort.backend, items, layout.IMAGE_TOKENS, steps, normal=_draws(seed))
    c = generate.image_tokens(ort_nocache.backend, items, layout.IMAGE_TOKENS, steps, normal=_draws(seed),
                              use_cache=False)
    out["items"]["t2i"] = len(items)
    out["t2i_max_abs_torch_vs_onnx"] = float(np.abs(a - b).max())
    out["t2i_max_abs_cache_vs_nocache"] = float(np.abs(b - c).max())
    out["t2i_token_scale"] = float(np.abs(a).max())
    g1 = generate.image_tokens(torch_backend, items, layout.IMAGE_TOKENS, steps, normal=_draws(seed), guidance=guidance)
    g2 = generate.image_tokens(ort.backend, items, layout.IMAGE_TOKENS, steps, normal=_draws(seed), guidance=guidance)
    out["t2i_guidance"] = guidance
    out["t2i_guided_max_abs_torch_vs_onnx"] = float(np.abs(g1 - g2).max())
    rng = np.random.default_rng(seed + 1)
    m = 512
    x = rng.standard_normal((m, layout.TOKEN_DIM)).astype(np.float32)
    r = rng.integers(1, ort.diffusion_steps + 1, m).astype(np.int64)
    h = (rng.standard_normal((m, model.config.dim)) * 2).astype(np.float32)
    e1, e2 = torch_backend.denoise(x, r, h), ort.backend.denoise(x, r, h)
    out["denoiser_max_abs"] = float(np.abs(e1 - e2).max())
    out["denoiser_within_rtol_1e-3_atol_1e-5"] = bool(np.allclose(e2, e1, rtol=1e-3, atol=1e-5))
    return out


def main(argv=None):
    """Command line (see the module docstring)."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--run", required=True, help="train_mllm run folder (config.json, checkpoint.pt)")
    p.add_argument("--model-dir", default=None, help="folder of the four mllm_*.onnx (default: the shipped model)")
    p.add_argument("--cache", required=True, help="cache root holding <split>/")
    p.add_argument("--split", default="test")
    p.add_argument("--n", type=int, default=200, help="items per text task")
    p.add_argument("--t2i", type=int, default=8)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default=None)
    p.add_argument("--guidance", type=float, default=3.0, help="guidance scale of the guided t2i parity check")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    res = parity(load_torch(args.run), find_model(args.model_dir), Cache(pathlib.Path(args.cache) / args.split),
                 args.n, args.t2i, args.steps, threads=args.threads, guidance=args.guidance)
    text = json.dumps(res, indent=1)
    if args.out:
        pathlib.Path(args.out).write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
