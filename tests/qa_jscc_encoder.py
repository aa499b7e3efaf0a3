#!/usr/bin/env python3
"""QA for jscc_encoder (tiny fixture models: no torch needed)."""
import os

import numpy as np
import pmt
from gnuradio import blocks, gr, gr_unittest

from unitocom_testing import FIXTURE_MODELS, pdu, pdu_source, run_flowgraph

os.environ["UNITOCOM_MODEL_DIR"] = str(FIXTURE_MODELS)
from gnuradio.unitocom import jscc_encoder  # noqa: E402
from gnuradio.unitocom.runtime import model_store  # noqa: E402
from gnuradio.unitocom.runtime.onnx_session import make_session  # noqa: E402

TOK8 = model_store.model_id(model_store.find("test_tokenizer_s8", "genib"))
ENC8 = "test_image_jscc_encoder_s8"


def tokens_pdu(seed, meta=None, n=32):
    vec = np.random.default_rng(seed).standard_normal(n).astype(np.float32)
    return pdu({"model_id": TOK8, **(meta or {})}, vec)


def encode(enc, msgs):
    """pdu_source(msgs) → enc → vector_sink, run until the graph finishes by itself.
    Returns (samples, tags as (offset, key, value))."""
    tb = gr.top_block()
    sink = blocks.vector_sink_c()
    src = pdu_source(msgs)
    tb.msg_connect(src, "out", enc, "tokens")
    tb.connect(enc, sink)
    run_flowgraph(tb)
    tags = [(t.offset, pmt.symbol_to_string(t.key), pmt.to_python(t.value)) for t in sink.tags()]
    return np.array(sink.data()), tags


def model_symbols(tokens, snr_db, rate, model=ENC8, variant="genib"):
    """What the encoder must send for one token PDU's vector, straight from the model:
    (frame with symbol 0 of every token first, the model's (S, K, 2) output)."""
    sess = make_session(str(model_store.find(model, variant)), 1, "cpu")
    tokens = np.asarray(tokens)
    x = tokens.astype(np.int64)[None] if tokens.dtype.kind == "i" else tokens.astype(np.float32).reshape(1, -1, 4)
    s = sess.run(None, {"tokens": x, "snr_db": np.array([snr_db], np.float32),
                        "rate": np.array([float(rate)], np.float32)})[0][0]
    return (s[:, :rate, 0] + 1j * s[:, :rate, 1]).T.reshape(-1), s


def tokens_of(msg):
    return np.asarray(pmt.to_python(pmt.cdr(msg)))


def frame_tags(tags, offset):
    return {k: v for o, k, v in tags if o == offset}


