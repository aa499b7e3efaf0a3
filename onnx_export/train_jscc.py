"""Train, evaluate and export the SNR- and rate-adaptive JSCC for one modality.

    ./unitocom python -m onnx_export.train_jscc --modality image --corpus data/clevr64 \\
        --minutes 20 --out runs/jscc-image

Tokens come from the shipped ONNX tokenizer (``--tokenizer``, cached in the
run folder). Each step draws, per sample, an SNR uniform in
[--snr-min, --snr-max] dB and a rate from ``--rates`` (symbols per token),
and per batch Rayleigh or AWGN block fading (``onnx_export.channel``, the
code the GNU Radio channel block runs). Loss: token MSE normalised by each
token dimension's spread (image), cross-entropy (text).
``--fixed-snr`` (and ``--rates 8``) trains a single-SNR reference model.

Audio (``--arch fixed``, its default): the JSCC is the fixed token mapping
the tokenizer was trained through plus a learned residual (encoder) and
correction (decoder) that start at zero (``jscc.model.FixedMappingEncoder``
/ ``FixedMappingDecoder``), so training starts exactly at the fixed mapping.
The loss is the one the card reports: the mean absolute error of the
log-mel that the frozen audio de-tokenizer (read back from the shipped
ONNX) makes from the decoded tokens, against the utterance's log-mel, plus
``--token-weight`` × the normalised token MSE. The card puts the fixed
mapping (the untrained pair: same noise draws) beside the trained JSCC at
every channel, rate and SNR. ``--arch free`` is the plain Transformer JSCC
trained on token MSE (what image and text use).

Seeded and resumable (``onnx_export.loop``; ``--resume``). At the end the test split is scored
over AWGN and Rayleigh at -5…20 dB for every rate; the encoder and decoder
are exported to ONNX with a parity check, and a model card is written.
"""
import argparse
import json
import pathlib
import sys

import numpy as np
import torch

from gnuradio.unitocom.core.zoo import DEFAULT_MODELS
from gnuradio.unitocom.dsp import audio_features as af
from onnx_export import export, from_onnx, loop
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
    ap.add_argument("--arch", choices=("free", "fixed"), default=None,
                    help="free: Transformer JSCC on token MSE; fixed: fixed token mapping + learned residual "
                         "on the de-tokenized log-mel (continuous tokens only; default for audio)")
    ap.add_argument("--token-weight", type=float, default=0.0,
                    help="--arch fixed: weight of the normalised token MSE next to the log-mel L1")
    ap.add_argument("--relative", action="store_true",
                    help="--arch fixed: divide each sample's log-mel L1 by the fixed mapping's mean at its channel, "
                         "rate and SNR (every condition then counts by its gain relative to the fixed mapping)")
    ap.add_argument("--reference-crops", type=int, default=128,
                    help="--relative: training crops the fixed mapping's reference table is measured on")
    ap.add_argument("--eval-every", type=int, default=0,
                    help="steps between evaluations on a small grid during training (0: none)")
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


def detokenizer(data):
    """The shipped audio de-tokenizer of ``data`` read back into torch, frozen (``from_onnx``, parity-checked)."""
    from onnx_export.tokenizers.audio import AudioDetokenizer
    width = _initializer_shapes(data.det_path)["from_tokens.bias"][0]
    depth = len({n.split(".")[2] for n in _initializer_shapes(data.det_path) if ".blocks." in n})
    det = from_onnx.load(AudioDetokenizer(data.token_dim, width, depth, 4), data.det_path,
                         (torch.randn(2, 20, data.token_dim),), ["tokens"], ["mel"]).eval()
    for p in det.parameters():
        p.requires_grad_(False)
    return det


def _initializer_shapes(path):
    import onnx
    return {i.name: tuple(i.dims) for i in onnx.load(str(path)).graph.initializer}


