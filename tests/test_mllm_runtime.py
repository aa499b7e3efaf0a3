"""The MLLM runtime class (``gnuradio.unitocom.mllm.engine.MLLM``): every bad input is a ValueError that
names the argument (wrong shapes, dtypes, token counts, out-of-vocabulary ids, NaN, empty batches,
bad settings); model files that do not belong together are refused; top-p sampling."""
import json
import shutil

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from gnuradio.unitocom.mllm import engine, layout, sampling  # noqa: E402
from onnx_export.mllm import export  # noqa: E402
from onnx_export.mllm.testing import tiny_model  # noqa: E402


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    torch.set_num_threads(1)
    return export.export_all(tiny_model(seed=3), tmp_path_factory.mktemp("mllm"), "test")


@pytest.fixture(scope="module")
def mllm(files):
    return engine.MLLM(files=files, device="cpu")


IMAGES = np.zeros((2, 32, 16), np.float32)
QUESTIONS = np.array([[1, 10, 2], [1, 11, 2]])


def test_good_inputs_run(mllm):
    assert len(mllm.answer(IMAGES, QUESTIONS, max_words=2)) == 2
    assert len(mllm.answer(IMAGES.astype(np.float64), [np.array([1, 10, 2]), [1, 12, 13, 2]], max_words=2)) == 2
    assert len(mllm.transcribe(np.zeros((1, 20, 16), np.float32), max_words=2)) == 1
    assert len(mllm.transcribe([np.zeros((5, 16)), np.zeros((9, 16), np.float32)], max_words=2)) == 2
    assert mllm.generate_image_tokens(QUESTIONS, steps=2).shape == (2, 32, 16)
    assert len(mllm.describe(IMAGES, max_words=3)) == 2
    with pytest.raises(ValueError, match="32 tokens"):
        mllm.describe(np.zeros((1, 8, 16), np.float32))
    assert mllm.model_id and mllm.image_tokens == 32 and mllm.diffusion_steps == 1000


@pytest.mark.parametrize("images,match", [
    (np.zeros((2, 32, 16), np.int32), "floating point"),
    (np.zeros((2, 32, 16), bool), "floating point"),
    (np.zeros((2, 31, 16), np.float32), "32 tokens"),
    (np.zeros((2, 32, 8), np.float32), r"shape \(batch, tokens, 16\)"),
    (np.zeros((32, 16), np.float32), r"shape \(batch, tokens, 16\)"),
    (np.zeros((0, 32, 16), np.float32), "empty"),
    ("tokens", "numpy array"),
    (None, "numpy array"),
])
def test_answer_rejects_bad_image_tokens(mllm, images, match):
    with pytest.raises(ValueError, match="image_tokens.*" + match):
        mllm.answer(images, QUESTIONS[:len(images)] if hasattr(images, "__len__") and len(images) else QUESTIONS)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_tokens_are_refused(mllm, bad):
    images = IMAGES.copy()
    images[1, 3, 4] = bad
    with pytest.raises(ValueError, match=r"image_tokens contains NaN or infinite values \(item 1\)"):
        mllm.answer(images, QUESTIONS)
    clips = [np.zeros((4, 16)), np.full((6, 16), bad)]
    with pytest.raises(ValueError, match=r"audio_tokens\[1\] contains NaN"):
        mllm.transcribe(clips)


@pytest.mark.parametrize("ids,match", [
    (np.array([[1, 10, 2], [1, 64, 2]]), r"question_ids\[1\] has id 64 outside the vocabulary of 64"),
    (np.array([[1, 10, 2], [1, -1, 2]]), "id -1 outside the vocabulary"),
    (np.array([[1, 10, 2], [1, 68, 2]]), "id 68 outside"),                 # a control token is not a word
    (np.array([[1.0, 10, 2], [1, 11, 2]]), "integer word ids; got dtype float64"),
    (np.array([[True, False], [True, True]]), "integer word ids; got dtype bool"),
    (np.array([1, 10, 2]), r"shape \(batch, words\)"),
    (np.array([[1, 10, 2], [0, 0, 0]]), r"question_ids\[1\] must have 1 to .* ids after dropping trailing <pad>"),
    ([np.array([1, 10, 2]), np.array([[1, 2]])], r"question_ids\[1\] must be a 1-D array"),
    ([np.array([1, 10, 2]), ["a", "b"]], r"question_ids\[1\].*integer word ids"),
    ("what color", "numpy array"),
])
def test_answer_rejects_bad_question_ids(mllm, ids, match):
    with pytest.raises(ValueError, match=match):
        mllm.answer(IMAGES, ids)


def test_batch_sizes_must_agree(mllm):
    with pytest.raises(ValueError, match="2 items but question_ids 3"):
        mllm.answer(IMAGES, np.array([[1, 10, 2]] * 3))


