"""Train, evaluate and export an image tokenizer (σ-GenIB or the VAE baseline).

    ./unitocom corpus build --out data/clevr64
    ./unitocom python -m onnx_export.train_image_tokenizer --corpus data/clevr64 \\
        --variant genib --tokens 32 --minutes 55 --out runs/image-genib-32

Seeded and resumable (``--resume`` continues from ``<out>/checkpoint.pt``,
including optimizer, step and random state). Training stops after
``--minutes`` of wall time or ``--steps``; then the test split is scored
(PSNR and SSIM, noiseless and through Rayleigh block fading at 0, 10 and
20 dB with the fixed-mapping token link), the tokenizer and de-tokenizer are
exported to ONNX with metadata and a parity check, and a model card is
written. Channel in the loop (Algorithm 1): every batch goes through
``genib.token_channel`` with a random SNR per sample in [--snr-min, --snr-max]
dB, Rayleigh or AWGN at random, for a fraction ``--channel-prob`` of steps.
"""
import argparse
import json
import math
import pathlib
import random
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

from gnuradio.unitocom.data.loaders import CorpusSplit
from onnx_export.tokenizers import export, genib
from onnx_export.tokenizers.image import ImageDetokenizer, ImageTokenizer

ROOT = pathlib.Path(__file__).resolve().parent.parent
MODEL_DIR = ROOT / "python_blocks" / "unitocom" / "models"
CARD_DIR = ROOT / "docs" / "models"


def psnr(x, y):
    mse = torch.mean((x - y) ** 2, dim=(1, 2, 3)).clamp_min(1e-10)
    return 10 * torch.log10(1.0 / mse)


def ssim(x, y, window=7):
    """Mean SSIM per image (uniform window, constants of Wang et al. for range 1)."""
    c1, c2 = 0.01 ** 2, 0.03 ** 2
    pool = lambda t: F.avg_pool2d(t, window, 1)   # noqa: E731
    mx, my = pool(x), pool(y)
    vx, vy, cxy = pool(x * x) - mx ** 2, pool(y * y) - my ** 2, pool(x * y) - mx * my
    s = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx ** 2 + my ** 2 + c1) * (vx + vy + c2))
    return s.mean(dim=(1, 2, 3))


def batches(images, batch, rng):
    order = rng.permutation(len(images))
    for i in range(0, len(order) - batch + 1, batch):
        idx = np.sort(order[i:i + batch])
        yield torch.from_numpy(np.array(images[idx])).permute(0, 3, 1, 2).float() / 255.0


def make_link(args, gen):
    def link(tokens):
        b = tokens.shape[0]
        snr = torch.empty(b).uniform_(args.snr_min, args.snr_max, generator=gen)
        kind = "rayleigh" if torch.rand(1, generator=gen).item() < 0.5 else "awgn"
        return genib.token_channel(tokens, snr, kind, generator=gen)
    return link


