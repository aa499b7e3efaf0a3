#!/usr/bin/env python3
"""Symbols per second through jscc_encoder → block_fading_channel → jscc_decoder, on one core.

    ./unitocom python scripts/bench_jscc_link.py [--frames 2000] [--modality image]

Token PDUs (random tokens with the right tokenizer id) are posted to the
encoder; the flowgraph runs until the decoder has published every frame.
Everything is pinned to one CPU core and onnxruntime uses one intra-op
thread without spinning, sessions made once; the encoder batches queued
PDUs, the decoder batches the frames of each work() call. For every rate
it prints channel symbols per second, the ratio to 1 Msample/s (a USRP
B210 at a real-time rate the issue names), and the latency of one frame
alone (encoder + decoder onnxruntime calls, batch 1, median of 50).
A benchmark, not a test: the numbers depend on the machine and its load.
"""
import argparse
import os
import time

import numpy as np
import pmt
from gnuradio import blocks, gr

from gnuradio.unitocom import block_fading_channel, jscc_decoder, jscc_encoder
from gnuradio.unitocom.runtime import model_store, pdu_util
from gnuradio.unitocom.runtime.onnx_session import make_session


def run_link(modality, rate, frames):
    enc = jscc_encoder(modality, "", "", rate, 10.0, "packet_len", "cpu", 1, 64)
    dec = jscc_decoder(modality, "", "", "", 10.0, "packet_len", "cpu", 1, 64)
    channel = block_fading_channel("rayleigh", 10.0, 0, 0.0, 1.0, 1, "packet_len")
    sink = blocks.message_debug()
    tb = gr.top_block()
    tb.connect(enc, channel, dec)
    tb.msg_connect(dec, "tokens", sink, "store")
    meta, vocab = enc.meta["tokenizer"], int(enc.meta.get("vocab", "0"))
    n, d = (int(enc.meta["token_len"]) if enc.meta["token_len"].isdigit() else 50), int(enc.meta["token_dim"])
    rng = np.random.default_rng(0)
    if vocab:
        msgs = [pdu_util.make(pmt.to_pmt({"model_id": meta}), rng.integers(0, vocab, n).astype(np.int32))
                for _ in range(frames)]
    else:
        msgs = [pdu_util.make(pmt.to_pmt({"model_id": meta}), rng.standard_normal(n * d).astype(np.float32))
                for _ in range(frames)]
    core = enc.to_basic_block()                     # queued before start: the clock measures the link alone
    t0 = time.perf_counter()
    tb.start()
    for m in msgs:
        core._post(pmt.intern("tokens"), m)
    core._post(pmt.intern("system"), pmt.cons(pmt.intern("done"), pmt.from_long(1)))
    tb.wait()
    elapsed = time.perf_counter() - t0
    if sink.num_messages() != frames:
        print(f"LOST: {sink.num_messages()} of {frames} frames decoded", flush=True)
    return frames * n * rate / elapsed, n, enc, dec


def latency(enc, dec, n, rate):
    """Median seconds of one frame through the encoder and decoder sessions, batch 1."""
    d, k = int(enc.meta["token_dim"]), int(enc.meta["k_max"])
    tokens = (np.zeros((1, n), np.int64) if int(enc.meta.get("vocab", "0")) else np.zeros((1, n, d), np.float32))
    enc_sess, dec_sess = (make_session(str(model_store.find(b.model_id)), 1, "cpu") for b in (enc, dec))
    snr, r = np.array([10.0], np.float32), np.array([float(rate)], np.float32)
    feed_dec = {"symbols": np.zeros((1, n, k, 2), np.float32), "reliability": np.zeros((1, n, k), np.float32),
                "snr_db": snr, "rate": r}
    times = []
    for _ in range(50):
        t0 = time.perf_counter()
        enc_sess.run(None, {"tokens": tokens, "snr_db": snr, "rate": r})
        dec_sess.run(None, feed_dec)
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=2000)
    ap.add_argument("--modality", default="image", choices=("image", "audio", "text"))
    args = ap.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    print(f"{args.modality} JSCC link, one core, {args.frames} frames per rate")
    print("rate (symbols/token) | symbols/frame | symbols/s | × 1 Msample/s | one frame alone (ms)")
    enc0 = jscc_encoder(args.modality, "", "", 2, 10.0, "packet_len", "cpu", 1, 64)
    for rate in enc0.rates:
        sps, n, enc, dec = run_link(args.modality, rate, args.frames)
        lat = latency(enc, dec, n, rate)
        print(f"{rate:>20} | {n * rate:>13} | {sps:>9.3g} | {sps / 1e6:>13.3f} | {lat * 1e3:.2f}")


if __name__ == "__main__":
    main()
