"""Fine-tune the shipped image tokenizer pair and image JSCC end to end (Algorithm 1).

    ./unitocom python -m onnx_export.finetune_link --corpus data/clevr64 --minutes 20 --out runs/finetune-image

Starts from the bundled ONNX models (weights read back with
``onnx_export.from_onnx``): tokenizer F_α, JSCC encoder T, the channel,
JSCC decoder R and de-tokenizer F_β are trained together on the σ-GenIB
objective of ``tokenizers.genib`` with the link T → channel → R in the loop
(SNR uniform in [−5, 20] dB, rate drawn from the JSCC's rates, AWGN or
Rayleigh block fading per batch). Before and after, it scores the test split
the way both model cards do: the tokenizer alone (noiseless and over the
fixed-mapping Rayleigh link) and the full link through the JSCC (PSNR per
channel, SNR and rate). It exports the four models with new ids, removes the
ones it started from, and appends the before/after tables to the two cards.
Seeded and resumable (``onnx_export.loop``; ``--resume``), a progress line every 50 steps.
"""
import argparse
import json
import pathlib
import sys
import types

import numpy as np
import torch

from gnuradio.unitocom.core import metrics
from gnuradio.unitocom.runtime import model_store

from . import export, from_onnx, loop
from .jscc import model as jm
from .jscc.model import CHANNELS, EVAL_SNRS
from .tokenizers import genib
from .tokenizers.image import ImageDetokenizer, ImageTokenizer
from .tokenizers.tasks import ImageTask

ROOT = pathlib.Path(__file__).resolve().parents[1]
MODEL_DIR = ROOT / "python_blocks" / "unitocom" / "models"
CARD_DIR = ROOT / "docs" / "models"


def parser():
    """The command line's ``argparse.ArgumentParser`` (flags and defaults as documented in the README)."""
    ap = argparse.ArgumentParser(description="Fine-tune the image tokenizer and JSCC through the link (Algorithm 1).")
    ap.add_argument("--corpus", required=True)
    ap.add_argument("--tokens", type=int, default=32, help="S of the tokenizer/JSCC pair to fine-tune")
    ap.add_argument("--variant", default="genib")
    ap.add_argument("--minutes", type=float, default=20.0)
    ap.add_argument("--steps", type=int, default=0)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--xi", type=float, default=1e-3)
    ap.add_argument("--lam", type=float, default=0.5)
    ap.add_argument("--k", type=int, default=1)
    ap.add_argument("--c-sigma", type=float, default=0.25)
    ap.add_argument("--snr-min", type=float, default=-5.0)
    ap.add_argument("--snr-max", type=float, default=20.0)
    ap.add_argument("--n-test", type=int, default=500)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", required=True)
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--export-dir", default=str(MODEL_DIR), help="'' skips export and cards")
    ap.add_argument("--card-dir", default=str(CARD_DIR))
    return ap


def load_shipped(s, variant):
    """The bundled S = ``s`` image set read back into torch, checked to belong together.

    Returns ((tok, det, enc, dec) modules, {role: ONNX path}, {role: metadata}, shape kwargs);
    roles ``tok``, ``det``, ``enc``, ``dec``."""
    paths = {role: model_store.find(name, variant) for role, name in
             (("tok", f"image_tokenizer_s{s}"), ("det", f"image_detokenizer_s{s}"),
              ("enc", f"image_jscc_encoder_s{s}"), ("dec", f"image_jscc_decoder_s{s}"))}
    meta = {role: model_store.read_metadata(p) for role, p in paths.items()}
    if meta["enc"].get("tokenizer") != model_store.model_id(paths["tok"]):
        raise SystemExit(f"the bundled JSCC was trained on {meta['enc'].get('tokenizer')}, "
                         f"not on {model_store.model_id(paths['tok'])}")
    d = int(meta["tok"]["token_dim"])
    tok_sd_width = _width(paths["tok"], "pos")
    depth = _depth(paths["tok"])
    tok = from_onnx.load(ImageTokenizer(s, d, tok_sd_width, depth, 4), paths["tok"], (torch.rand(2, 3, 64, 64),),
                         ["image"], ["tokens"])
    det = from_onnx.load(ImageDetokenizer(s, d, tok_sd_width, depth, 4), paths["det"], (torch.randn(2, s, d),),
                         ["tokens"], ["image"])
    k_max = int(meta["enc"]["k_max"])
    kw = dict(token_dim=d, k_max=k_max, width=_width(paths["enc"], "trunk.pos"), depth=_depth(paths["enc"]),
              heads=4, fixed_len=s, vocab=0)
    snr, rate = torch.tensor([-5.0, 5.0, 20.0]), torch.tensor([2.0, 8.0, float(k_max)])
    enc = from_onnx.load(jm.JSCCEncoder(**kw), paths["enc"], (torch.randn(3, s, d), snr, rate),
                         ["tokens", "snr_db", "rate"], ["symbols"])
    dec = from_onnx.load(jm.JSCCDecoder(**kw), paths["dec"], (torch.randn(3, s, k_max, 2), torch.rand(3, s, k_max),
                                                               snr, rate),
                         ["symbols", "reliability", "snr_db", "rate"], ["tokens"])
    return (tok, det, enc, dec), paths, meta, dict(kw, width_tok=tok_sd_width, depth_tok=depth)


