#!/usr/bin/env python3
"""Requests per second and latency of the MLLM through onnxruntime, by task, batch size and diffusion steps.

    ./unitocom python scripts/bench_mllm.py [--model-dir runs/mllm/onnx] [--cache runs/mllm-cache] \\
        [--threads 1] [--batches 1,8,32] [--steps 25,50,100] [--guidance 1] [--fd-captions 300] \
        [--out docs/mllm_bench.json]

All measurements of one run are side by side on the same machine state:

* **text tasks** (vqa, asr, dsc; greedy): for each batch size B, the median
  wall time of one ``MLLM.answer`` / ``transcribe`` / ``describe`` call on B
  test items (clean tokens of the cache's test split, or random tokens
  without a cache) → latency and requests/s = B / time;
* **t2i**: the same for ``generate_image_tokens`` at each number of DDPM
  steps (at ``--guidance``: above 1 every caption also runs without its
  caption, twice the work), and the Fréchet distance (EfficientNet-Lite0 features,
  ``onnx_export.mllm.fid``) between the de-tokenized images generated for
  the first ``--fd-captions`` test captions and the corpus renders of the
  same captions, at each step count — the quality/speed trade-off on one
  plot (``--plot``);
* **FLOPs per request**: the same generation loop over the torch model
  under ``torch.utils.flop_counter`` (weights do not change the count), and
  the achieved GFLOP/s at the largest batch next to a single-thread float32
  matrix product measured in the same run (the machine's practical peak).

A benchmark, not a test: the numbers depend on the machine and its load.
"""
import argparse
import json
import pathlib
import sys
import time

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gnuradio.unitocom.data import vocab  # noqa: E402
from gnuradio.unitocom.mllm import engine, generate, layout, schedule  # noqa: E402


def median_time(fn, repeats):
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def matmul_gflops(threads, n=1024, repeats=5):
    """Practical float32 peak: GFLOP/s of an n×n matrix product (torch, ``threads`` threads)."""
    import torch
    torch.set_num_threads(threads)
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    sec = median_time(lambda: a @ b, repeats)
    return 2 * n ** 3 / sec / 1e9


def inputs(cache_root, n, rng):
    """n test items per task: (images (n,32,16), question ids [n], audio [n], captions [n], caption indices)."""
    if cache_root and (pathlib.Path(cache_root) / "test" / "manifest.json").is_file():
        from onnx_export.mllm.data import Cache
        from onnx_export.mllm.evaluate import _ids
        c = Cache(pathlib.Path(cache_root) / "test")
        qs = range(min(n, c.n_questions))
        images = np.stack([np.asarray(c.images[0][c.question_scene[q]]) for q in qs])
        questions = [_ids(c.seq("questions", 0, q)) for q in qs]
        audio = [np.asarray(c.seq("audio", 0, u)) for u in range(min(n, c.n_utterances))]
        captions = [_ids(c.seq("captions", 0, s)) for s in range(c.n_scenes)]
        return images, questions, audio, captions, c
    images = rng.normal(size=(n, layout.IMAGE_TOKENS, layout.TOKEN_DIM)).astype(np.float32)
    words = lambda k: np.concatenate([[vocab.BOS], rng.integers(vocab.SEP + 1, layout.VOCAB, k), [vocab.EOS]])  # noqa
    audio = [rng.normal(size=(60, layout.TOKEN_DIM)).astype(np.float32) for _ in range(n)]
    return images, [words(10) for _ in range(n)], audio, [words(12) for _ in range(n)], None


TRACE_WORDS = 6            # a VQA trace's mean length on the validation split: 6.4 words (1.6 objects)


