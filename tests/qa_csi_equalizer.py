#!/usr/bin/env python3
"""QA for csi_equalizer."""
import numpy as np
import pmt
from gnuradio import gr_unittest

from unitocom_testing import make_tag, run_chain, tag_values
from gnuradio.unitocom import block_fading_channel, csi_equalizer


def symbols(n, seed=0):
    rng = np.random.default_rng(seed)
    return ((rng.integers(0, 2, n) * 2 - 1) + 1j * (rng.integers(0, 2, n) * 2 - 1)).astype(np.complex64) / np.sqrt(2)


class qa_csi_equalizer(gr_unittest.TestCase):

    def test_defaults_and_bad_arguments(self):
        csi_equalizer()
        for kwargs in ({"method": "lms"}, {"signal_power": 0}, {"signal_power": float("nan")}):
            with self.assertRaises(ValueError):
                csi_equalizer(**kwargs)

    def test_zf_undoes_the_channel(self):
        x = symbols(20_000)
        chan = block_fading_channel("rayleigh", 60.0, 100, seed=1)
        y, tags = run_chain(x, [], chan, csi_equalizer("zf"))
        self.assertEqual(len(y), len(x))
        self.assertLess(np.median(np.abs(y - x)), 0.01)
        gains = tag_values(tags, "eq_gain")
        self.assertEqual(len(gains), 200)
        self.assertTrue(all(g == 1.0 for _, g in gains))
        h = dict(tag_values(tags, "h"))
        for o, e in tag_values(tags, "eq_noise_var"):
            self.assertAlmostEqual(e, 1e-6 / abs(h[o]) ** 2, delta=1e-9 / abs(h[o]) ** 2)

    def test_mmse_is_the_biased_scaled_zf(self):
        h, nv = 0.3 - 0.4j, 0.5
        x = symbols(1000)
        y_in = (h * x).astype(np.complex64)
        tags = [make_tag(0, "h", h), make_tag(0, "noise_var", nv)]
        y, out_tags = run_chain(y_in, tags, csi_equalizer("mmse", 1.0))
        beta = abs(h) ** 2 / (abs(h) ** 2 + nv)
        self.assertTrue(np.allclose(y, beta * x, atol=1e-5))
        self.assertAlmostEqual(tag_values(out_tags, "eq_gain")[0][1], beta, places=6)
        eff = abs(h) ** 2 * nv / (abs(h) ** 2 + nv) ** 2
        self.assertAlmostEqual(tag_values(out_tags, "eq_noise_var")[0][1], eff, places=6)

    def test_samples_before_csi_are_zeroed_and_bad_tags_ignored(self):
        x = symbols(100)
        tags = [make_tag(40, "h", 2.0 + 0j), make_tag(40, "noise_var", 0.1),
                make_tag(70, "h", complex(np.nan, 0)), make_tag(80, "noise_var", -1.0)]
        blk = csi_equalizer("zf")
        y, out_tags = run_chain(x, tags, blk)
        self.assertEqual(len(y), 100)
        self.assertTrue(np.all(y[:40] == 0))
        self.assertTrue(np.allclose(y[40:], x[40:] / 2))     # bad tags left h = 2 in force
        self.assertEqual(blk.unequalized_samples, 40)
        self.assertEqual([o for o, _ in tag_values(out_tags, "eq_gain")], [40])

    def test_more_bad_arguments(self):
        for kwargs in ({"method": None}, {"method": ["zf"]}, {"signal_power": "1"}, {"signal_power": None},
                       {"signal_power": float("inf")}, {"signal_power": 1e30}):
            with self.assertRaises(ValueError, msg=str(kwargs)):
                csi_equalizer(**kwargs)

    def test_hostile_tags_and_samples(self):
        # h beyond tags.MAX_ABS_H, σ² of no SNR in -50…100 dB, wrong types, two tags at
        # one offset (the valid one holds); NaN/Inf/huge samples come out as 0.
        x = symbols(100)
        x[[50, 51, 52]] = [np.nan, np.inf, 3e38]
        tags = [make_tag(0, "h", 0.5 + 0j), make_tag(0, "noise_var", 0.01), make_tag(0, "h", 1e30),
                make_tag(10, "h", pmt.intern("x")), make_tag(10, "noise_var", 1e30), make_tag(20, "h", pmt.PMT_T),
                make_tag(20, "noise_var", pmt.from_uint64(2 ** 64 - 1)), make_tag(30, "h", pmt.make_dict()),
                make_tag(30, "noise_var", -0.0), make_tag(40, "noise_var", pmt.from_complex(1j))]
        y, out_tags = run_chain(x, tags, csi_equalizer("mmse"))
        self.assertEqual(len(y), 100)
        self.assertTrue(np.all(np.isfinite(y)))
        self.assertTrue(np.all(y[50:53] == 0))
        good = np.delete(np.arange(100), [50, 51, 52])
        self.assertTrue(np.allclose(y[good], x[good] * 0.5 / (0.25 + 0.01), rtol=1e-5))
        self.assertEqual([o for o, _ in tag_values(out_tags, "eq_gain")], [0])


if __name__ == "__main__":
    gr_unittest.run(qa_csi_equalizer)