def test_caption_and_audio_checks(mllm):
    with pytest.raises(ValueError, match=r"caption_ids\[0\] has id 99"):
        mllm.generate_image_tokens(np.array([[1, 99, 2]]))
    with pytest.raises(ValueError, match="caption_ids must be integer"):
        mllm.generate_image_tokens(np.array([[1.5, 2.0]]))
    with pytest.raises(ValueError, match=r"audio_tokens must have shape \(batch, tokens, 16\)"):
        mllm.transcribe(np.zeros((2, 10, 15), np.float32))
    with pytest.raises(ValueError, match=r"audio_tokens must have 1 to \d+ tokens"):
        mllm.transcribe(np.zeros((1, 0, 16), np.float32))
    with pytest.raises(ValueError, match="audio_tokens must be floating point"):
        mllm.transcribe(np.zeros((1, 10, 16), np.int64))
    with pytest.raises(ValueError, match="positions"):      # tiny model: 128 positions
        mllm.transcribe(np.zeros((1, 127, 16), np.float32), max_words=10)


@pytest.mark.parametrize("kw,match", [
    (dict(steps=0), "steps"), (dict(steps=1001), "steps"), (dict(steps=2.5), "steps"), (dict(steps="50"), "steps"),
    (dict(temperature=-1.0), "temperature"), (dict(temperature=float("nan")), "temperature"),
    (dict(sampler="euler"), "sampler"), (dict(eta=2.0), "eta"), (dict(seed=-1), "seed"),
    (dict(guidance=-0.5), "guidance"), (dict(guidance=25.0), "guidance"), (dict(guidance=float("inf")), "guidance"),
])
def test_generation_settings_are_checked(mllm, kw, match):
    with pytest.raises(ValueError, match=match):
        mllm.generate_image_tokens(QUESTIONS, **kw)


@pytest.mark.parametrize("kw,match", [
    (dict(max_words=0), "max_words"), (dict(top_p=0.0), "top_p"), (dict(top_p=1.5), "top_p"),
    (dict(top_p=0.9, temperature=-0.1), "temperature"),
])
def test_text_settings_are_checked(mllm, kw, match):
    with pytest.raises(ValueError, match=match):
        mllm.answer(IMAGES, QUESTIONS, **kw)


def test_files_of_different_models_are_refused(files, tmp_path):
    other = export.export_all(tiny_model(seed=4), tmp_path / "other", "test")
    with pytest.raises(ValueError, match="not one exported model: mllm_id"):
        engine.MLLM(files={**files, "denoiser": other["denoiser"]}, device="cpu")
    with pytest.raises(ValueError, match="not mllm_decode"):
        engine.MLLM(files={**files, "decode": files["prefill"]}, device="cpu")
    with pytest.raises(ValueError, match="must map each of"):
        engine.MLLM(files={"prefill": files["prefill"]}, device="cpu")
    renamed = tmp_path / files["lm_head"].name.replace(files["lm_head"].stem[-8:], "00000000")
    shutil.copy(files["lm_head"], renamed)
    with pytest.raises(ValueError, match="sha256"):
        engine.MLLM(files={**files, "lm_head": renamed}, device="cpu")
    with pytest.raises(ValueError, match="no model mllm_prefill-nosuch"):
        engine.MLLM(variant="nosuch", device="cpu")


def test_a_model_for_another_vocabulary_is_refused(files, monkeypatch):
    monkeypatch.setattr(layout, "vocab_hash", lambda: "0" * 16)
    with pytest.raises(ValueError, match="sequence layout .* vocabulary"):
        engine.MLLM(files=files, device="cpu")


def test_metadata_names_the_schedule(files):
    from gnuradio.unitocom.runtime import model_store
    meta = model_store.read_metadata(files["denoiser"])
    assert json.loads(meta["schedule"]) == {"kind": "linear", "steps": 1000}


def test_top_p_sampling():
    rng = np.random.default_rng(0)
    logits = np.log(np.array([[0.5, 0.3, 0.15, 0.05]] * 20000))
    ids = sampling.top_p(logits, 0.75, 1.0, rng)                 # the nucleus is {0, 1}: 0.5 + 0.3 ≥ 0.75
    assert set(np.unique(ids)) == {0, 1}
    assert np.mean(ids == 0) == pytest.approx(0.5 / 0.8, abs=0.02)
    assert set(np.unique(sampling.top_p(logits, 1.0, 1.0, rng))) == {0, 1, 2, 3}
    np.testing.assert_array_equal(sampling.top_p(logits[:5], 0.1, 1.0, rng), 0)
    np.testing.assert_array_equal(sampling.top_p(logits[:5], 0.9, 0.0, rng), 0)      # temperature 0: greedy
    np.testing.assert_array_equal(sampling.choose(logits[:3]), 0)
