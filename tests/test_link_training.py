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


# --- the audio JSCC: the fixed token mapping plus learned parts that start at zero ----------------------------

def fixed_pair(tokens, k_max=16, rates=jm.RATES):
    """An untrained fixed-mapping pair (d = 16) whose statistics come from ``tokens`` (N, S, 16)."""
    kw = dict(token_dim=16, k_max=k_max, width=16, depth=1, heads=2, rates=rates)
    enc, dec = jm.FixedMappingEncoder(**kw).eval(), jm.FixedMappingDecoder(**kw).eval()
    jm.set_token_stats(enc, dec, tokens.reshape(-1, 16))
    return enc, dec


def test_untrained_fixed_mapping_encoder_sends_the_tokenizers_mapping():
    torch.manual_seed(0)
    tokens = torch.randn(3, 10, 16) * 2 + 0.3
    enc, _ = fixed_pair(tokens)
    pairs = tokens.reshape(3, 10, 8, 2)
    with torch.no_grad():
        for rate in (2, 4, 8, 16):
            z = enc(tokens, torch.tensor([-5.0, 5.0, 20.0]), torch.full((3,), float(rate)))
            sent = min(rate, 8)
            expect = pairs[:, :, :sent] / pairs[:, :, :sent].pow(2).sum(-1).mean(dim=(1, 2)).sqrt()[:, None, None, None]
            torch.testing.assert_close(z[:, :, :sent], expect)
            if rate == 16:                                               # each pair a second time
                torch.testing.assert_close(z[:, :, 8:], z[:, :, :8])
            assert torch.all(z[:, :, rate:] == 0)
            # the power constraint, exactly: (1/N) Σ|z|² = 1 over the N = S·rate sent symbols
            torch.testing.assert_close(z.pow(2).sum(dim=(1, 2, 3)) / (10 * rate), torch.ones(3))


def test_untrained_fixed_mapping_decoder_is_the_zero_forcing_inverse():
    torch.manual_seed(1)
    tokens = torch.randn(1, 12, 16) * 2
    enc, dec = fixed_pair(tokens)                       # one frame: the typical RMS is this frame's own
    snr = torch.tensor([20.0])
    with torch.no_grad():
        for rate in (8, 16):
            r = torch.full((1,), float(rate))
            z = enc(tokens, snr, r)
            rel = jm.sent_mask(r, 16)[:, None, :].expand(1, 12, 16) * 1.0
            torch.testing.assert_close(dec(z, rel, snr, r), tokens, rtol=1e-4, atol=1e-4)
        r = torch.full((1,), 2.0)                       # rate 2 sends dims 0-3; the rest are the training mean
        z = enc(tokens, snr, r)
        out = dec(z, jm.sent_mask(r, 16)[:, None, :].expand(1, 12, 16) * 1.0, snr, r)
        torch.testing.assert_close(out[..., :4], tokens[..., :4], rtol=1e-4, atol=1e-4)
        torch.testing.assert_close(out[..., 4:], tokens.mean(dim=(0, 1))[4:].expand(1, 12, 12))


def test_untrained_fixed_mapping_through_the_channel_is_token_channel():
    """With K = d/2 symbols the link draws h and noise exactly as ``genib.token_channel`` does; over one frame
    (typical RMS = the frame's own) the untrained pair gives the tokenizer's fixed-mapping link."""
    from onnx_export.tokenizers import genib
    torch.manual_seed(2)
    tokens = torch.randn(1, 20, 16) * 2
    enc, dec = fixed_pair(tokens, k_max=8, rates=(8,))
    for channel in ("awgn", "rayleigh"):
        for snr_db in (0.0, 10.0):
            with torch.no_grad():
                ours = jm.through_link(enc, dec, tokens, torch.tensor([snr_db]), torch.tensor([8.0]), channel,
                                       torch.Generator().manual_seed(7))
            ref = genib.token_channel(tokens, snr_db, channel, generator=torch.Generator().manual_seed(7))
            torch.testing.assert_close(ours, ref, rtol=1e-3, atol=1e-3)


