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


if __name__ == "__main__":
    gr_unittest.run(qa_tokenizer)
