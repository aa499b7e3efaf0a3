"""Weights read back from ONNX, the fixed-SNR JSCC reference and the end-to-end
fine-tune (Algorithm 1) on a tiny corpus."""
import json

import pytest

torch = pytest.importorskip("torch")

from gnuradio.unitocom.runtime import model_store  # noqa: E402
from gnuradio.unitocom.data import corpus  # noqa: E402
from onnx_export import finetune_link, from_onnx, train_jscc  # noqa: E402
from onnx_export.jscc import model as jm  # noqa: E402
from onnx_export import export  # noqa: E402
from onnx_export.tokenizers.image import ImageTokenizer  # noqa: E402

SMALL = dict(width=32, depth=1, heads=2)


def trained_like(module):
    """Distinct values in every parameter, as after training (untouched LayerNorms are all ones/zeros)."""
    with torch.no_grad():
        for p in module.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    return module.eval()


def test_tokenizer_weights_come_back_from_onnx(tmp_path):
    torch.manual_seed(0)
    tok = trained_like(ImageTokenizer(16, 8, **SMALL))
    x = torch.rand(2, 3, 64, 64)
    path = export.export(tok, x, "image", ["tokens"], {"role": "tokenizer"}, tmp_path, "image_tokenizer_s16", "genib")
    torch.manual_seed(1)
    fresh = ImageTokenizer(16, 8, **SMALL).eval()
    assert not torch.allclose(fresh(x), tok(x))
    from_onnx.load(fresh, path, (x,), ["image"], ["tokens"])
    torch.testing.assert_close(fresh(x), tok(x), rtol=0, atol=0)


def test_jscc_weights_come_back_from_onnx(tmp_path):
    torch.manual_seed(0)
    kw = dict(token_dim=8, k_max=4, width=16, depth=1, heads=2, fixed_len=16)
    enc = trained_like(jm.JSCCEncoder(**kw))
    args = (torch.randn(3, 16, 8), torch.tensor([-5.0, 5.0, 20.0]), torch.tensor([1.0, 2.0, 4.0]))
    path = export.export(enc, args, ["tokens", "snr_db", "rate"], ["symbols"], {"role": "jscc_encoder"}, tmp_path,
                         "image_jscc_encoder_s16", "genib")
    torch.manual_seed(1)
    fresh = from_onnx.load(jm.JSCCEncoder(**kw), path, args, ["tokens", "snr_db", "rate"], ["symbols"])
    torch.testing.assert_close(fresh.eval()(*args), enc(*args), rtol=0, atol=0)


def test_a_module_of_another_shape_is_refused(tmp_path):
    tok = trained_like(ImageTokenizer(16, 8, **SMALL))
    x = torch.rand(2, 3, 64, 64)
    path = export.export(tok, x, "image", ["tokens"], {"role": "tokenizer"}, tmp_path, "image_tokenizer_s16", "genib")
    with pytest.raises(ValueError, match="shape"):
        from_onnx.load(ImageTokenizer(16, 8, width=32, depth=2, heads=2), path, (x,), ["image"], ["tokens"])


@pytest.fixture(scope="module")
def tiny_corpus(tmp_path_factory):
    data = tmp_path_factory.mktemp("corpus")
    corpus.build_split(data, "train", 16, 0, 64, 1, 0, None, 1)
    corpus.build_split(data, "test", 6, 0, 64, 1, 0, None, 1)
    return data


def test_fixed_snr_reference_trains_by_steps(tiny_corpus, tmp_path):
    out = tmp_path / "ref"
    metrics = train_jscc.main(["--modality", "image", "--corpus", str(tiny_corpus), "--fixed-snr", "10",
                               "--steps", "3", "--minutes", "60", "--batch", "4", "--width", "16", "--depth", "1",
                               "--threads", "1", "--eval-snrs", "10", "--rates", "2,8", "--out", str(out),
                               "--export-dir", ""])
    assert metrics["steps"] == 3
    assert set(metrics["scores"]) == {f"{c}/10dB/r{r}" for c in ("awgn", "rayleigh") for r in (2, 8)}
    assert json.loads((out / "metrics.json").read_text())["steps"] == 3
    assert not list(tmp_path.glob("**/*.onnx"))                      # '' skips the export


def test_finetune_through_the_jscc_exports_a_matching_set(tiny_corpus, tmp_path):
    cards = tmp_path / "cards"
    result = finetune_link.main(["--corpus", str(tiny_corpus), "--steps", "2", "--batch", "4", "--threads", "1",
                                 "--n-test", "6", "--out", str(tmp_path / "run"), "--export-dir",
                                 str(tmp_path / "models"), "--card-dir", str(cards)])
    assert result["steps"] == 2
    assert set(result["after"]["link"]) == set(result["before"]["link"])
    assert set(result["after"]["tokenizer"]) == {"noiseless", "rayleigh_0dB", "rayleigh_10dB", "rayleigh_20dB"}
    files = {p.name.split("-")[0]: p for p in (tmp_path / "models").glob("*.onnx")}
    assert set(files) == {"image_tokenizer_s32", "image_detokenizer_s32", "image_jscc_encoder_s32",
                          "image_jscc_decoder_s32"}
    enc_meta = model_store.read_metadata(files["image_jscc_encoder_s32"])
    assert enc_meta["tokenizer"] == model_store.model_id(files["image_tokenizer_s32"])
    assert "fine-tuned through the JSCC" in enc_meta["finetune"]
    model_store.check_pair(model_store.read_metadata(files["image_tokenizer_s32"]),
                           model_store.read_metadata(files["image_detokenizer_s32"]))
    # the bundled models it started from are untouched when exporting elsewhere
    for started in result["started_from"].values():
        assert model_store.find(started)
    assert "Fine-tuned through the JSCC" in (cards / "image_jscc_s32.md").read_text()
