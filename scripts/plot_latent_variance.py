#!/usr/bin/env python3
"""Per-dimension spread of the latent tokens: σ-GenIB vs the VAE baseline.

    ./unitocom python scripts/plot_latent_variance.py [--tokens 32] [--out docs/latent_variance.png]

The paper's motivation for σ-GenIB is *variance collapse*: a VAE drives some
latent dimensions to carry (almost) nothing, which hurts autoregressive
generation. For every shipped image tokenizer with ``--tokens`` tokens this
runs the first 500 test images (regenerated from the corpus seed 0) through
the ONNX model and plots, per token dimension (sorted): left, the spread
of μ across images; right, the per-sample posterior standard deviation the
VAE learned (mean of exp(½·log σ²)) next to σ-GenIB's fixed σ (mean |σ| for
σ ~ N(0, C_σ), C_σ = 0.25 as trained). Prints the numbers it plots.
"""
import argparse
import pathlib

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from gnuradio.unitocom.runtime import model_store  # noqa: E402
from gnuradio.unitocom.data.corpus import make_item  # noqa: E402
from gnuradio.unitocom.runtime.onnx_session import make_session  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parent.parent


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tokens", type=int, default=32)
    ap.add_argument("--images", type=int, default=500)
    ap.add_argument("--out", default=str(ROOT / "docs" / "latent_variance.png"))
    args = ap.parse_args()
    x = np.stack([make_item("test", i, 0)["image"] for i in range(args.images)]).astype(np.float32)
    x = x.transpose(0, 3, 1, 2) / 255.0
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(10, 4.2), dpi=120)
    found = 0
    for variant, color in (("genib", "tab:blue"), ("vae", "tab:red")):
        try:
            path = model_store.find(f"image_tokenizer_s{args.tokens}", variant)
        except ValueError:
            print(f"{variant}: no shipped model image_tokenizer_s{args.tokens}-{variant}")
            continue
        outs = make_session(str(path), 2, "cpu").run(None, {"image": x})
        mu = outs[0]                                                              # (N, S, d)
        std = np.sort(mu.reshape(-1, mu.shape[-1]).std(axis=0))[::-1]
        rel = std / std.max()
        print(f"{variant}: std per dim (sorted) {np.round(std, 3).tolist()}; "
              f"dims below 10% of the largest: {int(np.sum(rel < 0.1))} of {len(std)}")
        ax.plot(np.arange(1, len(std) + 1), std, "o-", color=color, label=f"{variant} ({path.name})")
        if len(outs) > 1:                                                         # the VAE's log σ²
            post = np.sort(np.exp(0.5 * outs[1]).reshape(-1, mu.shape[-1]).mean(axis=0))[::-1]
            print(f"{variant}: learned posterior std per dim (sorted) {np.round(post, 4).tolist()}")
            ax2.plot(np.arange(1, len(post) + 1), post, "o-", color=color, label=f"{variant}: learned σ")
        else:
            fixed = np.sqrt(0.25) * np.sqrt(2 / np.pi)
            ax2.axhline(fixed, color=color, label=f"{variant}: fixed σ, E|σ| = {fixed:.2f}")
        found += 1
    if not found:
        raise SystemExit("no image tokenizers shipped")
    ax.set_xlabel("token dimension (sorted by spread)")
    ax.set_ylabel("std of μ across test images")
    ax.set_yscale("log")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    ax.set_title(f"Spread of μ across images, S = {args.tokens}")
    ax2.set_xlabel("token dimension (sorted)")
    ax2.set_ylabel("posterior std σ")
    ax2.set_yscale("log")
    ax2.grid(True, which="both", alpha=0.3)
    ax2.legend(fontsize=7)
    ax2.set_title("Posterior std per dimension")
    fig.tight_layout()
    fig.savefig(args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
