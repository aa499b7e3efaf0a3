#!/usr/bin/env python3
"""QA for jscc_decoder (tiny fixture models: no torch needed)."""
import os

import numpy as np
import pmt
from gnuradio import blocks, gr, gr_unittest

from unitocom_testing import FIXTURE_MODELS, make_tag

os.environ["UNITOCOM_MODEL_DIR"] = str(FIXTURE_MODELS)
from gnuradio.unitocom import block_fading_channel, jscc_decoder, jscc_encoder, model_store  # noqa: E402
from gnuradio.unitocom.onnx_session import make_session  # noqa: E402

DEC8, ENC8 = "test_image_jscc_decoder_s8", "test_image_jscc_encoder_s8"
TOK8 = model_store.model_id(model_store.find("test_tokenizer_s8", "genib"))


def decode(dec, samples, tags):
    tb = gr.top_block()
    src = blocks.vector_source_c(list(samples), False, 1, tags)
    sink = blocks.message_debug()
    tb.connect(src, dec)
    tb.msg_connect(dec, "tokens", sink, "store")
    tb.run()
    return [sink.get_message(i) for i in range(sink.num_messages())]


def frame(rng, n_tokens, rate, offset=0, extra=()):
    z = ((rng.standard_normal(n_tokens * rate) + 1j * rng.standard_normal(n_tokens * rate)) / np.sqrt(2))
    tags = [make_tag(offset, "packet_len", n_tokens * rate), make_tag(offset, "n_tokens", n_tokens),
            make_tag(offset, "rate", rate), make_tag(offset, "tokenizer_id", pmt.intern(TOK8))]
    return z.astype(np.complex64), tags + [make_tag(offset + o, k, v) for o, k, v in extra]


def reference(y, h, nv, snr_db, rate, n_tokens=8, k=8):
    """What the decoder must compute: MMSE x̂ and reliability per symbol, then the model."""
    h = np.broadcast_to(np.asarray(h, complex), y.shape)
    g2 = np.abs(h) ** 2
    xh, rel = (np.conj(h) * y / (g2 + nv)).reshape(rate, n_tokens).T, (g2 / (g2 + nv)).reshape(rate, n_tokens).T
    sym, r = np.zeros((1, n_tokens, k, 2), np.float32), np.zeros((1, n_tokens, k), np.float32)
    sym[0, :, :rate, 0], sym[0, :, :rate, 1], r[0, :, :rate] = xh.real, xh.imag, rel
    sess = make_session(str(model_store.find(DEC8, "genib")), 1, "cpu")
    return sess.run(None, {"symbols": sym, "reliability": r, "snr_db": np.array([snr_db], np.float32),
                           "rate": np.array([float(rate)], np.float32)})[0][0].ravel()


