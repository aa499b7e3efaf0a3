"""The training command end to end on a tiny corpus and network: train,
resume, evaluate, export (with parity) and write a model card."""
import json

import pytest

pytest.importorskip("torch")

from gnuradio.unitocom import model_store  # noqa: E402
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
