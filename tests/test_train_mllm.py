"""The MLLM trainer (``onnx_export.train_mllm``) and the test-split evaluation (``onnx_export.mllm.evaluate``)
on the tiny cache with a tiny model: a few steps with validation scores, the curve, the card, the ONNX
export with the cache's model ids, resume, refusal of a changed run, seeded repeatability; the
evaluation through the runtime class with the link conditions; the word error rate by hand."""
import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from gnuradio.unitocom.data import speech, vocab  # noqa: E402
from gnuradio.unitocom.data.loaders import CorpusSplit  # noqa: E402
from gnuradio.unitocom.mllm import engine, layout  # noqa: E402
from gnuradio.unitocom.runtime import model_store  # noqa: E402
from onnx_export import loop, train_mllm  # noqa: E402
from onnx_export.mllm import evaluate, parity  # noqa: E402
from onnx_export.mllm.data import Cache  # noqa: E402
from onnx_export.mllm.evaluate import word_error_rate  # noqa: E402
from onnx_export.mllm.testing import tiny_cache, tiny_corpus  # noqa: E402

TINY = ["--dim", "32", "--depth", "2", "--heads", "2", "--head-width", "32", "--head-depth", "2", "--freq-dim", "16",
        "--batch", "9", "--threads", "1", "--minutes", "10", "--lr", "3e-3", "--warmup", "2", "--log-every", "2",
        "--eval-questions", "12", "--eval-utterances", "3", "--eval-captions", "4"]


def train(out, *extra):
    return train_mllm.main(["--cache", str(tiny_cache()), "--out", str(out)] + TINY + list(extra))


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    metrics = train(out, "--steps", "4", "--eval-every", "2", "--save-every", "2")
    return out, metrics


def test_a_few_steps_give_a_curve_metrics_and_a_card(run, capsys):
    out, metrics = run
    assert metrics["steps"] == 4 and metrics["samples"] == 36
    assert set(metrics["val"]) >= {"val_vqa_acc", "val_lm_vqa", "val_diff_t2i"}
    if speech.espeak_available():
        assert 0 <= metrics["val"]["val_asr_wer"] and "val_lm_asr" in metrics["val"]
    curve = json.loads((out / "curve.json").read_text())
    steps = [r["step"] for r in curve["rows"]]
    assert steps == [2, 4] and all("loss" in r and "val_vqa_acc" in r for r in curve["rows"])
    assert (out / "curve.csv").read_text().splitlines()[0].startswith("step,minutes,loss")
    card = (out / "MODEL_CARD.md").read_text()
    for text in ("onnx_export.train_mllm", "--steps 4", "CPU", "| step |", "mllm_prefill-genib-", "received copies"):
        assert text in card
    assert json.loads((out / "metrics.json").read_text())["steps"] == 4
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["cache"]["copies"] == 2 and cfg["mllm_config"]["dim"] == 32


def test_the_export_names_the_cache_models_and_runs_in_the_runtime(run):
    out, metrics = run
    files = evaluate.find_model(out / "onnx")
    manifest = Cache(tiny_cache() / "train").manifest
    meta = model_store.read_metadata(files["prefill"])
    assert json.loads(meta["tokenizers"]) == {"image": manifest["models"]["image_tokenizer"],
                                              "audio": manifest["models"]["audio_tokenizer"], "text": "text_vocab"}
    assert json.loads(meta["jscc"]) == {k: v for k, v in manifest["models"].items() if "_jscc_" in k}
    assert json.loads(meta["train_metrics"]) == metrics["val"] and "received tokens" in meta["train_data"]
    mllm = engine.MLLM(files=files, device="cpu")
    assert len(mllm.answer(np.zeros((2, 32, 16), np.float32), np.array([[1, 10, 2], [1, 11, 2]]))) == 2


