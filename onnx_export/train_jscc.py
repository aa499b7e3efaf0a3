"""Train, evaluate and export the SNR- and rate-adaptive JSCC for one modality.

    ./unitocom python -m onnx_export.train_jscc --modality image --corpus data/clevr64 \\
        --minutes 20 --out runs/jscc-image

Tokens come from the shipped ONNX tokenizer (``--tokenizer``, cached in the
run folder). Each step draws, per sample, an SNR uniform in
[--snr-min, --snr-max] dB and a rate from ``--rates`` (symbols per token),
and per batch Rayleigh or AWGN block fading (``onnx_export.channel``, the
code the GNU Radio channel block runs). Loss: token MSE normalised by each
token dimension's spread (image, audio), cross-entropy (text).
``--fixed-snr`` (and ``--rates 8``) trains a single-SNR reference model.

Seeded and resumable (``onnx_export.loop``; ``--resume``). At the end the test split is scored
over AWGN and Rayleigh at -5…20 dB for every rate; the encoder and decoder
are exported to ONNX with a parity check, and a model card is written.
"""
import argparse
import json
import pathlib
import sys

import torch

from gnuradio.unitocom.core.zoo import DEFAULT_MODELS
from onnx_export import export, loop
from onnx_export.jscc import model as jm
from onnx_export.jscc.data import MODALITIES
from onnx_export.jscc.model import CHANNELS, EVAL_SNRS

ROOT = pathlib.Path(__file__).resolve().parent.parent
MODEL_DIR = ROOT / "python_blocks" / "unitocom" / "models"
CARD_DIR = ROOT / "docs" / "models"


