#!/usr/bin/env python3
"""QA for ber_meter."""
import numpy as np
from gnuradio import blocks, gr, gr_unittest

from gnuradio.unitocom import ber_meter


class qa_ber_meter(gr_unittest.TestCase):

    def run_meter(self, ref, rx, **kwargs):
        tb = gr.top_block()
        meter = ber_meter(**kwargs)
        tb.connect(blocks.vector_source_b(list(ref)), (meter, 0))
        tb.connect(blocks.vector_source_b(list(rx)), (meter, 1))
        tb.run()
        return meter

    def test_counts_errors_exactly(self):
        rng = np.random.default_rng(0)
        ref = rng.integers(0, 2, 10_000).astype(np.uint8)
        rx = ref.copy()
        flip = rng.choice(10_000, 123, replace=False)
        rx[flip] ^= 1
        meter = self.run_meter(ref, rx, label="")
        self.assertEqual((meter.errors(), meter.bits()), (123, 10_000))
        self.assertAlmostEqual(meter.ber(), 0.0123)
        meter.reset()
        self.assertEqual(meter.bits(), 0)
        self.assertTrue(np.isnan(meter.ber()))

    def test_skip_and_only_lsb_counts(self):
        ref = np.zeros(100, np.uint8)
        rx = np.full(100, 2, np.uint8)            # bit 1 set, LSB equal
        rx[:10] = 1
        meter = self.run_meter(ref, rx, label="", skip=10)
        self.assertEqual((meter.errors(), meter.bits()), (0, 90))

    def test_bad_arguments(self):
        with self.assertRaises(ValueError):
            ber_meter(skip=-1)

    def test_more_bad_arguments(self):
        for kwargs in ({"skip": None}, {"skip": "3"}, {"skip": 1.5}, {"skip": float("nan")}, {"label": None}):
            with self.assertRaises(ValueError, msg=str(kwargs)):
                ber_meter(**kwargs)

    def test_any_byte_values_count_by_their_lsb(self):
        ref = np.arange(256, dtype=np.uint8)
        rx = ref ^ np.uint8(0xFE)                  # every bit but the LSB flipped
        rx[::2] ^= 1                               # and the LSB of every other item
        meter = self.run_meter(ref, rx, label="", skip=2 ** 70)
        self.assertEqual(meter.bits(), 0)
        meter = self.run_meter(ref, rx, label="")
        self.assertEqual((meter.errors(), meter.bits()), (128, 256))


if __name__ == "__main__":
    gr_unittest.run(qa_ber_meter)