def test_parity_of_the_run_and_its_export(run, tmp_path):
    out, _ = run
    res_path = tmp_path / "parity.json"
    parity.main(["--run", str(out), "--model-dir", str(out / "onnx"), "--cache", str(tiny_cache()), "--n", "6",
                 "--t2i", "2", "--steps", "3", "--out", str(res_path)])
    res = json.loads(res_path.read_text())
    assert res["items"]["vqa"] == 6 and res["items"]["dsc"] == 6 and res["items"]["t2i"] == 2
    for kind in ("vqa", "asr", "dsc"):
        assert res[f"{kind}_differ_torch_vs_onnx"] == 0 and res[f"{kind}_differ_cache_vs_nocache"] == 0
    assert res["t2i_max_abs_torch_vs_onnx"] < 1e-2 * max(res["t2i_token_scale"], 1.0)
    assert res["t2i_guidance"] == 3.0 and res["t2i_guided_max_abs_torch_vs_onnx"] < 1e-2 * max(res["t2i_token_scale"], 1.0)
    assert res["denoiser_within_rtol_1e-3_atol_1e-5"]


def test_resume_continues_and_a_changed_run_is_refused(tmp_path, capsys):
    train(tmp_path, "--steps", "2", "--eval-every", "0", "--export-dir", "")
    assert not (tmp_path / "onnx").exists()
    capsys.readouterr()
    metrics = train(tmp_path, "--steps", "4", "--eval-every", "0", "--resume")
    assert "resumed at step 2" in capsys.readouterr().out and metrics["steps"] == 4
    assert len(list((tmp_path / "onnx").glob("mllm_*.onnx"))) == 4
    train(tmp_path, "--steps", "4", "--eval-every", "0", "--resume")         # re-export replaces the old files
    assert len(list((tmp_path / "onnx").glob("mllm_*.onnx"))) == 4
    with pytest.raises(SystemExit, match="another run"):
        train(tmp_path, "--steps", "6", "--resume", "--dim", "16")


def test_init_starts_from_another_runs_weights_with_a_fresh_schedule(tmp_path, capsys):
    train(tmp_path / "a", "--steps", "2", "--eval-every", "0", "--export-dir", "")
    capsys.readouterr()
    metrics = train(tmp_path / "b", "--steps", "1", "--eval-every", "0", "--export-dir", "", "--lr", "0",
                    "--init", str(tmp_path / "a" / "checkpoint.pt"))
    assert "initialised from" in capsys.readouterr().out and metrics["steps"] == 1      # steps count afresh
    a, b = (torch.load(tmp_path / n / "checkpoint.pt", weights_only=False)["mllm"] for n in ("a", "b"))
    for key in a:                                                   # lr 0: b is still a's weights
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=0)
    cfg = json.loads((tmp_path / "b" / "config.json").read_text())
    assert cfg["init"]["steps"] == 2 and cfg["init"]["checkpoint"].endswith("checkpoint.pt")
    assert "Started from the weights of" in (tmp_path / "b" / "MODEL_CARD.md").read_text()
    with pytest.raises(SystemExit, match="another size"):
        train(tmp_path / "c", "--steps", "1", "--dim", "16", "--init", str(tmp_path / "a" / "checkpoint.pt"))
    with pytest.raises(SystemExit, match="no checkpoint"):
        train(tmp_path / "d", "--steps", "1", "--init", str(tmp_path / "nothing.pt"))


def test_the_same_seed_gives_the_same_weights(tmp_path):
    for name in ("a", "b"):
        train(tmp_path / name, "--steps", "2", "--eval-every", "0", "--export-dir", "")
    a, b = (torch.load(tmp_path / n / "checkpoint.pt", weights_only=False)["mllm"] for n in ("a", "b"))
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=0)


def test_the_scene_description_names_every_object_left_to_right():
    cache = Cache(tiny_cache() / "train")
    corpus = CorpusSplit(tiny_corpus(), "train")
    for s in range(cache.n_scenes):
        objs = sorted(corpus.objects(s), key=lambda o: o.screen_x)
        words = vocab.decode(cache.descriptions[s]).split()
        assert words[0] == str(len(objs)) and len(words) == 1 + 4 * len(objs)
        for k, o in enumerate(objs):
            assert words[1 + 4 * k:5 + 4 * k] == [o.size, o.color, o.material, o.shape]
    item = cache.describe(0)
    assert item.task == "dsc" and list(item.ids[:2]) == [layout.TASK_DSC, layout.BOI]
    assert list(item.lm_target[item.lm_target >= 0]) == list(cache.descriptions[0]) + [vocab.EOS]


