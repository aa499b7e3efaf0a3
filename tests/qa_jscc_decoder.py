#!/usr/bin/env python3
"""QA for jscc_decoder (tiny fixture models: no torch needed)."""
import os

import numpy as np
import pmt
from gnuradio import blocks, gr, gr_unittest

from unitocom_testing import FIXTURE_MODELS, make_tag, message_collector, pdu, pdu_source, run_flowgraph, unpack

os.environ["UNITOCOM_MODEL_DIR"] = str(FIXTURE_MODELS)
from gnuradio.unitocom import block_fading_channel, jscc_decoder, jscc_encoder  # noqa: E402
from gnuradio.unitocom.runtime import model_store  # noqa: E402
from gnuradio.unitocom.runtime.onnx_session import make_session  # noqa: E402

DEC8, ENC8 = "test_image_jscc_decoder_s8", "test_image_jscc_encoder_s8"
TOK8 = model_store.model_id(model_store.find("test_tokenizer_s8", "genib"))


def decode(dec, samples, tags):
    """vector_source(samples, tags) → dec; the token PDUs, once the graph finished by itself."""
    tb = gr.top_block()
    src = blocks.vector_source_c(list(samples), False, 1, tags)
    sink = message_collector()
    tb.connect(src, dec)
    tb.msg_connect(dec, "tokens", sink, "in")
    run_flowgraph(tb)
    return list(sink.messages)


def link(enc, dec, msgs, channel=None):
    """pdu_source(msgs) → enc → [channel] → dec → collector, run to the end; the token PDUs out."""
    tb = gr.top_block()
    src, sink = pdu_source(msgs), message_collector()
    tb.msg_connect(src, "out", enc, "tokens")
    tb.connect(*([enc] + ([channel] if channel is not None else []) + [dec]))
    tb.msg_connect(dec, "tokens", sink, "in")
    run_flowgraph(tb)
    return sink.pdus()


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


