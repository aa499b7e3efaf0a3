"""[4/7]'s verification with the bundled models through the GNU Radio blocks, test split, fixed seeds.

Text: token error rate through jscc_encoder → block_fading_channel → jscc_decoder;
no errors at 20 dB AWGN at any rate. Images: the image_link flowgraph from −5 to
20 dB over AWGN and Rayleigh: finite, monotone in SNR (within a small tolerance
for the 24-image sample) and graceful (no cliff between neighbouring points)."""
import math
import tempfile

import numpy as np
import pmt
import pytest
from gnuradio import gr

from gnuradio.unitocom import block_fading_channel, jscc_decoder, jscc_encoder
from gnuradio.unitocom.runtime import pdu_util
from gnuradio.unitocom.data import corpus, vocab
from gnuradio.unitocom.apps.flowgraph_runner import compile_flowgraph, flowgraph_path, load_flowgraph_class
from unitocom_testing import message_collector, pdu_source, run_flowgraph

SNRS = (-5, 0, 5, 10, 15, 20)


def corpus_sentences():
    out = []
    for i in range(60):
        item = corpus.make_item("test", i, 0)
        out += [q["text"] for q in item["questions"]] + [item["caption"]["text"]]
    return [np.array(vocab.encode(s), np.int32) for s in out]


def blocks_link(modality, variant, rate, channel, snr_db, seed, model_id, vectors):
    """Token vectors (PDU metadata ``row`` = index) through jscc_encoder → block_fading_channel → jscc_decoder
    with the shipped models; the decoded (metadata, array) pairs once the graph finished by itself."""
    enc = jscc_encoder(modality, "", variant, rate, snr_db, "packet_len", "cpu", 1, 64)
    dec = jscc_decoder(modality, "", variant, "", snr_db, "packet_len", "cpu", 1, 64)
    chan = block_fading_channel(channel, snr_db, 0, 0.0, 1.0, seed, "packet_len")
    src = pdu_source([pdu_util.make(pmt.to_pmt({"model_id": model_id, "row": i}), v) for i, v in enumerate(vectors)])
    sink = message_collector()
    tb = gr.top_block()
    tb.msg_connect(src, "out", enc, "tokens")
    tb.connect(enc, chan, dec)
    tb.msg_connect(dec, "tokens", sink, "in")
    run_flowgraph(tb, timeout=600.0)
    return sink.pdus()


def text_link(sentences, rate, channel, snr_db, seed):
    """Token ids through the blocks; returns (errors, tokens) over every sentence."""
    out = blocks_link("text", "", rate, channel, snr_db, seed, "text_vocab", sentences)
    assert len(out) == len(sentences)
    assert [meta["row"] for meta, _ in out] == list(range(len(sentences))), "PDUs out of order"
    errors = total = 0
    for (meta, got), ids in zip(out, sentences):
        assert got.shape == ids.shape and meta["n_tokens"] == ids.size, f"PDU {meta['row']}: wrong length"
        errors += int(np.sum(got != ids))
        total += ids.size
    return errors, total


@pytest.fixture(scope="module")
def sentences():
    return corpus_sentences()


@pytest.mark.parametrize("rate", [2, 4, 8, 16])
def test_text_has_no_token_errors_at_20db_awgn(sentences, rate):
    errors, total = text_link(sentences, rate, "awgn", 20.0, 1)
    assert total > 1000 and errors == 0, f"{errors} token errors of {total} at rate {rate}"


def test_text_token_errors_fall_with_snr(sentences):
    ter = [text_link(sentences, 2, "awgn", snr, 2)[0] for snr in (-5.0, 5.0, 20.0)]
    assert ter[0] > ter[1] >= ter[2] == 0, ter


@pytest.fixture(scope="module")
def image_link_class():
    return load_flowgraph_class(compile_flowgraph(flowgraph_path("sim/image_link.grc"), tempfile.mkdtemp()))


@pytest.mark.parametrize("channel", ["awgn", "rayleigh"])
def test_image_psnr_is_graceful_from_minus5_to_20db(image_link_class, channel):
    psnr = []
    for snr in SNRS:
        tb = image_link_class(snr_db=float(snr), channel_type=channel, rate=8, n_images=24, seed=3, out_dir="")
        tb.start()
        tb.wait()
        values = tb.sink.psnr_values()
        assert len(values) == 24 and all(math.isfinite(v) for v in values)
        psnr.append(float(np.mean(values)))
    steps = np.diff(psnr)
    # monotone (24 images: allow 0.3 dB of sampling noise), no cliff between points 5 dB apart,
    # and usable at −5 dB: far above an image that did not arrive (≈16 dB for the mean image)
    assert np.all(steps > -0.3), psnr
    assert np.all(steps < 3.0), psnr
    assert psnr[0] > 20.0 and psnr[-1] - psnr[0] < 7.0, psnr


# --- audio: the shipped JSCC against the fixed token mapping the tokenizer was trained through ------------------

AUDIO_CLIPS = 24