def _initializer_shapes(path):
    import onnx
    return {i.name: tuple(i.dims) for i in onnx.load(str(path)).graph.initializer}


def _width(path, key):
    return _initializer_shapes(path)[key][-1]


def _depth(path):
    names = _initializer_shapes(path)
    return len({n.split(".")[2] for n in names if ".blocks." in n})


def link_fn(enc, dec, snr, rate, channel, gen):
    """The σ-GenIB ``channel``: a function tokens → T → channel → R (``jscc.model.through_link``)
    at ``snr`` (B,), ``rate`` (B,), ``channel`` type, noise from ``gen``."""
    return lambda t: jm.through_link(enc, dec, t, snr, rate, channel, gen)


@torch.no_grad()
def evaluate(models, task, images, rates, batch=250):
    """Tokenizer-card scores and the link's PSNR table on ``images`` (N, 3, 64, 64).

    Returns ``{"tokenizer": {condition: {"psnr_db", "ssim"}}, "link": {"<channel>/<snr>dB/r<rate>": PSNR dB}}``."""
    tok, det, enc, dec = models
    for m in models:
        m.eval()
    scores = {"tokenizer": task.evaluate(tok, det, False)}
    scores["tokenizer"].pop("latent_std_per_dim", None)
    link = {}
    for key, channel, snr_db, rate, gen in jm.eval_grid(EVAL_SNRS, rates):
        vals = []
        for i in range(0, len(images), batch):
            x = images[i:i + batch]
            n = len(x)
            snr, r = torch.full((n,), float(snr_db)), torch.full((n,), float(rate))
            y = det(link_fn(enc, dec, snr, r, channel, gen)(tok(x))).clamp(0, 1)
            vals.append(metrics.psnr(y.numpy(), x.numpy(), peak=1.0))
        link[key] = round(float(np.concatenate(vals).mean()), 4)
    scores["link"] = link
    for m in models:
        m.train()
    return scores