class qa_jscc_decoder(gr_unittest.TestCase):

    def test_arguments_and_pairing(self):
        jscc_decoder(model=DEC8)
        jscc_decoder("image", DEC8, "genib", ENC8)
        for kwargs in ({"modality": "video"}, {"model": ENC8}, {"model": DEC8, "max_batch": 0},
                       {"model": DEC8, "len_tag_key": ""}, {"model": DEC8, "snr_db": float("inf")}):
            with self.assertRaises(ValueError, msg=str(kwargs)):
                jscc_decoder(**kwargs)
        with self.assertRaisesRegex(ValueError, "token_len"):
            jscc_decoder("image", DEC8, "genib", "test_image_jscc_encoder_s16")
        with self.assertRaisesRegex(ValueError, "not this decoder's encoder"):
            jscc_decoder("image", DEC8, "genib", DEC8)

    def test_equalises_with_the_csi_tags_symbol_by_symbol(self):
        rng = np.random.default_rng(0)
        y, tags = frame(rng, 8, 4, extra=[(0, "h", 0.3 - 0.4j), (0, "snr_db", 5.0), (20, "h", 1.2 + 0.1j)])
        out = decode(jscc_decoder("image", DEC8, "genib", "", 10.0, "packet_len", "cpu"), y, tags)
        self.assertEqual(len(out), 1)
        meta, tokens = pmt.to_python(pmt.car(out[0])), np.array(pmt.f32vector_elements(pmt.cdr(out[0])))
        h = np.where(np.arange(32) < 20, 0.3 - 0.4j, 1.2 + 0.1j)
        np.testing.assert_allclose(tokens, reference(y, h, 10 ** -0.5, 5.0, 4), rtol=1e-4, atol=1e-5)
        self.assertEqual((meta["snr_db"], meta["n_fades"], meta["rate"], meta["n_tokens"]), (5.0, 2, 4, 8))
        self.assertAlmostEqual(meta["h"], 0.3 - 0.4j, places=6)
        self.assertEqual(meta["model_id"], TOK8)                        # ready for the de-tokenizer

    def test_csi_carries_over_frames_and_defaults_without_tags(self):
        rng = np.random.default_rng(1)
        y0, t0 = frame(rng, 8, 2)
        y1, t1 = frame(rng, 8, 2, offset=16, extra=[(0, "h", 2.0), (0, "noise_var", 0.5)])
        y2, t2 = frame(rng, 8, 2, offset=32)
        out = decode(jscc_decoder("image", DEC8, "genib", "", 3.0, "packet_len", "cpu"),
                     np.concatenate([y0, y1, y2]), t0 + t1 + t2)
        self.assertEqual(len(out), 3)
        got = [np.array(pmt.f32vector_elements(pmt.cdr(m))) for m in out]
        np.testing.assert_allclose(got[0], reference(y0, 1.0, 10 ** -0.3, 3.0, 2), rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(got[1], reference(y1, 2.0, 0.5, 3.0, 2), rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(got[2], reference(y2, 2.0, 0.5, 3.0, 2), rtol=1e-4, atol=1e-5)

    def test_malformed_frames_are_dropped(self):
        rng = np.random.default_rng(2)
        parts, tags, off = [], [], 0
        nan = frame(rng, 8, 2)
        nan[0][3] = np.nan
        cases = [frame(rng, 8, 3), frame(rng, 8, 4), nan, frame(rng, 8, 2)]
        cases[1][1][2] = make_tag(0, "rate", 2)                       # 32 symbols are not 8 × 2
        for z, tg in cases:
            for t in tg:
                tags.append(make_tag(t.offset + off, pmt.symbol_to_string(t.key), t.value))
            parts.append(z)
            off += len(z)
        stray = np.ones(5, np.complex64)                              # samples without a length tag
        out = decode(jscc_decoder("image", DEC8, "genib", "", 10.0, "packet_len", "cpu"),
                     np.concatenate(parts + [stray]), tags)
        self.assertEqual(len(out), 1)

    def test_link_keeps_every_frame_in_order(self):
        enc = jscc_encoder("image", ENC8, "genib", 8, 10.0, "packet_len", "cpu")
        dec = jscc_decoder("image", DEC8, "genib", ENC8, 10.0, "packet_len", "cpu", 1, 16)
        tb = gr.top_block()
        sink = blocks.message_debug()
        channel = block_fading_channel("rayleigh", 10.0, 0, 0.0, 1.0, 1, "packet_len")   # keep a reference:
        tb.connect(enc, channel, dec)                        # a collected Python block crashes the flowgraph
        tb.msg_connect(dec, "tokens", sink, "store")
        tb.start()
        core = enc.mapper.to_basic_block()
        rng = np.random.default_rng(3)
        from unitocom_testing import pdu
        for i in range(50):
            core._post(pmt.intern("tokens"), pdu({"model_id": TOK8}, rng.standard_normal(32).astype(np.float32)))
        core._post(pmt.intern("system"), pmt.cons(pmt.intern("done"), pmt.from_long(1)))
        tb.wait()
        metas = [pmt.to_python(pmt.car(sink.get_message(i))) for i in range(sink.num_messages())]
        self.assertEqual([m["frame_id"] for m in metas], list(range(50)))
        self.assertEqual(len({m["h"] for m in metas}), 50)               # one fade per frame

    def test_a_backlog_of_frames_is_all_delivered_at_the_end(self):
        # 300 long frames posted at once: the encoder must write every one out before it
        # finishes (GNU Radio's pdu_to_tagged_stream, used before, dropped queued PDUs here)
        from unitocom_testing import pdu
        enc = jscc_encoder("text", "test_text_jscc_encoder", "", 8, 10.0, "packet_len", "cpu", 1, 64)
        dec = jscc_decoder("text", "test_text_jscc_decoder", "", "", 10.0, "packet_len", "cpu", 1, 64)
        channel = block_fading_channel("rayleigh", 10.0, 0, 0.0, 1.0, 1, "packet_len")
        tb = gr.top_block()
        sink = blocks.message_debug()
        tb.connect(enc, channel, dec)
        tb.msg_connect(dec, "tokens", sink, "store")
        tb.start()
        core = enc.mapper.to_basic_block()
        ids = np.random.default_rng(0).integers(0, 64, (300, 50)).astype(np.int32)
        for row in ids:
            core._post(pmt.intern("tokens"), pdu({}, row))
        core._post(pmt.intern("system"), pmt.cons(pmt.intern("done"), pmt.from_long(1)))
        tb.wait()
        self.assertEqual(dec.nitems_read(0), 300 * 50 * 8)
        self.assertEqual(sink.num_messages(), 300)

    def test_text_frames_become_ids(self):
        enc = jscc_encoder("text", "test_text_jscc_encoder", "", 4, 20.0, "packet_len", "cpu")
        dec = jscc_decoder("text", "test_text_jscc_decoder", "", "test_text_jscc_encoder", 20.0)
        tb = gr.top_block()
        sink = blocks.message_debug()
        tb.connect(enc, dec)
        tb.msg_connect(dec, "tokens", sink, "store")
        tb.start()
        core = enc.mapper.to_basic_block()
        from unitocom_testing import pdu
        core._post(pmt.intern("tokens"), pdu({}, np.array([1, 7, 9, 11, 2], np.int32)))
        core._post(pmt.intern("system"), pmt.cons(pmt.intern("done"), pmt.from_long(1)))
        tb.wait()
        self.assertEqual(sink.num_messages(), 1)
        ids = pmt.s32vector_elements(pmt.cdr(sink.get_message(0)))
        self.assertEqual(len(ids), 5)
        self.assertTrue(all(0 <= i < 64 for i in ids))


if __name__ == "__main__":
    gr_unittest.run(qa_jscc_decoder)
