#!/usr/bin/env python3
"""onnxruntime options for the receiver's image models, side by side: ms per frame (wall and CPU).

    ./unitocom python scripts/bench_rx_models.py [--batches 1 8 32] [--threads 1 2]

For the JSCC decoder and the image de-tokenizer (float32, and the int8 one
when shipped), each row is one session: graph optimisation level (all /
basic / disabled), intra-op threads, spin-waiting (on/off), and per batch
size the wall and CPU (process time, all threads) milliseconds per frame,
best of 5 after a warm-up. ``runtime.onnx_session.make_session`` (what the
blocks use) is "all, 1 thread, no spinning". A benchmark: numbers depend on
the machine and its load.
"""
import argparse
import time

import numpy as np

from gnuradio.unitocom.runtime import model_store
from gnuradio.unitocom.runtime.onnx_session import onnxruntime

MODELS = (("JSCC decoder", "image_jscc_decoder_s32"), ("de-tokenizer", "image_detokenizer_s32"),
          ("de-tokenizer int8", "image_detokenizer_int8_s32"))


def session(path, level, threads, spin):
    ort = onnxruntime()
    o = ort.SessionOptions()
    o.graph_optimization_level = {"all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
                                  "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
                                  "disabled": ort.GraphOptimizationLevel.ORT_DISABLE_ALL}[level]
    o.intra_op_num_threads, o.inter_op_num_threads = threads, 1
    o.add_session_config_entry("session.intra_op.allow_spinning", "1" if spin else "0")
    return ort.InferenceSession(str(path), sess_options=o, providers=["CPUExecutionProvider"])


def feed(sess, batch, rng):
    out = {}
    for i in sess.get_inputs():
        shape = [batch] + [d for d in i.shape[1:]]
        out[i.name] = np.full(shape, 8.0 if i.name == "rate" else 15.0, np.float32) if len(shape) == 1 else \
            rng.normal(size=shape).astype(np.float32)
    return out


def timing(sess, batch, rng, reps):
    f = feed(sess, batch, rng)
    sess.run(None, f)
    wall = cpu = float("inf")
    for _ in range(5):
        c, t = time.process_time(), time.perf_counter()
        for _ in range(reps):
            sess.run(None, f)
        wall = min(wall, (time.perf_counter() - t) / reps / batch * 1e3)
        cpu = min(cpu, (time.process_time() - c) / reps / batch * 1e3)
    return wall, cpu


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 8, 32])
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    print("model              level    threads spin | " + " | ".join(f"batch {b:2d}: wall / CPU ms per frame"
                                                              for b in args.batches))
    for label, name in MODELS:
        try:
            path = model_store.find(name, "genib")
        except ValueError:
            continue
        for level in ("all", "basic", "disabled"):
            for threads in args.threads:
                for spin in ((False, True) if threads > 1 else (False,)):
                    sess = session(path, level, threads, spin)
                    cells = [timing(sess, b, rng, max(3, 64 // b)) for b in args.batches]
                    print(f"{label:18s} {level:8s} {threads:7d} {'on ' if spin else 'off'}  | "
                          + " | ".join(f"{w:6.3f} / {c:6.3f}{'':19s}" for w, c in cells), flush=True)


if __name__ == "__main__":
    main()