def text_reference(ids, rate, snr_db):
    """Ids the text decoder must give for the encoder's noiseless frame (h = 1, σ² from snr_db)."""
    enc = make_session(str(model_store.find("test_text_jscc_encoder", "vocab")), 1, "cpu")
    dec = make_session(str(model_store.find("test_text_jscc_decoder", "vocab")), 1, "cpu")
    feed = {"snr_db": np.array([snr_db], np.float32), "rate": np.array([float(rate)], np.float32)}
    s = enc.run(None, dict(feed, tokens=np.asarray(ids, np.int64)[None]))[0]
    nv = 10 ** (-snr_db / 10)
    sym, rel = np.zeros_like(s), np.zeros(s.shape[:3], np.float32)
    sym[:, :, :rate], rel[:, :, :rate] = s[:, :, :rate] / (1 + nv), 1 / (1 + nv)
    return dec.run(None, dict(feed, symbols=sym.astype(np.float32), reliability=rel))[0][0].argmax(-1)


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
        metas = [pmt.to_python(pmt.car(m)) for m in out]
        self.assertEqual([(m["h"], m["snr_db"]) for m in metas], [(1.0, 3.0), (2.0, 3.0), (2.0, 3.0)])  # h carried over

    def test_one_vector_h_per_frame_decodes_exactly_like_one_h_per_symbol(self):
        """ofdm_rx's CSI form (a c64vector of N gains at the frame's first sample) and the per-symbol
        form (N complex tags): the same token PDUs, bit for bit, CSI carried over between frames."""
        rng = np.random.default_rng(7)
        frames = [frame(rng, 8, 4, offset=32 * i) for i in range(4)]
        y = np.concatenate([f[0] for f in frames])
        gains = (rng.standard_normal(len(y)) + 1j * rng.standard_normal(len(y))) * 0.7
        csi = [make_tag(32 * i, "snr_db", float(s)) for i, s in enumerate((3.0, 11.0, 11.0, 20.0))]
        csi.append(make_tag(64, "noise_var", 0.2))                 # with snr_db: a power to fold in
        scalar = [make_tag(i, "h", complex(g)) for i, g in enumerate(gains[:96])]
        vector = [make_tag(32 * i, "h", pmt.init_c64vector(32, gains[32 * i:32 * i + 32].tolist())) for i in range(3)]
        outs = []
        for h_tags in (scalar, vector):                             # the 4th frame: no h, the last gain carries over
            dec = jscc_decoder("image", DEC8, "genib", "", 10.0, "packet_len", "cpu")
            outs.append([unpack(m) for m in decode(dec, y, [t for f in frames for t in f[1]] + csi + h_tags)])
        self.assertEqual(len(outs[0]), 4)
        for (m0, t0), (m1, t1) in zip(*outs):
            np.testing.assert_array_equal(t0, t1)
            self.assertEqual((m0["h"], m0["snr_db"], m0["n_fades"]), (m1["h"], m1["snr_db"], m1["n_fades"]))
        self.assertEqual([m["n_fades"] for m, _ in outs[1]], [32, 32, 32, 1])
        want = reference(frames[1][0], gains[32:64], 10 ** -1.1, 11.0, 4)
        np.testing.assert_allclose(outs[1][1][1], want, rtol=1e-4, atol=1e-5)

    def test_transmit_power_is_undone_when_snr_and_noise_var_are_tagged(self):
        """A frame sent at power P = 4 (tags snr_db and noise_var = P·10^(−snr/10), as block_fading_channel
        writes them) decodes like the same frame at unit power: the decoder folds √P into h."""
        rng = np.random.default_rng(5)
        y, tags = frame(rng, 8, 4)
        power, snr = 4.0, 12.0
        nv = power * 10 ** (-snr / 10)
        csi = [make_tag(0, "h", 0.6 + 0.2j), make_tag(0, "snr_db", snr), make_tag(0, "noise_var", nv)]
        out = decode(jscc_decoder("image", DEC8, "genib", "", 10.0, "packet_len", "cpu"), y * np.sqrt(power),
                     tags + csi)
        tokens = np.array(pmt.f32vector_elements(pmt.cdr(out[0])))
        want = reference(y * np.sqrt(power), (0.6 + 0.2j) * np.sqrt(power), nv, snr, 4)
        np.testing.assert_allclose(tokens, want, rtol=1e-4, atol=1e-5)
        unit = reference(y, 0.6 + 0.2j, 10 ** (-snr / 10), snr, 4)          # the same frame at P = 1
        np.testing.assert_allclose(tokens, unit, rtol=1e-4, atol=1e-4)

    def test_malformed_frames_are_dropped(self):
        rng = np.random.default_rng(2)
        parts, tags, off = [], [], 0
        nan = frame(rng, 8, 2)
        nan[0][3] = np.nan
        good = frame(rng, 8, 2, extra=[(0, "frame_id", 9)])
        cases = [frame(rng, 8, 3), frame(rng, 8, 4), nan, frame(rng, 4, 2), good]
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
        meta, tokens = unpack(out[0])
        self.assertEqual((meta["frame_id"], meta["rate"], meta["n_tokens"]), (9, 2, 8))
        # no CSI tag anywhere: h = 1 at the snr_db argument
        np.testing.assert_allclose(tokens, reference(good[0], 1.0, 10 ** -1.0, 10.0, 2), rtol=1e-4, atol=1e-5)

    def test_link_keeps_every_frame_in_order(self):
        enc = jscc_encoder("image", ENC8, "genib", 8, 10.0, "packet_len", "cpu")
        dec = jscc_decoder("image", DEC8, "genib", ENC8, 10.0, "packet_len", "cpu", 1, 16)
        channel = block_fading_channel("rayleigh", 10.0, 0, 0.0, 1.0, 1, "packet_len")   # keep a reference:
        rng = np.random.default_rng(3)                     # a collected Python block crashes the flowgraph
        msgs = [pdu({"model_id": TOK8, "user": i % 3}, rng.standard_normal(32).astype(np.float32))
                for i in range(50)]
        out = link(enc, dec, msgs, channel)
        metas = [m for m, _ in out]
        self.assertEqual([m["frame_id"] for m in metas], list(range(50)))
        self.assertEqual([m["user"] for m in metas], [i % 3 for i in range(50)])
        self.assertEqual(len({m["h"] for m in metas}), 50)               # one fade per frame
        for m, tokens in out:
            self.assertEqual((m["snr_db"], m["rate"], m["n_tokens"], m["n_fades"], m["model_id"], m["jscc_model_id"]),
                             (10.0, 8, 8, 1, TOK8, enc.model_id))
            self.assertEqual((tokens.dtype, tokens.shape), (np.float32, (32,)))
            self.assertTrue(np.all(np.isfinite(tokens)))

    def test_a_backlog_of_frames_is_all_delivered_at_the_end(self):
        # 300 long frames queued at once: the encoder must write every one out before it
        # finishes (GNU Radio's pdu_to_tagged_stream, used before, dropped queued PDUs here)
        enc = jscc_encoder("text", "test_text_jscc_encoder", "", 8, 10.0, "packet_len", "cpu", 1, 64)
        dec = jscc_decoder("text", "test_text_jscc_decoder", "", "", 10.0, "packet_len", "cpu", 1, 64)
        channel = block_fading_channel("rayleigh", 10.0, 0, 0.0, 1.0, 1, "packet_len")
        ids = np.random.default_rng(0).integers(0, 64, (300, 50)).astype(np.int32)
        out = link(enc, dec, [pdu({"row": i}, row) for i, row in enumerate(ids)], channel)
        self.assertEqual(dec.nitems_read(0), 300 * 50 * 8)
        self.assertEqual(len(out), 300)
        self.assertEqual([m["row"] for m, _ in out], list(range(300)))
        self.assertEqual([m["frame_id"] for m, _ in out], list(range(300)))
        for m, got in out:
            self.assertEqual((got.dtype, got.shape, m["n_tokens"], m["rate"]), (np.int32, (50,), 50, 8))
            self.assertTrue(np.all((got >= 0) & (got < 64)))

    def test_text_frames_become_ids(self):
        enc = jscc_encoder("text", "test_text_jscc_encoder", "", 4, 20.0, "packet_len", "cpu")
        dec = jscc_decoder("text", "test_text_jscc_decoder", "", "test_text_jscc_encoder", 20.0)
        sent = [np.array([1, 7, 9, 11, 2], np.int32), np.array([1, 30, 2], np.int32)]
        out = link(enc, dec, [pdu({"q": 0}, sent[0]), pdu({"q": 1}, sent[1])])
        self.assertEqual(len(out), 2)
        for q, (meta, ids) in enumerate(out):
            self.assertEqual((meta["q"], meta["n_tokens"], meta["rate"], meta["modality"], meta["model_id"]),
                             (q, len(sent[q]), 4, "text", "text_vocab"))
            self.assertEqual((ids.dtype, ids.shape), (np.int32, sent[q].shape))
            # no channel and no CSI tags: h = 1 at 20 dB; the untrained model's argmax, token by token
            np.testing.assert_array_equal(ids, text_reference(sent[q], 4, 20.0))


if __name__ == "__main__":
    gr_unittest.run(qa_jscc_decoder)
