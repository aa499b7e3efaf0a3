#!/usr/bin/env python3
"""Throughput of block_fading_channel next to GNU Radio's channels.channel_model.

    ./unitocom python scripts/bench_block_fading_channel.py [--msamples 20] [--repeats 3]

Both run in the same process, pinned to one CPU core, on the same input
(vector_source → head → channel → null_sink), alternating, best of
``--repeats``. channel_model is set up as a plain AWGN channel (no
frequency or timing offset, taps [1]); ours runs AWGN and Rayleigh block
fading (coherence 1024 and 64; three CSI tags per fade). Prints Msamples/s and the
ratio ours / channel_model, first with GNU Radio's default buffers, then
with 65536-item buffers around the channel (GNU Radio's Python gateway
costs a roughly fixed time per work() call, so longer calls amortise it).
A benchmark, not a test: the numbers depend on
the machine and its load.
"""
import argparse
import os
import time

import numpy as np
from gnuradio import blocks, channels, gr

from gnuradio.unitocom import block_fading_channel


def rate(make_channel, n, buffer_items=0):
    tb = gr.top_block()
    x = (np.random.default_rng(0).standard_normal(1 << 16) * (1 + 1j) / np.sqrt(2)).astype(np.complex64)
    src = blocks.vector_source_c(x.tolist(), True)
    head = blocks.head(gr.sizeof_gr_complex, n)
    channel = make_channel()
    if buffer_items:                       # larger buffers: fewer, longer work() calls
        head.set_min_output_buffer(buffer_items)
        channel.set_min_output_buffer(buffer_items)
    tb.connect(src, head, channel, blocks.null_sink(gr.sizeof_gr_complex))
    t0 = time.perf_counter()
    tb.run()
    return n / (time.perf_counter() - t0) / 1e6


def baseline_rate(n):
    """The source → head → sink chain alone, to show the harness's own cost."""
    tb = gr.top_block()
    src = blocks.vector_source_c([0j] * 4096, True)
    tb.connect(src, blocks.head(gr.sizeof_gr_complex, n), blocks.null_sink(gr.sizeof_gr_complex))
    t0 = time.perf_counter()
    tb.run()
    return n / (time.perf_counter() - t0) / 1e6


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--msamples", type=float, default=20.0, help="samples per run, in millions")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--all-cores", action="store_true", help="do not pin to one core")
    args = ap.parse_args()
    if not args.all_cores and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    n = int(args.msamples * 1e6)
    snr_db = 10.0
    noise_voltage = float(np.sqrt(10 ** (-snr_db / 10)))
    cases = {
        "channels.channel_model (C++, AWGN)":
            lambda: channels.channel_model(noise_voltage, 0.0, 1.0, [1.0 + 0j], 0, False),
        "unitocom.block_fading_channel (AWGN)":
            lambda: block_fading_channel("awgn", snr_db, 0, seed=1),
        "unitocom.block_fading_channel (Rayleigh, coherence 1024)":
            lambda: block_fading_channel("rayleigh", snr_db, 1024, seed=1),
        "unitocom.block_fading_channel (Rayleigh, coherence 64)":
            lambda: block_fading_channel("rayleigh", snr_db, 64, seed=1),
    }
    gr.logging().set_default_level(gr.log_levels.warn)
    harness = baseline_rate(n)
    cores = "all cores" if args.all_cores else "one core"
    print(f"{n / 1e6:.0f} Msamples per run, best of {args.repeats}, {cores}; "
          f"source->head->sink alone: {harness:.1f} Msamples/s")
    for buffer_items, title in ((0, "default buffers"), (1 << 16, "65536-item buffers before and after the channel")):
        best = {name: 0.0 for name in cases}
        for _ in range(args.repeats):
            for name, make in cases.items():
                best[name] = max(best[name], rate(make, n, buffer_items))
        ref = best["channels.channel_model (C++, AWGN)"]
        print(f" {title}:")
        for name, r in best.items():
            print(f"  {name:55s} {r:8.1f} Msamples/s   ratio to channel_model {r / ref:5.2f}")


if __name__ == "__main__":
    main()
