"""Test-split evaluation of an exported MLLM through the runtime class (onnxruntime, no torch in the loop).

    ./unitocom python -m onnx_export.mllm.evaluate --cache runs/mllm-cache --model-dir runs/mllm/onnx \\
        --out runs/mllm/eval [--snrs 0,10,20] [--threads 1]

The four graphs (``mllm_{prefill,decode,lm_head,denoiser}-*.onnx`` in
``--model-dir``; default: the shipped ones) run behind
``gnuradio.unitocom.mllm.engine.MLLM`` on the test split's received-token
cache (``<cache>/test``, from ``onnx_export.mllm.data``), under these
conditions: ``clean`` (copy 0) and Rayleigh block fading at each of
``--snrs`` dB, made with the cache builder's own code path (``Builder`` with
one channel and one SNR, cached in ``<cache>/test-rayleigh-<snr>dB``).

* **VQA**: greedy answers; accuracy overall and per template. The control
  (clean only): the same questions with the image tokens of another scene
  (scene s → s + N/2 mod N), next to the question-only baseline (each
  template's majority answer in train, ``data.questions``).
* **ASR**: greedy transcripts; word error rate (``word_error_rate``, the
  word-level edit distance over all words, as ``jiwer.wer``) over all test
  utterances, over the speakers the corpus's train split never has
  (``speaker_heard_in_train`` of the cache), and over those it keeps out by
  construction.
* **dsc**: greedy scene descriptions of the first ``--scenes`` test scenes:
  exactly right, object count right, attribute accuracy per object slot.
* **t2i**: image tokens for the first ``--t2i`` captions (``--steps`` DDPM
  steps, fixed seed), decoded by the shipped image de-tokenizer (the one
  in the cache's manifest). (a) Attribute accuracy: the share of captions
  whose every object (size, color, material, shape) and relation the
  attribute classifier (``mllm.image_checks``, card
  docs/models/attribute_classifier.md) finds in the generated image; the
  same on the corpus renders of the captions and on the de-tokenized clean
  target tokens as references. (b) The Fréchet distance (``fid``:
  EfficientNet-Lite0 features) between the generated images and the corpus
  renders of the same captions; references: two halves of all test caption
  renders (the floor) and the de-tokenized clean target tokens. Also Eq.
  (19)'s ε-loss, teacher-forced through the prefill and denoiser graphs
  with fixed draws, and the PSNR against the caption's render (a weak
  proxy: a caption fixes objects, not their exact placement).
  ``t2i_<condition>.png`` shows per caption the render, the de-tokenized
  target tokens and the generated image.

Writes ``evaluate.json`` and ``evaluate.md`` (tables) in ``--out``. The
word error rate is ``core.metrics.word_error_rate`` (``jiwer``'s definition).
"""
import argparse
import json
import pathlib
import time

import numpy as np

from gnuradio.unitocom.core import metrics
from gnuradio.unitocom.core.metrics import edit_distance, word_error_rate  # noqa: F401 (re-exported)
from gnuradio.unitocom.data import questions as qmod
from gnuradio.unitocom.data import vocab
from gnuradio.unitocom.data.loaders import CorpusSplit
from gnuradio.unitocom.mllm import engine, image_checks, layout, schedule
from gnuradio.unitocom.runtime import model_store
from gnuradio.unitocom.runtime.onnx_session import make_session

from . import fid
from .data import Builder, Cache

SNRS = (0.0, 10.0, 20.0)


def find_model(model_dir=None):
    """{graph: path} of the four MLLM graphs in ``model_dir`` (exactly one each), or the shipped ones."""
    if model_dir is None:
        return engine.find_files()
    files = {}
    for graph in engine.GRAPHS:
        hits = sorted(pathlib.Path(model_dir).glob(f"mllm_{graph}-*.onnx"))
        if len(hits) != 1:
            raise ValueError(f"{model_dir}: expected one mllm_{graph}-*.onnx, found {[h.name for h in hits]}")
        files[graph] = hits[0]
    return files


