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


def text_link(sentences, rate, channel, snr_db, seed):
    """Token ids through the blocks; returns (errors, tokens) over every sentence."""
    enc = jscc_encoder("text", "", "", rate, snr_db, "packet_len", "cpu", 1, 64)
    dec = jscc_decoder("text", "", "", "", snr_db, "packet_len", "cpu", 1, 64)
    chan = block_fading_channel(channel, snr_db, 0, 0.0, 1.0, seed, "packet_len")
    src = pdu_source([pdu_util.make(pmt.to_pmt({"model_id": "text_vocab", "row": i}), ids)
                      for i, ids in enumerate(sentences)])
    sink = message_collector()
    tb = gr.top_block()
    tb.msg_connect(src, "out", enc, "tokens")
    tb.connect(enc, chan, dec)
    tb.msg_connect(dec, "tokens", sink, "in")
    run_flowgraph(tb, timeout=600.0)
    out = sink.pdus()
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
