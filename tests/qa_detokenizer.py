#!/usr/bin/env python3
"""QA for detokenizer (with the tiny fixture models: no torch needed)."""
import os

import numpy as np
import pmt
from gnuradio import gr_unittest

from unitocom_testing import FIXTURE_MODELS, pdu, post_and_collect

os.environ["UNITOCOM_MODEL_DIR"] = str(FIXTURE_MODELS)
from gnuradio.unitocom import detokenizer, tokenizer  # noqa: E402
from gnuradio.unitocom.data import vocab  # noqa: E402


class qa_detokenizer(gr_unittest.TestCase):

    def test_defaults_and_bad_arguments(self):
        detokenizer(modality="text")
        for kwargs in ({"modality": "video"}, {"model": "test_tokenizer_s8"}, {"max_batch": 0},
                       {"modality": "audio", "model": "test_audio_detokenizer", "vocoder_iterations": 0},
                       {"modality": "audio", "model": "test_detokenizer_s8"}):
            with self.assertRaises(ValueError, msg=str(kwargs)):
                detokenizer(**kwargs)

    def test_mismatched_pair_is_refused(self):
        detokenizer("image", "test_detokenizer_s8", "genib", "test_tokenizer_s8", "cpu")
        with self.assertRaisesRegex(ValueError, "token_len"):
            detokenizer("image", "test_detokenizer_s8", "genib", "test_tokenizer_s16", "cpu")

    def test_tokens_become_images(self):
        blk = detokenizer("image", "test_detokenizer_s8", "genib", "", "cpu", 1, 4)
        rng = np.random.default_rng(0)
        msgs = [pdu({"frame_id": i}, rng.standard_normal(32).astype(np.float32)) for i in range(6)]
        out = post_and_collect(blk, "tokens", "pdu", msgs, 6)
        self.assertEqual(len(out), 6)
        for i, msg in enumerate(out):
            meta = pmt.to_python(pmt.car(msg))
            self.assertEqual((meta["frame_id"], meta["width"], meta["height"], meta["channels"]), (i, 64, 64, 3))
            self.assertEqual(len(pmt.u8vector_elements(pmt.cdr(msg))), 64 * 64 * 3)

    def test_malformed_token_pdus_are_dropped(self):
        blk = detokenizer("image", "test_detokenizer_s8", "genib", "", "cpu")
        bad = [pmt.PMT_NIL, pdu({}, np.zeros(31, np.float32)), pdu({}, np.full(32, np.inf, np.float32)),
               pdu({}, np.zeros(32, np.uint8))]
        out = post_and_collect(blk, "tokens", "pdu", bad + [pdu({}, np.zeros(32, np.float32))], 1)
        self.assertEqual(len(out), 1)

    def test_text_round_trip_through_tokenizer_and_detokenizer(self):
        text = "a large red metal cube left of a small blue rubber sphere"
        ids = post_and_collect(tokenizer("text"), "pdu", "tokens",
                               [pdu({}, np.frombuffer(text.encode(), np.uint8))], 1)
        back = post_and_collect(detokenizer("text"), "tokens", "pdu",
                                ids + [pdu({}, np.array([999], np.int32))], 1)
        self.assertEqual(len(back), 1)
        self.assertEqual(bytes(pmt.u8vector_elements(pmt.cdr(back[0]))).decode(), text)
        self.assertEqual(len(vocab.TOKENS), 64)

    def test_audio_tokens_become_16khz_waveforms(self):
        blk = detokenizer("audio", "test_audio_detokenizer", "genib", "test_audio_tokenizer", "cpu", 1, 4, 4)
        rng = np.random.default_rng(1)
        msgs = [pdu({"utt": 0, "n_samples": 16000}, rng.standard_normal(26 * 4).astype(np.float32)),
                pdu({"utt": 1}, rng.standard_normal(7 * 4).astype(np.float32))]
        out = post_and_collect(blk, "tokens", "pdu", msgs, 2)
        self.assertEqual(len(out), 2)
        metas = [pmt.to_python(pmt.car(m)) for m in out]
        waves = [np.array(pmt.f32vector_elements(pmt.cdr(m))) for m in out]
        self.assertEqual([(m["utt"], m["sample_rate"]) for m in metas], [(0, 16000), (1, 16000)])
        self.assertEqual(len(waves[0]), 16000)                    # trimmed to the clip's n_samples
        self.assertEqual(len(waves[1]), (7 * 4 - 1) * 160)        # no n_samples: every decoded frame
        for w in waves:
            self.assertTrue(np.all(np.isfinite(w)) and np.max(np.abs(w)) <= 1.0)

    def test_malformed_audio_token_pdus_are_dropped(self):
        blk = detokenizer("audio", "test_audio_detokenizer", "genib", "", "cpu", 1, 4, 2)
        bad = [pdu({}, np.zeros(30, np.float32)), pdu({}, np.zeros(0, np.float32)),
               pdu({}, np.full(8, np.nan, np.float32)), pdu({}, np.zeros(4 * 2000, np.float32)),
               pdu({}, np.zeros(8, np.int32))]
        out = post_and_collect(blk, "tokens", "pdu", bad + [pdu({}, np.zeros(8, np.float32))], 1)
        self.assertEqual(len(out), 1)


if __name__ == "__main__":
    gr_unittest.run(qa_detokenizer)