def _ids(row):
    """Received ids as the runtime takes them: trailing ``<pad>`` dropped, never empty (``<unk>`` then)."""
    row = np.asarray(row, np.int64)
    keep = np.flatnonzero(row != vocab.PAD)
    return row[:keep[-1] + 1] if keep.size else np.array([vocab.UNK], np.int64)


def _batches(n, size):
    for i in range(0, n, size):
        yield slice(i, min(i + size, n))


def vqa_scores(mllm, cache, copy, questions, image_of=None, batch=256):
    """Greedy answers to ``questions`` with the inputs of ``copy``; ``image_of(q)`` picks the scene whose
    image tokens are shown (default: the question's own). Returns (accuracy, {template: accuracy}, hits,
    traces exactly right (a share; None for a model without traces))."""
    hits, traced = [], []
    for sl in _batches(len(questions), batch):
        qs = questions[sl]
        scenes = [int(cache.question_scene[q]) if image_of is None else image_of(q) for q in qs]
        images = np.stack([np.asarray(cache.images[copy][s]) for s in scenes])
        said = mllm.answer(images, [_ids(cache.seq("questions", copy, q)) for q in qs], max_words=2, with_trace=True)
        hits += [list(a) == [int(cache.answer[q])] for (_, a), q in zip(said, qs)]
        traced += [list(t) == [int(i) for i in cache.traces[q]] for (t, _), q in zip(said, qs)]
    hits = np.array(hits, bool)
    templates = np.array([cache.rows["question_template"][q] for q in questions])
    table = {t: round(float(hits[templates == t].mean()), 4) for t in sorted(set(templates))}
    trace_exact = round(float(np.mean(traced)), 4) if mllm.vqa_trace and image_of is None else None
    return round(float(hits.mean()), 4), table, hits, trace_exact


def asr_scores(mllm, cache, copy, utterances, batch=32):
    """Greedy transcripts of ``utterances`` (inputs of ``copy``): WER over all, over speakers unheard in
    train and over the held-out speakers; and the transcripts."""
    hyps = []
    for sl in _batches(len(utterances), batch):
        us = utterances[sl]
        hyps += mllm.transcribe([np.asarray(cache.seq("audio", copy, u)) for u in us])
    refs = [vocab.decode(cache.transcripts[u]) for u in utterances]
    texts = [vocab.decode(h) for h in hyps]
    out = {"asr_wer": round(word_error_rate(refs, texts), 4), "asr_utterances": len(utterances)}
    for key, flag, want in (("unseen", "speaker_heard_in_train", False), ("held_out", "speaker_held_out", True)):
        pick = [i for i, u in enumerate(utterances) if cache.rows[flag][u] == want]
        out[f"asr_utterances_{key}"] = len(pick)
        if pick:
            out[f"asr_wer_{key}"] = round(word_error_rate([refs[i] for i in pick], [texts[i] for i in pick]), 4)
    return out, texts


def dsc_scores(mllm, cache, copy, scenes, batch=128):
    """Greedy scene descriptions of ``scenes`` (image tokens of ``copy``) against the true ones: the share
    said exactly, the share with the right object count, and the attribute accuracy over the object slots
    of the true description (slot k of the prediction against slot k of the truth; a missing slot is
    wrong)."""
    said = []
    for sl in _batches(len(scenes), batch):
        said += mllm.describe(np.stack([np.asarray(cache.images[copy][s]) for s in scenes[sl]]))
    exact = count = right = total = 0
    for ids, s in zip(said, scenes):
        truth = vocab.decode(cache.descriptions[s]).split()
        got = vocab.decode(ids).split()
        exact += got == truth
        count += bool(got) and got[0] == truth[0]
        for k in range(1, len(truth)):
            right += k < len(got) and got[k] == truth[k]
            total += 1
    n = max(len(scenes), 1)
    return {"dsc_exact": round(exact / n, 4), "dsc_count_acc": round(count / n, 4),
            "dsc_attribute_acc": round(right / max(total, 1), 4), "dsc_scenes": len(scenes)}