@torch.no_grad()
def evaluate(tok, det, images, vae, n=1000, batch=100):
    tok.eval(), det.eval()
    gen = torch.Generator().manual_seed(1234)
    scores = {"noiseless": [], "rayleigh_0dB": [], "rayleigh_10dB": [], "rayleigh_20dB": []}
    variances = []
    for i in range(0, min(n, len(images)), batch):
        x = torch.from_numpy(np.array(images[i:i + batch])).permute(0, 3, 1, 2).float() / 255.0
        mu = tok(x)[0] if vae else tok(x)
        variances.append(mu)
        for key in scores:
            t = mu if key == "noiseless" else genib.token_channel(mu, float(key.split("_")[1][:-2]), "rayleigh",
                                                                    generator=gen)
            y = det(t)
            scores[key].append(torch.stack([psnr(y, x), ssim(y, x)], dim=1))
    out = {}
    for key, vals in scores.items():
        v = torch.cat(vals)
        out[key] = {"psnr_db": round(v[:, 0].mean().item(), 2), "ssim": round(v[:, 1].mean().item(), 4)}
    mu = torch.cat(variances).flatten(0, 1)
    out["latent_std_per_dim"] = [round(s, 4) for s in mu.std(dim=0).tolist()]
    tok.train(), det.train()
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", required=True)
    ap.add_argument("--variant", choices=("genib", "vae"), default="genib")
    ap.add_argument("--tokens", type=int, default=32, choices=(16, 32, 64, 128))
    ap.add_argument("--token-dim", type=int, default=16)
    ap.add_argument("--width", type=int, default=128)
    ap.add_argument("--depth", type=int, default=4)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--weight-decay", type=float, default=0.01)
    ap.add_argument("--xi", type=float, default=1e-3, help="KL weight ξ (per token dimension)")
    ap.add_argument("--lam", type=float, default=0.5, help="λ: stochastic vs deterministic branch")
    ap.add_argument("--k", type=int, default=1, help="K reparameterised samples")
    ap.add_argument("--c-sigma", type=float, default=0.25, help="C_σ, the variance σ is drawn with")
    ap.add_argument("--channel-prob", type=float, default=0.5)
    ap.add_argument("--snr-min", type=float, default=-5.0)
    ap.add_argument("--snr-max", type=float, default=20.0)
    ap.add_argument("--minutes", type=float, default=55.0)
    ap.add_argument("--steps", type=int, default=0, help="stop after this many steps (0: time only)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", required=True)
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--export-dir", default=str(MODEL_DIR))
    ap.add_argument("--card-dir", default=str(CARD_DIR))
    args = ap.parse_args(argv)

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    random.seed(args.seed)
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    train = CorpusSplit(args.corpus, "train")
    test = CorpusSplit(args.corpus, "test")
    vae = args.variant == "vae"
    tok = ImageTokenizer(args.tokens, args.token_dim, args.width, args.depth, args.heads, vae=vae)
    det = ImageDetokenizer(args.tokens, args.token_dim, args.width, args.depth, args.heads)
    params = list(tok.parameters()) + list(det.parameters())
    opt = torch.optim.AdamW(params, lr=args.lr, weight_decay=args.weight_decay)
    gen = torch.Generator().manual_seed(args.seed + 1)
    rng = np.random.default_rng(args.seed)
    step, elapsed, epoch = 0, 0.0, 0
    ckpt = out / "checkpoint.pt"
    if args.resume and ckpt.is_file():
        state = torch.load(ckpt, weights_only=False)
        tok.load_state_dict(state["tok"]), det.load_state_dict(state["det"]), opt.load_state_dict(state["opt"])
        step, elapsed, epoch = state["step"], state["elapsed"], state["epoch"]
        gen.set_state(state["gen"]), torch.set_rng_state(state["torch_rng"])
        rng = np.random.default_rng()
        rng.bit_generator.state = state["np_rng"]
        print(f"resumed at step {step} ({elapsed / 60:.1f} min)", flush=True)
    link = make_link(args, gen)
    budget = args.minutes * 60
    t_start = time.time() - elapsed
    log = open(out / "train_log.jsonl", "a")
    done = False
    while not done:
        for x in batches(train.images, args.batch, rng):
            frac = min(1.0, (time.time() - t_start) / budget)
            for g in opt.param_groups:                       # warm-up, then cosine decay over the budget
                g["lr"] = args.lr * min(1.0, (step + 1) / 200) * 0.5 * (1 + math.cos(math.pi * frac))
            channel = link if torch.rand(1, generator=gen).item() < args.channel_prob else None
            if vae:
                loss, parts = genib.vae_loss(tok, det, x, args.xi, channel)
            else:
                loss, parts = genib.genib_loss(tok, det, x, args.xi, args.lam, args.k, args.c_sigma, channel)
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            step += 1
            now = time.time() - t_start
            if step % 50 == 0:
                rate = step * args.batch / max(now, 1e-9)
                print(f"step {step} epoch {epoch} {now / 60:.1f}/{args.minutes:.0f} min loss {loss.item():.4f} "
                      + " ".join(f"{k} {v:.4f}" for k, v in parts.items()) + f" {rate:.0f} img/s", flush=True)
                log.write(json.dumps({"step": step, "minutes": now / 60, "loss": loss.item(), **parts}) + "\n")
                log.flush()
            if step % 500 == 0:
                save(ckpt, tok, det, opt, step, now, epoch, gen, rng)
            if now >= budget or (args.steps and step >= args.steps):
                done = True
                break
        epoch += 1
    elapsed = time.time() - t_start
    save(ckpt, tok, det, opt, step, elapsed, epoch, gen, rng)
    metrics = evaluate(tok, det, test.images, vae)
    metrics.update({"steps": step, "epochs": epoch, "train_minutes": round(elapsed / 60, 1)})
    (out / "metrics.json").write_text(json.dumps(metrics, indent=1) + "\n")
    print(json.dumps({k: v for k, v in metrics.items() if k != "latent_std_per_dim"}), flush=True)
    paths = export_models(tok, det, args, metrics)
    write_card(args, metrics, paths, argv if argv is not None else sys.argv[1:])