def request_flops(mllm, images, questions, audio, captions, steps, guidance=1.0):
    """GFLOP of one request per task (the runtime's loop over the torch model of the same configuration)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode
    from onnx_export.mllm.generate import TorchBackend
    from onnx_export.mllm.model import MLLM, Config
    torch.set_num_threads(1)
    model = MLLM(Config.from_json(json.dumps(mllm.backend.config))).eval()
    backend = TorchBackend(model)
    def words(item, n):                     # prompt + n words + <eos>, whatever the random weights would pick
        seq = generate.Sequence(backend, [item])
        for _ in range(n):
            backend.lm_head(seq.h)
            seq.feed([vocab.SEP + 1], np.zeros((1, layout.TOKEN_DIM), np.float32), [layout.KIND_TEXT])
        backend.lm_head(seq.h)

    vqa_words = 1 + (TRACE_WORDS + 1 if mllm.vqa_trace else 0)
    jobs = {"vqa": lambda: words(layout.vqa(images[0], questions[0]), vqa_words),
            "asr": lambda: words(layout.asr(audio[0]), 15),
            "dsc": lambda: words(layout.describe(images[0]), 21)}
    for s in steps:
        jobs[f"t2i_{s}"] = (lambda s=s: generate.image_tokens(backend, [layout.t2i(captions[0])], layout.IMAGE_TOKENS,
                                                              s, guidance=guidance))
    out = {}
    for name, job in jobs.items():
        with FlopCounterMode(display=False) as counter:
            job()
        out[name] = counter.get_total_flops() / 1e9
    out["note"] = (f"prompt, then vqa: {vqa_words} words (" + (f"a {TRACE_WORDS}-word trace, <sep>, " if mllm.vqa_trace
                                                               else "") +
                   "the answer), asr: 15 words, dsc: 21 words (a 5-object scene), each + <eos>; typical lengths of "
                   "the corpus")
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model-dir", default=None, help="folder of the four mllm_*.onnx (default: the shipped model)")
    p.add_argument("--cache", default="runs/mllm-cache", help="received-token cache (test split) for real inputs")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--batches", default="1,8,32")
    p.add_argument("--steps", default="25,50,100")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--fd-captions", type=int, default=300, help="captions for the FD at each step count (0: skip)")
    p.add_argument("--out", default=None, help="JSON of the numbers")
    p.add_argument("--plot", default=None, help="PNG: FD against t2i requests/s, one point per step count")
    p.add_argument("--guidance", type=float, default=schedule.DEFAULT_GUIDANCE, help="t2i classifier-free guidance")
    args = p.parse_args(argv)
    from onnx_export.mllm.evaluate import find_model
    batches = [int(b) for b in args.batches.split(",")]
    steps = [int(s) for s in args.steps.split(",")]
    mllm = engine.MLLM(files=find_model(args.model_dir), threads=args.threads, device="cpu")
    rng = np.random.default_rng(0)
    n = max(batches)
    images, questions, audio, captions, cache = inputs(args.cache, n, rng)
    res = {"model_id": mllm.model_id, "threads": args.threads, "inputs": "test split" if cache else "random",
           "t2i_guidance": args.guidance,
           "latency_s": {}, "requests_per_s": {}}
    text_jobs = {"vqa": lambda b: mllm.answer(images[:b], questions[:b], max_words=2),
                 "asr": lambda b: mllm.transcribe(audio[:b]),
                 "dsc": lambda b: mllm.describe(images[:b])}
    for task, job in text_jobs.items():
        job(1)                                                          # warm-up
        for b in batches:
            sec = median_time(lambda: job(b), args.repeats)
            res["latency_s"][f"{task}_b{b}"] = round(sec, 4)
            res["requests_per_s"][f"{task}_b{b}"] = round(b / sec, 2)
            print(f"{task:4s} batch {b:3d}: {sec * 1e3:9.1f} ms per call, {b / sec:8.2f} requests/s", flush=True)
    for s in steps:
        for b in batches:
            sec = median_time(lambda: mllm.generate_image_tokens(captions[:b], steps=s, seed=0, guidance=args.guidance),
                              1 if b > 8 else args.repeats)
            res["latency_s"][f"t2i_s{s}_b{b}"] = round(sec, 4)
            res["requests_per_s"][f"t2i_s{s}_b{b}"] = round(b / sec, 3)
            print(f"t2i  {s:3d} steps batch {b:3d}: {sec * 1e3:9.1f} ms per call, {b / sec:8.3f} requests/s",
                  flush=True)
    for task in ("vqa", "asr", "dsc"):
        res["requests_per_s"][f"{task}_batched_over_single"] = round(
            res["requests_per_s"][f"{task}_b{n}"] / res["requests_per_s"][f"{task}_b1"], 2)
    if cache is not None and args.fd_captions:
        from onnx_export.mllm import fid
        from onnx_export.mllm.evaluate import detokenize
        from gnuradio.unitocom.data.loaders import CorpusSplit
        from gnuradio.unitocom.runtime import model_store
        from gnuradio.unitocom.runtime.onnx_session import make_session
        det = make_session(str(model_store.find(cache.manifest["models"]["image_detokenizer"])), args.threads, "cpu")
        k = min(args.fd_captions, len(captions))
        real = np.asarray(CorpusSplit(cache.manifest["corpus"], "test").caption_images[:k])
        feats = fid.Features(threads=args.threads)
        real_f = feats(real)
        res["fd"] = {"captions": k}
        for s in steps:
            tokens = np.concatenate([mllm.generate_image_tokens(captions[i:i + 64], steps=s, seed=i,
                                                                guidance=args.guidance)
                                     for i in range(0, k, 64)])
            res["fd"][f"steps_{s}"] = round(float(fid.frechet_distance(feats(detokenize(det, tokens)), real_f)), 2)
            print(f"FD at {s} steps ({k} captions): {res['fd'][f'steps_{s}']}", flush=True)
        recon = detokenize(det, np.asarray(cache.caption_images[:k]))
        res["fd"]["detokenizer_reconstruction"] = round(float(fid.frechet_distance(feats(recon), real_f)), 2)
        print(f"FD of the de-tokenizer's reconstructions of the same renders: {res['fd']['detokenizer_reconstruction']}")
    flops = request_flops(mllm, images, questions, audio, captions, steps, args.guidance)
    peak = matmul_gflops(args.threads)
    res["gflop_per_request"] = {k: (round(v, 4) if isinstance(v, float) else v) for k, v in flops.items()}
    res["matmul_gflop_s"] = round(peak, 1)
    res["achieved_gflop_s"] = {}
    for task in ("vqa", "asr", "dsc"):
        res["achieved_gflop_s"][task] = round(flops[task] * res["requests_per_s"][f"{task}_b{n}"], 2)
    for s in steps:
        res["achieved_gflop_s"][f"t2i_{s}"] = round(flops[f"t2i_{s}"] * res["requests_per_s"][f"t2i_s{s}_b{n}"], 2)
    print(f"GFLOP per request: " + ", ".join(f"{k} {v:.3f}" for k, v in flops.items() if isinstance(v, float)))
    print(f"achieved at batch {n}: " + ", ".join(f"{k} {v} GFLOP/s" for k, v in res["achieved_gflop_s"].items())
          + f"; a {args.threads}-thread float32 matmul reaches {peak:.1f} GFLOP/s in the same run")
    if args.out:
        pathlib.Path(args.out).write_text(json.dumps(res, indent=1) + "\n")
    if args.plot and "fd" in res:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        fig, ax = plt.subplots(figsize=(5, 3.5))
        for b in batches:
            xs = [res["requests_per_s"][f"t2i_s{s}_b{b}"] for s in steps]
            ax.plot(xs, [res["fd"][f"steps_{s}"] for s in steps], "o-", label=f"batch {b}")
        for s in steps:
            ax.annotate(f"{s} steps", (res["requests_per_s"][f"t2i_s{s}_b{n}"], res["fd"][f"steps_{s}"]), fontsize=7)
        ax.axhline(res["fd"]["detokenizer_reconstruction"], ls="--", c="gray", label="de-tokenizer reconstruction")
        ax.set_xscale("log"), ax.set_xlabel("t2i requests/s (CPU)"), ax.set_ylabel("FD (EfficientNet-Lite0)")
        ax.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(args.plot, dpi=120)
    return res


if __name__ == "__main__":
    main()
