#!/usr/bin/env python3
"""QA for tokenizer (with the tiny fixture models: no torch needed)."""
import os

import numpy as np
import pmt
from gnuradio import gr_unittest

from unitocom_testing import FIXTURE_MODELS, message_collector, pdu, run_flowgraph, run_pdus, unpack

os.environ["UNITOCOM_MODEL_DIR"] = str(FIXTURE_MODELS)
from gnuradio.unitocom import tokenizer  # noqa: E402
from gnuradio.unitocom.data import vocab  # noqa: E402
from gnuradio.unitocom.runtime import model_store  # noqa: E402
from gnuradio.unitocom.runtime.onnx_session import make_session  # noqa: E402

TOK8 = model_store.model_id(model_store.find("test_tokenizer_s8", "genib"))


def image_bytes(seed):
    return np.random.default_rng(seed).integers(0, 256, 64 * 64 * 3).astype(np.uint8)


def image_pdu(seed, meta=None):
    return pdu(meta or {}, image_bytes(seed))


def reference_tokens(img):
    """What the tokenizer must publish for one u8 image: the model's μ, flattened."""
    sess = make_session(str(model_store.find("test_tokenizer_s8", "genib")), 1, "cpu")
    x = (img.astype(np.float32) / 255.0).reshape(64, 64, 3).transpose(2, 0, 1)[None]
    return sess.run(None, {"image": x})[0][0].ravel()


def reference_image(tokens):
    """What the de-tokenizer must publish for one token vector: u8 RGB bytes, row-major."""
    sess = make_session(str(model_store.find("test_detokenizer_s8", "genib")), 1, "cpu")
    im = sess.run(None, {"tokens": np.asarray(tokens, np.float32).reshape(1, 8, 4)})[0][0]
    return np.round(np.clip(im, 0, 1) * 255).astype(np.uint8).transpose(1, 2, 0).ravel()


