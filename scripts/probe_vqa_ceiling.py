"""Probe: how many test questions could a perfect reasoner answer from what the image tokens let one see?

Each test question's program (``data.questions.answer``) is executed on the
objects that the attribute classifier (``mllm.image_checks``, the t2i
metric's detector) finds in

* the real scene renders (the detector's own ceiling), and
* the shipped de-tokenizer's reconstructions of the scenes' clean image
  tokens (and of received tokens at the cache's Rayleigh SNRs, when those
  test caches exist),

with a question counted wrong when a description it needs matches no
detected object or several (``accuracy``), or answered there with the
question-only guess, the template's most common train answer
(``accuracy_guessing_failures``, comparable with the MLLM, which always
answers). The reconstructions are a lower bound on what
the tokens hold (the MLLM reads the tokens, not the pixels), but a tight
one where the de-tokenizer is good; they say how far VQA can rise before
the tokenizer limits it.

    ./unitocom python scripts/probe_vqa_ceiling.py --corpus data/clevr64 --cache runs/mllm-cache --out docs/vqa_ceiling.json

Prints (and writes) accuracy overall and per template for each image source.
"""
import argparse
import json
import pathlib
import sys

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
from gnuradio.unitocom.data import questions as qmod  # noqa: E402
from gnuradio.unitocom.data.loaders import CorpusSplit  # noqa: E402
from gnuradio.unitocom.mllm import image_checks  # noqa: E402
from gnuradio.unitocom.runtime import model_store  # noqa: E402
from gnuradio.unitocom.runtime.onnx_session import make_session  # noqa: E402
from onnx_export.mllm.data import Cache  # noqa: E402
from onnx_export.mllm.evaluate import detokenize  # noqa: E402


def executed(qs, detections, guess):
    """(strict hits, hits with the question-only ``guess`` where the program fails, failed, templates), each
    (Q,), of the question rows ``qs`` answered on ``detections[scene]``."""
    strict, guessed, failed = [], [], []
    for q in qs:
        try:
            said = qmod.answer(q["program"], detections[q["scene"]])
            failed.append(False)
        except ValueError:              # a description matches no detected object, or several
            said = guess.get(q["template"])            # None (wrong) for a template train never asks
            failed.append(True)
        guessed.append(said == q["answer"])
        strict.append(said == q["answer"] and not failed[-1])
    return (np.array(strict, bool), np.array(guessed, bool), np.array(failed, bool),
            np.array([q["template"] for q in qs]))


def summary(strict, guessed, failed, templates):
    return {"accuracy": round(float(strict.mean()), 4), "accuracy_guessing_failures": round(float(guessed.mean()), 4),
            "programs_failed": round(float(failed.mean()), 4),
            "per_template": {t: round(float(strict[templates == t].mean()), 4) for t in sorted(set(templates))},
            "per_template_guessing_failures": {t: round(float(guessed[templates == t].mean()), 4)
                                               for t in sorted(set(templates))}}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", default="data/clevr64")
    ap.add_argument("--cache", default="runs/mllm-cache", help="MLLM cache root (test/ and test-rayleigh-*dB/)")
    ap.add_argument("--split", default="test")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default=None, help="JSON file for the results")
    args = ap.parse_args(argv)
    corpus = CorpusSplit(args.corpus, args.split)
    cache = Cache(pathlib.Path(args.cache) / args.split)
    qs = [q for q in corpus.questions if q["scene"] < cache.n_scenes]
    clf = image_checks.AttributeClassifier(threads=args.threads)
    det = make_session(str(model_store.find(cache.manifest["models"]["image_detokenizer"])), args.threads, "cpu")
    sources = {"real renders": np.asarray(corpus.images[:cache.n_scenes]),
               "de-tokenized clean tokens": detokenize(det, np.asarray(cache.images[0]))}
    for folder in sorted(pathlib.Path(args.cache).glob(f"{args.split}-rayleigh-*dB")):
        received = Cache(folder)
        sources[f"de-tokenized tokens received over {folder.name.split('-', 1)[1]}"] = \
            detokenize(det, np.asarray(received.images[1]))
    results = {"split": args.split, "questions": len(qs), "detector": "mllm.image_checks.AttributeClassifier",
               "image_detokenizer": cache.manifest["models"]["image_detokenizer"], "sources": {}}
    guess = qmod.majority_answers(CorpusSplit(args.corpus, "train").questions)
    for name, images in sources.items():
        res = summary(*executed(qs, clf.detect(images), guess))
        results["sources"][name] = res
        print(f"{name}: {res['accuracy']:.4f} (failures guessed {res['accuracy_guessing_failures']:.4f}, programs "
              f"failed {res['programs_failed']:.3f})  "
              + " ".join(f"{t} {a:.2f}" for t, a in res["per_template_guessing_failures"].items()), flush=True)
    if args.out:
        pathlib.Path(args.out).write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
