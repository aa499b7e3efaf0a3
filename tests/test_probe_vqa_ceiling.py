"""scripts/probe_vqa_ceiling.py: question programs executed on detected objects (the VQA ceiling probe)."""
import importlib.util
import json

import numpy as np
import pytest

pytest.importorskip("torch")

import unitocom_testing  # noqa: E402
from gnuradio.unitocom.data import questions  # noqa: E402
from gnuradio.unitocom.data.loaders import CorpusSplit  # noqa: E402
from onnx_export.mllm.testing import tiny_cache, tiny_corpus  # noqa: E402

spec = importlib.util.spec_from_file_location("probe_vqa_ceiling", unitocom_testing.ROOT / "scripts" / "probe_vqa_ceiling.py")
probe = importlib.util.module_from_spec(spec)
spec.loader.exec_module(probe)


def test_true_objects_answer_every_question_and_no_objects_fall_back_to_the_guess():
    data = CorpusSplit(tiny_corpus(), "test")
    qs = data.questions
    guess = questions.majority_answers(CorpusSplit(tiny_corpus(), "train").questions)
    truth = {s: data.objects(s) for s in range(len(data.scenes))}
    strict, guessed, failed, templates = probe.executed(qs, truth, guess)
    assert strict.all() and guessed.all() and not failed.any() and len(templates) == len(qs)
    strict, guessed, failed, _ = probe.executed(qs, {s: [] for s in truth}, guess)
    assert np.array_equal(strict, guessed & ~failed)   # exist/count run on nothing: "no" / "0", maybe right
    for q, g, f in zip(qs, guessed, failed):      # nothing detected: every described object is missing
        needs_one = q["template"] not in ("exist", "count")
        assert f == needs_one and (g == ((guess.get(q["template"]) if needs_one else ("no" if q["template"] == "exist"
                                                                                  else "0")) == q["answer"]))


def test_the_command_reports_real_renders_and_reconstructions(tmp_path):
    out = tmp_path / "ceiling.json"
    probe.main(["--corpus", str(tiny_corpus()), "--cache", str(tiny_cache()), "--out", str(out)])
    res = json.loads(out.read_text())
    assert res["questions"] == len(CorpusSplit(tiny_corpus(), "test").questions)
    assert {"real renders", "de-tokenized clean tokens"} <= set(res["sources"])
    for r in res["sources"].values():
        assert 0 <= r["accuracy"] <= r["accuracy_guessing_failures"] <= 1 and 0 <= r["programs_failed"] <= 1
    assert set(res["sources"]["real renders"]["per_template"]) == \
        {q["template"] for q in CorpusSplit(tiny_corpus(), "test").questions}
