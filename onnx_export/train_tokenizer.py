"""Train, evaluate and export a tokenizer (image or audio; σ-GenIB or VAE).

    ./unitocom corpus build --out data/clevr64
    ./unitocom python -m onnx_export.train_tokenizer --modality image --corpus data/clevr64 \\
        --variant genib --tokens 32 --minutes 55 --out runs/image-genib-32
    ./unitocom python -m onnx_export.train_tokenizer --modality audio --corpus data/clevr64 \\
        --variant genib --minutes 55 --out runs/audio-genib

Seeded and resumable (``onnx_export.loop``; ``--resume`` continues from ``<out>/checkpoint.pt``,
with optimizer, step and random state). Training stops after ``--minutes``
of wall time or ``--steps``; then the test split is scored noiseless and
through Rayleigh block fading at 0, 10 and 20 dB (fixed-mapping token link,
genie-CSI ZF): PSNR and SSIM for images, mean absolute log-mel error for
audio. The tokenizer and de-tokenizer are exported to ONNX with metadata
and a parity check, and a model card is written to ``docs/models``.

Channel in the loop (Algorithm 1): a fraction ``--channel-prob`` of the
steps sends the tokens through ``genib.token_channel`` with a random SNR per
sample in [--snr-min, --snr-max] dB, Rayleigh or AWGN at random.
"""
import argparse
import json
import pathlib
import sys

import torch

from onnx_export import export, loop
from onnx_export.tokenizers import genib
from onnx_export.tokenizers.tasks import TASKS

ROOT = pathlib.Path(__file__).resolve().parent.parent
MODEL_DIR = ROOT / "python_blocks" / "unitocom" / "models"
CARD_DIR = ROOT / "docs" / "models"


def parser():
    """The command line's ``argparse.ArgumentParser`` (flags and defaults as documented in the README)."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--modality", choices=sorted(TASKS), default="image")
    ap.add_argument("--corpus", required=True)
    ap.add_argument("--variant", choices=("genib", "vae"), default="genib")
    ap.add_argument("--tokens", type=int, default=32, choices=(16, 32, 64, 128), help="image tokens S_v")
    ap.add_argument("--token-dim", type=int, default=16)
    ap.add_argument("--width", type=int, default=128)
    ap.add_argument("--depth", type=int, default=4)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--crop-frames", type=int, default=256, help="audio: log-mel frames per training crop")
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
    return ap


def make_link(args, gen):
    """The channel of the training steps: tokens (B, S, d) → tokens after ``genib.token_channel``,
    with an SNR per sample uniform in [--snr-min, --snr-max] dB and Rayleigh or AWGN at random (from ``gen``)."""
    def link(tokens):
        snr = torch.empty(tokens.shape[0]).uniform_(args.snr_min, args.snr_max, generator=gen)
        kind = "rayleigh" if torch.rand(1, generator=gen).item() < 0.5 else "awgn"
        return genib.token_channel(tokens, snr, kind, generator=gen)
    return link


def main(argv=None, command="onnx_export.train_tokenizer"):
    """Run the command line ``argv``: train, evaluate, export and write the card.

    Returns (metrics dict as in ``<out>/metrics.json``, [tokenizer path, de-tokenizer path]);
    ``command`` is the module name the card records."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser().parse_args(argv)
    loop.seed_everything(args.seed, args.threads)
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    task = TASKS[args.modality](args, out)
    vae = args.variant == "vae"
    tok, det = task.models(vae)
    run = loop.TrainLoop(out, {"tok": tok, "det": det}, lr=args.lr, weight_decay=args.weight_decay, seed=args.seed,
                         minutes=args.minutes, steps=args.steps, warmup=200, cosine_over_steps=False,
                         log_every=50, save_every=500)
    if args.resume:
        run.resume()
    link = make_link(args, run.gen)

    def loss(x):
        channel = link if torch.rand(1, generator=run.gen).item() < args.channel_prob else None
        if vae:
            return genib.vae_loss(tok, det, x, args.xi, channel)
        return genib.genib_loss(tok, det, x, args.xi, args.lam, args.k, args.c_sigma, channel)

    run.fit(loss, epoch=task.batches)
    tok.eval(), det.eval()
    metrics = task.evaluate(tok, det, vae)
    metrics.update({"steps": run.step, "epochs": run.epoch, "train_minutes": round(run.elapsed / 60, 1)})
    (out / "metrics.json").write_text(json.dumps(metrics, indent=1) + "\n")
    print(json.dumps({k: v for k, v in metrics.items() if k != "latent_std_per_dim"}), flush=True)
    paths = export_models(task, tok, det, args, metrics)
    write_card(task, args, metrics, paths, command, argv)
    return metrics, paths


