#!/usr/bin/env python3
"""QA for tokenizer (with the tiny fixture models: no torch needed)."""
import os

import numpy as np
import pmt
from gnuradio import gr_unittest

from unitocom_testing import FIXTURE_MODELS, pdu, post_and_collect

os.environ["UNITOCOM_MODEL_DIR"] = str(FIXTURE_MODELS)
from gnuradio.unitocom import tokenizer  # noqa: E402
from gnuradio.unitocom.data import vocab  # noqa: E402


def image_pdu(seed, meta=None):
    img = np.random.default_rng(seed).integers(0, 256, 64 * 64 * 3).astype(np.uint8)
    return pdu(meta or {}, img)


class qa_tokenizer(gr_unittest.TestCase):

    def test_defaults_and_bad_arguments(self):
        tokenizer(modality="text")
        for kwargs in ({"modality": "video"}, {"max_batch": 0}, {"model": "no_such_model"},
                       {"model": "test_detokenizer_s8"}, {"threads": 0}):
            with self.assertRaises(ValueError, msg=str(kwargs)):
                tokenizer(**kwargs)

    def test_images_become_token_pdus_with_metadata(self):
        blk = tokenizer("image", "test_tokenizer_s8", "genib", "cpu", 1, 4)
        msgs = [image_pdu(i, {"frame_id": i}) for i in range(10)]
        out = post_and_collect(blk, "pdu", "tokens", msgs, 10)
        self.assertEqual(len(out), 10)
        for i, msg in enumerate(out):
            meta, vec = pmt.to_python(pmt.car(msg)), pmt.f32vector_elements(pmt.cdr(msg))
            self.assertEqual(meta["frame_id"], i)                      # order and metadata kept
            self.assertEqual((meta["modality"], meta["n_tokens"], meta["token_dim"]), ("image", 8, 4))
            self.assertTrue(meta["model_id"].startswith("test_tokenizer_s8-genib-"))
            self.assertEqual(len(vec), 32)
            self.assertTrue(np.all(np.isfinite(vec)))
        # batching does not change results: the same image alone gives the same tokens
        alone = post_and_collect(tokenizer("image", "test_tokenizer_s8", "genib", "cpu", 1, 1),
                                 "pdu", "tokens", [image_pdu(3)], 1)
        np.testing.assert_allclose(pmt.f32vector_elements(pmt.cdr(alone[0])),
                                   pmt.f32vector_elements(pmt.cdr(out[3])), rtol=1e-5, atol=1e-6)

    def test_malformed_pdus_are_dropped(self):
        blk = tokenizer("image", "test_tokenizer_s8", "genib", "cpu")
        nan = np.full(64 * 64 * 3, np.nan, np.float32)
        bad = [pmt.intern("hello"), pdu({}, np.zeros(10, np.uint8)), pdu({}, nan),
               pdu({}, np.zeros(64 * 64 * 3, np.int32)), pmt.cons(pmt.PMT_T, pmt.init_u8vector(1, [0]))]
        out = post_and_collect(blk, "pdu", "tokens", bad + [image_pdu(1)], 1)
        self.assertEqual(len(out), 1)

    def test_text_becomes_vocabulary_ids(self):
        blk = tokenizer("text")
        text = "is the small red cube left of the large sphere?"
        good = pdu({"session_id": 3}, np.frombuffer(text.encode(), np.uint8))
        bad = pdu({}, np.frombuffer("is the dog red?".encode(), np.uint8))
        out = post_and_collect(blk, "pdu", "tokens", [bad, good], 1)
        self.assertEqual(len(out), 1)
        ids = pmt.s32vector_elements(pmt.cdr(out[0]))
        self.assertEqual(vocab.decode(ids), text)
        self.assertEqual(pmt.to_python(pmt.car(out[0]))["modality"], "text")

    def test_audio_becomes_25_tokens_per_second(self):
        blk = tokenizer("audio", "test_audio_tokenizer", "genib", "cpu", 1, 8)
        rng = np.random.default_rng(5)
        clips = [0.1 * rng.standard_normal(n).astype(np.float32) for n in (16000, 8000, 16000, 4321)]
        msgs = [pdu({"utt": i}, c) for i, c in enumerate(clips)]
        msgs.append(pdu({"utt": 4, "sample_rate": 16000}, (clips[1] * 32767).astype(np.int16)))
        out = post_and_collect(blk, "pdu", "tokens", msgs, 5)
        self.assertEqual(len(out), 5)
        # 16000 samples → 101 log-mel frames → padded to 104 → 26 tokens; 8000 → 51 → 52 → 13; 4321 → 28 → 7
        for i, (msg, n_samples, n_tokens) in enumerate(zip(out, (16000, 8000, 16000, 4321, 8000), (26, 13, 26, 7, 13))):
            meta, vec = pmt.to_python(pmt.car(msg)), pmt.f32vector_elements(pmt.cdr(msg))
            self.assertEqual((meta["utt"], meta["modality"], meta["n_tokens"], meta["token_dim"], meta["n_samples"]),
                             (i, "audio", n_tokens, 4, n_samples))
            self.assertTrue(meta["model_id"].startswith("test_audio_tokenizer-genib-"))
            self.assertEqual(len(vec), n_tokens * 4)
        # clips of different lengths batched together give what each gives alone
        alone = post_and_collect(tokenizer("audio", "test_audio_tokenizer", "genib", "cpu", 1, 1),
                                 "pdu", "tokens", [pdu({}, clips[3])], 1)
        np.testing.assert_allclose(pmt.f32vector_elements(pmt.cdr(alone[0])),
                                   pmt.f32vector_elements(pmt.cdr(out[3])), rtol=1e-5, atol=1e-6)
        # int16 input is scaled like the float clip it came from
        np.testing.assert_allclose(pmt.f32vector_elements(pmt.cdr(out[4])),
                                   pmt.f32vector_elements(pmt.cdr(out[1])), rtol=1e-3, atol=1e-3)

    def test_malformed_audio_is_dropped(self):
        blk = tokenizer("audio", "test_audio_tokenizer", "genib", "cpu")
        good = np.zeros(3200, np.float32)
        nan = good.copy()
        nan[7] = np.nan
        bad = [pdu({"sample_rate": 8000}, good), pdu({}, np.zeros(100, np.float32)), pdu({}, nan),
               pdu({}, np.zeros(3200, np.uint8)), pdu({}, np.zeros(61 * 16000, np.float32))]
        out = post_and_collect(blk, "pdu", "tokens", bad + [pdu({}, good)], 1)
        self.assertEqual(len(out), 1)
        self.assertEqual(pmt.to_python(pmt.car(out[0]))["n_samples"], 3200)

    def test_a_finishing_flowgraph_delivers_every_pdu(self):
        # stream → PDUs → tokenizer → detokenizer: when the source ends, GNU Radio's "done"
        # reaches each message block after the PDUs sent before it; none may be lost.
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
        sink = blocks.message_debug()
        tb.connect(src, frames, to_pdu)
        tb.msg_connect(to_pdu, "pdus", tok, "pdu")
        tb.msg_connect(tok, "tokens", det, "tokens")
        tb.msg_connect(det, "pdu", sink, "store")
        tb.run()
        self.assertEqual(sink.num_messages(), n)


if __name__ == "__main__":
    gr_unittest.run(qa_tokenizer)