class qa_tokenizer(gr_unittest.TestCase):

    def test_defaults_and_bad_arguments(self):
        tokenizer(modality="text")
        for kwargs in ({"modality": "video"}, {"max_batch": 0}, {"model": "no_such_model"},
                       {"model": "test_detokenizer_s8"}, {"threads": 0}):
            with self.assertRaises(ValueError, msg=str(kwargs)):
                tokenizer(**kwargs)

    def test_images_become_token_pdus_with_metadata(self):
        blk = tokenizer("image", "test_tokenizer_s8", "genib", "cpu", 1, 4)
        self.assertEqual(blk.model_id, TOK8)
        msgs = [image_pdu(i, {"frame_id": i, "user": "u%d" % i}) for i in range(10)]
        out = [unpack(m) for m in run_pdus(blk, "pdu", "tokens", msgs)]
        self.assertEqual(len(out), 10)
        for i, (meta, vec) in enumerate(out):
            self.assertEqual((meta["frame_id"], meta["user"]), (i, "u%d" % i))   # order and metadata kept
            self.assertEqual((meta["modality"], meta["n_tokens"], meta["token_dim"], meta["model_id"]),
                             ("image", 8, 4, TOK8))
            self.assertEqual((vec.dtype, vec.shape), (np.float32, (32,)))
            # the tokens are the model's μ for *this* image (batched with 3 others)
            np.testing.assert_allclose(vec, reference_tokens(image_bytes(i)), rtol=1e-5, atol=1e-6)
        # batching does not change results: the same image alone gives the same tokens
        alone = run_pdus(tokenizer("image", "test_tokenizer_s8", "genib", "cpu", 1, 1), "pdu", "tokens", [image_pdu(3)])
        self.assertEqual(len(alone), 1)
        np.testing.assert_allclose(unpack(alone[0])[1], out[3][1], rtol=1e-5, atol=1e-6)

    def test_float_images_are_tokenized_like_bytes(self):
        img = image_bytes(7)
        out = run_pdus(tokenizer("image", "test_tokenizer_s8", "genib", "cpu"), "pdu", "tokens",
                       [pdu({"k": 0}, img), pdu({"k": 1}, img.astype(np.float32) / 255.0)])
        (m0, v0), (m1, v1) = [unpack(m) for m in out]
        self.assertEqual((m0["k"], m1["k"]), (0, 1))
        np.testing.assert_allclose(v1, v0, rtol=1e-5, atol=1e-6)

    def test_malformed_pdus_are_dropped(self):
        blk = tokenizer("image", "test_tokenizer_s8", "genib", "cpu")
        nan = np.full(64 * 64 * 3, np.nan, np.float32)
        bad = [pmt.intern("hello"), pdu({}, np.zeros(10, np.uint8)), pdu({}, nan),
               pdu({}, np.zeros(64 * 64 * 3, np.int32)), pmt.cons(pmt.PMT_T, pmt.init_u8vector(1, [0]))]
        out = run_pdus(blk, "pdu", "tokens", bad + [image_pdu(1, {"frame_id": 99})] + bad)
        self.assertEqual(len(out), 1)
        meta, vec = unpack(out[0])
        self.assertEqual(meta["frame_id"], 99)                          # the good one, unharmed
        np.testing.assert_allclose(vec, reference_tokens(image_bytes(1)), rtol=1e-5, atol=1e-6)

    def test_text_becomes_vocabulary_ids(self):
        blk = tokenizer("text")
        text = "is the small red cube left of the large sphere?"
        good = pdu({"session_id": 3}, np.frombuffer(text.encode(), np.uint8))
        again = pdu({"session_id": 4}, np.frombuffer(text.encode(), np.uint8))
        bad = pdu({}, np.frombuffer("is the dog red?".encode(), np.uint8))
        not_utf8 = pdu({}, np.array([0xff, 0xfe, 0x41], np.uint8))
        out = [unpack(m) for m in run_pdus(blk, "pdu", "tokens", [bad, good, not_utf8, again])]
        self.assertEqual(len(out), 2)
        want = np.asarray(vocab.encode(text), np.int32)
        self.assertEqual((want[0], want[-1]), (vocab.TOKENS.index("<bos>"), vocab.TOKENS.index("<eos>")))
        for (meta, ids), session in zip(out, (3, 4)):
            self.assertEqual(ids.dtype, np.int32)
            np.testing.assert_array_equal(ids, want)
            self.assertEqual(vocab.decode(ids.tolist()), text)
            self.assertEqual((meta["session_id"], meta["modality"], meta["n_tokens"], meta["token_dim"],
                              meta["model_id"]), (session, "text", len(want), 1, "text_vocab"))

    def test_audio_becomes_25_tokens_per_second(self):
        blk = tokenizer("audio", "test_audio_tokenizer", "genib", "cpu", 1, 8)
        rng = np.random.default_rng(5)
        clips = [0.1 * rng.standard_normal(n).astype(np.float32) for n in (16000, 8000, 16000, 4321)]
        msgs = [pdu({"utt": i}, c) for i, c in enumerate(clips)]
        msgs.append(pdu({"utt": 4, "sample_rate": 16000}, (clips[1] * 32767).astype(np.int16)))
        out = run_pdus(blk, "pdu", "tokens", msgs)
        self.assertEqual(len(out), 5)
        # 16000 samples → 101 log-mel frames → padded to 104 → 26 tokens; 8000 → 51 → 52 → 13; 4321 → 28 → 7
        model_id = model_store.model_id(model_store.find("test_audio_tokenizer", "genib"))
        for i, (msg, n_samples, n_tokens) in enumerate(zip(out, (16000, 8000, 16000, 4321, 8000), (26, 13, 26, 7, 13))):
            meta, vec = unpack(msg)
            self.assertEqual((meta["utt"], meta["modality"], meta["n_tokens"], meta["token_dim"], meta["n_samples"]),
                             (i, "audio", n_tokens, 4, n_samples))
            self.assertEqual(meta["model_id"], model_id)
            self.assertEqual((vec.dtype, len(vec)), (np.float32, n_tokens * 4))
            self.assertTrue(np.all(np.isfinite(vec)))
        # different clips give different tokens (the same length too: 0 and 2)
        self.assertFalse(np.allclose(unpack(out[0])[1], unpack(out[2])[1]))
        # clips of different lengths batched together give what each gives alone
        alone = run_pdus(tokenizer("audio", "test_audio_tokenizer", "genib", "cpu", 1, 1),
                         "pdu", "tokens", [pdu({}, clips[3])])
        self.assertEqual(len(alone), 1)
        np.testing.assert_allclose(unpack(alone[0])[1], unpack(out[3])[1], rtol=1e-5, atol=1e-6)
        # int16 input is scaled like the float clip it came from
        np.testing.assert_allclose(unpack(out[4])[1], unpack(out[1])[1], rtol=1e-3, atol=1e-3)

    def test_malformed_audio_is_dropped(self):
        blk = tokenizer("audio", "test_audio_tokenizer", "genib", "cpu")
        good = 0.1 * np.random.default_rng(9).standard_normal(3200).astype(np.float32)
        nan = good.copy()
        nan[7] = np.nan
        bad = [pdu({"sample_rate": 8000}, good), pdu({}, np.zeros(100, np.float32)), pdu({}, nan),
               pdu({}, np.zeros(3200, np.uint8)), pdu({}, np.zeros(61 * 16000, np.float32))]
        out = run_pdus(blk, "pdu", "tokens", bad + [pdu({"utt": 7}, good)])
        self.assertEqual(len(out), 1)
        meta, vec = unpack(out[0])
        self.assertEqual((meta["utt"], meta["n_samples"], meta["n_tokens"], len(vec)), (7, 3200, 6, 24))
        alone = run_pdus(tokenizer("audio", "test_audio_tokenizer", "genib", "cpu"), "pdu", "tokens", [pdu({}, good)])
        np.testing.assert_allclose(vec, unpack(alone[0])[1], rtol=1e-5, atol=1e-6)

    def test_a_finishing_flowgraph_delivers_every_pdu(self):
        # stream → PDUs → tokenizer → detokenizer: when the source ends, GNU Radio's "done"
        # reaches each message block after the PDUs sent before it; none may be lost or reordered.
        from gnuradio import blocks, gr, pdu as gr_pdu
        from gnuradio.unitocom import detokenizer
        n = 40
        data = np.random.default_rng(0).integers(0, 256, n * 12288).astype(np.uint8)
        tb = gr.top_block()
        src = blocks.vector_source_b(data.tolist(), False, 1, [])
        frames = blocks.stream_to_tagged_stream(gr.sizeof_char, 1, 12288, "packet_len")
        to_pdu = gr_pdu.tagged_stream_to_pdu(gr.types.byte_t, "packet_len")
        tok = tokenizer("image", "test_tokenizer_s8", "genib", "cpu", 1, 8)
        det = detokenizer("image", "test_detokenizer_s8", "genib", "", "cpu", 1, 8)
        tokens, images = message_collector(), message_collector()
        tb.connect(src, frames, to_pdu)
        tb.msg_connect(to_pdu, "pdus", tok, "pdu")
        tb.msg_connect(tok, "tokens", det, "tokens")
        tb.msg_connect(tok, "tokens", tokens, "in")
        tb.msg_connect(det, "pdu", images, "in")
        run_flowgraph(tb)
        self.assertEqual((len(tokens.messages), len(images.messages)), (n, n))
        for i, ((_, vec), (meta, img)) in enumerate(zip(tokens.pdus(), images.pdus())):
            want = reference_tokens(data[i * 12288:(i + 1) * 12288])
            np.testing.assert_allclose(vec, want, rtol=1e-5, atol=1e-5, err_msg=f"tokens of image {i}")
            self.assertEqual((meta["width"], meta["height"], meta["channels"], img.dtype), (64, 64, 3, np.uint8))
            np.testing.assert_allclose(img.astype(int), reference_image(vec).astype(int), atol=1,
                                       err_msg=f"image {i}")


if __name__ == "__main__":
    gr_unittest.run(qa_tokenizer)
