"""Materialise the corpus: ``python -m gnuradio.unitocom.data.corpus``.

    ./unitocom python -m gnuradio.unitocom.data.corpus build --out data/clevr64 [--seed 0]
    ./unitocom python -m gnuradio.unitocom.data.corpus report --out data/clevr64

Per split (``train``, ``val``, ``test``) the folder gets:

* ``images.npy``          uint8 (N, S, S, 3) scene renders
* ``scenes.jsonl``        scene graphs (objects with attributes and 3-D positions)
* ``questions.jsonl``     questions with answers, templates and programs
* ``captions.jsonl``      one caption per scene; ``caption_images.npy`` is the
                          scene rendered *from* that caption (text-to-image pairs)
* ``audio.npy``           int16 16 kHz speech, all utterances concatenated,
  ``utterances.jsonl``    with offset, length, transcript, speaker, rate, pitch
* ``meta.json``           counts, answer distributions, audio hours

Item i of a split is a pure function of (split, i, seed); files hold no
times or paths, so the same arguments give byte-identical files.
"""
import argparse
import json
import multiprocessing
import pathlib
import sys
import time

import numpy as np

from . import captions, questions, render, scenes, speech, vocab

MIN_VISIBLE = 0.4


def _scene(rng, size):
    while True:
        objs = scenes.sample_scene(rng)
        image, visible = render.render(objs, size, with_visibility=True)
        unique = any(sum(p.attrs() == o.attrs() for p in objs) == 1 for o in objs)
        if min(visible) >= MIN_VISIBLE and unique:     # a caption needs a uniquely named object
            return objs, image


def scene_image(split, index, seed, size=64):
    """Just the image of scene ``index`` (the same pixels ``make_item`` gives), (size, size, 3) uint8."""
    return _scene(np.random.default_rng(scenes.scene_seed(split, index, seed)), size)[1]


def make_item(split, index, seed, size=64, questions_per_scene=3, with_speech=False, noise_snr_db=None):
    """Everything for scene ``index`` of ``split`` (a pure function)."""
    sseed = scenes.scene_seed(split, index, seed)
    rng = np.random.default_rng(sseed)
    objs, image = _scene(rng, size)
    qs = [questions.generate(rng, objs) for _ in range(questions_per_scene)]
    cap = captions.caption_from_scene(rng, objs)
    cap_image = render.render(captions.scene_from_caption(rng, cap["text"]), size)
    item = {"scene": {"index": index, "scene_seed": sseed, "objects": [o.to_dict() for o in objs]},
            "image": image, "questions": qs, "caption": cap, "caption_image": cap_image}
    if with_speech:
        text = qs[0]["text"] if rng.random() < 0.5 else cap["text"]
        audio, meta = speech.utterance(rng, text, split, noise_snr_db)
        item["utterance"] = dict(meta, text=text)
        item["audio"] = audio
    return item


def _work(args):
    return make_item(*args)


def _progress(split, done, total, t0):
    width = 30
    filled = int(width * done / max(total, 1))
    rate = done / max(time.time() - t0, 1e-9)
    sys.stderr.write(f"\r{split:5s} [{'#' * filled}{'.' * (width - filled)}] {done}/{total} "
                     f"{rate:6.1f}/s")
    if done == total:
        sys.stderr.write("\n")
    sys.stderr.flush()


def _jsonl(path, rows):
    with open(path, "w") as f:
        for row in rows:
            f.write(json.dumps(row, sort_keys=True) + "\n")


