#!/usr/bin/env python3
"""Simulated vs closed-form BER of uncoded Gray 16-QAM, AWGN and Rayleigh.

    ./unitocom python scripts/plot_ber_curves.py [--out docs/ber_16qam.png]

Every point runs flowgraphs/sim/fading_link_ber.grc (the same path as the
tests) with enough symbols for about 400 bit errors; Rayleigh fades every
16 symbols so each point sees at least 20,000 independent fades.
Writes the PNG and prints the table it plotted.
"""
import argparse
import math
import pathlib

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from gnuradio import gr  # noqa: E402

from gnuradio.unitocom.dsp import ber_theory  # noqa: E402
from gnuradio.unitocom.apps.link_sim import ber_point  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parent.parent
SWEEPS = {"awgn": np.arange(0, 13, 2.0), "rayleigh": np.arange(0, 31, 5.0)}


def symbols_for(channel, ebn0, target_errors=400):
    """Enough symbols for ~400 errors; Rayleigh also >= 20,000 fades of 16."""
    n = math.ceil(target_errors / (4 * ber_theory.qam16_ber(channel, ebn0)))
    floor = 50_000 if channel == "awgn" else 320_000
    return int(min(max(n, floor), 3_000_000))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(ROOT / "docs" / "ber_16qam.png"))
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    gr.logging().set_default_level(gr.log_levels.warn)
    fig, ax = plt.subplots(figsize=(6.4, 4.6), dpi=120)
    print(f"{'channel':9} {'Eb/N0':>6} {'errors':>7} {'bits':>9} {'sim':>10} {'theory':>10}")
    for (channel, ebn0s), color in zip(SWEEPS.items(), ("tab:blue", "tab:red")):
        sims = []
        for ebn0 in ebn0s:
            p = ber_point(channel, float(ebn0), symbols_for(channel, ebn0),
                          coherence_len=0 if channel == "awgn" else 16, seed=args.seed)
            sims.append(p.ber)
            print(f"{channel:9} {ebn0:6.1f} {p.errors:7d} {p.bits:9d} {p.ber:10.3e} {p.theory:10.3e}", flush=True)
        fine = np.linspace(ebn0s[0], ebn0s[-1], 200)
        ax.semilogy(fine, ber_theory.qam16_ber(channel, fine), color=color, lw=1.2,
                    label=f"{channel.upper() if channel == 'awgn' else 'Rayleigh'}: closed form")
        ax.semilogy(ebn0s, sims, "o", color=color, mfc="none",
                    label=f"{channel.upper() if channel == 'awgn' else 'Rayleigh'}: simulated (GNU Radio)")
    ax.set_xlabel("Eb/N0 (dB)")
    ax.set_ylabel("bit error rate")
    ax.set_title("Uncoded Gray 16-QAM, ZF equalizer with genie CSI")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    out = pathlib.Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