def main(argv=None):
    """Run the command line ``argv``: score, fine-tune, score again, export and extend the cards.

    Returns ``{"before", "after", "steps", "train_minutes", "started_from"}`` (also ``<out>/metrics.json``)."""
    argv = sys.argv[1:] if argv is None else argv
    args = parser().parse_args(argv)
    loop.seed_everything(args.seed, args.threads)
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    models, paths, meta, shape = load_shipped(args.tokens, args.variant)
    tok, det, enc, dec = models
    rates = json.loads(meta["enc"]["rates"])
    task = ImageTask(types.SimpleNamespace(corpus=args.corpus, tokens=args.tokens, token_dim=shape["token_dim"],
                                           batch=args.batch), out)
    test = task.tensor(task.test[:args.n_test])
    run = loop.TrainLoop(out, dict(zip(("tok", "det", "enc", "dec"), models)), lr=args.lr, seed=args.seed,
                         minutes=args.minutes, steps=args.steps, warmup=50, log_every=50, save_every=500)
    if args.resume:
        run.resume()
    before_path = out / "before.json"
    if before_path.is_file():
        before = json.loads(before_path.read_text())
    else:
        print("scoring the shipped models ...", flush=True)
        before = evaluate(models, task, test, rates)
        before_path.write_text(json.dumps(before, indent=1) + "\n")
    rate_choices = torch.tensor(rates, dtype=torch.float32)

    def loss(x):
        n = len(x)
        snr = torch.empty(n).uniform_(args.snr_min, args.snr_max, generator=run.gen)
        rate = rate_choices[torch.randint(len(rates), (n,), generator=run.gen)]
        channel = CHANNELS[int(torch.randint(2, (1,), generator=run.gen))]
        return genib.genib_loss(tok, det, x, args.xi, args.lam, args.k, args.c_sigma,
                                channel=link_fn(enc, dec, snr, rate, channel, run.gen))

    run.fit(loss, sample=lambda rng: task.tensor(task.train[rng.integers(0, len(task.train), args.batch)]))
    after = evaluate(models, task, test, rates)
    result = {"before": before, "after": after, "steps": run.step, "train_minutes": round(run.elapsed / 60, 1),
              "started_from": {k: model_store.model_id(p) for k, p in paths.items()}}
    (out / "metrics.json").write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps({"steps": run.step, "tokenizer_before": before["tokenizer"],
                      "tokenizer_after": after["tokenizer"]}), flush=True)
    if args.export_dir:
        new_paths = export_all(models, paths, meta, result, args)
        write_cards(result, paths, new_paths, rates, args, argv)
        for p in paths.values():      # the fine-tuned models replace the ones they started from
            if pathlib.Path(p).parent.resolve() == pathlib.Path(args.export_dir).resolve():
                pathlib.Path(p).unlink()
        print("exported:", ", ".join(p.name for p in new_paths.values()), flush=True)
    return result


def export_all(models, paths, meta, result, args):
    """Export the four fine-tuned models to ``--export-dir`` (metadata carried over from the shipped files,
    parity-checked); returns ``{role: new path}``."""
    tok, det, enc, dec = (m.eval() for m in models)
    s, d = args.tokens, int(meta["tok"]["token_dim"])
    note = (f"fine-tuned through the JSCC (Algorithm 1) from {result['started_from']['tok']}, "
            f"{result['started_from']['enc']}; {result['steps']} steps")
    keep = ("modality", "token_len", "token_dim", "n_symbols", "variant", "train_data")
    tok_meta = {k: meta["tok"][k] for k in keep if k in meta["tok"]}
    tok_meta.update(train_metrics=json.dumps(result["after"]["tokenizer"], sort_keys=True), finetune=note)
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        t = tok(x)
    p_tok = export.export(tok, x, "image", ["tokens"], dict(tok_meta, role="tokenizer"), args.export_dir,
                          f"image_tokenizer_s{s}", args.variant)
    p_det = export.export(det, t, "tokens", ["image"], dict(tok_meta, role="detokenizer"), args.export_dir,
                          f"image_detokenizer_s{s}", args.variant)
    export.check_parity(tok, p_tok, torch.rand(3, 3, 64, 64))
    export.check_parity(det, p_det, torch.randn(3, s, d))
    keep = ("modality", "token_len", "token_dim", "variant", "k_max", "rates", "n_symbols", "vocab", "train_data")
    jmeta = {k: meta["enc"][k] for k in keep if k in meta["enc"]}
    jmeta.update(tokenizer=model_store.model_id(p_tok), train_metrics=json.dumps(result["after"]["link"],
                                                                                 sort_keys=True), finetune=note)
    snr, rate = torch.linspace(-5, 20, 3), torch.tensor([2.0, 8.0, 16.0])
    tk = torch.randn(3, s, d)
    with torch.no_grad():
        y, rel = jm.link(enc(tk, snr, rate), snr, rate, "awgn", generator=torch.Generator().manual_seed(0))
    p_enc = export.export(enc, (tk, snr, rate), ["tokens", "snr_db", "rate"], ["symbols"],
                          dict(jmeta, role="jscc_encoder"), args.export_dir, f"image_jscc_encoder_s{s}", args.variant)
    p_dec = export.export(dec, (y, rel, snr, rate), ["symbols", "reliability", "snr_db", "rate"], ["tokens"],
                          dict(jmeta, role="jscc_decoder"), args.export_dir, f"image_jscc_decoder_s{s}", args.variant)
    tk5, snr5, rate5 = torch.randn(5, s, d), torch.linspace(-5, 20, 5), torch.tensor([2.0, 4.0, 8.0, 16.0, 2.0])
    export.check_parity(enc, p_enc, (tk5, snr5, rate5))
    with torch.no_grad():
        y5, rel5 = jm.link(enc(tk5, snr5, rate5), snr5, rate5, "rayleigh", generator=torch.Generator().manual_seed(1))
    export.check_parity(dec, p_dec, (y5, rel5, snr5, rate5))
    return {"tok": p_tok, "det": p_det, "enc": p_enc, "dec": p_dec}


