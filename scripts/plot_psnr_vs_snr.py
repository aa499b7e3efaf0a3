#!/usr/bin/env python3
"""PSNR vs SNR of the UniToCom image link next to separate source-channel coding.

    ./unitocom python scripts/plot_psnr_vs_snr.py [--n-images 100] [--out docs/psnr_vs_snr.png]

UniToCom: the committed flowgraph ``flowgraphs/sim/image_link.grc``
(scene_source → tx → block_fading_channel → rx → image_sink) with the
bundled S=32 tokenizer and image JSCC, at rates 8 and 16 symbols per token
(256 and 512 complex channel uses per image). Reference, with the same
channel uses and channel (``unitocom.baselines.separate``): JPEG + gr-fec
LDPC (rate ≈ 1/2) + Gray 16-QAM, and JPEG at the Shannon capacity
n·log2(1+|h|²SNR) bits. A lost or unsendable image shows the mean training
image. The third panel sweeps the channel uses at 10 dB AWGN.

Writes the figure and a JSON of every number (next to it), and prints a table.
"""
import argparse
import json
import pathlib
import sys
import tempfile
import time

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "python_blocks"))

from gnuradio.unitocom.baselines import separate  # noqa: E402
from gnuradio.unitocom.core import metrics  # noqa: E402
from gnuradio.unitocom.data import corpus  # noqa: E402
from gnuradio.unitocom.apps.flowgraph_runner import compile_flowgraph, flowgraph_path, load_flowgraph_class  # noqa: E402

TOKENS = 32     # S of the bundled image tokenizer the link uses


def unitocom_points(cls, channel, snrs, rate, n_images, seed):
    out = []
    for snr in snrs:
        tb = cls(snr_db=float(snr), channel_type=channel, rate=int(rate), n_images=int(n_images), seed=int(seed),
                 out_dir="")
        tb.start()
        tb.wait()
        values = tb.sink.psnr_values()
        if len(values) != n_images:
            raise RuntimeError(f"image_link lost images: {len(values)} of {n_images} at {channel} {snr} dB rate {rate}")
        out.append(float(np.mean(values)))
        print(f"  unitocom {channel:8s} {snr:5.1f} dB rate {rate:2d}: {out[-1]:.2f} dB", flush=True)
    return out


