"""Train the receiver's MLLM (Sec. IV) on received tokens, evaluate it on the validation split, export it.

    ./unitocom python -m onnx_export.mllm.data --corpus data/clevr64 --split train,val,test \\
        --copies 4 --out runs/mllm-cache
    ./unitocom python -m onnx_export.train_mllm --cache runs/mllm-cache --out runs/mllm \\
        --minutes 150 --threads 2 [--device cuda] [--resume] [--export-dir python_blocks/unitocom/models]

Data: the received-token cache of ``onnx_export.mllm.data`` (``<cache>/train``
and ``<cache>/val``). Every step draws ``--batch`` items, split between the
four tasks by ``--mix`` (vqa, t2i, asr, dsc), each item uniformly from its task
and with a random copy of its inputs (copy 0 is clean, 1 … C went through
the link; ``--p-clean`` sets the clean share, else every copy is equally
likely). Targets are clean: answers, transcripts, and for text-to-image the
clean tokens of the caption's render. A share ``--t2i-uncond`` of the t2i
items goes without its caption (``<t2i> <boi>``), so the same model also
generates unconditionally and the runtime can apply classifier-free
guidance. One pack per task (``layout.pack``),
``objective.loss`` (LM cross-entropy of answers and transcripts, Eq. 19's
ε-loss of the image tokens, weighted by ``--weights``). ASR items longer than
``--max-len`` positions are left out (counted in ``config.json``).

The loop is ``onnx_export.loop.TrainLoop`` (AdamW, warm-up + cosine over the
budget, seeded, resumable with ``--resume``, ``--minutes`` and/or
``--steps``); ``--device cuda`` runs the same command on a GPU. Every
``--eval-every`` steps the validation split is scored on clean tokens: VQA
accuracy and ASR word error rate (greedy, through the numpy generation
loops of the runtime on the torch model) and the teacher-forced losses of
all four tasks (``val_diff_t2i`` is Eq. 19 on t2i) and the share of scene descriptions
said exactly right (``val_dsc_exact``). ``curve.json`` and
``curve.csv`` in the run folder hold the training loss and these metrics
against steps. At the end: ``metrics.json``, the four ONNX graphs
(``onnx_export.mllm.export``, parity-checked, metadata naming the
tokenizers and JSCC models of the cache) in ``--export-dir`` (default
``<out>/onnx``; '' skips), and a model card draft ``<out>/MODEL_CARD.md``.
"""
import argparse
import copy
import csv
import json
import pathlib
import platform
import sys
import time

import numpy as np
import torch

from gnuradio.unitocom.data import vocab
from gnuradio.unitocom.mllm import layout
from onnx_export import loop
from onnx_export.mllm import export, objective
from onnx_export.mllm import generate as torch_generate
from onnx_export.mllm.data import Cache
from onnx_export.mllm.evaluate import word_error_rate
from onnx_export.mllm.model import MLLM, Config

CURVE_KEYS = ("loss", "lm_vqa", "lm_asr", "lm_dsc", "diff_t2i")
CONFIG_FILE = "config.json"