def build_split(out, split, n, seed, size, qps, n_speech, noise_snr_db, workers):
    folder = pathlib.Path(out) / split
    folder.mkdir(parents=True, exist_ok=True)
    jobs = [(split, i, seed, size, qps, i < n_speech, noise_snr_db) for i in range(n)]
    images = np.zeros((n, size, size, 3), np.uint8)
    cap_images = np.zeros((n, size, size, 3), np.uint8)
    scene_rows, q_rows, c_rows, u_rows, audio = [], [], [], [], []
    offset, t0 = 0, time.time()
    with multiprocessing.Pool(workers) as pool:
        for i, item in enumerate(pool.imap(_work, jobs, chunksize=16)):
            images[i], cap_images[i] = item["image"], item["caption_image"]
            scene_rows.append(item["scene"])
            q_rows += [dict(q, scene=i) for q in item["questions"]]
            c_rows.append(dict(item["caption"], scene=i))
            if "audio" in item:
                u_rows.append(dict(item["utterance"], scene=i, offset=offset, length=len(item["audio"])))
                audio.append(item["audio"])
                offset += len(item["audio"])
            if i % 50 == 0 or i == n - 1:
                _progress(split, i + 1, n, t0)
    np.save(folder / "images.npy", images)
    np.save(folder / "caption_images.npy", cap_images)
    np.save(folder / "audio.npy", np.concatenate(audio) if audio else np.zeros(0, np.int16))
    _jsonl(folder / "scenes.jsonl", scene_rows)
    _jsonl(folder / "questions.jsonl", q_rows)
    _jsonl(folder / "captions.jsonl", c_rows)
    _jsonl(folder / "utterances.jsonl", u_rows)
    answers = {}
    for q in q_rows:
        answers.setdefault(q["template"], {}).setdefault(q["answer"], 0)
        answers[q["template"]][q["answer"]] += 1
    meta = {"split": split, "seed": seed, "size": size, "scenes": n, "questions": len(q_rows),
            "utterances": len(u_rows), "audio_hours": offset / speech.SAMPLE_RATE / 3600,
            "speakers": sorted({u["speaker"] for u in u_rows}), "answers": answers,
            "balanced_fraction": float(np.mean([q["balanced"] for q in q_rows])) if q_rows else None,
            "vocab_size": len(vocab.TOKENS)}
    (folder / "meta.json").write_text(json.dumps(meta, sort_keys=True, indent=1) + "\n")
    return meta, time.time() - t0


def report(out):
    """Counts, answer distributions, audio hours and the question-only baseline."""
    from .loaders import CorpusSplit
    lines, splits = [], {}
    for split in scenes.SPLITS:
        path = pathlib.Path(out) / split / "meta.json"
        if path.is_file():
            splits[split] = json.loads(path.read_text())
    for split, m in splits.items():
        lines.append(f"{split:5s}: {m['scenes']} scenes ({m['size']}x{m['size']}), {m['questions']} questions "
                     f"({100 * (m['balanced_fraction'] or 0):.0f}% hit their balanced target), "
                     f"{m['utterances']} utterances = {m['audio_hours']:.2f} h from {len(m['speakers'])} speakers")
    if "train" in splits:
        lines.append("answer distribution per template (train):")
        for t, dist in sorted(splits["train"]["answers"].items()):
            total = sum(dist.values())
            top = sorted(dist.items(), key=lambda kv: -kv[1])
            lines.append(f"  {t:17s} n={total:6d}  " + " ".join(f"{a}:{100 * c / total:.0f}%" for a, c in top))
    if "train" in splits and "test" in splits:
        acc = questions.question_only_accuracy(CorpusSplit(out, "train").questions,
                                                CorpusSplit(out, "test").questions)
        lines.append(f"question-only baseline (majority answer per template, train -> test): {100 * acc:.1f}%")
    if "train" in splits and "test" in splits:
        unseen = set(splits["test"]["speakers"]) - set(splits["train"]["speakers"])
        lines.append(f"test speakers unseen in train: {len(unseen)} of {len(splits['test']['speakers'])}")
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description="Materialise the CLEVR-style multimodal corpus.")
    sub = ap.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build", help="generate the splits into --out")
    r = sub.add_parser("report", help="print the statistics of a built corpus")
    for p in (b, r):
        p.add_argument("--out", required=True, help="cache folder")
    b.add_argument("--seed", type=int, default=0)
    b.add_argument("--size", type=int, default=64, choices=(64, 128))
    b.add_argument("--train", type=int, default=10000)
    b.add_argument("--val", type=int, default=1000)
    b.add_argument("--test", type=int, default=1000)
    b.add_argument("--questions-per-scene", type=int, default=3)
    b.add_argument("--train-speech", type=int, default=4000, help="utterances (first N scenes)")
    b.add_argument("--val-speech", type=int, default=500)
    b.add_argument("--test-speech", type=int, default=1000)
    b.add_argument("--noise-snr-db", type=float, default=None, help="add white noise to speech")
    b.add_argument("--workers", type=int, default=max(1, multiprocessing.cpu_count()))
    args = ap.parse_args(argv)
    if args.cmd == "build":
        if (args.train_speech or args.val_speech or args.test_speech) and not speech.espeak_available():
            ap.error("espeak-ng is not installed (./unitocom bootstrap installs it), or pass --*-speech 0")
        t0 = time.time()
        for split in scenes.SPLITS:
            n = getattr(args, split)
            n_speech = min(n, getattr(args, f"{split}_speech"))
            build_split(args.out, split, n, args.seed, args.size, args.questions_per_scene, n_speech,
                        args.noise_snr_db, args.workers)
        print(report(args.out))
        print(f"generated in {time.time() - t0:.1f} s with {args.workers} worker(s)")
    else:
        print(report(args.out))


if __name__ == "__main__":
    main()