def models(data, args):
    """(encoder, decoder) for ``args.arch``; the fixed-mapping pair gets its token statistics from ``data.train``."""
    shape = dict(token_dim=data.token_dim, k_max=args.k_max, width=args.width, depth=args.depth, heads=args.heads,
                 fixed_len=data.fixed_len, vocab=data.vocab)
    if args.arch == "free":
        return jm.JSCCEncoder(**shape), jm.JSCCDecoder(**shape)
    enc = jm.FixedMappingEncoder(**shape, rates=args.rate_list)
    dec = jm.FixedMappingDecoder(**shape, rates=args.rate_list)
    jm.set_token_stats(enc, dec, np.concatenate(list(data.train)).reshape(-1, data.token_dim))
    return enc, dec


def reference_table(data, det, fixed, args, n=128, seed=12345):
    """The fixed mapping's mean log-mel L1 (scaled units) per channel × rate × SNR (1 dB steps over
    [--snr-min, --snr-max]) on ``n`` training crops: a tensor (len(CHANNELS), len(rates), n_snr). The
    draws of h and noise are the same at every SNR of a channel and rate, so each curve is smooth in SNR.
    It weighs ``mel_loss`` with ``--relative``."""
    rng = np.random.default_rng(seed)
    batch = data.batch(rng, n)
    frames = batch.valid.repeat_interleave(4, dim=1)[:, None, :]
    snrs = np.arange(args.snr_min, args.snr_max + 0.5, 1.0)
    table = torch.zeros(len(CHANNELS), len(args.rate_list), len(snrs))
    with torch.no_grad():
        for c, channel in enumerate(CHANNELS):
            for r, rate in enumerate(args.rate_list):
                for i, snr in enumerate(snrs):
                    gen = torch.Generator().manual_seed(seed + 1000 * c + 100 * r)
                    t = jm.through_link(*fixed, batch.tokens, torch.full((n,), float(snr)),
                                        torch.full((n,), float(rate)), channel, gen)
                    table[c, r, i] = ((det(t) - batch.mel).abs() * frames).sum() / (frames.sum() * batch.mel.shape[1])
    return table


def table_lookup(table, args, channel, snr, rate):
    """``reference_table`` values for a batch: channel name, snr (B,), rate (B,) → (B,), linear in SNR."""
    rows = table[CHANNELS.index(channel)][[args.rate_list.index(int(r)) for r in rate]]          # (B, n_snr)
    pos = ((snr - args.snr_min) / 1.0).clamp(0, rows.shape[1] - 1)
    lo = pos.floor().long().clamp(max=rows.shape[1] - 2)
    frac = pos - lo
    pick = lambda k: rows.gather(1, k[:, None])[:, 0]                                   # noqa: E731
    return pick(lo) * (1 - frac) + pick(lo + 1) * frac


