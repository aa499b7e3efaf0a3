"""Every ONNX model shipped in python_blocks/unitocom/models: metadata, names,
pairs, size budget, and quality that matches its model card."""
import hashlib
import json
import pathlib
import re

import numpy as np
import pytest

from gnuradio.unitocom.runtime import model_store
from gnuradio.unitocom.runtime.onnx_session import make_session

MODELS = sorted(model_store.PACKAGE_MODELS.glob("*.onnx"))
REQUIRED = ("unitocom.schema", "role", "modality", "token_len", "token_dim", "n_symbols", "version",
            "train_data", "train_metrics", "io_names")
ROOT = pathlib.Path(__file__).resolve().parent.parent
MLLM_ROLES = ("mllm_prefill", "mllm_decode", "mllm_lm_head", "mllm_denoiser")
pytestmark = pytest.mark.skipif(not MODELS, reason="no models shipped yet")


@pytest.mark.parametrize("path", MODELS, ids=lambda p: p.name)
def test_name_hash_and_metadata(path):
    m = re.fullmatch(r"(\w+)-(\w+)-([0-9a-f]{8})\.onnx", path.name)
    assert m, path.name
    assert hashlib.sha256(path.read_bytes()).hexdigest()[:8] == m[3]
    meta = model_store.read_metadata(path)
    assert all(k in meta for k in REQUIRED), sorted(set(REQUIRED) - set(meta))
    assert meta["role"] in ("tokenizer", "detokenizer", "jscc_encoder", "jscc_decoder") + MLLM_ROLES
    assert meta["variant"] == m[2]
    json.loads(meta["train_metrics"]), json.loads(meta["io_names"])
    if meta["role"] in MLLM_ROLES:
        card = ROOT / "docs" / "models" / "mllm.md"
        assert path.name in card.read_text(), f"{card} names {path.name}"
        for k in ("image", "audio"):
            assert model_store.find(json.loads(meta["tokenizers"])[k]).is_file()
    elif meta["role"].startswith("jscc"):
        card = ROOT / "docs" / "models" / f"{m[1].replace('_encoder', '').replace('_decoder', '')}.md"
        assert meta["tokenizer"] == "text_vocab" or model_store.find(meta["tokenizer"]).is_file()
    else:
        card = ROOT / "docs" / "models" / f"{m[1].replace('detokenizer', 'tokenizer')}-{m[2]}.md"
    assert card.is_file(), f"model card {card}"


def test_all_models_fit_the_size_budget():
    """Tokenizers, de-tokenizers and JSCC: 60 MiB together; the MLLM's four graphs: 40 MiB (prefill and
    decode each hold the Transformer's weights)."""
    mllm = [p for p in MODELS if p.name.startswith("mllm_")]
    assert sum(p.stat().st_size for p in MODELS if p not in mllm) < 60 * 2 ** 20
    assert sum(p.stat().st_size for p in mllm) < 40 * 2 ** 20


def pairs():
    toks = [p for p in MODELS if model_store.read_metadata(p)["role"] == "tokenizer"]
    return [(t, model_store.find(t.name.split("-")[0].replace("tokenizer", "detokenizer"), t.name.split("-")[1]))
            for t in toks]


@pytest.mark.parametrize("tok,det", pairs(), ids=lambda p: p.name)
def test_pair_matches_and_reconstructs_as_its_card_says(tok, det):
    meta_t, meta_d = model_store.read_metadata(tok), model_store.read_metadata(det)
    model_store.check_pair(meta_t, meta_d)
    from gnuradio.unitocom.data.corpus import make_item
    if meta_t["modality"] == "audio":
        return check_audio_pair(tok, det, meta_t)
    images = np.stack([make_item("test", i, 0)["image"] for i in range(48)]).astype(np.float32) / 255
    x = images.transpose(0, 3, 1, 2)
    t = make_session(str(tok), 2, "cpu").run(None, {"image": x})[0]
    y = make_session(str(det), 2, "cpu").run(None, {"tokens": t})[0]
    psnr = np.mean(10 * np.log10(1 / np.mean((y - x) ** 2, axis=(1, 2, 3))))
    card_psnr = json.loads(meta_t["train_metrics"])["noiseless"]["psnr_db"]
    assert abs(psnr - card_psnr) < 1.5, (psnr, card_psnr)


