#!/usr/bin/env python3
"""How much the one SNR-adaptive image JSCC gives up against JSCCs trained at one SNR.

    ./unitocom python scripts/jscc_snr_gap.py [--adaptive MODEL] [--refs runs/jscc-image-fixed{snr}]

The references are trained with ``onnx_export.train_jscc --fixed-snr X``
(same tokens, network, rates, steps and seed as the adaptive model; see
docs/models/image_jscc_s32.md) and scored by the same ``evaluate`` (same
500 test images, same noise seeds), so the numbers compare one to one. The
adaptive model's scores are read from its ONNX metadata (``train_metrics``).
Prints a table of PSNR at each reference's own SNR, for both channels and
every rate, and writes it as JSON (``--json``).
"""
import argparse
import json
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "python_blocks"))

from gnuradio.unitocom.runtime import model_store  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--adaptive", default="image_jscc_decoder_s32", help="model name, id or .onnx path")
    ap.add_argument("--variant", default="genib")
    ap.add_argument("--refs", default=str(ROOT / "runs" / "jscc-image-fixed{snr}"))
    ap.add_argument("--snrs", default="0,10,20")
    ap.add_argument("--json", default="")
    args = ap.parse_args(argv)
    path = pathlib.Path(args.adaptive)
    if not path.is_file():
        path = model_store.find(args.adaptive, args.variant)
    meta = model_store.read_metadata(path)
    adaptive = json.loads(meta["train_metrics"])
    rows, gaps = [], []
    for snr in [float(s) for s in args.snrs.split(",")]:
        ref_file = pathlib.Path(args.refs.format(snr=f"{snr:g}")) / "metrics.json"
        if not ref_file.is_file():
            raise SystemExit(f"no reference at {ref_file}: train it with onnx_export.train_jscc --fixed-snr {snr:g}")
        ref = json.loads(ref_file.read_text())
        for key, value in sorted(ref["scores"].items()):
            channel, snr_key, rate = key.split("/")
            if float(snr_key[:-2]) != snr:
                continue
            gap = value - adaptive[key]
            rows.append({"snr_db": snr, "channel": channel, "rate": int(rate[1:]), "fixed": value,
                         "adaptive": adaptive[key], "gap_db": round(gap, 3), "ref_steps": ref["steps"]})
            gaps.append(gap)
    rows.sort(key=lambda r: (r["snr_db"], r["channel"], r["rate"]))
    print(f"adaptive: {model_store.model_id(path)}; references: {args.refs}")
    print(f"{'SNR':>5} {'channel':9} {'rate':>4} {'fixed-SNR':>10} {'adaptive':>9} {'gap dB':>7}")
    for r in rows:
        print(f"{r['snr_db']:5g} {r['channel']:9} {r['rate']:4d} {r['fixed']:10.2f} {r['adaptive']:9.2f} "
              f"{r['gap_db']:7.2f}")
    worst = max(gaps)
    print(f"largest gap (fixed − adaptive): {worst:.2f} dB; mean {sum(gaps) / len(gaps):.2f} dB over {len(gaps)} points")
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps({"adaptive": model_store.model_id(path), "rows": rows,
                                                       "max_gap_db": round(worst, 3)}, indent=1) + "\n")


if __name__ == "__main__":
    main()