def separate_points(ladders, fallback, channel, snrs, n_symbols, seed):
    ldpc_psnr, cap_psnr = [], []
    for snr in snrs:
        rng = np.random.default_rng([seed, int(n_symbols), int(10 * snr) + 1000])
        lp, cp = [], []
        for ladder in ladders:
            h = separate.fading(channel, rng)
            rec, _ = separate.send_ldpc(ladder, n_symbols, snr, h, rng, fallback)
            lp.append(metrics.psnr(rec, ladder.image))
            rec, _ = separate.send_capacity(ladder, n_symbols, snr, h, fallback)
            cp.append(metrics.psnr(rec, ladder.image))
        ldpc_psnr.append(float(np.mean(lp)))
        cap_psnr.append(float(np.mean(cp)))
        print(f"  separate {channel:8s} {snr:5.1f} dB n={n_symbols:4d}: LDPC+16QAM {ldpc_psnr[-1]:.2f} dB, "
              f"capacity {cap_psnr[-1]:.2f} dB", flush=True)
    return ldpc_psnr, cap_psnr


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n-images", type=int, default=100)
    ap.add_argument("--snrs", default="-5,0,5,10,15,20")
    ap.add_argument("--rates", default="8,16")
    ap.add_argument("--sweep-symbols", default="64,128,256,512,1024,2048")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=str(ROOT / "docs" / "psnr_vs_snr.png"))
    args = ap.parse_args(argv)
    snrs = [float(s) for s in args.snrs.split(",")]
    rates = [int(r) for r in args.rates.split(",")]
    sweep = [int(n) for n in args.sweep_symbols.split(",")]
    t0 = time.time()

    images = [corpus.scene_image("test", i, 0) for i in range(args.n_images)]
    fallback = np.rint(np.mean([corpus.scene_image("train", i, 0) for i in range(256)], axis=0)).astype(np.uint8)
    ladders = [separate.JpegLadder(img) for img in images]
    cls = load_flowgraph_class(compile_flowgraph(flowgraph_path("sim/image_link.grc"), tempfile.mkdtemp()))

    res = {"n_images": args.n_images, "snr_db": snrs, "fallback_psnr": float(np.mean(
        [metrics.psnr(fallback, img) for img in images])), "curves": {}, "sweep": {}}
    for channel in ("awgn", "rayleigh"):
        for rate in rates:
            n = TOKENS * rate
            res["curves"][f"unitocom/{channel}/n{n}"] = unitocom_points(cls, channel, snrs, rate, args.n_images,
                                                                          args.seed)
            lp, cp = separate_points(ladders, fallback, channel, snrs, n, args.seed)
            res["curves"][f"jpeg_ldpc_16qam/{channel}/n{n}"] = lp
            res["curves"][f"jpeg_capacity/{channel}/n{n}"] = cp
    sweep_rates = [n // TOKENS for n in sweep if n % TOKENS == 0 and n // TOKENS in (2, 4, 8, 16)]
    res["sweep"]["symbols"] = sweep
    res["sweep"]["unitocom_symbols"] = [TOKENS * r for r in sweep_rates]
    res["sweep"]["unitocom"] = [unitocom_points(cls, "awgn", [10.0], r, args.n_images, args.seed)[0]
                                for r in sweep_rates]
    lp, cp = zip(*[tuple(v[0] for v in separate_points(ladders, fallback, "awgn", [10.0], n, args.seed))
                   for n in sweep])
    res["sweep"]["jpeg_ldpc_16qam"], res["sweep"]["jpeg_capacity"] = list(lp), list(cp)
    res["seconds"] = round(time.time() - t0, 1)

    out = pathlib.Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(res, indent=1) + "\n")
    plot(res, rates, out)
    print(f"wrote {out} and {out.with_suffix('.json')} in {res['seconds']} s")


def plot(res, rates, out):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.6))
    colors = {rates[0]: "tab:blue", rates[-1]: "tab:red"}
    snrs = res["snr_db"]
    for ax, channel in zip(axes, ("awgn", "rayleigh")):
        for rate in rates:
            n, c = TOKENS * rate, colors.get(rate, "k")
            ax.plot(snrs, res["curves"][f"unitocom/{channel}/n{n}"], "o-", color=c, label=f"UniToCom, {n} symbols")
            ax.plot(snrs, res["curves"][f"jpeg_ldpc_16qam/{channel}/n{n}"], "s--", color=c,
                    label=f"JPEG+LDPC+16-QAM, {n}")
            ax.plot(snrs, res["curves"][f"jpeg_capacity/{channel}/n{n}"], ":", color=c, label=f"JPEG at capacity, {n}")
        ax.axhline(res["fallback_psnr"], color="gray", lw=0.8, ls="-.", label="nothing received (mean image)")
        ax.set_title(f"{'AWGN' if channel == 'awgn' else 'Rayleigh block fading'}, {res['n_images']} test images")
        ax.set_xlabel("SNR (dB)")
        ax.set_ylabel("PSNR (dB)")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    sw = res["sweep"]
    ax = axes[2]
    ax.semilogx(sw["unitocom_symbols"], sw["unitocom"], "o-", color="tab:green", label="UniToCom (rates 2-16)")
    ax.semilogx(sw["symbols"], sw["jpeg_ldpc_16qam"], "s--", color="k", label="JPEG+LDPC+16-QAM")
    ax.semilogx(sw["symbols"], sw["jpeg_capacity"], ":", color="k", label="JPEG at capacity")
    ax.axhline(res["fallback_psnr"], color="gray", lw=0.8, ls="-.")
    ax.set_title("AWGN 10 dB: channel uses per image")
    ax.set_xlabel("complex channel symbols per 64×64 image")
    ax.set_ylabel("PSNR (dB)")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out, dpi=110)


if __name__ == "__main__":
    main()
