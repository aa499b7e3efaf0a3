#!/usr/bin/env python3
"""[8/10]'s 1,000-frame verification of the OFDM loopback (fixed seeds), and the PSNR-vs-SNR table.

Run A: N image frames at 15 dB in-band SNR, CFO 0.1 carrier spacing, random
timing offset, 20 ppm sampling-rate offset, 3-tap multipath: frames detected
with a valid header, lost, duplicated; SNR-estimate error; PSNR with estimated
CSI vs the genie-CSI simulation (tx → block_fading_channel AWGN → rx).
Run B: the same with a burst of garbage before every 5th frame and every 10th
frame cut short: the cut ones are dropped and counted, every other one arrives.
Table: PSNR estimated vs genie over SNR (``--table``).
Run: ./unitocom python scripts/verify_ota_loopback.py [--frames 1000] [--table]"""
import argparse
import collections
import time

import numpy as np

from gnuradio.unitocom.apps import ota_loopback as ol
from gnuradio.unitocom.ofdm.params import OfdmParams


def check(images, bursts, imp, label):
    t0 = time.perf_counter()
    x, kinds = ol.impair(bursts, imp)
    got, stats = ol.receive(x)
    ids = [int(m["frame_id"]) for m, _ in got]
    counts = collections.Counter(ids)
    want = [i for i, k in kinds.items() if k == "ok"]
    lost = sorted(set(want) - set(ids))
    dup = sorted(i for i, c in counts.items() if c > 1)
    wrong = sorted(set(ids) - set(want))
    err = np.array([m["snr_db"] - ol.true_snr_db(imp, OfdmParams()) for m, _ in got])
    est = ol.psnrs(got, images)
    print(f"{label}: {len(want)} frames sent whole ({len(kinds) - len(want)} cut), {len(set(ids))} received "
          f"({100 * len(set(ids) & set(want)) / len(want):.2f} %), lost {len(lost)} {lost[:10]}, duplicated {len(dup)}, "
          f"cut ones delivered {len(wrong)}; SNR estimate error mean {err.mean():+.3f} dB, std {err.std():.3f}, "
          f"max |{np.abs(err).max():.3f}| dB, within 1 dB {100 * np.mean(np.abs(err) < 1):.2f} %; "
          f"PSNR (estimated CSI) {np.mean(list(est.values())):.2f} dB; counters {stats}; {time.perf_counter() - t0:.0f} s")
    return est


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=1000)
    ap.add_argument("--table", action="store_true", help="also PSNR vs SNR, estimated vs genie CSI")
    ap.add_argument("--table-images", type=int, default=64)
    args = ap.parse_args()
    images = ol.scenes(args.frames)
    bursts = ol.transmit(images)
    est = check(images, bursts, ol.Impairments(snr_db=15.0, seed=11), "run A (15 dB, CFO, SRO, timing, 3 taps)")
    genie = ol.psnrs(ol.genie(images, 15.0, seed=11), images)
    print(f"run A: PSNR estimated CSI {np.mean(list(est.values())):.2f} dB vs genie CSI {np.mean(list(genie.values())):.2f} dB")
    n_b = min(200, args.frames)
    check(images[:n_b], bursts[:n_b], ol.Impairments(snr_db=15.0, seed=12, garbage_every=5, cut_every=10),
          "run B (+ garbage bursts, cut frames)")
    if args.table:
        imgs, bs = images[:args.table_images], bursts[:args.table_images]
        print("| SNR (dB) | frames received | SNR estimate error (mean ± std, dB) | PSNR estimated CSI (dB) | PSNR genie CSI (dB) |")
        print("|---|---|---|---|---|")
        for snr in (0.0, 5.0, 10.0, 15.0, 20.0, 25.0):
            imp = ol.Impairments(snr_db=snr, seed=21)
            got, _ = ol.receive(ol.impair(bs, imp)[0])
            err = np.array([m["snr_db"] - ol.true_snr_db(imp, OfdmParams()) for m, _ in got])
            e = ol.psnrs(got, imgs)
            g = ol.psnrs(ol.genie(imgs, snr, seed=21), imgs)
            es = f"{np.mean(list(e.values())):.2f}" if e else "–"
            er = f"{err.mean():+.2f} ± {err.std():.2f}" if len(err) else "–"
            print(f"| {snr:.0f} | {len(got)}/{len(imgs)} | {er} | {es} | {np.mean(list(g.values())):.2f} |")


if __name__ == "__main__":
    main()