def _section(result, rates, args, argv, new_paths, kind):
    b, a = result["before"], result["after"]
    lines = [f"## Fine-tuned through the JSCC (Algorithm 1)", "",
             f"Command: `./unitocom python -m onnx_export.finetune_link {' '.join(argv)}` (seed {args.seed}).", "",
             f"Tokenizer, JSCC encoder/decoder and de-tokenizer trained together from the shipped "
             f"`{result['started_from']['tok']}` / `{result['started_from']['enc']}`: {result['steps']} steps of "
             f"batch {args.batch} in {result['train_minutes']} min ({args.threads} CPU threads), AdamW lr {args.lr} "
             f"(cosine), σ-GenIB ξ = {args.xi:g}, λ = {args.lam:g}, K = {args.k}, C_σ = {args.c_sigma:g}, with "
             f"T → channel → R in the loop (SNR uniform in [{args.snr_min:g}, {args.snr_max:g}] dB, rate from "
             f"{rates}, AWGN or Rayleigh block fading). The shipped files are now "
             f"{', '.join(f'`{p.name}`' for p in new_paths.values())}. Before → after (tokenizer table: first 1000 test images, as above; link table: first {args.n_test}):", ""]
    if kind == "tokenizer":
        lines += ["| condition | PSNR (dB) | SSIM |", "|---|---|---|"]
        for c in b["tokenizer"]:
            lines.append(f"| {c} | {b['tokenizer'][c]['psnr_db']} → {a['tokenizer'][c]['psnr_db']} | "
                         f"{b['tokenizer'][c]['ssim']} → {a['tokenizer'][c]['ssim']} |")
        lines += ["", "(The tokenizer's own conditions go over the fixed linear token→I/Q mapping, as above.)"]
    lines += ["", "Through the JSCC, PSNR (dB):", "",
              "| channel | rate | " + " | ".join(f"{s:g} dB" for s in EVAL_SNRS) + " |",
              "|---|---|" + "---|" * len(EVAL_SNRS)]
    for channel in CHANNELS:
        for rate in rates:
            lines.append(f"| {channel} | {rate} | " + " | ".join(
                f"{b['link'][f'{channel}/{s:g}dB/r{rate}']:.2f} → {a['link'][f'{channel}/{s:g}dB/r{rate}']:.2f}"
                for s in EVAL_SNRS) + " |")
    return "\n".join(lines) + "\n"


def write_cards(result, paths, new_paths, rates, args, argv):
    """Replace the "Fine-tuned through the JSCC" section of the tokenizer and JSCC cards with this run's tables."""
    card_dir = pathlib.Path(args.card_dir)
    card_dir.mkdir(parents=True, exist_ok=True)
    for card, kind in ((f"image_tokenizer_s{args.tokens}-{args.variant}.md", "tokenizer"),
                       (f"image_jscc_s{args.tokens}.md", "jscc")):
        path = card_dir / card
        text = path.read_text() if path.is_file() else f"# {card[:-3]}\n"
        text = text.split("\n## Fine-tuned through the JSCC")[0].rstrip("\n") + "\n\n"
        text += _section(result, rates, args, argv, new_paths, kind)
        path.write_text(text)


if __name__ == "__main__":
    main()
