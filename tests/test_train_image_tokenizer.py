"""The training command end to end on a tiny corpus and network: train,
resume, evaluate, export (with parity) and write a model card."""
import json

import pytest

pytest.importorskip("torch")

from gnuradio.unitocom.runtime import model_store  # noqa: E402
from gnuradio.unitocom.data import corpus  # noqa: E402
from onnx_export import train_image_tokenizer as train  # noqa: E402


@pytest.mark.parametrize("variant", ["genib", "vae"])
def test_train_resume_export_card(tmp_path, capsys, variant):
    data = tmp_path / "corpus"
    corpus.build_split(data, "train", 24, 0, 64, 1, 0, None, 1)
    corpus.build_split(data, "test", 8, 0, 64, 1, 0, None, 1)
    args = ["--corpus", str(data), "--variant", variant, "--tokens", "16", "--token-dim", "8", "--width", "32",
            "--depth", "1", "--heads", "2", "--batch", "8", "--threads", "1", "--out", str(tmp_path / "run"),
            "--export-dir", str(tmp_path / "models"), "--card-dir", str(tmp_path / "cards")]
    train.main(args + ["--steps", "3"])
    state = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert state["steps"] == 3 and set(state) >= {"noiseless", "rayleigh_0dB", "rayleigh_10dB", "rayleigh_20dB"}
    train.main(args + ["--steps", "5", "--resume"])
    assert "resumed at step 3" in capsys.readouterr().out
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["steps"] == 5
    files = sorted((tmp_path / "models").glob(f"*-{variant}-*.onnx"))
    assert len(files) == 4                                # two exports (3 and 5 steps) × tokenizer/de-tokenizer
    tok = [f for f in files if f.name.startswith("image_tokenizer_s16")][-1]
    meta = model_store.read_metadata(tok)
    assert meta["role"] == "tokenizer" and meta["token_len"] == "16" and meta["variant"] == variant
    card = (tmp_path / "cards" / f"image_tokenizer_s16-{variant}.md").read_text()
    assert "| noiseless |" in card and "--steps 5" in card


def test_audio_training_end_to_end(tmp_path):
    from gnuradio.unitocom.data import speech
    from onnx_export import train_tokenizer
    if not speech.espeak_available():
        pytest.skip("espeak-ng not installed")
    data = tmp_path / "corpus"
    corpus.build_split(data, "train", 6, 0, 64, 1, 6, None, 1)
    corpus.build_split(data, "test", 3, 0, 64, 1, 3, None, 1)
    metrics, paths = train_tokenizer.main(
        ["--modality", "audio", "--corpus", str(data), "--token-dim", "8", "--width", "32", "--depth", "1",
         "--heads", "2", "--batch", "4", "--crop-frames", "64", "--threads", "1", "--steps", "2",
         "--out", str(tmp_path / "run"), "--export-dir", str(tmp_path / "models"),
         "--card-dir", str(tmp_path / "cards")])
    assert set(metrics["noiseless"]) == {"logmel_l1_nepers"} and metrics["steps"] == 2
    assert [p.name.split("-")[0] for p in paths] == ["audio_tokenizer", "audio_detokenizer"]
    meta = model_store.read_metadata(paths[0])
    assert meta["modality"] == "audio" and meta["token_len"] == "25/s"
    assert (tmp_path / "run" / "train_mels.npy").is_file()           # features cached once
    assert "log-mel" in (tmp_path / "cards" / "audio_tokenizer-genib.md").read_text()


def _toy_loop(out, steps, **kw):
    import torch
    from onnx_export import loop
    loop.seed_everything(0, 1)
    model = torch.nn.Linear(4, 1)
    # a time-only cosine over a budget of years: the learning rate does not depend on when the run stops
    return loop.TrainLoop(out, {"net": model}, lr=0.1, seed=0, minutes=1e9, steps=steps, warmup=2,
                          cosine_over_steps=False, **kw), model


def _toy_loss(model, run):
    import torch

    def loss(x):
        noise = torch.randn(len(x), 1, generator=run.gen)               # a draw from the loop's generator
        return torch.mean((model(x) - x.sum(1, keepdim=True) - 0.1 * noise) ** 2), {"n": float(len(x))}
    return loss


def test_the_shared_loop_resumes_where_it_stopped(tmp_path):
    import torch
    sample = lambda rng: torch.from_numpy(rng.standard_normal((8, 4)).astype("float32"))   # noqa: E731
    straight, model_a = _toy_loop(tmp_path / "a", 6, log_every=2)
    straight.fit(_toy_loss(model_a, straight), sample=sample)
    first, _ = _toy_loop(tmp_path / "b", 3, log_every=2)
    first.fit(_toy_loss(first.modules["net"], first), sample=sample)
    second, model_b = _toy_loop(tmp_path / "b", 6, log_every=2)
    assert second.resume() and second.step == 3
    second.fit(_toy_loss(model_b, second), sample=sample)
    assert straight.step == second.step == 6
    for p, q in zip(model_a.parameters(), model_b.parameters()):
        torch.testing.assert_close(p, q, rtol=0, atol=0)
    state = torch.load(tmp_path / "b" / "checkpoint.pt", weights_only=False)
    assert set(state) == {"net", "opt", "step", "elapsed", "epoch", "gen", "torch_rng", "np_rng"}
    log = [json.loads(line) for line in (tmp_path / "b" / "train_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [2, 4, 6] and all(r["n"] == 8.0 for r in log)


def test_the_shared_loop_counts_epochs_and_evaluates(tmp_path, capsys):
    import torch
    data = torch.randn(10, 4)

    def passes(rng):                                                  # 2 batches of 4 per pass over 10 items
        order = rng.permutation(10)
        return [data[order[i:i + 4]] for i in (0, 4)]
    calls = []
    run, model = _toy_loop(tmp_path, 5, evaluate=lambda: calls.append(1) or {"score": len(calls)}, eval_every=2)
    run.fit(_toy_loss(model, run), epoch=passes)
    assert run.step == 5 and run.epoch == 3 and len(calls) == 2
    assert "eval at step 4" in capsys.readouterr().out
    with pytest.raises(ValueError, match="exactly one"):
        run.fit(_toy_loss(model, run))