class qa_jscc_encoder(gr_unittest.TestCase):

    def test_arguments(self):
        jscc_encoder(model=ENC8)
        for kwargs in ({"modality": "video"}, {"model": ENC8, "rate": 3}, {"model": ENC8, "rate": 2.5},
                       {"model": "test_image_jscc_decoder_s8"}, {"model": ENC8, "max_batch": 0},
                       {"model": ENC8, "len_tag_key": ""}, {"model": ENC8, "snr_db": float("nan")},
                       {"model": "no_such_model"}, {"model": ENC8, "modality": "text"}):
            with self.assertRaises(ValueError, msg=str(kwargs)):
                jscc_encoder(**kwargs)

    def test_one_unit_power_frame_per_pdu_with_tags(self):
        enc = jscc_encoder("image", ENC8, "genib", 4, 7.0, "packet_len", "cpu", 1, 8)
        self.assertTrue(enc.model_id.startswith(ENC8 + "-genib-"))
        msgs = [tokens_pdu(i, {"user": i, "h": 5.0, "snr_db": 30.0}) for i in range(6)]
        z, tags = encode(enc, msgs)
        self.assertEqual(len(z), 6 * 8 * 4)
        self.assertEqual(sorted({o for o, _, _ in tags}), [32 * i for i in range(6)])   # tags at frame starts only
        for i in range(6):
            frame = z[32 * i:32 * (i + 1)]
            self.assertAlmostEqual(float(np.mean(np.abs(frame) ** 2)), 1.0, places=5)
            t = frame_tags(tags, 32 * i)
            self.assertEqual((t["packet_len"], t["n_tokens"], t["n_symbols"], t["rate"], t["frame_id"], t["user"]),
                             (32, 8, 32, 4, i, i))
            self.assertEqual((t["modality"], t["tokenizer_id"], t["tx_snr_db"], t["model_id"]),
                             ("image", TOK8, 7.0, enc.model_id))
            self.assertNotIn("h", t)                                  # never a fake CSI tag
            self.assertNotIn("snr_db", t)
            # symbol order: symbol 0 of every token, then symbol 1, … (checked against the model)
            want, s = model_symbols(tokens_of(msgs[i]), 7.0, 4)
            np.testing.assert_allclose(frame, want, rtol=1e-5, atol=1e-6)
            self.assertTrue(np.all(s[:, 4:] == 0))                   # unsent symbols are zero

    def test_rate_and_snr_from_ctrl_take_effect_from_the_next_pdu(self):
        enc = jscc_encoder("image", ENC8, "genib", 4, 10.0, "packet_len", "cpu")
        tb = gr.top_block()
        sink = blocks.vector_sink_c()
        bad = [pmt.to_pmt({"rate": 3}), pmt.intern("rate"), pmt.to_pmt({"other": 1}), pmt.to_pmt({"snr_db": "x"})]
        first, second = tokens_pdu(0), tokens_pdu(1)
        src = pdu_source([("ctrl", m) for m in bad + [pmt.to_pmt({"rate": 8, "snr_db": -2.0})]]
                         + [lambda: (enc.rate(), enc.snr_db()) == (8, -2.0), first,
                            lambda: len(sink.data()) == 64,             # the first frame is out
                            ("ctrl", pmt.to_pmt({"snr_db": 4.0})), lambda: enc.snr_db() == 4.0, second],
                         port="tokens")
        tb.msg_connect(src, "tokens", enc, "tokens")
        tb.msg_connect(src, "ctrl", enc, "ctrl")
        tb.connect(enc, sink)
        run_flowgraph(tb)
        self.assertEqual(src.gate_timeouts, [])
        z = np.array(sink.data())
        tags = [(t.offset, pmt.symbol_to_string(t.key), pmt.to_python(t.value)) for t in sink.tags()]
        self.assertEqual(len(z), 64 + 64)                             # rate 8 kept when only the SNR changes
        self.assertEqual((frame_tags(tags, 0)["rate"], frame_tags(tags, 0)["tx_snr_db"]), (8, -2.0))
        self.assertEqual((frame_tags(tags, 64)["rate"], frame_tags(tags, 64)["tx_snr_db"]), (8, 4.0))
        np.testing.assert_allclose(z[:64], model_symbols(tokens_of(first), -2.0, 8)[0], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(z[64:], model_symbols(tokens_of(second), 4.0, 8)[0], rtol=1e-5, atol=1e-6)

    def test_rate_and_snr_callbacks(self):
        enc = jscc_encoder("image", ENC8, "genib", 4, 10.0, "packet_len", "cpu")
        enc.set_rate(2)
        enc.set_snr_db(3.0)
        self.assertEqual((enc.rate(), enc.snr_db()), (2, 3.0))
        for bad in (5, 2.5, True):
            with self.assertRaises(ValueError, msg=repr(bad)):
                enc.set_rate(bad)
        with self.assertRaises(ValueError):
            enc.set_snr_db(float("inf"))
        self.assertEqual((enc.rate(), enc.snr_db()), (2, 3.0))       # a refused value changes nothing
        msg = tokens_pdu(5)
        z, tags = encode(enc, [msg])
        self.assertEqual((len(z), frame_tags(tags, 0)["rate"], frame_tags(tags, 0)["tx_snr_db"]), (16, 2, 3.0))
        np.testing.assert_allclose(z, model_symbols(tokens_of(msg), 3.0, 2)[0], rtol=1e-5, atol=1e-6)

    def test_malformed_pdus_are_dropped(self):
        enc = jscc_encoder("image", ENC8, "genib", 2, 10.0, "packet_len", "cpu")
        nan = np.zeros(32, np.float32)
        nan[3] = np.nan
        bad = [pmt.intern("x"), tokens_pdu(1, n=31), pdu({"model_id": TOK8}, nan),
               pdu({"model_id": TOK8}, np.zeros(32, np.int32)), tokens_pdu(2, {"model_id": "image_tokenizer_s32-genib-00000000"}), tokens_pdu(4, n=64)]
        good = tokens_pdu(3, {"frame_id": 77})
        z, tags = encode(enc, bad + [good] + bad)
        self.assertEqual(len(z), 16)
        self.assertEqual((frame_tags(tags, 0)["frame_id"], frame_tags(tags, 0)["packet_len"]), (77, 16))
        np.testing.assert_allclose(z, model_symbols(tokens_of(good), 10.0, 2)[0], rtol=1e-5, atol=1e-6)

    def test_text_ids_become_frames(self):
        enc = jscc_encoder("text", "test_text_jscc_encoder", "", 2, 10.0, "packet_len", "cpu")
        ids = [np.array([1, 7, 9, 2], np.int32), np.array([1, 5, 6, 7, 8, 9, 2], np.int32)]
        bad = [pdu({}, np.array([1, 64], np.int32)), pdu({}, np.array([1, -1, 2], np.int32)),
               pdu({}, np.zeros(0, np.int32)), pdu({}, np.array([1.0, 2.0], np.float32))]
        z, tags = encode(enc, bad + [pdu({"model_id": "text_vocab", "q": 0}, ids[0]), pdu({"q": 1}, ids[1])])
        self.assertEqual(len(z), 2 * 4 + 2 * 7)
        for q, (start, n) in enumerate(((0, 4), (8, 7))):
            t = frame_tags(tags, start)
            self.assertEqual((t["q"], t["n_tokens"], t["packet_len"], t["rate"], t["modality"], t["tokenizer_id"]),
                             (q, n, 2 * n, 2, "text", "text_vocab"))
            frame = z[start:start + 2 * n]
            self.assertAlmostEqual(float(np.mean(np.abs(frame) ** 2)), 1.0, places=5)
            want = model_symbols(ids[q], 10.0, 2, "test_text_jscc_encoder", "vocab")[0]
            np.testing.assert_allclose(frame, want, rtol=1e-5, atol=1e-6)


if __name__ == "__main__":
    gr_unittest.run(qa_jscc_encoder)
