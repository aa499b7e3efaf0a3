#!/usr/bin/env python3
"""QA for the tx hier block (tiny fixture models); qa_rx runs whole links."""
import os

from gnuradio import gr_unittest

from unitocom_testing import FIXTURE_MODELS

os.environ["UNITOCOM_MODEL_DIR"] = str(FIXTURE_MODELS)
from gnuradio.unitocom import tx  # noqa: E402

TX_ARGS = ("image", "test_tokenizer_s8", "genib", "test_image_jscc_encoder_s8")


class qa_tx(gr_unittest.TestCase):

    def test_arguments_and_mismatched_models(self):
        tx(*TX_ARGS)
        with self.assertRaisesRegex(ValueError, "trained on tokens of"):
            tx("image", "test_tokenizer_s16", "genib", "test_image_jscc_encoder_s8")
        with self.assertRaises(ValueError):
            tx("video")
        for kwargs in ({"rate": 3}, {"power": 0}, {"snr_db": float("nan")}):
            with self.assertRaises(ValueError, msg=str(kwargs)):
                tx(*TX_ARGS, **kwargs)

if __name__ == "__main__":
    gr_unittest.run(qa_tx)