def mel_loss(data, det, enc, dec, args, batch, gen, table=None):
    """--arch fixed: one step's loss on a ``MelBatch`` → (loss, {"mel_l1_nepers", "token_mse"[, "vs_fixed"]}).

    With ``table`` (``reference_table``), each sample's log-mel L1 is divided by the fixed mapping's mean
    at its channel, rate and SNR, so every condition counts by its gain relative to the fixed mapping."""
    x, mel, valid = batch.tokens, batch.mel, batch.valid
    snr, rate, channel = conditions(args, len(x), gen)
    t = jm.through_link(enc, dec, x, snr, rate, channel, gen)
    frames = valid.repeat_interleave(mel.shape[-1] // x.shape[1], dim=1)[:, None, :]          # (B, 1, T)
    per_sample = ((det(t) - mel).abs() * frames).sum(dim=(1, 2)) / (frames.sum(dim=(1, 2)) * mel.shape[1])
    tok = (((t - x) / data.token_std) ** 2 * valid[..., None]).sum() / (valid.sum() * x.shape[-1])
    parts = {"mel_l1_nepers": per_sample.mean().item() * af.LOG_SCALE, "token_mse": tok.item()}
    if table is None:
        return per_sample.mean() + args.token_weight * tok, parts
    ratio = (per_sample / table_lookup(table, args, channel, snr, rate)).mean()
    parts["vs_fixed"] = ratio.item()
    return ratio + args.token_weight * tok, parts


def main(argv=None):
    """Run the command line ``argv``: train, score, export (unless ``--export-dir ''``) and write the card.

    Returns the metrics dict written to ``<out>/metrics.json``."""
    argv = sys.argv[1:] if argv is None else argv
    args = parser().parse_args(argv)
    args.rate_list = sorted({int(r) for r in args.rates.split(",")})
    args.eval_snr_list = [float(s) for s in args.eval_snrs.split(",")]
    if not args.rate_list or min(args.rate_list) < 1 or max(args.rate_list) > args.k_max:
        raise SystemExit(f"--rates must lie in 1..{args.k_max}")
    args.arch = args.arch or ("fixed" if args.modality == "audio" else "free")
    if args.arch == "fixed" and args.modality != "audio":
        raise SystemExit("--arch fixed trains through the audio de-tokenizer: audio only")
    loop.seed_everything(args.seed, args.threads)
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = args.tokenizer or DEFAULT_MODELS.get(("tokenizer", args.modality), "")
    extra = {"train_mels": True} if args.arch == "fixed" else {}
    data = MODALITIES[args.modality](args.corpus, out, tokenizer=tokenizer, variant=args.variant, threads=args.threads,
                                     **extra)
    enc, dec = models(data, args)
    progress = None
    if args.eval_every:
        small = argparse.Namespace(eval_snr_list=[0.0, 10.0, 20.0], rate_list=[2, 8])
        progress = lambda: evaluate(data, enc, dec, small)                          # noqa: E731
    run = loop.TrainLoop(out, {"enc": enc, "dec": dec}, lr=args.lr, seed=args.seed, minutes=args.minutes,
                         steps=args.steps, warmup=100, log_every=100, save_every=500 if args.arch == "fixed" else 1000,
                         evaluate=progress, eval_every=args.eval_every)
    if args.resume:
        run.resume()

    if args.arch == "fixed":
        det = detokenizer(data)
        table = reference_table(data, det, models(data, args), args, n=args.reference_crops) if args.relative else None

        def loss(batch):
            return mel_loss(data, det, enc, dec, args, batch, run.gen, table)
    else:
        def loss(x):
            snr, rate, channel = conditions(args, len(x), run.gen)
            return data.loss(jm.through_link(enc, dec, x, snr, rate, channel, run.gen), x)

    run.fit(loss, sample=lambda rng: data.batch(rng, args.batch))
    metrics = {"metric": data.metric, "scores": evaluate(data, enc, dec, args), "steps": run.step,
               "train_minutes": round(run.elapsed / 60, 1), "params": jm.params(enc) + jm.params(dec),
               "arch": args.arch}
    if args.arch == "fixed":
        metrics["fixed_mapping"] = evaluate(data, *models(data, args), args)
        metrics["fixed_mapping_rms_told"] = rms_told_reference(data, args)
        if data.token_dim // 2 in args.rate_list:
            metrics["token_channel"] = token_channel_reference(data, args)
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


@torch.no_grad()
def rms_told_reference(data, args):
    """The fixed mapping with the frame's own RMS told to the receiver (as ``token_channel`` assumes; the JSCC
    receiver is not told it), over the same test frames, channel and noise draws as ``evaluate``:
    ``{key: score}`` on the card grid."""
    enc, dec = models(data, args)
    out, batches = {}, data.test_batches()
    for key, channel, snr_db, rate, gen in jm.eval_grid(args.eval_snr_list, args.rate_list):
        decoded = []
        for b in batches:
            snr, r = torch.full((len(b),), float(snr_db)), torch.full((len(b),), float(rate))
            y, rel = jm.link(enc(b, snr, r), snr, r, channel, generator=gen)
            zf, _ = dec.inverse(y, rel, r)
            sent = 2 * min(rate, data.token_dim // 2)                  # dimensions the fixed mapping sends
            told = b[..., :sent].pow(2).mean(dim=(1, 2)).mul(2).sqrt()[:, None, None]      # the frame's symbol RMS
            decoded.append(torch.cat([zf[..., :sent] * told / dec.frame_scale(r)[:, :, :, 0], zf[..., sent:]], -1))
        out[key] = round(data.score(decoded), 4)
    return out


def token_channel_reference(data, args):
    """The tokenizer card's fixed mapping (``tokenizers.genib.token_channel``: ZF with the frame's own
    RMS known at the receiver) on the card grid at rate d/2 (its one rate): ``{key: score}``."""
    from onnx_export.tokenizers import genib
    out, batches = {}, data.test_batches()
    for key, channel, snr_db, rate, gen in jm.eval_grid(args.eval_snr_list, [data.token_dim // 2]):
        out[key] = round(data.score([genib.token_channel(b, snr_db, channel, generator=gen) for b in batches]), 4)
    return out


def score_rows(args, columns):
    """Markdown table rows of channel × rate × SNR, one row per (label, scores) of ``columns``; a cell of the
    second column that is worse than the first column's is marked with ▲."""
    head = "| channel | rate (symbols/token) | link | " + " | ".join(f"{s:g} dB" for s in args.eval_snr_list) + " |"
    rows = [head, "|---|---|---|" + "---|" * len(args.eval_snr_list)]
    first = columns[0][1]
    for channel in CHANNELS:
        for rate in args.rate_list:
            for i, (label, scores) in enumerate(columns):
                keys = [f"{channel}/{s:g}dB/r{rate}" for s in args.eval_snr_list]
                if keys[0] not in scores:
                    continue
                cells = [f"{scores[k]:.4g}" + (" ▲" if i == 1 and scores[k] > first[k] else "") for k in keys]
                rows.append(f"| {channel} | {rate} | {label} | " + " | ".join(cells) + " |")
    return rows


def fixed_design_text(data, args, metrics):
    """The --arch fixed part of the card: the design, the fixed mapping per rate, the loss, and the comparison."""
    fixed, scores = metrics["fixed_mapping"], metrics["scores"]
    keys = sorted(fixed)
    worse = [k for k in keys if scores[k] > fixed[k]]
    gaps = sorted(((scores[k] - fixed[k]) / fixed[k], k) for k in keys)
    told = metrics.get("fixed_mapping_rms_told", {})
    worse_told = [k for k in sorted(told) if scores[k] > told[k]]
    if worse:
        summary = f"largest relative loss {gaps[-1][0] * 100:+.2f}% ({gaps[-1][1]})"
    else:
        summary = f"the smallest gain is {-gaps[-1][0] * 100:.2f}% ({gaps[-1][1]}), " \
                  f"the largest {-gaps[0][0] * 100:.1f}% ({gaps[0][1]})"
    told_text = "" if not told else (
        f" Against the fixed mapping with the frame's own RMS told to the receiver (a side channel the JSCC "
        f"does not get; `token_channel` assumes it), same draws: at least as good at {len(told) - len(worse_told)} "
        f"of {len(told)} points" + (f" (worse at {', '.join(worse_told)})." if worse_told else "."))
    half = data.token_dim // 2
    loss = "the log-mel L1 of each sample divided by the fixed mapping's mean L1 at its channel, rate and SNR " \
           "(a table made once from 128 training crops, `reference_table`)" if args.relative else "the log-mel L1"
    return f"""
Design (`onnx_export/jscc/model.py`: `FixedMappingEncoder`, `FixedMappingDecoder`): the JSCC is the fixed
token mapping the audio tokenizer was trained through, plus learned parts that start at zero, so an untrained
pair *is* the fixed mapping and training can only move away from it on the training objective.

- Fixed mapping. Encoder: token dimensions (2j, 2j+1) are the I/Q of symbol j, the frame is scaled to unit
  power over its sent symbols (as `tokenizers.genib.token_channel`). A d = {data.token_dim} token fills {half}
  symbols; symbol k carries pair k mod {half}. So rate {half} is exactly the tokenizer's mapping, a rate
  r < {half} sends the first 2r dimensions, and rate {2 * half} sends every pair twice (repetition).
  Decoder: the symbols carrying a pair are combined (Σ x̂ / Σ r: zero-forcing, maximum-ratio for the
  repetition), scaled back by the typical RMS of the training tokens' sent pairs (the receiver is not told
  the frame's own RMS, which `token_channel` assumes), and a pair that was not sent gets its training mean.
- Learned parts: encoder, a Transformer over the frame ({args.depth} blocks, width {args.width}, SNR/rate
  modulation) whose last layer adds a residual to the symbols before the power scaling; decoder, the same
  over (x̂, r, the linear-MMSE token estimate), whose last layer gives per token and dimension a weight a
  and an offset b: t̂ = t̂_zf + a·(t̂_lmmse − t̂_zf) + b·σ. Both last layers start at zero and are one per
  rate, so one rate's head never moves another rate's symbols.
- Loss: {loss}, through the shipped audio de-tokenizer (frozen, read back from ONNX), against the
  utterance's log-mel, on random 64-token crops{f"; plus {args.token_weight:g} × the normalised token MSE" if args.token_weight else ""}.

The fixed mapping below is the untrained pair (same test utterances, channel and noise draws as the JSCC at
every point: `eval_grid`'s seeds). ▲ marks a point where the JSCC is worse. The JSCC is at least as good at
{len(keys) - len(worse)} of {len(keys)} points; {summary}.{told_text} The `token_channel` row is the tokenizer
card's link itself on this grid (rate {half}, its only rate): it draws noise for {half} symbols per token where
the JSCC link draws {args.k_max}, so its noise differs and only its h is shared; at Rayleigh that alone moves a
point by several per cent.
"""


def write_card(data, args, metrics, paths, argv):
    """Write the model card ``<card-dir>/<card_name>.md``: command, training, the score table per channel and rate
    (with ``--arch fixed``: the fixed mapping and the JSCC side by side)."""
    scores = metrics["scores"]
    if metrics.get("fixed_mapping"):
        columns = [("fixed mapping", metrics["fixed_mapping"]), ("JSCC", scores)]
        if metrics.get("fixed_mapping_rms_told"):
            columns.append(("fixed mapping, frame RMS told", metrics["fixed_mapping_rms_told"]))
        if metrics.get("token_channel"):
            columns.append(("`token_channel` (RMS told, own noise draws)", metrics["token_channel"]))
        rows = score_rows(args, columns)
        design = fixed_design_text(data, args, metrics)
    else:
        head = "| channel | rate (symbols/token) | " + " | ".join(f"{s:g} dB" for s in args.eval_snr_list) + " |"
        rows = [head, "|---|---|" + "---|" * len(args.eval_snr_list)]
        for channel in CHANNELS:
            for rate in args.rate_list:
                rows.append(f"| {channel} | {rate} | " + " | ".join(
                    f"{scores[f'{channel}/{s:g}dB/r{rate}']:.4g}" for s in args.eval_snr_list) + " |")
        design = ""
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
{design}
Test split, {data.metric} ({'higher' if data.higher_is_better else 'lower'} is better):

{chr(10).join(rows)}
"""
    card_dir = pathlib.Path(args.card_dir)
    card_dir.mkdir(parents=True, exist_ok=True)
    (card_dir / f"{data.card_name}.md").write_text(text)


if __name__ == "__main__":
    main()