def check_audio_pair(tok, det, meta_t):
    """Log-mel round trip within 0.3 nepers of the card (8 unseen test utterances vs its 300),
    and the same clips through the tokenizer → detokenizer blocks come back as 16 kHz speech
    whose log-mel (re-analysed after Griffin–Lim) stays close to the original's."""
    from gnuradio.unitocom.dsp import audio_features as af
    from gnuradio.unitocom import detokenizer, tokenizer
    from gnuradio.unitocom.data import speech
    from gnuradio.unitocom.data.corpus import make_item
    from unitocom_testing import pdu, post_and_collect
    import pmt
    if not speech.espeak_available():
        pytest.skip("espeak-ng is not installed")
    clips = [make_item("test", i, 0, with_speech=True)["audio"] for i in range(8)]
    st, sd = make_session(str(tok), 2, "cpu"), make_session(str(det), 2, "cpu")
    errors = []
    for clip in clips:
        mel = af.log_mel(clip)
        x = mel[None, :, :mel.shape[1] // 4 * 4]
        y = sd.run(None, {"tokens": st.run(None, {"mel": x})[0]})[0]
        errors.append(np.mean(np.abs(y - x)) * af.LOG_SCALE)
    card = json.loads(meta_t["train_metrics"])["noiseless"]["logmel_l1_nepers"]
    assert abs(np.mean(errors) - card) < 0.3, (np.mean(errors), card)

    variant = meta_t["variant"]
    tokens = post_and_collect(tokenizer("audio", str(tok), variant, "cpu", 2), "pdu", "tokens",
                              [pdu({"utt": i}, c) for i, c in enumerate(clips)], len(clips))
    waves = post_and_collect(detokenizer("audio", str(det), variant, str(tok), "cpu", 2), "tokens", "pdu",
                             tokens, len(clips))
    assert len(waves) == len(clips)
    vocoded = []
    for msg in waves:
        meta, wave = pmt.to_python(pmt.car(msg)), np.array(pmt.f32vector_elements(pmt.cdr(msg)))
        clip = clips[meta["utt"]]
        assert len(wave) == len(clip) and meta["sample_rate"] == 16000
        a, b = af.log_mel(clip), af.log_mel(wave)
        vocoded.append(np.mean(np.abs(a - b)) * af.LOG_SCALE)
    # Griffin–Lim adds error of its own (~0.3 nepers measured); silence is ~8, white noise ~6 nepers off
    assert np.mean(vocoded) < np.mean(errors) + 0.6, (np.mean(vocoded), np.mean(errors))


def test_audio_jscc_meets_the_power_constraint_and_its_card_names_it():
    """The shipped audio JSCC pair: every rate of its metadata, frames of any length, (1/N)Σ|z|² = 1 over the
    N = S·rate sent symbols and nothing past ``rate``; the decoder gives finite tokens of the frame's shape;
    the card names both files and its table holds the metadata's scores."""
    enc_path = model_store.find("audio_jscc_encoder", "genib")
    dec_path = model_store.find("audio_jscc_decoder", "genib")
    meta = model_store.read_metadata(enc_path)
    model_store.check_pair(meta, model_store.read_metadata(dec_path))
    enc, dec = make_session(str(enc_path), 1, "cpu"), make_session(str(dec_path), 1, "cpu")
    rng = np.random.default_rng(0)
    for rate in json.loads(meta["rates"]):
        for length in (1, 37, 150):
            tokens = rng.normal(0, 2, (3, length, int(meta["token_dim"]))).astype(np.float32)
            z = enc.run(None, {"tokens": tokens, "snr_db": np.float32([-5, 5, 20]),
                               "rate": np.full(3, rate, np.float32)})[0]
            assert np.all(z[:, :, rate:] == 0)
            np.testing.assert_allclose((z ** 2).sum(axis=(1, 2, 3)) / (length * rate), 1.0, rtol=1e-5)
            rel = np.zeros(z.shape[:3], np.float32)
            rel[:, :, :rate] = 0.5
            out = dec.run(None, {"symbols": z * 0.5, "reliability": rel, "snr_db": np.float32([0, 0, 0]),
                                 "rate": np.full(3, rate, np.float32)})[0]
            assert out.shape == tokens.shape and np.all(np.isfinite(out))
    card = (ROOT / "docs" / "models" / "audio_jscc.md").read_text()
    assert enc_path.name in card and dec_path.name in card
    scores = json.loads(meta["train_metrics"])
    assert f"| rayleigh | 8 | JSCC | " + " | ".join(
        f"{scores[f'rayleigh/{s}dB/r8']:.4g}" for s in (-5, 0, 5, 10, 15, 20)) + " |" in card