def t2i_loss(backend, cache, copy, captions, draws=4, seed=0, batch=64):
    """Eq. (19) on t2i items of ``captions`` (inputs of ``copy``) through the ONNX graphs: prefill the whole
    teacher-forced sequence, then the denoiser on ``draws`` noisy versions of each image token; mean of
    ‖ε − ε̂‖²/d. ``backend``: an ``engine.OnnxBackend``."""
    rng = np.random.default_rng(seed)
    omega = np.asarray(backend.schedule["omega"], np.float64)
    steps = len(omega) - 1
    total, count = 0.0, 0
    for sl in _batches(len(captions), batch):
        b = layout.pack([cache.t2i(s, copy) for s in captions[sl]], pad="right")
        hidden, _ = backend.prefill(b["ids"], b["cont"], b["kind"], b["pos"], b["mask"])
        sel = b["diff_mask"] > 0
        h = np.repeat(hidden[sel], draws, 0)
        c0 = (np.repeat(b["diff_target"][sel], draws, 0) - backend.image_mean) / backend.image_std
        r = rng.integers(1, steps + 1, len(c0))
        eps = rng.standard_normal(c0.shape)
        x = np.sqrt(omega[r])[:, None] * c0 + np.sqrt(1 - omega[r])[:, None] * eps
        eps_hat = backend.denoise(x.astype(np.float32), r.astype(np.int64), h.astype(np.float32))
        total += float(((eps - eps_hat) ** 2).sum())
        count += eps.size
    return round(total / max(count, 1), 5)


def detokenize(det, tokens, batch=64):
    """Image tokens (N, S, d) → uint8 images (N, 64, 64, 3) through the de-tokenizer session ``det``."""
    out = []
    for sl in _batches(len(tokens), batch):
        y = det.run(None, {"tokens": np.ascontiguousarray(tokens[sl], np.float32)})[0]
        out.append(np.clip(np.round(y.transpose(0, 2, 3, 1) * 255), 0, 255).astype(np.uint8))
    return np.concatenate(out)