def save(path, tok, det, opt, step, elapsed, epoch, gen, rng):
    torch.save({"tok": tok.state_dict(), "det": det.state_dict(), "opt": opt.state_dict(), "step": step,
                "elapsed": elapsed, "epoch": epoch, "gen": gen.get_state(), "torch_rng": torch.get_rng_state(),
                "np_rng": rng.bit_generator.state}, str(path) + ".tmp")
    pathlib.Path(str(path) + ".tmp").replace(path)


def export_models(tok, det, args, metrics):
    tok.eval(), det.eval()
    x = torch.rand(2, 3, 64, 64)
    common = {"modality": "image", "token_len": str(args.tokens), "token_dim": str(args.token_dim),
              "n_symbols": str(args.tokens * args.token_dim // 2), "variant": args.variant,
              "train_data": f"CLEVR-style corpus {pathlib.Path(args.corpus).name} (train split, seed in its meta.json)",
              "train_metrics": json.dumps({k: v for k, v in metrics.items() if k != "latent_std_per_dim"},
                                          sort_keys=True)}
    name = f"{args.tokens}"
    outs = ["tokens", "logvar"] if args.variant == "vae" else ["tokens"]
    p_tok = export.export(tok, x, "image", outs, dict(common, role="tokenizer"), args.export_dir,
                          f"image_tokenizer_s{name}", args.variant)
    t = tok(x)[0] if args.variant == "vae" else tok(x)
    p_det = export.export(det, t.detach(), "tokens", ["image"], dict(common, role="detokenizer"), args.export_dir,
                          f"image_detokenizer_s{name}", args.variant)
    export.check_parity(tok, p_tok, torch.rand(3, 3, 64, 64))
    export.check_parity(det, p_det, torch.randn(3, args.tokens, args.token_dim))
    return [p_tok, p_det]


def write_card(args, metrics, paths, argv):
    card_dir = pathlib.Path(args.card_dir)
    card_dir.mkdir(parents=True, exist_ok=True)
    rows = "\n".join(f"| {k} | {v['psnr_db']} | {v['ssim']} |" for k, v in metrics.items() if isinstance(v, dict))
    text = f"""# Image tokenizer: {args.variant}, S = {args.tokens} tokens × d = {args.token_dim}

Files: {', '.join(f'`{p.name}`' for p in paths)} (in `python_blocks/unitocom/models/`).

Command: `./unitocom python -m onnx_export.train_image_tokenizer {' '.join(argv)}`
(seed {args.seed}; corpus built with `./unitocom corpus build --out {args.corpus}`).

Training: {metrics['steps']} steps of batch {args.batch} ({metrics['epochs']} epochs over the train split) in
{metrics['train_minutes']} min on this machine's 2 CPU cores; AdamW lr {args.lr} (warm-up, cosine decay),
weight decay {args.weight_decay}; width {args.width}, depth {args.depth} per side, {args.heads} heads.
Objective: {'σ-GenIB, ξ = %g, λ = %g, K = %d, C_σ = %g' % (args.xi, args.lam, args.k, args.c_sigma)
            if args.variant == 'genib' else 'VAE ELBO, ξ = %g' % args.xi}; reconstruction term: MSE.
Channel in the loop: fixed linear token→I/Q mapping, Rayleigh/AWGN, SNR uniform in
[{args.snr_min}, {args.snr_max}] dB, on {args.channel_prob:.0%} of the steps.

Test split (first 1000 images), Rayleigh block fading with genie-CSI ZF equalization over the fixed mapping:

| condition | PSNR (dB) | SSIM |
|---|---|---|
{rows}
"""
    (card_dir / f"image_tokenizer_s{args.tokens}-{args.variant}.md").write_text(text)


if __name__ == "__main__":
    main()