@pytest.fixture(scope="module")
def audio_set():
    """Test utterances unseen in training: (tokens [(S, d)], log-mels [(64, 4S)], sessions, the tokenizer's id)."""
    from gnuradio.unitocom.data import speech
    from gnuradio.unitocom.dsp import audio_features as af
    from gnuradio.unitocom.runtime import model_store
    from gnuradio.unitocom.runtime.onnx_session import make_session
    if not speech.espeak_available():
        pytest.skip("espeak-ng is not installed")
    enc_path = model_store.find("audio_jscc_encoder", "genib")
    tok_id = model_store.read_metadata(enc_path)["tokenizer"]
    tok = make_session(str(model_store.find(tok_id)), 1, "cpu")
    name, variant, _ = tok_id.rsplit("-", 2)
    det = make_session(str(model_store.find(name.replace("tokenizer", "detokenizer"), variant)), 1, "cpu")
    tokens, mels = [], []
    for i in range(AUDIO_CLIPS):
        mel = af.log_mel(corpus.make_item("test", i, 0, with_speech=True)["audio"])
        mel = mel[:, :mel.shape[1] // 4 * 4]
        tokens.append(tok.run(None, {"mel": mel[None]})[0][0])
        mels.append(mel)
    sessions = {role: make_session(str(model_store.find(f"audio_jscc_{role}", "genib")), 1, "cpu")
                for role in ("encoder", "decoder")}
    return tokens, mels, sessions, det, tok_id


def logmel_l1(det, tokens, mel):
    from gnuradio.unitocom.dsp import audio_features as af
    return float(np.mean(np.abs(det.run(None, {"tokens": tokens[None].astype(np.float32)})[0][0] - mel))) * af.LOG_SCALE


def fixed_mapping(tokens, rate, h, noise, decoder_path):
    """The card's fixed mapping (numpy): dimension pairs → I/Q, symbol k carries pair k mod d/2, unit power;
    receiver: zero-forcing, repeated symbols combined, scaled back by the typical RMS of the sent pairs (the
    decoder's ``power``), unsent pairs at the training mean (its ``mean``)."""
    import onnx
    from onnx import numpy_helper
    init = {i.name: numpy_helper.to_array(i) for i in onnx.load(str(decoder_path)).graph.initializer}
    s, d = tokens.shape
    pairs = tokens[:, 0::2] + 1j * tokens[:, 1::2]
    index = np.arange(rate) % (d // 2)
    z = pairs[:, index]
    z = z / np.sqrt(np.mean(np.abs(z) ** 2))
    y = h * z + noise
    est = np.tile(init["mean"][0::2] + 1j * init["mean"][1::2], (s, 1))
    for p in range(d // 2):
        if np.any(index == p):
            est[:, p] = np.mean(y[:, index == p], axis=1) / h * np.sqrt(np.mean(init["power"][:rate]))
    out = np.empty_like(tokens)
    out[:, 0::2], out[:, 1::2] = est.real, est.imag
    return out


def jscc(tokens, rate, snr_db, h, noise, sessions):
    from gnuradio.unitocom.core import jscc_frame
    z = sessions["encoder"].run(None, {"tokens": tokens[None].astype(np.float32), "snr_db": np.float32([snr_db]),
                                       "rate": np.float32([rate])})[0][0]
    sent = z[:, :rate, 0] + 1j * z[:, :rate, 1]
    x_hat, rel = jscc_frame.receive(h * sent + noise, h, 10 ** (-snr_db / 10))
    symbols, reliability = np.zeros((1,) + z.shape, np.float32), np.zeros((1,) + z.shape[:2], np.float32)
    symbols[0, :, :rate, 0], symbols[0, :, :rate, 1], reliability[0, :, :rate] = x_hat.real, x_hat.imag, rel
    return sessions["decoder"].run(None, {"symbols": symbols, "reliability": reliability,
                                          "snr_db": np.float32([snr_db]), "rate": np.float32([rate])})[0][0]


@pytest.mark.parametrize("channel", ["awgn", "rayleigh"])
@pytest.mark.parametrize("rate", [2, 4, 8, 16])
def test_audio_jscc_is_at_least_as_good_as_the_fixed_mapping(audio_set, channel, rate):
    """[6/10]: at every SNR and rate the shipped audio JSCC's log-mel L1 (through the shipped de-tokenizer)
    is no worse than the fixed mapping's, both over the same h and noise on unseen test utterances."""
    from gnuradio.unitocom.dsp import channel_math as cm
    from gnuradio.unitocom.runtime import model_store
    tokens, mels, sessions, det, _ = audio_set
    dec_path = model_store.find("audio_jscc_decoder", "genib")
    for snr_db in SNRS:
        rng = np.random.default_rng(100 * rate + snr_db + (0 if channel == "awgn" else 50))
        ours, fixed = [], []
        for t, mel in zip(tokens, mels):
            h = np.complex128(cm.draw_fading(rng.standard_normal, (1,), channel)[0])
            noise = cm.complex_normal(rng.standard_normal, (len(t), rate)) * 10 ** (-snr_db / 20)
            ours.append(logmel_l1(det, jscc(t, rate, snr_db, h, noise, sessions), mel))
            fixed.append(logmel_l1(det, fixed_mapping(t, rate, h, noise, dec_path), mel))
        assert all(map(math.isfinite, ours))
        assert np.mean(ours) <= np.mean(fixed), (channel, snr_db, rate, np.mean(ours), np.mean(fixed))


def test_audio_through_the_blocks_at_20db_is_close_to_the_tokenizer_alone(audio_set):
    """Audio tokens (frames of ~100) through jscc_encoder → block_fading_channel → jscc_decoder, in order."""
    tokens, mels, _, det, tok_id = audio_set
    out = blocks_link("audio", "genib", 8, "awgn", 20.0, 5, tok_id, [t.astype(np.float32).ravel() for t in tokens])
    assert [meta["row"] for meta, _ in out] == list(range(len(tokens)))
    got = [np.asarray(v, np.float32).reshape(-1, t.shape[1]) for (_, v), t in zip(out, tokens)]
    assert [g.shape for g in got] == [t.shape for t in tokens]
    through = np.mean([logmel_l1(det, g, m) for g, m in zip(got, mels)])
    alone = np.mean([logmel_l1(det, t, m) for t, m in zip(tokens, mels)])
    assert through < alone + 0.05, (through, alone)