def save_grid(path, columns, per_row=4, gap=2, scale=2):
    """PNG of image triples: ``columns`` is a list of (N, H, W, 3) uint8 arrays shown side by side per item,
    ``per_row`` items per row, each pixel drawn ``scale``×``scale``. Returns the path."""
    from PIL import Image
    columns = [np.repeat(np.repeat(np.asarray(c), scale, 1), scale, 2) for c in columns]
    n, hgt, wid = columns[0].shape[:3]
    k = len(columns)
    rows = -(-n // per_row)
    cell_w = k * wid + (k - 1) * gap + 3 * gap
    canvas = np.full((rows * (hgt + gap) + gap, per_row * cell_w + gap, 3), 255, np.uint8)
    for i in range(n):
        r, c = divmod(i, per_row)
        y = gap + r * (hgt + gap)
        for j, col in enumerate(columns):
            x = gap + c * cell_w + j * (wid + gap)
            canvas[y:y + hgt, x:x + wid] = col[i]
    Image.fromarray(canvas).save(path)
    return path


def condition_cache(cache_root, name, snr_db, clean, threads=1, progress=False):
    """The test cache of one condition: ``clean`` → ``<root>/<name>`` itself; a Rayleigh SNR → copy 1 of
    ``<root>/<name>-rayleigh-<snr>dB`` (built now if missing, with the clean cache's corpus, seed and limit)."""
    base = Cache(pathlib.Path(cache_root) / name)
    if clean:
        return base, 0
    m = base.manifest
    cond = f"{name}-rayleigh-{snr_db:g}dB"
    Builder(m["corpus"], m["split"], cache_root, copies=1, seed=m["seed"], snr_range=(snr_db, snr_db),
            channels=("rayleigh",), rates=tuple(m["rates"]), threads=threads, limit=m["limit"], name=cond,
            progress=progress, clean_from=base.folder).build()
    return Cache(pathlib.Path(cache_root) / cond), 1


def evaluate(cache_root, files, out, snrs=SNRS, split="test", threads=1, device="cpu", t2i_n=500, steps=50,
             questions=None, utterances=None, seed=0, progress=True, dsc_n=1000, guidance=1.0, temperature=1.0,
             tasks=("vqa", "dsc", "asr", "t2i")):
    """Score the model ``files`` on the test split (see the module docstring); returns the results dict."""
    out = pathlib.Path(out)
    out.mkdir(parents=True, exist_ok=True)
    mllm = engine.MLLM(files=files, threads=threads, device=device)
    base = Cache(pathlib.Path(cache_root) / split)
    ids = base.manifest["models"]
    trained_on = json.loads(mllm.backend.meta.get("tokenizers", "{}"))
    mismatch = {k: (trained_on[k], ids[f"{k}_tokenizer"]) for k in ("image", "audio")
                if k in trained_on and trained_on[k] != ids[f"{k}_tokenizer"]}
    if mismatch and progress:
        print(f"[evaluate] warning: the model was trained on tokens of other tokenizers than the cache's: {mismatch}",
              flush=True)
    det = make_session(str(model_store.find(ids["image_detokenizer"])), threads, "cpu")
    unknown = set(tasks) - {"vqa", "dsc", "asr", "t2i"}
    if unknown:
        raise ValueError(f"unknown task(s) {sorted(unknown)}; choose from vqa, dsc, asr, t2i")
    nq = 0 if "vqa" not in tasks else base.n_questions if questions is None else min(questions, base.n_questions)
    nu = 0 if "asr" not in tasks else base.n_utterances if utterances is None else min(utterances, base.n_utterances)
    dsc_n = dsc_n if "dsc" in tasks else 0
    qs, us = list(range(nq)), list(range(nu))
    caps = list(range(min(t2i_n, base.n_scenes))) if "t2i" in tasks else []
    corpus = CorpusSplit(base.manifest["corpus"], base.manifest["split"])
    results = {"model_id": mllm.model_id, "files": {g: pathlib.Path(p).name for g, p in files.items()},
               "cache": str(base.folder), "split": split, "questions": nq, "utterances": nu, "t2i_captions": len(caps),
               "t2i_steps": steps, "t2i_guidance": guidance, "t2i_temperature": temperature,
               "tokenizer_mismatch": mismatch, "conditions": {}}
    train_rows = _train_question_rows(cache_root, base)
    test_rows = [{"template": base.rows["question_template"][q], "answer": base.rows["answer_text"][q]} for q in qs]
    if train_rows:
        results["question_only_baseline"] = round(qmod.question_only_accuracy(train_rows, test_rows), 4)
    classifier = image_checks.AttributeClassifier(threads=threads) if caps else None
    feats = fid.Features(threads=threads) if caps else None
    if caps:
        all_real = np.asarray(corpus.caption_images)
        half = len(all_real) // 2
        results["t2i_fd_floor_real_vs_real"] = round(_fd(feats(all_real[:half]), fid.statistics(feats(all_real[half:]))), 2)
        results["t2i_fd_floor_images"] = half
        real_stats = fid.statistics(feats(np.asarray(corpus.caption_images[caps])))
        rep_real = image_checks.attribute_report(np.asarray(corpus.caption_images[caps]),
                                                 [base.rows["caption_text"][s] for s in caps], classifier)
        results["t2i_captions_fully_right_real_renders"] = rep_real["fully_right"]
    conditions = [("clean", None)] + [(f"rayleigh_{s:g}dB", s) for s in snrs]
    for name, snr in conditions:
        t0 = time.time()
        cache, copy = condition_cache(cache_root, split, snr, snr is None, threads, progress)
        res = {}
        if qs:
            res["vqa_acc"], res["vqa_per_template"], _, trace_exact = vqa_scores(mllm, cache, copy, qs)
            if trace_exact is not None:
                res["vqa_trace_exact"] = trace_exact
        if qs and snr is None:
            half = max(cache.n_scenes // 2, 1)
            other = lambda q: (int(cache.question_scene[q]) + half) % cache.n_scenes   # noqa: E731
            res["vqa_acc_other_image"], res["vqa_per_template_other_image"], _, _ = vqa_scores(mllm, cache, copy, qs,
                                                                                                other)
        res.update(dsc_scores(mllm, cache, copy, list(range(min(dsc_n, cache.n_scenes)))) if dsc_n else {})
        if us:
            asr, texts = asr_scores(mllm, cache, copy, us)
            res.update(asr)
            res["asr_examples"] = [{"ref": vocab.decode(cache.transcripts[u]), "hyp": t} for u, t in zip(us[:5], texts)]
        if caps:
            res["t2i_eps_loss"] = t2i_loss(mllm.backend, cache, copy, caps, seed=seed)
            cap_ids = [_ids(cache.seq("captions", copy, s)) for s in caps]
            tokens = np.concatenate([mllm.generate_image_tokens(cap_ids[sl], steps=steps, seed=seed + i,
                                                                guidance=guidance, temperature=temperature)
                                     for i, sl in enumerate(_batches(len(caps), 64))])
            generated = detokenize(det, tokens)
            target = detokenize(det, np.asarray(cache.caption_images[caps]))
            real = np.asarray(corpus.caption_images[caps])
            texts = [cache.rows["caption_text"][s] for s in caps]
            res["t2i_psnr_vs_caption_render_db"] = round(float(np.mean(metrics.psnr(generated, real))), 3)
            res["t2i_psnr_target_tokens_vs_render_db"] = round(float(np.mean(metrics.psnr(target, real))), 3)
            rep = image_checks.attribute_report(generated, texts, classifier)
            res["t2i_captions_fully_right"] = rep["fully_right"]
            res["t2i_attribute_report"] = {k: v for k, v in rep.items() if k != "correct"}
            res["t2i_fd"] = round(_fd(feats(generated), real_stats), 2)
            if snr is None:
                rep_t = image_checks.attribute_report(target, texts, classifier)
                res["t2i_captions_fully_right_reconstruction"] = rep_t["fully_right"]
                res["t2i_fd_reconstruction"] = round(_fd(feats(target), real_stats), 2)
            res["t2i_grid"] = save_grid(out / f"t2i_{name}.png", [real[:16], target[:16], generated[:16]]).name
            res["t2i_examples"] = [{"caption": t, "fully_right": bool(c)} for t, c in zip(texts[:16], rep["correct"])]
        res["seconds"] = round(time.time() - t0, 1)
        results["conditions"][name] = res
        if progress:
            print(f"[evaluate] {name}: " + json.dumps({k: v for k, v in res.items() if not isinstance(v, (dict, list))}),
                  flush=True)
    (out / "evaluate.json").write_text(json.dumps(results, indent=1) + "\n")
    (out / "evaluate.md").write_text(report(results))
    return results


def _fd(features, stats):
    """Fréchet distance of ``features`` (N, 1280) to the (mu, sigma) ``stats``."""
    mu, sigma = fid.statistics(features)
    return float(fid.frechet_from_statistics(mu, sigma, *stats, method="eigh"))


def _train_question_rows(cache_root, base):
    path = pathlib.Path(cache_root) / "train" / "rows.json"
    if path.is_file():
        rows = json.loads(path.read_text())
    else:
        try:
            split = CorpusSplit(base.manifest["corpus"], "train")
        except FileNotFoundError:
            return []
        rows = {"question_template": [q["template"] for q in split.questions],
                "answer_text": [q["answer"] for q in split.questions]}
    return [{"template": t, "answer": a} for t, a in zip(rows["question_template"], rows["answer_text"])]


def report(results):
    """Markdown tables of an ``evaluate`` result: conditions × metrics, and VQA per template."""
    conds = results["conditions"]
    keys = [k for k in ("vqa_acc", "vqa_trace_exact", "asr_wer", "asr_wer_unseen", "asr_wer_held_out", "dsc_exact",
                        "dsc_attribute_acc", "t2i_captions_fully_right", "t2i_fd", "t2i_eps_loss",
                        "t2i_psnr_vs_caption_render_db") if any(k in c for c in conds.values())]
    lines = [f"# MLLM `{results['model_id']}` on the {results['split']} split", "",
             f"{results['questions']} questions, {results['utterances']} utterances, {results['t2i_captions']} "
             f"captions ({results['t2i_steps']} DDPM steps, guidance {results.get('t2i_guidance', 1.0)}, "
             f"temperature {results.get('t2i_temperature', 1.0)}).", "",
             "| condition | " + " | ".join(keys) + " |", "|---|" + "---|" * len(keys)]
    for name, c in conds.items():
        lines.append(f"| {name} | " + " | ".join(str(c.get(k, "")) for k in keys) + " |")
    clean = conds.get("clean", {})
    if "t2i_fd_floor_real_vs_real" in results:
        lines += ["", f"t2i references: captions fully right on the corpus renders "
                      f"{results.get('t2i_captions_fully_right_real_renders')}, on the de-tokenized clean target "
                      f"tokens {clean.get('t2i_captions_fully_right_reconstruction')}; FD floor (two halves of the "
                      f"test caption renders, {results['t2i_fd_floor_images']} each) "
                      f"{results['t2i_fd_floor_real_vs_real']}, FD of the de-tokenized targets "
                      f"{clean.get('t2i_fd_reconstruction')}."]
    if "vqa_acc_other_image" in clean:
        lines += ["", f"Control: another scene's image tokens: {clean['vqa_acc_other_image']} "
                      f"(question-only baseline {results.get('question_only_baseline', 'n/a')}, "
                      f"clean {clean['vqa_acc']})."]
    templates = sorted(clean.get("vqa_per_template", {}))
    if templates:
        lines += ["", "| template | " + " | ".join(conds) + " | other image |", "|---|" + "---|" * (len(conds) + 1)]
        for t in templates:
            lines.append(f"| {t} | " + " | ".join(str(c["vqa_per_template"].get(t, "")) for c in conds.values())
                         + f" | {clean.get('vqa_per_template_other_image', {}).get(t, '')} |")
    return "\n".join(lines) + "\n"


def main(argv=None):
    """Command line: evaluate and print the tables."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cache", required=True, help="cache root holding <split>/ (onnx_export.mllm.data)")
    p.add_argument("--model-dir", default=None, help="folder of the four mllm_*.onnx (default: the shipped model)")
    p.add_argument("--out", required=True)
    p.add_argument("--split", default="test")
    p.add_argument("--snrs", default=",".join(f"{s:g}" for s in SNRS), help="Rayleigh SNRs (dB); '' for none")
    p.add_argument("--t2i", type=int, default=500, help="captions to generate images for (attribute accuracy, FD)")
    p.add_argument("--steps", type=int, default=50, help="DDPM steps per image token")
    p.add_argument("--questions", type=int, default=None, help="only the first N questions")
    p.add_argument("--scenes", type=int, default=1000, help="scenes to describe (dsc); 0 for none")
    p.add_argument("--utterances", type=int, default=None, help="only the first N utterances")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--device", default="cpu", choices=("cpu", "cuda", "auto"))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--guidance", type=float, default=schedule.DEFAULT_GUIDANCE,
                   help="t2i classifier-free guidance scale (1: none)")
    p.add_argument("--temperature", type=float, default=1.0, help="t2i sampling temperature")
    p.add_argument("--tasks", default="vqa,dsc,asr,t2i", help="which tasks to score")
    args = p.parse_args(argv)
    snrs = [float(s) for s in args.snrs.split(",") if s]
    res = evaluate(args.cache, find_model(args.model_dir), args.out, snrs, args.split, args.threads, args.device,
                   args.t2i, args.steps, args.questions, args.utterances, args.seed, dsc_n=args.scenes,
                   guidance=args.guidance, temperature=args.temperature, tasks=tuple(args.tasks.split(",")))
    print(report(res))


if __name__ == "__main__":
    main()
