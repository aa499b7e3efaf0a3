#!/usr/bin/env python3
"""QA for jscc_encoder (tiny fixture models: no torch needed)."""
import os
import time

import numpy as np
import pmt
from gnuradio import blocks, gr, gr_unittest

from unitocom_testing import FIXTURE_MODELS, pdu

os.environ["UNITOCOM_MODEL_DIR"] = str(FIXTURE_MODELS)
from gnuradio.unitocom import jscc_encoder, model_store  # noqa: E402
from gnuradio.unitocom.onnx_session import make_session  # noqa: E402

TOK8 = model_store.model_id(model_store.find("test_tokenizer_s8", "genib"))
ENC8 = "test_image_jscc_encoder_s8"


def tokens_pdu(seed, meta=None, n=32):
    vec = np.random.default_rng(seed).standard_normal(n).astype(np.float32)
    return pdu({"model_id": TOK8, **(meta or {})}, vec)


def encode(enc, msgs, ctrl=()):
    """Run enc → vector_sink; post ctrl messages, then msgs, then 'done'. Returns (samples, tags)."""
    tb = gr.top_block()
    sink = blocks.vector_sink_c()
    tb.connect(enc, sink)
    tb.start()
    core = enc.mapper.to_basic_block()
    for msg in ctrl:
        core._post(pmt.intern("ctrl"), msg)
    time.sleep(0.05 if ctrl else 0)
    for msg in msgs:
        core._post(pmt.intern("tokens"), msg)
    core._post(pmt.intern("system"), pmt.cons(pmt.intern("done"), pmt.from_long(1)))
    tb.wait()
    tags = [(t.offset, pmt.symbol_to_string(t.key), pmt.to_python(t.value)) for t in sink.tags()]
    return np.array(sink.data()), tags


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
        msgs = [tokens_pdu(i, {"user": i, "h": 5.0}) for i in range(6)]
        z, tags = encode(enc, msgs)
        self.assertEqual(len(z), 6 * 8 * 4)
        sess = make_session(str(model_store.find(ENC8, "genib")), 1, "cpu")
        for i in range(6):
            frame = z[32 * i:32 * (i + 1)]
            self.assertAlmostEqual(float(np.mean(np.abs(frame) ** 2)), 1.0, places=5)
            t = frame_tags(tags, 32 * i)
            self.assertEqual((t["packet_len"], t["n_tokens"], t["n_symbols"], t["rate"], t["frame_id"], t["user"]),
                             (32, 8, 32, 4, i, i))
            self.assertEqual((t["modality"], t["tokenizer_id"], t["tx_snr_db"]), ("image", TOK8, 7.0))
            self.assertTrue(t["model_id"].startswith(ENC8 + "-genib-"))
            self.assertNotIn("h", t)                                  # never a fake CSI tag
            # symbol order: symbol 0 of every token, then symbol 1, … (checked against the model)
            x = np.asarray(pmt.f32vector_elements(pmt.cdr(msgs[i])), np.float32).reshape(1, 8, 4)
            s = sess.run(None, {"tokens": x, "snr_db": np.array([7.0], np.float32),
                                "rate": np.array([4.0], np.float32)})[0][0]
            want = (s[:, :4, 0] + 1j * s[:, :4, 1]).T.reshape(-1)
            np.testing.assert_allclose(frame, want, rtol=1e-5, atol=1e-6)
            self.assertTrue(np.all(s[:, 4:] == 0))                   # unsent symbols are zero

    def test_rate_and_snr_from_ctrl_and_callbacks(self):
        enc = jscc_encoder("image", ENC8, "genib", 4, 10.0, "packet_len", "cpu")
        bad = [pmt.to_pmt({"rate": 3}), pmt.intern("rate"), pmt.to_pmt({"other": 1})]
        z, tags = encode(enc, [tokens_pdu(0)], ctrl=bad + [pmt.to_pmt({"rate": 8, "snr_db": -2.0})])
        self.assertEqual(len(z), 64)
        self.assertEqual((frame_tags(tags, 0)["rate"], frame_tags(tags, 0)["tx_snr_db"]), (8, -2.0))
        enc.set_rate(2)
        self.assertEqual(enc.rate(), 2)
        with self.assertRaises(ValueError):
            enc.set_rate(5)

    def test_malformed_pdus_are_dropped(self):
        enc = jscc_encoder("image", ENC8, "genib", 2, 10.0, "packet_len", "cpu")
        nan = np.zeros(32, np.float32)
        nan[3] = np.nan
        bad = [pmt.intern("x"), tokens_pdu(1, n=31), pdu({"model_id": TOK8}, nan), pdu({"model_id": TOK8}, np.zeros(32, np.int32)),
               tokens_pdu(2, {"model_id": "image_tokenizer_s32-genib-00000000"})]
        z, tags = encode(enc, bad + [tokens_pdu(3, {"frame_id": 77})])
        self.assertEqual(len(z), 16)
        self.assertEqual(frame_tags(tags, 0)["frame_id"], 77)

    def test_text_ids_become_frames(self):
        enc = jscc_encoder("text", "test_text_jscc_encoder", "", 2, 10.0, "packet_len", "cpu")
        ids = [np.array([1, 7, 9, 2], np.int32), np.array([1, 5, 6, 7, 8, 9, 2], np.int32)]
        bad = [pdu({}, np.array([1, 64], np.int32)), pdu({}, np.zeros(0, np.int32))]
        z, tags = encode(enc, bad + [pdu({"model_id": "text_vocab"}, ids[0]), pdu({}, ids[1])])
        self.assertEqual(len(z), 2 * 4 + 2 * 7)
        self.assertEqual((frame_tags(tags, 0)["n_tokens"], frame_tags(tags, 8)["n_tokens"]), (4, 7))


if __name__ == "__main__":
    gr_unittest.run(qa_jscc_encoder)
