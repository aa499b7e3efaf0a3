"""The MLLM's four ONNX graphs (``onnx_export.mllm.export``) on a tiny random model: names, metadata,
parity with torch (names, shapes, values at rtol 1e-3 / atol 1e-5, on other batch sizes and lengths
than the export's), and generation through onnxruntime equal to generation in torch — the same
greedy words, the same image tokens for the same draws — with and without the kv cache."""
import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from gnuradio.unitocom.mllm import engine, generate, layout, schedule  # noqa: E402
from gnuradio.unitocom.runtime import model_store  # noqa: E402
from onnx_export.mllm import export  # noqa: E402
from onnx_export.mllm import generate as torch_generate  # noqa: E402
from onnx_export.mllm.testing import random_prompts, tiny_model  # noqa: E402


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    torch.set_num_threads(1)
    model = tiny_model(seed=7)
    paths = export.export_all(model, tmp_path_factory.mktemp("mllm"), "test", train_data="random weights",
                              extra={"tokenizers": json.dumps(["none"])})
    return model, paths


@pytest.fixture(scope="module")
def runtime(exported):
    return engine.MLLM(files=exported[1], device="cpu")


def draws(seed):
    rng = np.random.default_rng(seed)
    return lambda shape: rng.standard_normal(shape, dtype=np.float32)


def test_files_and_metadata(exported):
    model, paths = exported
    assert set(paths) == set(engine.GRAPHS)
    ids = set()
    for graph, path in paths.items():
        assert path.name.startswith(f"mllm_{graph}-test-") and path.suffix == ".onnx"
        meta = model_store.read_metadata(path)
        model_store.check_consistent(path, meta)
        for key in ("unitocom.schema", "role", "modality", "token_len", "token_dim", "n_symbols", "version",
                    "train_data", "train_metrics", "io_names", "mllm_id", "mllm_config", "schedule", "layout",
                    "vocab_hash", "vocab_size", "controls", "token_stats", "parameters", "tokenizers"):
            assert key in meta, (graph, key)
        assert meta["role"] == f"mllm_{graph}" and meta["token_dim"] == "16" and meta["token_len"] == "32"
        assert meta["vocab_hash"] == layout.vocab_hash() and meta["vocab_size"] == str(layout.VOCAB)
        assert json.loads(meta["schedule"]) == schedule.describe(model.schedule)
        io = json.loads(meta["io_names"])
        assert (tuple(io["inputs"]), tuple(io["outputs"])) == engine.GRAPHS[graph]
        stats = json.loads(meta["token_stats"])
        np.testing.assert_allclose(stats["image"]["std"], model.image_std.numpy(), rtol=1e-6)
        ids.add(meta["mllm_id"])
    assert len(ids) == 1


def test_parity_of_every_graph(exported):
    model, paths = exported
    assert export.check_all(model, paths)


@pytest.mark.parametrize("task", ["vqa", "asr", "dsc"])
def test_greedy_words_are_identical_in_torch_and_onnxruntime(exported, runtime, task):
    model, _ = exported
    items = random_prompts(task, 5, seed=11)
    ref = torch_generate.text(model, items, 12)
    for use_cache in (True, False):
        got = generate.text(runtime.backend, items, 12, use_cache=use_cache)
        assert all(np.array_equal(a, b) for a, b in zip(ref, got)), use_cache
    assert len({tuple(a) for a in ref}) > 1


@pytest.mark.parametrize("sampler", schedule.SAMPLERS)
def test_image_tokens_match_torch_for_the_same_draws(exported, runtime, sampler):
    model, _ = exported
    items = random_prompts("t2i", 3, seed=12)
    ref = torch_generate.image_tokens(model, items, 5, 10, sampler=sampler, normal=draws(1))
    for use_cache in (True, False):
        got = generate.image_tokens(runtime.backend, items, 5, 10, sampler=sampler, normal=draws(1),
                                    use_cache=use_cache)
        np.testing.assert_allclose(got, ref, rtol=1e-3, atol=1e-3 * np.abs(ref).max())