def parser():
    """The command line's ``argparse.ArgumentParser``."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cache", required=True, help="cache root with train/ and val/ (onnx_export.mllm.data)")
    ap.add_argument("--train-split", default="train")
    ap.add_argument("--val-split", default="val")
    ap.add_argument("--out", required=True, help="run folder (checkpoint, logs, curve, card)")
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--init", default=None,
                    help="start from the model weights of another run's checkpoint.pt (same model size); "
                         "optimiser, steps and schedule start fresh")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    ap.add_argument("--minutes", type=float, default=150.0, help="wall-time budget (evaluation included)")
    ap.add_argument("--steps", type=int, default=0, help="stop after this many steps (0: time only)")
    ap.add_argument("--batch", type=int, default=64, help="items per step, all tasks together")
    ap.add_argument("--mix", default="vqa=1,t2i=1,asr=1,dsc=1", help="task shares of a batch")
    ap.add_argument("--weights", default="vqa=1,t2i=1,asr=1,dsc=1", help="loss weight per task")
    ap.add_argument("--t2i-uncond", type=float, default=0.1,
                    help="share of t2i items trained without their caption (for classifier-free guidance)")
    ap.add_argument("--vqa-trace", action="store_true",
                    help="VQA targets say the objects the question refers to, <sep>, then the answer "
                         "(data.questions.trace)")
    ap.add_argument("--p-clean", type=float, default=None,
                    help="probability of the clean copy (default: all copies equally likely)")
    ap.add_argument("--lr", type=float, default=5e-4)
    ap.add_argument("--weight-decay", type=float, default=0.01)
    ap.add_argument("--warmup", type=int, default=200)
    d = Config()
    ap.add_argument("--dim", type=int, default=d.dim)
    ap.add_argument("--depth", type=int, default=d.depth)
    ap.add_argument("--heads", type=int, default=d.heads)
    ap.add_argument("--max-len", type=int, default=d.max_len)
    ap.add_argument("--head-width", type=int, default=d.head_width)
    ap.add_argument("--head-depth", type=int, default=d.head_depth)
    ap.add_argument("--freq-dim", type=int, default=d.freq_dim)
    ap.add_argument("--noise-draws", type=int, default=d.noise_draws)
    ap.add_argument("--log-every", type=int, default=50)
    ap.add_argument("--save-every", type=int, default=500)
    ap.add_argument("--eval-every", type=int, default=500, help="steps between validation scores (0: only at the end)")
    ap.add_argument("--eval-questions", type=int, default=300, help="validation questions scored per evaluation")
    ap.add_argument("--eval-utterances", type=int, default=100, help="validation utterances transcribed")
    ap.add_argument("--eval-captions", type=int, default=100, help="validation captions for the t2i loss")
    ap.add_argument("--export-dir", default=None, help="where the ONNX graphs go (default <out>/onnx; '' skips)")
    ap.add_argument("--variant", default="genib", help="the exported files' variant (the tokens' variant)")
    return ap


def shares(text, tasks=layout.TASKS):
    """'vqa=1,t2i=2' → {task: float} over ``tasks`` (missing tasks 0); ValueError on unknown tasks."""
    out = {t: 0.0 for t in tasks}
    for part in filter(None, text.split(",")):
        key, _, value = part.partition("=")
        if key not in out:
            raise ValueError(f"unknown task {key!r}; tasks are {', '.join(tasks)}")
        out[key] = float(value)
    if sum(out.values()) <= 0 or min(out.values()) < 0:
        raise ValueError(f"shares must be >= 0 and not all 0; got {text!r}")
    return out


def split_batch(batch, mix):
    """Items per task of a batch of ``batch``: proportional to ``mix``, largest remainders first."""
    total = sum(mix.values())
    raw = {t: batch * w / total for t, w in mix.items()}
    n = {t: int(v) for t, v in raw.items()}
    for t in sorted(raw, key=lambda t: n[t] - raw[t])[:batch - sum(n.values())]:
        n[t] += 1
    return n


class Sampler:
    """Mixed-task training batches from a ``Cache``: ``__call__(rng)`` → a list of packs, one per task.

    ``asr_ok`` lists the utterances that fit ``max_len`` positions (the others are never drawn)."""

    def __init__(self, cache, batch, mix, p_clean=None, max_len=256, t2i_uncond=0.0, vqa_trace=False):
        if not 0.0 <= t2i_uncond <= 1.0:
            raise ValueError(f"t2i_uncond must be in [0, 1]; got {t2i_uncond}")
        self.cache, self.n, self.t2i_uncond, self.vqa_trace = cache, split_batch(batch, mix), t2i_uncond, vqa_trace
        c = cache.n_copies
        self.p_copy = None if p_clean is None else \
            np.array([p_clean] + [(1 - p_clean) / max(c - 1, 1)] * (c - 1)) if c > 1 else np.ones(1)
        lengths = np.diff(cache._offsets["audio"]) + np.array([len(t) for t in cache.transcripts]) + 5
        self.asr_ok = np.flatnonzero(lengths <= max_len)
        self.asr_dropped = int(cache.n_utterances - len(self.asr_ok))

    def copies(self, rng, n):
        """``n`` copy indices (0 = clean)."""
        if self.p_copy is None:
            return rng.integers(0, self.cache.n_copies, n)
        return rng.choice(self.cache.n_copies, n, p=self.p_copy)

    def __call__(self, rng):
        packs = []
        c = self.cache
        if self.n["vqa"]:
            packs.append(layout.pack([c.vqa(int(q), int(k), trace=self.vqa_trace) for q, k in
                                      zip(rng.integers(0, c.n_questions, self.n["vqa"]), self.copies(rng, self.n["vqa"]))]))
        if self.n["t2i"]:
            scenes, copies = rng.integers(0, c.n_scenes, self.n["t2i"]), self.copies(rng, self.n["t2i"])
            blind = rng.random(self.n["t2i"]) < self.t2i_uncond if self.t2i_uncond else np.zeros(self.n["t2i"], bool)
            packs.append(layout.pack([layout.t2i([], np.asarray(c.caption_images[s])) if b else c.t2i(int(s), int(k))
                                      for s, k, b in zip(scenes, copies, blind)]))
        if self.n.get("dsc"):
            packs.append(layout.pack([c.describe(int(s), int(k)) for s, k in
                                      zip(rng.integers(0, c.n_scenes, self.n["dsc"]), self.copies(rng, self.n["dsc"]))]))
        if self.n["asr"] and len(self.asr_ok):
            picks = self.asr_ok[rng.integers(0, len(self.asr_ok), self.n["asr"])]
            packs.append(layout.pack([c.asr(int(u), int(k)) for u, k in zip(picks, self.copies(rng, self.n["asr"]))]))
        return packs


def to_device(packs, device):
    """Packs of numpy arrays → the same dicts of tensors on ``device``."""
    return [{k: torch.from_numpy(np.ascontiguousarray(v)).to(device) for k, v in p.items()} for p in packs]


def _chunks(items, n):
    for i in range(0, len(items), n):
        yield items[i:i + n]


def greedy(model, items, max_new, chunk=64):
    """Greedy words for prompt ``items`` (torch model, the runtime's generation loop), in chunks."""
    out = []
    for part in _chunks(items, chunk):
        out += torch_generate.text(model, part, max_new)
    return out


class Validator:
    """Validation scores on clean tokens (see the module docstring); ``__call__()`` → dict."""

    def __init__(self, model, cache, args, device):
        self.model, self.cache, self.device = model, cache, device
        self.questions = list(range(min(args.eval_questions, cache.n_questions)))
        lengths = np.diff(cache._offsets["audio"]) + np.array([len(t) for t in cache.transcripts]) + 5
        self.utterances = [u for u in np.flatnonzero(lengths <= args.max_len)][:args.eval_utterances]
        self.captions = list(range(min(args.eval_captions, cache.n_scenes)))
        self.max_words = max([len(t) for t in cache.transcripts] + [1]) + 2
        self.vqa_trace = args.vqa_trace

    @torch.no_grad()
    def __call__(self):
        model, c = self.model, self.cache
        was_training = model.training
        model.eval()
        scores = {}
        packs = []
        vqa = lambda q: c.vqa(q, trace=self.vqa_trace)       # noqa: E731
        for task, idx, make in (("vqa", self.questions, vqa), ("t2i", self.captions, c.t2i),
                                ("asr", self.utterances, c.asr), ("dsc", self.captions, c.describe)):
            for part in _chunks([make(int(i)) for i in idx], 64):
                packs.append((task, layout.pack(part)))
        sums = {}
        gen = torch.Generator().manual_seed(1234)
        for task, p in packs:
            _, parts = objective.loss(model, to_device([p], self.device), generator=gen)
            key = {"vqa": "lm_vqa", "asr": "lm_asr", "t2i": "diff_t2i", "dsc": "lm_dsc"}[task]
            sums.setdefault(key, []).append((parts[key], len(p["ids"])))
        for key, vals in sums.items():
            scores[f"val_{key}"] = round(sum(v * n for v, n in vals) / sum(n for _, n in vals), 5)
        if self.questions:
            items = [layout.vqa(np.asarray(c.images[0][c.question_scene[q]]), c.seq("questions", 0, q))
                     for q in self.questions]
            said = greedy(model, items, layout.VQA_TRACE_MAX + 1 if self.vqa_trace else 2)
            scores["val_vqa_acc"] = round(float(np.mean([list(layout.vqa_answer(a, self.vqa_trace)) == [int(c.answer[q])]
                                                         for a, q in zip(said, self.questions)])), 4)
            if self.vqa_trace:
                scores["val_vqa_trace_exact"] = round(float(np.mean([          # as evaluate: the trace alone
                    list(layout.vqa_trace(a)) == [int(i) for i in c.traces[q]] for a, q in zip(said, self.questions)])), 4)
        if self.utterances:
            items = [layout.asr(c.seq("audio", 0, int(u))) for u in self.utterances]
            hyps = greedy(model, items, self.max_words, chunk=32)
            scores["val_asr_wer"] = round(word_error_rate([vocab.decode(c.transcripts[int(u)]) for u in self.utterances],
                                                          [vocab.decode(h) for h in hyps]), 4)
        if self.captions:
            items = [layout.describe(np.asarray(c.images[0][s])) for s in self.captions]
            said = greedy(model, items, 2 + 5 * 6)
            scores["val_dsc_exact"] = round(float(np.mean([list(d) == list(c.descriptions[s])   # words, no <eos>
                                                           for d, s in zip(said, self.captions)])), 4)
        if was_training:
            model.train()
        return scores


def read_log(out):
    """Rows of ``train_log.jsonl`` merged by step (a resumed run's repeated steps: the last wins), sorted."""
    rows = {}
    path = pathlib.Path(out) / loop.TRAIN_LOG
    if not path.is_file():
        return []
    for line in path.read_text().splitlines():
        rec = json.loads(line)
        row = rows.setdefault(rec["step"], {"step": rec["step"]})
        row["minutes"] = round(rec["minutes"], 3)
        if "eval" in rec:
            row.update(rec["eval"])
        else:
            row.update({k: v for k, v in rec.items() if k not in ("step", "minutes")})
    return [rows[s] for s in sorted(rows)]


def write_curve(out, extra=()):
    """``curve.json`` and ``curve.csv``: training loss and validation metrics against steps; returns the rows."""
    rows = {r["step"]: r for r in read_log(out)}
    for rec in extra:
        rows.setdefault(rec["step"], {"step": rec["step"]}).update(rec)
    rows = [rows[s] for s in sorted(rows)]
    keys = ["step", "minutes"] + [k for k in CURVE_KEYS if any(k in r for r in rows)] + sorted(
        {k for r in rows for k in r if k.startswith("val_")})
    out = pathlib.Path(out)
    (out / "curve.json").write_text(json.dumps({"columns": keys, "rows": rows}, indent=1) + "\n")
    with open(out / "curve.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(keys)
        for r in rows:
            w.writerow([r.get(k, "") for k in keys])
    return rows


def plot_curve(out, rows):
    """``curve.png`` (training loss parts and validation metrics), if matplotlib is there; returns the path or None."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.5))
    for key in CURVE_KEYS[1:]:
        pts = [(r["step"], r[key]) for r in rows if key in r]
        if pts:
            a.plot(*zip(*pts), label=key)
    for key in ("val_lm_vqa", "val_lm_asr", "val_lm_dsc", "val_diff_t2i"):
        pts = [(r["step"], r[key]) for r in rows if key in r]
        if pts:
            a.plot(*zip(*pts), "o--", label=key)
    a.set_xlabel("step"), a.set_ylabel("loss"), a.set_yscale("log"), a.legend(fontsize=7)
    for key in ("val_vqa_acc", "val_vqa_trace_exact", "val_asr_wer", "val_dsc_exact"):
        pts = [(r["step"], r[key]) for r in rows if key in r]
        if pts:
            b.plot(*zip(*pts), "o-", label=key)
    b.set_xlabel("step"), b.set_ylim(0, 1), b.legend(fontsize=7)
    fig.tight_layout()
    path = pathlib.Path(out) / "curve.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def device_name(device):
    """A line saying where training ran (GPU name, or CPU model and threads)."""
    if device.type == "cuda":
        return f"CUDA GPU {torch.cuda.get_device_name(device)}"
    cpu = platform.processor() or platform.machine()
    try:
        for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"CPU ({cpu}), {torch.get_num_threads()} torch thread(s)"


def build_model(args, cache):
    """A fresh ``MLLM`` of the command line's size with the token statistics of the training cache."""
    cfg = Config(dim=args.dim, depth=args.depth, heads=args.heads, max_len=args.max_len, head_width=args.head_width,
                 head_depth=args.head_depth, freq_dim=args.freq_dim, noise_draws=args.noise_draws)
    model = MLLM(cfg)
    for m in ("image", "audio"):
        model.set_token_stats(m, *cache.token_stats(m))
    return model


def init_weights(model, path):
    """Load the ``mllm`` weights of the checkpoint at ``path`` into ``model``; → what the card says about it
    (the checkpoint, its steps and training minutes, and its own ``--init`` if it had one)."""
    path = pathlib.Path(path)
    if not path.is_file():
        raise SystemExit(f"--init: no checkpoint at {path}")
    state = torch.load(path, map_location="cpu", weights_only=False)
    if "mllm" not in state:
        raise SystemExit(f"--init: {path} holds no MLLM weights (keys: {', '.join(sorted(state))})")
    try:
        model.load_state_dict(state["mllm"])
    except RuntimeError as err:
        raise SystemExit(f"--init: {path} is a model of another size or kind: {str(err).splitlines()[0]}") from None
    info = {"checkpoint": str(path.resolve()), "steps": int(state["step"]),
            "minutes": round(float(state["elapsed"]) / 60, 2)}
    before = path.parent / CONFIG_FILE
    if before.is_file():
        earlier = json.loads(before.read_text())
        info["batch"], info["mix"], info["lr"] = earlier.get("batch"), earlier.get("mix"), earlier.get("lr")
        if "init" in earlier:
            info["init"] = earlier["init"]
    print(f"initialised from {path} ({info['steps']} steps, {info['minutes']} min of training)", flush=True)
    return info


def run_config(args, cache, model, sampler):
    """What defines the run (checked on ``--resume``) plus what the card reports about the data."""
    m = cache.manifest
    return {"mllm_config": json.loads(model.config.to_json()), "seed": args.seed, "batch": args.batch,
            "mix": shares(args.mix), "weights": shares(args.weights), "p_clean": args.p_clean, "lr": args.lr,
            "t2i_uncond": args.t2i_uncond, "vqa_trace": args.vqa_trace,
            "cache": {"folder": str(pathlib.Path(args.cache).resolve()), "corpus": m["corpus"],
                      "models": m["models"], "copies": m["copies"], "snr_range_db": m["snr_range_db"],
                      "channels": m["channels"], "rates": m["rates"], "train_counts": cache.counts()},
            "asr_items_too_long": sampler.asr_dropped}


def export_model(model, args, cache, metrics, export_dir):
    """The four ONNX graphs of a CPU copy of ``model`` with the cache's model ids in their metadata,
    parity-checked against torch; returns {graph: path}."""
    cpu = copy.deepcopy(model).cpu().eval()
    ids = cache.manifest["models"]
    extra = {"tokenizers": {"image": ids["image_tokenizer"], "audio": ids["audio_tokenizer"], "text": "text_vocab"},
             "detokenizers": {"image": ids["image_detokenizer"]},
             "jscc": {k: v for k, v in ids.items() if "_jscc_" in k},
             "train_cache": {"corpus": pathlib.Path(cache.manifest["corpus"]).name, "copies": cache.manifest["copies"],
                             "snr_range_db": cache.manifest["snr_range_db"], "channels": cache.manifest["channels"],
                             "rates": cache.manifest["rates"], "counts": cache.counts()},
             "vqa_trace": "yes" if args.vqa_trace else "no"}
    train_data = (f"received tokens of CLEVR-style corpus {pathlib.Path(cache.manifest['corpus']).name} "
                  f"(train split, clean copy + {cache.manifest['copies']} received copies)")
    paths = export.export_all(cpu, export_dir, args.variant, train_data=train_data, train_metrics=metrics, extra=extra)
    export.check_all(cpu, paths)
    return paths


def init_line(init):
    """The card's sentence on ``--init`` (empty without it)."""
    if not init:
        return ""
    text = (f"\nStarted from the weights of `{init['checkpoint']}` ({init['steps']} steps, {init['minutes']} min "
            f"of training{', batch mix ' + json.dumps(init['mix']) if init.get('mix') else ''}); the time below "
            "is this run's only.\n")
    return text + (init_line(init["init"]) if init.get("init") else "")


def write_card(out, argv, args, config, metrics, rows, paths, device_line, plot):
    """``<out>/MODEL_CARD.md``: a draft of the model card (command, data, time, device, curve, files)."""
    pc = metrics["parameters"]
    c = config["cache"]
    head = [k for k in ("step", "minutes", "loss", "val_vqa_acc", "val_vqa_trace_exact", "val_asr_wer", "val_dsc_exact",
                        "val_lm_vqa", "val_lm_asr", "val_lm_dsc", "val_diff_t2i") if any(k in r for r in rows)]
    shown = [r for r in rows if any(k.startswith("val_") for k in r)] or rows[-1:]
    table = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in shown:
        table.append("| " + " | ".join(f"{r[k]:.4g}" if isinstance(r.get(k), float) else str(r.get(k, ""))
                                       for k in head) + " |")
    files = "\n".join(f"- `{p.name}`" for p in paths.values()) if paths else "- (not exported)"
    text = f"""# MLLM (draft card)

Command: `./unitocom python -m onnx_export.train_mllm {' '.join(argv)}` (seed {args.seed}).
{init_line(config.get('init'))}
Where: {device_line}. Trained {metrics['steps']} steps of {args.batch} items
({metrics['samples']} samples, {metrics['samples_per_s']:.1f} samples/s) in {metrics['train_minutes']:.1f} min
(evaluation included).

Model: D = {config['mllm_config']['dim']}, {config['mllm_config']['depth']} layers, {config['mllm_config']['heads']} heads,
{config['mllm_config']['max_len']} positions; diffusion head width {config['mllm_config']['head_width']},
depth {config['mllm_config']['head_depth']}, {config['mllm_config']['noise_draws']} noise draws per token,
schedule {config['mllm_config']['schedule']} R = {config['mllm_config']['diffusion_steps']}.
Parameters: {pc['total']:,} ({pc['transformer']:,} Transformer, {pc['lm_head']:,} LM head,
{pc['diffusion_head']:,} diffusion head). AdamW lr {args.lr}, warm-up {args.warmup}, cosine over the budget.

Data: the received-token cache `{c['folder']}` of corpus `{c['corpus']}`: {c['train_counts']['vqa']} questions,
{c['train_counts']['t2i']} captions, {c['train_counts']['asr']} utterances, {c['train_counts'].get('dsc', 0)} scene
descriptions in train ({config['asr_items_too_long']} ASR
items longer than {config['mllm_config']['max_len']} positions left out); copy 0 clean + {c['copies']} received copies
({', '.join(c['channels'])} block fading, SNR uniform in {c['snr_range_db']} dB, rates {c['rates']}); batch mix
{config['mix']}, clean share {args.p_clean if args.p_clean is not None else f'1/{c["copies"] + 1}'}.
Models the tokens come from: {', '.join(f'`{v}`' for v in c['models'].values())}.

Validation (clean tokens, {args.eval_questions} questions, {args.eval_utterances} utterances, greedy) against steps:

{chr(10).join(table)}
{f'{chr(10)}![curve](curve.png){chr(10)}' if plot else ''}
Final validation: {json.dumps(metrics['val'])}

Files:
{files}

Test-split numbers: `python -m onnx_export.mllm.evaluate` (to be filled in).
"""
    (pathlib.Path(out) / "MODEL_CARD.md").write_text(text)


def main(argv=None):
    """Run the command line ``argv``: train, score on validation, export and write the card; returns metrics."""
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser().parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: torch sees no CUDA GPU here")
    device = torch.device(args.device)
    loop.seed_everything(args.seed, args.threads)
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    train, val = Cache(pathlib.Path(args.cache) / args.train_split), Cache(pathlib.Path(args.cache) / args.val_split)
    if train.manifest["models"] != val.manifest["models"]:
        raise SystemExit("the train and val caches were made with different models; rebuild one of them")
    model = build_model(args, train).to(device)
    sampler = Sampler(train, args.batch, shares(args.mix), args.p_clean, args.max_len, args.t2i_uncond,
                      args.vqa_trace)
    config = run_config(args, train, model, sampler)
    if args.init:
        config["init"] = init_weights(model, args.init)
    cfg_path = out / CONFIG_FILE
    if args.resume and cfg_path.is_file():
        before = json.loads(cfg_path.read_text())
        if before != json.loads(json.dumps(config)):
            raise SystemExit(f"--resume: {cfg_path} describes another run (model, data or settings differ)")
    cfg_path.write_text(json.dumps(config, indent=1) + "\n")
    validator = Validator(model, val, args, device)
    weights = shares(args.weights)
    run = loop.TrainLoop(out, {"mllm": model}, lr=args.lr, weight_decay=args.weight_decay, seed=args.seed,
                         minutes=args.minutes, steps=args.steps, warmup=args.warmup, log_every=args.log_every,
                         save_every=args.save_every, eval_every=args.eval_every)

    def evaluate():
        scores = validator()
        write_curve(out, [{"step": run.step, "minutes": round(run.elapsed / 60, 3), **scores}])
        return scores

    run.evaluate = evaluate
    if args.resume:
        run.resume()
    print(f"MLLM {model.parameter_counts()['total']:,} parameters on {device_name(device)}; "
          f"batch {sampler.n}; {train.n_copies} copies per item", flush=True)
    t0 = time.time()
    run.fit(lambda packs: objective.loss(model, to_device(packs, device), weights, generator=run.gen), sample=sampler)
    final = validator()
    rows = write_curve(out, [{"step": run.step, "minutes": round(run.elapsed / 60, 3), **final}])
    samples = run.step * args.batch
    metrics = {"steps": run.step, "samples": samples, "train_minutes": round(run.elapsed / 60, 2),
               "samples_per_s": round(samples / max(run.elapsed, 1e-9), 2), "val": final,
               "parameters": model.parameter_counts(), "device": device_name(device),
               "this_session_seconds": round(time.time() - t0, 1)}
    print(f"final validation at step {run.step}: {json.dumps(final)}", flush=True)
    export_dir = out / "onnx" if args.export_dir is None else (pathlib.Path(args.export_dir) if args.export_dir else None)
    paths = {}
    if export_dir:
        stale = sorted(export_dir.glob("mllm_*.onnx")) if export_dir.is_dir() else []
        if args.export_dir is None:                     # the run's own folder: the new export replaces the old
            for p in stale:
                p.unlink()
        elif stale:
            print(f"note: {export_dir} already holds {', '.join(p.name for p in stale)}; the runtime needs exactly "
                  "one file per graph there, so remove the old model's files", flush=True)
        paths = export_model(model, args, train, metrics["val"], export_dir)
    metrics["files"] = {g: str(p) for g, p in paths.items()}
    (out / "metrics.json").write_text(json.dumps(metrics, indent=1) + "\n")
    plot = plot_curve(out, rows)
    write_card(out, argv, args, config, metrics, rows, paths, metrics["device"], plot)
    return metrics


if __name__ == "__main__":
    main()
