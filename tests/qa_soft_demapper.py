#!/usr/bin/env python3
"""QA for soft_demapper and the 16-QAM Gray constellation."""
import numpy as np
import pmt
from gnuradio import blocks, digital, gr, gr_unittest

from unitocom_testing import make_tag, run_chain
from gnuradio.unitocom import qam16_gray, soft_demapper
from gnuradio.unitocom.dsp.constellations import bit_labels
from gnuradio.unitocom.dsp.constellations import llrs


class qa_soft_demapper(gr_unittest.TestCase):

    def test_qam16_gray_is_gray_and_unit_power(self):
        c = qam16_gray()
        p = np.array(c.points())
        self.assertAlmostEqual(np.mean(np.abs(p) ** 2), 1.0, places=6)
        dmin = 2 / np.sqrt(10)
        for i in range(16):
            for j in range(16):
                if abs(abs(p[i] - p[j]) - dmin) < 1e-6:          # nearest neighbours
                    self.assertEqual(bin(i ^ j).count("1"), 1)

    def test_defaults_and_bad_arguments(self):
        soft_demapper()
        for kwargs in ({"constellation": "qam16"}, {"noise_var": 0}, {"noise_var": float("inf")}):
            with self.assertRaises(ValueError):
                soft_demapper(**kwargs)

    def test_noiseless_hard_decisions_round_trip_through_gr_digital(self):
        c = qam16_gray()
        values = np.random.default_rng(0).integers(0, 16, 4000).astype(np.uint8)
        tb = gr.top_block()
        src = blocks.vector_source_b(values.tolist())
        enc = digital.constellation_encoder_bc(c)
        dm = soft_demapper(c, 0.01)
        sl = digital.binary_slicer_fb()
        snk = blocks.vector_sink_b()
        ref = blocks.vector_sink_b()
        unpack = blocks.unpack_k_bits_bb(4)
        tb.connect(src, enc, dm, sl, snk)
        tb.connect(src, unpack, ref)
        tb.run()
        self.assertEqual(len(snk.data()), 4 * len(values))
        self.assertEqual(list(snk.data()), list(ref.data()))

    def test_sign_matches_gr_digital_and_max_log_is_close_at_high_snr(self):
        c = qam16_gray()
        p = np.array(c.points())
        rng = np.random.default_rng(1)
        y = p[rng.integers(0, 16, 500)] + 0.05 * (rng.standard_normal(500) + 1j * rng.standard_normal(500))
        exact = llrs(y, p, bit_labels(c), 1.0, 0.01)
        maxlog = llrs(y, p, bit_labels(c), 1.0, 0.01, max_log=True)
        ref = np.array([c.calc_soft_dec(complex(v), 0.01) for v in y])
        self.assertTrue(np.all(np.sign(exact) == np.sign(ref)))
        self.assertTrue(np.allclose(exact, maxlog, rtol=0.02, atol=0.1))
        self.assertTrue(np.all(np.isfinite(llrs(y * 1e3, p, bit_labels(c), 1.0, 1e-6))))

    def test_uses_eq_tags(self):
        c = qam16_gray()
        p = np.array(c.points())
        y = np.concatenate([p, 0.5 * p]).astype(np.complex64)
        tags = [make_tag(16, "eq_gain", 0.5), make_tag(16, "eq_noise_var", 0.002)]
        out, _ = run_chain(y, tags, soft_demapper(c, 0.01), out_dtype=np.float32)
        bits = (out.reshape(-1, 4) > 0).astype(int)
        self.assertTrue(np.array_equal(bits[16:], bit_labels(c)))   # correct with the gain
        self.assertTrue(np.array_equal(bits[:16], bit_labels(c)))

    def test_more_bad_arguments(self):
        class Broken:
            def points(self):
                raise RuntimeError("no points")
            bits_per_symbol = points
        for kwargs in ({"constellation": Broken()}, {"noise_var": "1"}, {"noise_var": None}, {"noise_var": 1e31},
                       {"noise_var": float("nan")}):
            with self.assertRaises(ValueError, msg=str(kwargs)):
                soft_demapper(**kwargs)

    def test_hostile_symbols_and_tags(self):
        c = qam16_gray()
        p = np.array(c.points())
        y = np.concatenate([p, p]).astype(np.complex64)
        y[[3, 4, 5]] = [np.nan, complex(np.inf, 0), 3e38]
        tags = [make_tag(0, "eq_gain", 1e30), make_tag(0, "eq_noise_var", float("nan")),
                make_tag(8, "eq_gain", pmt.intern("one")), make_tag(8, "eq_noise_var", -1.0),
                make_tag(16, "eq_gain", pmt.from_uint64(2 ** 64 - 1)), make_tag(16, "eq_noise_var", 0.01),
                make_tag(16, "eq_noise_var", pmt.PMT_NIL)]
        out, _ = run_chain(y, tags, soft_demapper(c, 0.01), out_dtype=np.float32)
        self.assertEqual(len(out), 4 * 32)
        llr = out.reshape(-1, 4)
        self.assertTrue(np.all(np.isfinite(llr)))
        self.assertTrue(np.all(llr[3:5] == 0))                    # NaN/Inf symbols: erasures
        good = np.delete(np.arange(32), [3, 4, 5])
        self.assertTrue(np.array_equal((llr[good] > 0).astype(int), bit_labels(c)[good % 16]))


if __name__ == "__main__":
    gr_unittest.run(qa_soft_demapper)
