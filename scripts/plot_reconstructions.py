#!/usr/bin/env python3
"""Test images and their reconstructions by a shipped image tokenizer pair,
noiseless and through the Rayleigh token link at 0 and 10 dB.

    ./unitocom python scripts/plot_reconstructions.py [--model image_tokenizer_s32] [--variant genib]
"""
import argparse
import pathlib

import numpy as np
from PIL import Image

from gnuradio.unitocom.dsp import channel_math as cm
from gnuradio.unitocom.runtime import model_store
from gnuradio.unitocom.data.corpus import make_item
from gnuradio.unitocom.runtime.onnx_session import make_session

ROOT = pathlib.Path(__file__).resolve().parent.parent


def rayleigh_link(tokens, snr_db, rng):
    """The fixed-mapping token link of the training code, in numpy (channel_math)."""
    b = tokens.shape[0]
    z = tokens.reshape(b, -1, 2) @ np.array([1, 1j])
    scale = np.sqrt(np.mean(np.abs(z) ** 2, axis=1, keepdims=True))
    h = cm.draw_fading(rng.standard_normal, (b, 1), "rayleigh")
    nv = cm.noise_variance(snr_db)
    y = cm.apply_channel(z / scale, h, nv, cm.complex_normal(rng.standard_normal, z.shape))
    x = cm.equalize(y, h, nv, "zf")[0] * scale
    return np.stack([x.real, x.imag], axis=-1).reshape(tokens.shape).astype(np.float32)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="image_tokenizer_s32")
    ap.add_argument("--variant", default="genib")
    ap.add_argument("--n", type=int, default=8)
    args = ap.parse_args()
    tok = make_session(str(model_store.find(args.model, args.variant)), 2, "cpu")
    det = make_session(str(model_store.find(args.model.replace("tokenizer", "detokenizer"), args.variant)), 2, "cpu")
    x = np.stack([make_item("test", i, 0)["image"] for i in range(args.n)]).astype(np.float32) / 255
    t = tok.run(None, {"image": x.transpose(0, 3, 1, 2)})[0]
    rng = np.random.default_rng(0)
    rows = [x] + [det.run(None, {"tokens": tt})[0].transpose(0, 2, 3, 1)
                  for tt in (t, rayleigh_link(t, 10.0, rng), rayleigh_link(t, 0.0, rng))]
    grid = np.concatenate([np.concatenate(list(r), axis=1) for r in rows], axis=0)
    out = ROOT / "docs" / f"{args.model}-{args.variant}.png"
    Image.fromarray(np.round(np.clip(grid, 0, 1) * 255).astype(np.uint8)).resize(
        (grid.shape[1] * 2, grid.shape[0] * 2), Image.NEAREST).save(out)
    print(f"wrote {out}: rows = original, noiseless, Rayleigh 10 dB, Rayleigh 0 dB")


if __name__ == "__main__":
    main()
