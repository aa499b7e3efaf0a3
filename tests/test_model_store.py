"""Every unusable model file ends in a ValueError sentence at a block's construction."""
import shutil

import onnx
import pytest

from unitocom_testing import FIXTURE_MODELS

from gnuradio.unitocom import detokenizer, jscc_decoder, jscc_encoder, tokenizer, tx
from gnuradio.unitocom.core import zoo
from gnuradio.unitocom.runtime import model_store

TOK8 = next(FIXTURE_MODELS.glob("test_tokenizer_s8-genib-*.onnx"))
TOK16 = next(FIXTURE_MODELS.glob("test_tokenizer_s16-genib-*.onnx"))


def written(path, data):
    path.write_bytes(data)
    return path


@pytest.fixture(autouse=True)
def fixture_models(monkeypatch):
    monkeypatch.setenv("UNITOCOM_MODEL_DIR", str(FIXTURE_MODELS))


@pytest.mark.parametrize("make, why", [
    (lambda d: d / "missing.onnx", "no such file"),
    (lambda d: d, "a directory"),
    (lambda d: written(d / "x.onnx", TOK8.read_bytes()[:500]), "not a usable ONNX model"),     # truncated
    (lambda d: written(d / "y.onnx", b"\x07" * 4096), "not a usable ONNX model"),              # random bytes
])
def test_bad_files_are_refused_with_a_sentence(tmp_path, make, why):
    path = make(tmp_path)
    for build in (lambda: tokenizer("image", str(path), "genib", "cpu"),
                  lambda: jscc_encoder("image", str(path), "genib", 4, 10.0, "packet_len", "cpu")):
        with pytest.raises(ValueError, match=why):
            build()


def test_missing_metadata_is_named(tmp_path):
    model = onnx.load(str(next(FIXTURE_MODELS.glob("test_image_jscc_encoder_s8-genib-*.onnx"))))
    props = [p for p in model.metadata_props if p.key != "rates"]
    del model.metadata_props[:]
    model.metadata_props.extend(props)
    path = tmp_path / "enc.onnx"
    onnx.save(model, str(path))
    with pytest.raises(ValueError, match="lacks the metadata rates"):
        jscc_encoder("image", str(path), "genib", 4, 10.0, "packet_len", "cpu")


def test_a_renamed_model_is_refused(tmp_path, monkeypatch):
    """An S = 16 tokenizer under an S = 8 name: caught by the hash, and by the token count even with its own hash."""
    shutil.copy(TOK16, tmp_path / TOK8.name)                        # the S = 8 name, S = 16 content
    monkeypatch.setenv("UNITOCOM_MODEL_DIR", str(tmp_path))
    with pytest.raises(ValueError, match="renamed or damaged"):
        tokenizer("image", "test_tokenizer_s8", "genib", "cpu")
    (tmp_path / TOK8.name).unlink()
    hash16 = TOK16.stem.rsplit("-", 1)[1]
    shutil.copy(TOK16, tmp_path / f"test_tokenizer_s8-genib-{hash16}.onnx")
    with pytest.raises(ValueError, match="the name says 8 tokens"):
        tokenizer("image", "test_tokenizer_s8", "genib", "cpu")


def test_wrong_role_and_modality_are_refused():
    with pytest.raises(ValueError, match="not a image detokenizer"):
        detokenizer("image", str(TOK8), "genib", "", "cpu")
    with pytest.raises(ValueError, match="not a audio tokenizer"):
        tokenizer("audio", str(TOK8), "genib", "cpu")


@pytest.mark.parametrize("kwargs, why", [
    ({"modality": "video"}, "modality must be one of"),
    ({"variant": "nope"}, "variant must be one of"),
    ({"threads": float("inf")}, r"threads \(onnxruntime intra_op_threads\) must be an integer"),
    ({"max_batch": 0}, "max_batch must be an integer"),
])
def test_bad_arguments_are_sentences(kwargs, why):
    args = {"modality": "image", "model": str(TOK8), "variant": "genib", "device": "cpu"} | kwargs
    with pytest.raises(ValueError, match=why):
        tokenizer(**args)


@pytest.mark.parametrize("kwargs, why", [
    ({"rate": float("inf")}, "rate must be an integer"),
    ({"rate": 3}, "rate must be one of"),
    ({"snr_db": -4000.0}, "snr_db must be between"),
    ({"snr_db": float("nan")}, "snr_db must be"),
    ({"len_tag_key": ""}, "len_tag_key must be a non-empty name"),
])
def test_jscc_arguments_are_sentences(kwargs, why):
    enc = {"modality": "image", "model": "test_image_jscc_encoder_s8", "variant": "genib", "device": "cpu"} | kwargs
    with pytest.raises(ValueError, match=why):
        jscc_encoder(**enc)
    if "rate" not in kwargs:
        dec = {"modality": "image", "model": "test_image_jscc_decoder_s8", "variant": "genib", "device": "cpu"} | kwargs
        with pytest.raises(ValueError, match=why):
            jscc_decoder(**dec)


def test_mismatched_jscc_pair_is_refused():
    with pytest.raises(ValueError, match="not this decoder's encoder"):
        jscc_decoder("image", "test_image_jscc_decoder_s8", "genib", "test_image_jscc_encoder_s16", device="cpu")


def test_tx_refuses_a_tokenizer_its_jscc_was_not_trained_on():
    with pytest.raises(ValueError, match="was trained on tokens of"):
        tx("image", "test_tokenizer_s16", "genib", "test_image_jscc_encoder_s8", device="cpu")


def test_zoo_names_a_model_for_every_role_it_lists():
    for (role, modality), name in zoo.DEFAULT_MODELS.items():
        assert model_store.find(name, zoo.DEFAULT_VARIANTS[modality]).is_file(), (role, modality)
    with pytest.raises(ValueError, match="there is no text tokenizer"):
        zoo.resolve("tokenizer", "text")
