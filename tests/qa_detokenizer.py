#!/usr/bin/env python3
"""QA for detokenizer (with the tiny fixture models: no torch needed)."""
import os

import numpy as np
import pmt
from gnuradio import gr_unittest

from unitocom_testing import FIXTURE_MODELS, pdu, run_pdus, unpack

os.environ["UNITOCOM_MODEL_DIR"] = str(FIXTURE_MODELS)
from gnuradio.unitocom import detokenizer, tokenizer  # noqa: E402
from gnuradio.unitocom.data import vocab  # noqa: E402
from gnuradio.unitocom.runtime import model_store  # noqa: E402
from gnuradio.unitocom.runtime.onnx_session import make_session  # noqa: E402


def reference_image(tokens):
    """What the de-tokenizer must publish for 8·4 tokens: u8 RGB bytes, row-major (H, W, 3)."""
    sess = make_session(str(model_store.find("test_detokenizer_s8", "genib")), 1, "cpu")
    im = sess.run(None, {"tokens": np.asarray(tokens, np.float32).reshape(1, 8, 4)})[0][0]
    return np.round(np.clip(im, 0, 1) * 255).astype(np.uint8).transpose(1, 2, 0).ravel()


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
        tokens = [rng.standard_normal(32).astype(np.float32) for _ in range(6)]
        msgs = [pdu({"frame_id": i, "snr_db": 3.0 + i}, t) for i, t in enumerate(tokens)]
        out = [unpack(m) for m in run_pdus(blk, "tokens", "pdu", msgs)]
        self.assertEqual(len(out), 6)
        for i, (meta, img) in enumerate(out):
            self.assertEqual((meta["frame_id"], meta["snr_db"], meta["width"], meta["height"], meta["channels"]),
                             (i, 3.0 + i, 64, 64, 3))
            self.assertEqual((img.dtype, img.shape), (np.uint8, (64 * 64 * 3,)))
            # the model's image for *these* tokens (batched with others: allow one rounding step)
            np.testing.assert_allclose(img.astype(int), reference_image(tokens[i]).astype(int), atol=1)
        self.assertGreater(np.mean(out[0][1] != out[1][1]), 0.1)        # different tokens, different images

    def test_malformed_token_pdus_are_dropped(self):
        blk = detokenizer("image", "test_detokenizer_s8", "genib", "", "cpu")
        bad = [pmt.PMT_NIL, pdu({}, np.zeros(31, np.float32)), pdu({}, np.full(32, np.inf, np.float32)),
               pdu({}, np.zeros(32, np.uint8)), pdu({}, np.zeros(33, np.float32))]
        good = np.random.default_rng(4).standard_normal(32).astype(np.float32)
        out = run_pdus(blk, "tokens", "pdu", bad + [pdu({"frame_id": 5}, good)] + bad)
        self.assertEqual(len(out), 1)
        meta, img = unpack(out[0])
        self.assertEqual(meta["frame_id"], 5)
        np.testing.assert_allclose(img.astype(int), reference_image(good).astype(int), atol=1)

    def test_text_round_trip_through_tokenizer_and_detokenizer(self):
        texts = ["a large red metal cube left of a small blue rubber sphere", "is there a red cube?"]
        ids = run_pdus(tokenizer("text"), "pdu", "tokens",
                       [pdu({"q": i}, np.frombuffer(t.encode(), np.uint8)) for i, t in enumerate(texts)])
        self.assertEqual(len(ids), 2)
        bad = [pdu({}, np.array([999], np.int32)), pdu({}, np.array([1, -1, 2], np.int32)),
               pdu({}, np.array([1, 2], np.float32))]
        msgs = bad[:1] + ids[:1] + bad[1:] + ids[1:]
        back = [unpack(m) for m in run_pdus(detokenizer("text"), "tokens", "pdu", msgs)]
        self.assertEqual(len(back), 2)
        for i, (meta, data) in enumerate(back):
            self.assertEqual(data.dtype, np.uint8)
            self.assertEqual(bytes(data).decode(), texts[i])
            self.assertEqual((meta["q"], meta["modality"]), (i, "text"))       # the token PDU's metadata kept
        self.assertEqual(len(vocab.TOKENS), 64)

    def test_audio_tokens_become_16khz_waveforms(self):
        blk = detokenizer("audio", "test_audio_detokenizer", "genib", "test_audio_tokenizer", "cpu", 1, 4, 4)
        rng = np.random.default_rng(1)
        msgs = [pdu({"utt": 0, "n_samples": 16000}, rng.standard_normal(26 * 4).astype(np.float32)),
                pdu({"utt": 1}, rng.standard_normal(7 * 4).astype(np.float32))]
        out = run_pdus(blk, "tokens", "pdu", msgs)
        self.assertEqual(len(out), 2)
        metas = [pmt.to_python(pmt.car(m)) for m in out]
        waves = [unpack(m)[1] for m in out]
        self.assertEqual([(m["utt"], m["sample_rate"]) for m in metas], [(0, 16000), (1, 16000)])
        self.assertEqual(metas[0]["n_samples"], 16000)
        self.assertEqual(len(waves[0]), 16000)                    # trimmed to the clip's n_samples
        self.assertEqual(len(waves[1]), (7 * 4 - 1) * 160)        # no n_samples: every decoded frame
        for w in waves:
            self.assertEqual(w.dtype, np.float32)
            self.assertTrue(np.all(np.isfinite(w)) and np.max(np.abs(w)) <= 1.0)
            self.assertGreater(np.max(np.abs(w)), 0.0)            # a sound, not silence

    def test_malformed_audio_token_pdus_are_dropped(self):
        blk = detokenizer("audio", "test_audio_detokenizer", "genib", "", "cpu", 1, 4, 2)
        bad = [pdu({}, np.zeros(30, np.float32)), pdu({}, np.zeros(0, np.float32)),
               pdu({}, np.full(8, np.nan, np.float32)), pdu({}, np.zeros(4 * 2000, np.float32)),
               pdu({}, np.zeros(8, np.int32))]
        out = run_pdus(blk, "tokens", "pdu", bad + [pdu({"utt": 3}, np.zeros(8, np.float32))])
        self.assertEqual(len(out), 1)
        meta, wave = unpack(out[0])
        self.assertEqual((meta["utt"], meta["sample_rate"], len(wave)), (3, 16000, (2 * 4 - 1) * 160))


if __name__ == "__main__":
    gr_unittest.run(qa_detokenizer)
