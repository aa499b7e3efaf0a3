#!/usr/bin/env python3
"""Receive-chain throughput over the air, in Msample/s of baseband, measured side by side in one run.

The same recorded baseband (N image bursts back to back, 15 dB, CFO 0.1 carrier
spacing, 3-tap multipath) goes through

* ``phy``:  ofdm_rx (S&C sync, LTS timing, CFO, header, channel/noise estimation, CSI tags) → null sink
* ``full``: ofdm_rx → rx (JSCC decoder, de-tokenizer) → image PDUs

and the rate is samples / wall-clock seconds (the flowgraph runs as fast as it
can). A B210 at 1 MS/s needs 1.0. Run: ./unitocom python scripts/bench_ota_rx.py [--frames N] [--threads T]"""
import argparse
import time

import numpy as np
from gnuradio import blocks, gr

from gnuradio.unitocom.apps import ota_loopback as ol
from gnuradio.unitocom.ofdm_rx import ofdm_rx
from gnuradio.unitocom.rx import rx


def run(samples, full, threads):
    tb = gr.top_block()
    src = blocks.vector_source_c(samples)
    o = ofdm_rx()
    tb.connect(src, o)
    if full:
        r, col = rx("image", device="cpu", threads=threads), ol._Collector()
        tb.connect(o, r)
        tb.msg_connect(r, "pdu", col, "in")
    else:
        tb.connect(o, blocks.null_sink(gr.sizeof_gr_complex))
    t0 = time.perf_counter()
    tb.run()
    dt = time.perf_counter() - t0
    return len(samples) / dt / 1e6, o.stats()["frames"], (len(col.pdus) if full else None)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=400)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()
    images = ol.scenes(50)
    bursts = ol.transmit(images)
    bursts = [bursts[i % len(bursts)] for i in range(args.frames)]
    x, _ = ol.impair(bursts, ol.Impairments(snr_db=15.0, max_gap=0, sro_ppm=0.0))
    print(f"{len(x)} samples, {args.frames} frames ({len(x) / args.frames:.0f} samples/frame)")
    for rep in range(args.repeats):
        phy = run(x, False, args.threads)
        full = run(x, True, args.threads)
        print(f"run {rep}: phy only {phy[0]:.3f} MS/s ({phy[1]} frames) | full chain {full[0]:.3f} MS/s "
              f"({full[2]} images) | ratio {full[0] / phy[0]:.2f}")


if __name__ == "__main__":
    main()