def test_t2i_uncond_drops_captions_for_guidance():
    cache = Cache(tiny_cache() / "train")
    rng = np.random.default_rng(0)
    for share, expect in ((1.0, True), (0.0, False)):
        (pack,) = train_mllm.Sampler(cache, 6, {"vqa": 0, "t2i": 1, "asr": 0, "dsc": 0}, t2i_uncond=share)(rng)
        blind = [row[1] == layout.BOI for row in pack["ids"]]              # <t2i> <boi> c… : no caption
        assert all(b == expect for b in blind) and pack["diff_mask"].sum(1).tolist() == [32] * 6
    with pytest.raises(ValueError, match="t2i_uncond"):
        train_mllm.Sampler(cache, 6, {"t2i": 1}, t2i_uncond=1.5)


def test_batches_mix_the_tasks_and_count_rows():
    assert train_mllm.split_batch(64, {"vqa": 1, "t2i": 1, "asr": 1}) == {"vqa": 22, "t2i": 21, "asr": 21}
    assert train_mllm.split_batch(10, train_mllm.shares("vqa=2,t2i=0,asr=3")) == {"vqa": 4, "t2i": 0, "asr": 6, "dsc": 0}
    with pytest.raises(ValueError, match="unknown task"):
        train_mllm.shares("caption=1")
    cache = Cache(tiny_cache() / "train")
    sampler = train_mllm.Sampler(cache, 12, train_mllm.shares("vqa=1,t2i=1,asr=1,dsc=1"), p_clean=1.0)
    packs = sampler(np.random.default_rng(0))
    assert [layout.TASKS[int(p["task"][0])] for p in packs] == (["vqa", "t2i", "dsc", "asr"][:len(packs)])
    assert loop.batch_size(packs) == sum(len(p["ids"]) for p in packs) == (12 if cache.n_utterances else 9)
    assert loop.batch_size(torch.zeros(5, 3)) == 5                        # tensors: as before
    assert np.array_equal(sampler.copies(np.random.default_rng(1), 50), np.zeros(50))


def test_evaluate_through_the_runtime_with_the_link_conditions(run, tmp_path):
    out, _ = run
    res = evaluate.evaluate(tiny_cache(), evaluate.find_model(out / "onnx"), tmp_path, snrs=(10.0,), t2i_n=3,
                            steps=4, progress=False)
    assert set(res["conditions"]) == {"clean", "rayleigh_10dB"}
    clean = res["conditions"]["clean"]
    assert 0 <= clean["vqa_acc"] <= 1 and 0 <= clean["vqa_acc_other_image"] <= 1
    assert set(clean["vqa_per_template"]) == set(Cache(tiny_cache() / "test").rows["question_template"])
    assert clean["t2i_eps_loss"] > 0 and (tmp_path / clean["t2i_grid"]).is_file()
    assert 0 <= clean["t2i_captions_fully_right"] <= 1 and clean["t2i_fd"] >= 0 and clean["t2i_fd_reconstruction"] >= 0
    assert res["t2i_fd_floor_real_vs_real"] >= 0 and 0 <= res["t2i_captions_fully_right_real_renders"] <= 1
    if speech.espeak_available():
        assert clean["asr_wer"] >= 0 and clean["asr_utterances"] == Cache(tiny_cache() / "test").n_utterances
    link = Cache(tiny_cache() / "test-rayleigh-10dB")
    assert link.manifest["snr_range_db"] == [10.0, 10.0] and link.manifest["channels"] == ["rayleigh"]
    assert np.all(link.link("images", 1)["snr_db"] == 10.0) and np.all(link.link("images", 1)["channel"] == 2)
    base = Cache(tiny_cache() / "test")                   # clean copies linked from the test cache, not redone
    assert all("reused_from" in link.manifest["units"][f"{s}.c0"] for s in ("images", "caption_images", "audio"))
    np.testing.assert_array_equal(link.images[0], base.images[0])
    np.testing.assert_array_equal(link._flat["audio"][0], base._flat["audio"][0])
    assert "| template |" in (tmp_path / "evaluate.md").read_text()
    assert json.loads((tmp_path / "evaluate.json").read_text())["model_id"] == res["model_id"]