def parser():
    """The command line's ``argparse.ArgumentParser`` (flags and defaults as documented in the README)."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--modality", choices=sorted(MODALITIES), default="image")
    ap.add_argument("--corpus", required=True)
    ap.add_argument("--tokenizer", default="", help="tokenizer model name (default: the bundled one)")
    ap.add_argument("--variant", default="genib")
    ap.add_argument("--k-max", type=int, default=jm.K_MAX)
    ap.add_argument("--rates", default=",".join(map(str, jm.RATES)), help="symbols per token, comma separated")
    ap.add_argument("--width", type=int, default=64)
    ap.add_argument("--depth", type=int, default=2)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--snr-min", type=float, default=-5.0)
    ap.add_argument("--snr-max", type=float, default=20.0)
    ap.add_argument("--fixed-snr", type=float, default=None, help="train at one SNR (a reference model)")
    ap.add_argument("--minutes", type=float, default=20.0)
    ap.add_argument("--steps", type=int, default=0,
                    help="stop after this many steps (0: time only); the learning-rate schedule then follows steps")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", required=True)
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--export-dir", default=str(MODEL_DIR), help="'' skips the ONNX export")
    ap.add_argument("--card-dir", default=str(CARD_DIR))
    ap.add_argument("--eval-snrs", default=",".join(map(str, EVAL_SNRS)))
    return ap


def conditions(args, n, gen):
    """One training step's draws from ``gen``: snr_db (n,) (uniform, or ``--fixed-snr``), rate (n,) from
    ``--rates``, and one channel type for the batch. Returns (snr_db, rate, channel_type)."""
    rates = torch.tensor(args.rate_list, dtype=torch.float32)
    rate = rates[torch.randint(len(rates), (n,), generator=gen)]
    if args.fixed_snr is not None:
        snr = torch.full((n,), args.fixed_snr)
    else:
        snr = torch.empty(n).uniform_(args.snr_min, args.snr_max, generator=gen)
    channel = CHANNELS[int(torch.randint(2, (1,), generator=gen))]
    return snr, rate, channel


@torch.no_grad()
def evaluate(data, enc, dec, args):
    """Score the test split over ``jm.eval_grid`` (channels × --eval-snrs × --rates).

    Returns ``{"<channel>/<snr>dB/r<rate>": score}`` in the modality's metric (``data.metric``),
    rounded to 4 decimals."""
    enc.eval(), dec.eval()
    out = {}
    batches = data.test_batches()
    for key, channel, snr_db, rate, gen in jm.eval_grid(args.eval_snr_list, args.rate_list):
        decoded = [jm.through_link(enc, dec, b, torch.full((len(b),), float(snr_db)),
                                   torch.full((len(b),), float(rate)), channel, gen) for b in batches]
        value = data.score(decoded, batches) if data.modality == "text" else data.score(decoded)
        out[key] = round(value, 4)
    enc.train(), dec.train()
    return out


def main(argv=None):
    """Run the command line ``argv``: train, score, export (unless ``--export-dir ''``) and write the card.

    Returns the metrics dict written to ``<out>/metrics.json``."""
    argv = sys.argv[1:] if argv is None else argv
    args = parser().parse_args(argv)
    args.rate_list = sorted({int(r) for r in args.rates.split(",")})
    args.eval_snr_list = [float(s) for s in args.eval_snrs.split(",")]
    if not args.rate_list or min(args.rate_list) < 1 or max(args.rate_list) > args.k_max:
        raise SystemExit(f"--rates must lie in 1..{args.k_max}")
    loop.seed_everything(args.seed, args.threads)
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = args.tokenizer or DEFAULT_MODELS.get(("tokenizer", args.modality), "")
    data = MODALITIES[args.modality](args.corpus, out, tokenizer=tokenizer, variant=args.variant, threads=args.threads)
    shape = dict(token_dim=data.token_dim, k_max=args.k_max, width=args.width, depth=args.depth, heads=args.heads,
                 fixed_len=data.fixed_len, vocab=data.vocab)
    enc, dec = jm.JSCCEncoder(**shape), jm.JSCCDecoder(**shape)
    run = loop.TrainLoop(out, {"enc": enc, "dec": dec}, lr=args.lr, seed=args.seed, minutes=args.minutes,
                         steps=args.steps, warmup=100, log_every=100, save_every=1000)
    if args.resume:
        run.resume()

    def loss(x):
        snr, rate, channel = conditions(args, len(x), run.gen)
        return data.loss(jm.through_link(enc, dec, x, snr, rate, channel, run.gen), x)

    run.fit(loss, sample=lambda rng: data.batch(rng, args.batch))
    metrics = {"metric": data.metric, "scores": evaluate(data, enc, dec, args), "steps": run.step,
               "train_minutes": round(run.elapsed / 60, 1), "params": jm.params(enc) + jm.params(dec)}
    (out / "metrics.json").write_text(json.dumps(metrics, indent=1) + "\n")
    print(json.dumps(metrics), flush=True)
    if args.export_dir:
        paths = export_models(data, enc, dec, args, metrics)
        write_card(data, args, metrics, paths, argv)
    return metrics


def examples(data, args, n, length):
    """Random encoder inputs for export and parity: (tokens (n, length, d) or ids (n, length), snr_db, rate)."""
    rate = torch.tensor([float(args.rate_list[i % len(args.rate_list)]) for i in range(n)])
    snr = torch.linspace(-5, 20, n)
    if data.vocab:
        tokens = torch.randint(0, data.vocab, (n, length))
    else:
        tokens = torch.randn(n, length, data.token_dim)
    return tokens, snr, rate


def export_models(data, enc, dec, args, metrics):
    """Export T and R to ``--export-dir`` with metadata and check both against onnxruntime; returns [enc, dec] paths."""
    enc.eval(), dec.eval()
    length = data.fixed_len or 20
    common = {"modality": data.modality, "token_len": data.token_len, "token_dim": str(data.token_dim),
              "variant": data.variant, "k_max": str(args.k_max), "rates": json.dumps(args.rate_list),
              "n_symbols": "token_len × rate", "tokenizer": data.tokenizer_id,
              "vocab": str(data.vocab), "train_data": f"tokens of CLEVR-style corpus {pathlib.Path(args.corpus).name}",
              "train_metrics": json.dumps(metrics["scores"], sort_keys=True)}
    tok, snr, rate = examples(data, args, 3, length)
    with torch.no_grad():
        z = enc(tok, snr, rate)
        y, rel = jm.link(z, snr, rate, "awgn", generator=torch.Generator().manual_seed(0))
    dyn_len = None if data.fixed_len else {"tokens": {1: "tokens"}, "symbols": {1: "tokens"},
                                             "reliability": {1: "tokens"}, "logits": {1: "tokens"}}
    out_name = "logits" if data.vocab else "tokens"
    p_enc = export.export(enc, (tok, snr, rate), ["tokens", "snr_db", "rate"], ["symbols"],
                          dict(common, role="jscc_encoder"), args.export_dir, data.name.format(role="encoder"),
                          data.variant, dyn_len)
    p_dec = export.export(dec, (y, rel, snr, rate), ["symbols", "reliability", "snr_db", "rate"], [out_name],
                          dict(common, role="jscc_decoder"), args.export_dir, data.name.format(role="decoder"),
                          data.variant, dyn_len and {**dyn_len, "tokens": {1: "tokens"}})
    tok2, snr2, rate2 = examples(data, args, 5, data.fixed_len or 33)
    export.check_parity(enc, p_enc, (tok2, snr2, rate2))
    with torch.no_grad():
        y2, rel2 = jm.link(enc(tok2, snr2, rate2), snr2, rate2, "rayleigh", generator=torch.Generator().manual_seed(1))
    export.check_parity(dec, p_dec, (y2, rel2, snr2, rate2))
    return [p_enc, p_dec]


def write_card(data, args, metrics, paths, argv):
    """Write the model card ``<card-dir>/<card_name>.md``: command, training, the score table per channel and rate."""
    scores = metrics["scores"]
    head = "| channel | rate (symbols/token) | " + " | ".join(f"{s:g} dB" for s in args.eval_snr_list) + " |"
    rows = [head, "|---|---|" + "---|" * len(args.eval_snr_list)]
    for channel in CHANNELS:
        for rate in args.rate_list:
            rows.append(f"| {channel} | {rate} | " + " | ".join(
                f"{scores[f'{channel}/{s:g}dB/r{rate}']:.4g}" for s in args.eval_snr_list) + " |")
    snr_text = f"fixed {args.fixed_snr:g} dB" if args.fixed_snr is not None else \
        f"uniform in [{args.snr_min:g}, {args.snr_max:g}] dB per sample"
    text = f"""# JSCC for {data.modality} tokens ({data.variant})

Files: {', '.join(f'`{p.name}`' for p in paths)} (in `python_blocks/unitocom/models/`).

Command: `./unitocom python -m onnx_export.train_jscc {' '.join(argv)}` (seed {args.seed}).

Training: {metrics['steps']} steps of batch {args.batch} in {metrics['train_minutes']} min with
{args.threads} CPU thread(s) on this 2-core machine; {metrics['params']} parameters (encoder + decoder), width {args.width}, depth {args.depth},
{args.heads} heads, up to {args.k_max} complex symbols per token, rates {args.rate_list}.
SNR {snr_text}; Rayleigh or AWGN block fading (one h per frame), MMSE equalisation with the told CSI.
Tokens: `{data.tokenizer_id}`.

Test split, {data.metric} ({'higher' if data.higher_is_better else 'lower'} is better):

{chr(10).join(rows)}
"""
    card_dir = pathlib.Path(args.card_dir)
    card_dir.mkdir(parents=True, exist_ok=True)
    (card_dir / f"{data.card_name}.md").write_text(text)


if __name__ == "__main__":
    main()