def test_guidance_matches_torch_and_its_ends_are_the_two_models(exported, runtime):
    """w = 3: onnxruntime equals torch; w = 0: the unconditional model (``t2i([])`` prompts); the guided
    batch carries one unconditional row per caption."""
    model, _ = exported
    items = random_prompts("t2i", 3, seed=14)
    ref = torch_generate.image_tokens(model, items, 4, 8, normal=draws(2), guidance=3.0)
    got = generate.image_tokens(runtime.backend, items, 4, 8, normal=draws(2), guidance=3.0)
    np.testing.assert_allclose(got, ref, rtol=1e-3, atol=1e-3 * np.abs(ref).max())
    plain = generate.image_tokens(runtime.backend, items, 4, 8, normal=draws(2))
    assert np.abs(got - plain).max() > 1e-3                       # guidance changes the tokens
    blind = generate.image_tokens(runtime.backend, [layout.t2i([])] * 3, 4, 8, normal=draws(2))
    w0 = generate.image_tokens(runtime.backend, items, 4, 8, normal=draws(2), guidance=0.0)
    np.testing.assert_allclose(w0, blind, rtol=1e-3, atol=1e-3 * np.abs(blind).max())


def test_runtime_tasks_end_to_end(exported, runtime):
    model, _ = exported
    rng = np.random.default_rng(13)
    images = rng.normal(size=(3, 32, 16)).astype(np.float32)
    questions = np.array([[1, 10, 11, 12, 2, 0], [1, 10, 2, 0, 0, 0], [1, 20, 21, 22, 23, 2]])
    answers = runtime.answer(images, questions, max_words=6)
    items = [layout.vqa(c, q[:n]) for c, q, n in zip(images, questions, (5, 3, 6))]
    ref = torch_generate.text(model, items, 6)
    assert all(np.array_equal(a, b) for a, b in zip(answers, ref))
    clips = [rng.normal(size=(n, 16)).astype(np.float32) for n in (9, 30)]
    texts = runtime.transcribe(clips, max_words=7)
    assert len(texts) == 2 and all(t.dtype == np.int64 and len(t) <= 7 for t in texts)
    tokens = runtime.generate_image_tokens(questions, steps=5, temperature=0.8, seed=1)
    again = runtime.generate_image_tokens(questions, steps=5, temperature=0.8, seed=1)
    assert tokens.shape == (3, 32, 16) and tokens.dtype == np.float32 and np.isfinite(tokens).all()
    np.testing.assert_array_equal(tokens, again)
    ddim = runtime.generate_image_tokens(questions[:1], steps=4, sampler="ddim", seed=1)
    assert ddim.shape == (1, 32, 16)
    sampled = runtime.answer(images, questions, max_words=6, top_p=0.9, temperature=1.0, seed=3)
    assert [list(a) for a in sampled] == [list(a) for a in runtime.answer(images, questions, max_words=6, top_p=0.9,
                                                                          seed=3)]


def test_a_model_with_traces_answers_after_its_trace(exported, tmp_path):
    """Metadata ``vqa_trace: yes``: ``answer`` generates up to ``max_words + trace_words`` words and returns
    what follows the last ``<sep>`` (empty when none came); ``with_trace`` gives (trace, answer) pairs."""
    model, _ = exported
    paths = export.export_all(model, tmp_path, "test", train_data="random weights",
                              extra={"tokenizers": json.dumps(["none"]), "vqa_trace": "yes"})
    traced = engine.MLLM(files=paths, device="cpu")
    assert traced.vqa_trace and traced.trace_words == layout.VQA_TRACE_MAX - 1
    rng = np.random.default_rng(21)
    images = rng.normal(size=(8, 32, 16)).astype(np.float32)
    questions = [rng.integers(5, layout.VOCAB, size=4 + i) for i in range(8)]
    pairs = traced.answer(images, questions, max_words=3, with_trace=True)
    answers = traced.answer(images, questions, max_words=3)
    ref = torch_generate.text(model, [layout.vqa(c, q) for c, q in zip(images, questions)], 3 + traced.trace_words)
    branches = set()
    for (trace, answer), plain, words in zip(pairs, answers, ref):
        np.testing.assert_array_equal(answer, plain)
        seps = np.flatnonzero(words == layout.vocab.SEP)
        branches.add(bool(len(seps)))
        if len(seps):
            np.testing.assert_array_equal(trace, words[:seps[-1]])
            np.testing.assert_array_equal(answer, words[seps[-1] + 1:][:3])
        else:
            assert len(trace) == 0 and len(answer) == 0
    assert branches == {True, False}                  # these random prompts reach both cases
    assert not engine.MLLM(files=exported[1], device="cpu").vqa_trace          # metadata without the key