def test_one_rates_heads_do_not_move_another_rates_output():
    torch.manual_seed(3)
    tokens = torch.randn(2, 9, 16)
    enc, dec = fixed_pair(tokens)
    trained_like(enc), trained_like(dec)
    snr = torch.tensor([0.0, 10.0])
    args = {r: (torch.full((2,), float(r))) for r in (2, 8)}
    with torch.no_grad():
        z2, z8 = enc(tokens, snr, args[2]), enc(tokens, snr, args[8])
        y8, rel8 = jm.link(z8, snr, args[8], "awgn", generator=torch.Generator().manual_seed(0))
        t8 = dec(y8, rel8, snr, args[8])
        for m in (enc, dec):                         # perturb only rate 2's block of the last layer
            n = m.out.out_features // len(jm.RATES)
            m.out.weight[:n] += 1.0
            m.out.bias[:n] += 1.0
        assert not torch.allclose(enc(tokens, snr, args[2]), z2)
        torch.testing.assert_close(enc(tokens, snr, args[8]), z8, rtol=0, atol=0)
        torch.testing.assert_close(dec(y8, rel8, snr, args[8]), t8, rtol=0, atol=0)
        # a rate the model was not trained for sends and decodes the plain fixed mapping
        z3 = enc(tokens, snr, torch.full((2,), 3.0))
        assert torch.all(z3[:, :, 3:] == 0)


@pytest.fixture(scope="module")
def speech_corpus(tmp_path_factory):
    data = tmp_path_factory.mktemp("speech")
    corpus.build_split(data, "train", 8, 0, 64, 1, 8, None, 1)
    corpus.build_split(data, "test", 4, 0, 64, 1, 4, None, 1)
    return data


def test_audio_jscc_trains_through_the_detokenizer_and_exports(speech_corpus, tmp_path):
    import numpy as np
    from gnuradio.unitocom.runtime.onnx_session import make_session
    cards = tmp_path / "cards"
    metrics = train_jscc.main(["--modality", "audio", "--corpus", str(speech_corpus), "--steps", "2", "--batch", "4",
                               "--width", "16", "--depth", "1", "--threads", "1", "--eval-snrs", "0,20",
                               "--rates", "2,8,16", "--relative", "--reference-crops", "4", "--out",
                               str(tmp_path / "run"), "--export-dir", str(tmp_path / "models"),
                               "--card-dir", str(cards)])
    assert metrics["arch"] == "fixed" and metrics["steps"] == 2
    keys = {f"{c}/{s}dB/r{r}" for c in ("awgn", "rayleigh") for s in (0, 20) for r in (2, 8, 16)}
    assert set(metrics["scores"]) == set(metrics["fixed_mapping"]) == keys
    assert set(metrics["token_channel"]) == {k for k in keys if k.endswith("/r8")}
    files = {p.name.split("-")[0]: p for p in (tmp_path / "models").glob("*.onnx")}
    assert set(files) == {"audio_jscc_encoder", "audio_jscc_decoder"}
    meta = model_store.read_metadata(files["audio_jscc_encoder"])
    assert json.loads(meta["io_names"]) == {"inputs": ["tokens", "snr_db", "rate"], "outputs": ["symbols"]}
    assert json.loads(model_store.read_metadata(files["audio_jscc_decoder"])["io_names"]) == {
        "inputs": ["symbols", "reliability", "snr_db", "rate"], "outputs": ["tokens"]}
    # the exported encoder meets the power constraint exactly, frames of any length
    sess = make_session(str(files["audio_jscc_encoder"]), 1, "cpu")
    for rate in (2, 8, 16):
        z = sess.run(None, {"tokens": np.random.default_rng(rate).normal(0, 2, (2, 37, 16)).astype(np.float32),
                            "snr_db": np.array([0.0, 20.0], np.float32),
                            "rate": np.full(2, rate, np.float32)})[0]
        assert z.shape == (2, 37, 16, 2) and np.all(z[:, :, rate:] == 0)
        np.testing.assert_allclose((z ** 2).sum(axis=(1, 2, 3)) / (37 * rate), 1.0, rtol=1e-5)
    card = (cards / "audio_jscc.md").read_text()
    assert "| awgn | 8 | fixed mapping |" in card and "| awgn | 8 | JSCC |" in card