def export_models(task, tok, det, args, metrics):
    """Export the trained pair to ``--export-dir`` with metadata and check both against onnxruntime.

    Returns [tokenizer path, de-tokenizer path]."""
    common = {"modality": args.modality, "token_len": task.token_len, "token_dim": str(args.token_dim),
              "n_symbols": task.n_symbols, "variant": args.variant,
              "train_data": f"CLEVR-style corpus {pathlib.Path(args.corpus).name} (train split; seed in its meta.json)",
              "train_metrics": json.dumps({k: v for k, v in metrics.items() if k != "latent_std_per_dim"},
                                          sort_keys=True)}
    x = task.example(2)
    outs = ["tokens", "logvar"] if args.variant == "vae" else ["tokens"]
    with torch.no_grad():
        t = tok(x)[0] if args.variant == "vae" else tok(x)
    p_tok = export.export(tok, x, task.input_name, outs, dict(common, role="tokenizer"), args.export_dir,
                          f"{task.name}_tokenizer{task.suffix}", args.variant, task.dynamic_in)
    p_det = export.export(det, t, "tokens", [task.output_name], dict(common, role="detokenizer"), args.export_dir,
                          f"{task.name}_detokenizer{task.suffix}", args.variant, task.dynamic_out)
    export.check_parity(tok, p_tok, task.example(3, other_shape=True))
    with torch.no_grad():
        t3 = tok(task.example(3, other_shape=True))
    export.check_parity(det, p_det, (t3[0] if args.variant == "vae" else t3).contiguous())
    return [p_tok, p_det]


def write_card(task, args, metrics, paths, command, argv):
    """Write the model card ``<card-dir>/<name>_tokenizer<suffix>-<variant>.md`` (command, training, test table)."""
    card_dir = pathlib.Path(args.card_dir)
    card_dir.mkdir(parents=True, exist_ok=True)
    objective = ("σ-GenIB, ξ = %g, λ = %g, K = %d, C_σ = %g" % (args.xi, args.lam, args.k, args.c_sigma)
                 if args.variant == "genib" else "VAE ELBO, ξ = %g" % args.xi)
    text = f"""# {task.title}: {args.variant}, {task.shape_text}

Files: {', '.join(f'`{p.name}`' for p in paths)} (in `python_blocks/unitocom/models/`).

Command: `./unitocom python -m {command} {' '.join(argv)}`
(seed {args.seed}; corpus built with `./unitocom corpus build --out {args.corpus}`).

Training: {metrics['steps']} steps of batch {args.batch} ({metrics['epochs']} epochs) in {metrics['train_minutes']} min
with {args.threads} CPU thread(s) on this 2-core machine; AdamW lr {args.lr} (warm-up, cosine decay), weight decay {args.weight_decay};
width {args.width}, depth {args.depth} per side, {args.heads} heads. Objective: {objective};
reconstruction term: {task.loss_text}. Channel in the loop: fixed linear token→I/Q mapping,
Rayleigh/AWGN, SNR uniform in [{args.snr_min}, {args.snr_max}] dB, on {args.channel_prob:.0%} of the steps.

Test split ({task.eval_text}), Rayleigh block fading with genie-CSI ZF equalization over the fixed mapping:

{task.metrics_table(metrics)}
"""
    (card_dir / f"{task.name}_tokenizer{task.suffix}-{args.variant}.md").write_text(text)


if __name__ == "__main__":
    main()
