"""``./unitocom demo``: the whole system (``apps.system_demo``); ``./unitocom demo ber``: the channel layer.

    ./unitocom demo [--snr-db 10] [--channel rayleigh] [--n 4] [--out demo_out]   (see apps/system_demo.py)
    ./unitocom demo ber [--quick]

``demo ber``:
Runs ``flowgraphs/sim/fading_link_ber.grc`` (16-QAM through
power_normalizer → block_fading_channel → csi_equalizer → soft_demapper)
at the SNRs of the channel-layer checks and prints the measured bit error
rate next to the closed form. ``--quick`` uses fewer symbols.
"""
import argparse
import time

from gnuradio import gr

from .link_sim import ber_point

# (channel, Eb/N0 dB, symbols, coherence length): >= 200 errors, and for
# Rayleigh >= 20,000 independent fades, at every point.
POINTS = [("awgn", 4.0, 200_000, 0), ("awgn", 8.0, 200_000, 0), ("awgn", 10.0, 400_000, 0),
          ("rayleigh", 10.0, 320_000, 16), ("rayleigh", 20.0, 640_000, 16)]


def main(argv=None):
    argv = list(__import__("sys").argv[1:] if argv is None else argv)
    if argv[:1] == ["ber"]:
        return ber(argv[1:])
    from . import system_demo
    return system_demo.main(argv)


def ber(argv=None):
    """The BER sweep of the channel layer (16-QAM through the fading-channel blocks vs closed form)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a tenth of the symbols (noisier)")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    gr.logging().set_default_level(gr.log_levels.warn)     # keep the table readable
    print(f"{'channel':9} {'Eb/N0':>6} {'errors':>8} {'bits':>9} {'fades':>6} "
          f"{'BER sim':>10} {'BER theory':>10} {'sim/theory':>10}")
    t0 = time.time()
    for channel, ebn0, n, coherence in POINTS:
        p = ber_point(channel, ebn0, n // 10 if args.quick else n, coherence, seed=args.seed)
        print(f"{channel:9} {ebn0:6.1f} {p.errors:8d} {p.bits:9d} {p.fades:6d} "
              f"{p.ber:10.3e} {p.theory:10.3e} {p.ratio:10.3f}", flush=True)
    print(f"done in {time.time() - t0:.1f} s")


if __name__ == "__main__":
    main()