def test_evaluate_one_task_with_guidance(run, tmp_path):
    out, _ = run
    res = evaluate.evaluate(tiny_cache(), evaluate.find_model(out / "onnx"), tmp_path, snrs=(), t2i_n=3, steps=3,
                            progress=False, tasks=("t2i",), guidance=2.0, temperature=0.8)
    clean = res["conditions"]["clean"]
    assert res["t2i_guidance"] == 2.0 and res["t2i_temperature"] == 0.8 and res["questions"] == 0
    assert "t2i_fd" in clean and not any(k.startswith(("vqa", "asr", "dsc")) for k in clean)
    assert "guidance 2.0" in (tmp_path / "evaluate.md").read_text()
    with pytest.raises(ValueError, match="unknown task"):
        evaluate.evaluate(tiny_cache(), evaluate.find_model(out / "onnx"), tmp_path, tasks=("vqa", "ocr"))


def test_a_traced_run_trains_exports_and_evaluates_its_traces(tmp_path):
    """--vqa-trace: VQA targets are trace <sep> answer; validation and evaluation score the answer after the
    trace and the traces themselves; the export says so and the runtime reads it; parity covers the trace."""
    cache = Cache(tiny_cache() / "train")
    (pack,) = train_mllm.Sampler(cache, 4, {"vqa": 1, "t2i": 0, "asr": 0, "dsc": 0}, vqa_trace=True)(
        np.random.default_rng(0))
    for row in pack["lm_target"]:
        said = row[row >= 0]
        assert said[-1] == vocab.EOS and said[-3] == vocab.SEP and len(said[:-3]) % 4 == 0
    out = tmp_path / "run"
    metrics = train(out, "--steps", "2", "--eval-every", "0", "--vqa-trace")
    assert 0 <= metrics["val"]["val_vqa_trace_exact"] <= 1 and \
        json.loads((out / "config.json").read_text())["vqa_trace"] is True
    files = evaluate.find_model(out / "onnx")
    assert model_store.read_metadata(files["prefill"])["vqa_trace"] == "yes"
    mllm = engine.MLLM(files=files, device="cpu")
    assert mllm.vqa_trace and all(len(a) <= 2 for a in mllm.answer(np.zeros((2, 32, 16), np.float32),
                                                                   np.array([[1, 10, 2], [1, 11, 2]]), max_words=2))
    res = evaluate.evaluate(tiny_cache(), files, tmp_path / "eval", snrs=(), progress=False, tasks=("vqa",))
    clean = res["conditions"]["clean"]
    assert 0 <= clean["vqa_trace_exact"] <= 1 and "vqa_trace_exact" in (tmp_path / "eval" / "evaluate.md").read_text()
    res = parity.parity(parity.load_torch(out), files, Cache(tiny_cache() / "test"), n=4, t2i=1, steps=2)
    assert res["vqa_differ_torch_vs_onnx"] == 0 and res["vqa_differ_cache_vs_nocache"] == 0


def test_word_error_rate_by_hand():
    assert word_error_rate("the red cube", "the red cube") == 0.0
    assert word_error_rate("the red cube", "the cube") == pytest.approx(1 / 3)              # one deletion
    assert word_error_rate("the red cube", "a red big cube") == pytest.approx(2 / 3)        # sub + insertion
    assert word_error_rate("the red cube", "") == 1.0
    assert word_error_rate("is it red", "it is red") == pytest.approx(2 / 3)                # two substitutions
    assert word_error_rate("a b", "x y z w") == 2.0                                          # can exceed 1
    # over a corpus: Σ errors / Σ reference words (jiwer's example: 1 substitution + 1 deletion over 6 words)
    assert word_error_rate(["hello world", "i like monty python"], ["hello duck", "i like python"]) == pytest.approx(2 / 6)
    assert word_error_rate([["how", "many"]], [["how", "much", "many"]]) == 0.5
    with pytest.raises(ValueError, match="no word"):
        word_error_rate([""], ["x"])
    with pytest.raises(ValueError, match="2 references but 1"):
        word_error_rate(["a", "b"], ["a"])
