#!/usr/bin/env python3
"""A page of corpus examples: scenes with a question and its answer, and
scenes rendered from captions.

    ./unitocom python scripts/plot_corpus_examples.py [--out docs/corpus_examples.png] [--size 128]
"""
import argparse
import pathlib
import textwrap

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from gnuradio.unitocom.data.corpus import make_item  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parent.parent


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(ROOT / "docs" / "corpus_examples.png"))
    ap.add_argument("--size", type=int, default=128, choices=(64, 128))
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    items = [make_item("test", i, args.seed, size=args.size) for i in range(4)]
    fig, axes = plt.subplots(2, 4, figsize=(12, 7.2), dpi=100)
    for col, item in enumerate(items):
        q = item["questions"][0]
        axes[0, col].imshow(item["image"])
        axes[0, col].set_title("\n".join(textwrap.wrap(f"{q['text']} → {q['answer']}", 34)), fontsize=8)
        axes[1, col].imshow(item["caption_image"])
        axes[1, col].set_title("\n".join(textwrap.wrap(item["caption"]["text"], 34)), fontsize=8)
    for ax in axes.flat:
        ax.axis("off")
    axes[0, 0].text(-0.08, 0.5, "scene + question", transform=axes[0, 0].transAxes, rotation=90, va="center")
    axes[1, 0].text(-0.08, 0.5, "rendered from caption", transform=axes[1, 0].transAxes, rotation=90, va="center")
    fig.tight_layout()
    out = pathlib.Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
