#!/usr/bin/env python3
"""QA for block_fading_channel: statistics against theory, CSI tags, control."""

import numpy as np
import pmt
from gnuradio import blocks, gr, gr_unittest

from unitocom_testing import length_tags, make_tag, run_chain, tag_values, wait_until
from gnuradio.unitocom import block_fading_channel


def ones(n):
    return np.ones(n, np.complex64)


class qa_block_fading_channel(gr_unittest.TestCase):

    def test_defaults(self):
        blk = block_fading_channel()
        self.assertEqual(blk.snr_db(), 10.0)
        self.assertAlmostEqual(blk.noise_var(), 0.1)

    def test_bad_arguments_raise(self):
        for kwargs in ({"channel_type": "fading"}, {"coherence_len": -1}, {"coherence_len": 1.5},
                       {"signal_power": 0}, {"seed": -2}, {"snr_db": float("inf")},
                       {"channel_type": "rician", "k_factor": -1}, {"len_tag_key": ""}):
            with self.assertRaises(ValueError, msg=str(kwargs)):
                block_fading_channel(**kwargs)

    def test_awgn_noise_power_within_2_percent(self):
        for snr_db, power in ((0.0, 1.0), (10.0, 1.0), (3.0, 4.0)):
            n = 400_000
            blk = block_fading_channel("awgn", snr_db, 0, 0.0, power, 5)
            y, tags = run_chain(np.zeros(n, np.complex64), [], blk)
            nominal = power * 10 ** (-snr_db / 10)
            self.assertLess(abs(np.mean(np.abs(y) ** 2) / nominal - 1), 0.02)
            # circular: equal power in I and Q, no correlation
            self.assertLess(abs(np.var(y.real) / np.var(y.imag) - 1), 0.02)
            self.assertLess(abs(np.mean(y.real * y.imag)) / nominal, 0.01)
            # complex Gaussian: |n|²/σ² ~ Exp(1), so P(|n|² > 2σ²) = e^-2
            self.assertLess(abs(np.mean(np.abs(y) ** 2 > 2 * nominal) - np.exp(-2)), 0.003)
            self.assertAlmostEqual(tag_values(tags, "noise_var")[0][1], nominal)
            self.assertEqual(tag_values(tags, "snr_db"), [(0, snr_db)])

    def test_rayleigh_mean_gain_within_2_percent(self):
        coherence, n_fades = 8, 40_000
        blk = block_fading_channel("rayleigh", 100.0, coherence, seed=11)
        y, tags = run_chain(ones(coherence * n_fades), [], blk)
        h = np.array([v for _, v in tag_values(tags, "h")])
        self.assertEqual(len(h), n_fades)
        self.assertEqual([o for o, _ in tag_values(tags, "h")][:3], [0, 8, 16])
        self.assertLess(abs(np.mean(np.abs(h) ** 2) - 1), 0.02)
        self.assertLess(abs(np.mean(h)), 0.02)            # zero mean
        # |h|² is exponential: P(|h|² < 0.1) = 1 - e^-0.1
        self.assertLess(abs(np.mean(np.abs(h) ** 2 < 0.1) - (1 - np.exp(-0.1))), 0.01)
        # the output really is h·x over each coherence block (noise negligible)
        self.assertTrue(np.allclose(y, np.repeat(h, coherence), atol=1e-4))

    def test_rician_k_factor(self):
        k = 4.0
        blk = block_fading_channel("rician", 100.0, 1, k, seed=3)
        _, tags = run_chain(ones(50_000), [], blk)
        h = np.array([v for _, v in tag_values(tags, "h")])
        self.assertLess(abs(np.mean(np.abs(h) ** 2) - 1), 0.02)
        los = np.abs(np.mean(h)) ** 2
        self.assertLess(abs(los / np.var(h) / k - 1), 0.05)

    def test_one_fade_per_frame_at_length_tags(self):
        lengths = [50, 20, 70]
        blk = block_fading_channel("rayleigh", 100.0, 0, seed=2)
        y, tags = run_chain(ones(140), length_tags(lengths), blk)
        h_tags = tag_values(tags, "h")
        self.assertEqual([o for o, _ in h_tags], [0, 50, 70])
        for (o, h), n in zip(h_tags, lengths):
            self.assertTrue(np.allclose(y[o:o + n], h, atol=1e-4))
        self.assertEqual(len(tag_values(tags, "packet_len")), 3)   # input tags pass on

    def test_same_seed_same_output(self):
        x = np.exp(1j * np.arange(5000)).astype(np.complex64)
        a = run_chain(x, [], block_fading_channel("rayleigh", 5.0, 100, seed=9))[0]
        b = run_chain(x, [], block_fading_channel("rayleigh", 5.0, 100, seed=9))[0]
        c = run_chain(x, [], block_fading_channel("rayleigh", 5.0, 100, seed=10))[0]
        self.assertTrue(np.array_equal(a, b))
        self.assertFalse(np.array_equal(a, c))

    def test_snr_changes_through_callback_and_ctrl_message(self):
        tb = gr.top_block()
        src = blocks.vector_source_c(ones(1000).tolist(), True)
        thr = blocks.throttle(gr.sizeof_gr_complex, 200_000)
        blk = block_fading_channel("awgn", 10.0, 0, seed=1)
        snk = blocks.vector_sink_c()
        tb.connect(src, thr, blk, snk)

        def snr_tags():
            return [pmt.to_double(t.value) for t in snk.tags() if pmt.symbol_to_string(t.key) == "snr_db"]

        tb.start()
        try:
            self.assertTrue(wait_until(lambda: len(snk.data()) > 0, 30))
            blk.set_snr_db(3.0)
            self.assertTrue(wait_until(lambda: 3.0 in snr_tags(), 30))          # applied at the next work() call
            blk.to_basic_block()._post(pmt.intern("ctrl"), pmt.cons(pmt.intern("snr_db"), pmt.from_double(7.0)))
            bad = [pmt.intern("garbage"), pmt.to_pmt({"snr_db": "high"}), pmt.cons(pmt.intern("other"), pmt.from_double(1.0)),
                   pmt.to_pmt({"snr_db": -4000.0}), pmt.to_pmt({"snr_db": float("inf")})]
            for msg in bad:
                blk.to_basic_block()._post(pmt.intern("ctrl"), msg)
            self.assertTrue(wait_until(lambda: 7.0 in snr_tags() and blk.snr_db() == 7.0, 30))
            n = len(snk.data())
            self.assertTrue(wait_until(lambda: len(snk.data()) > n + 1000, 30))  # still running after the bad ones
        finally:
            tb.stop()
            tb.wait()
        values = snr_tags()
        self.assertEqual(values[0], 10.0)
        self.assertIn(3.0, values)
        self.assertEqual(values[-1], 7.0)
        self.assertEqual(blk.snr_db(), 7.0)
        with self.assertRaises(ValueError):
            blk.set_snr_db(float("nan"))

    def test_non_finite_samples_are_zeroed_not_fatal(self):
        x = ones(100)
        x[[3, 50]] = [np.nan, np.inf]
        y, _ = run_chain(x, [], block_fading_channel("awgn", 100.0, 0, seed=1))
        self.assertEqual(len(y), 100)
        self.assertTrue(np.all(np.isfinite(y)))
        self.assertAlmostEqual(abs(y[3]), 0.0, places=6)
        self.assertAlmostEqual(abs(y[4]), 1.0, places=4)

    def test_untagged_stream_in_frame_mode_is_one_fade(self):
        y, tags = run_chain(ones(300), [], block_fading_channel("rayleigh", 100.0, 0, seed=4))
        self.assertEqual(len(tag_values(tags, "h")), 1)
        self.assertTrue(np.allclose(y, y[0], atol=1e-4))

    def test_bad_arguments_are_sentences(self):
        nan, inf = float("nan"), float("inf")
        for kwargs in ({"snr_db": -4000}, {"snr_db": 101}, {"snr_db": nan}, {"snr_db": "high"}, {"snr_db": None},
                       {"channel_type": "rician", "k_factor": nan}, {"channel_type": "rician", "k_factor": inf},
                       {"k_factor": "x"}, {"k_factor": -0.5}, {"coherence_len": None}, {"coherence_len": "8"},
                       {"coherence_len": 2 ** 70}, {"coherence_len": inf}, {"signal_power": inf},
                       {"signal_power": 1e30}, {"signal_power": None}, {"seed": 1.5}, {"seed": "x"}, {"seed": None},
                       {"seed": nan}, {"len_tag_key": 5}, {"len_tag_key": None}):
            with self.assertRaises(ValueError, msg=str(kwargs)) as ctx:
                block_fading_channel(**kwargs)
            self.assertRegex(str(ctx.exception), r"must be", msg=str(kwargs))
        block_fading_channel(seed=-1)                         # a fresh seed
        block_fading_channel("rician", -50.0, 0, 1e6, 1e-20, 2 ** 64)

    def test_hostile_ctrl_messages_and_samples_are_dropped_or_zeroed(self):
        blk = block_fading_channel("rayleigh", 10.0, 4, seed=1)
        hostile = [pmt.to_pmt({"snr_db": -4000.0}), pmt.to_pmt({"snr_db": float("nan")}), pmt.to_pmt({"snr_db": 1e308}),
                   pmt.cons(pmt.intern("snr_db"), pmt.from_uint64(2 ** 64 - 1)), pmt.to_pmt({"snr_db": True}),
                   pmt.to_pmt({"snr_db": 1 + 2j}), pmt.PMT_NIL, pmt.init_u8vector(100_000, [0] * 100_000),
                   pmt.cons(pmt.to_pmt({"snr_db": "x"}), pmt.init_f32vector(1, [0.0])), pmt.from_double(3.0)]
        for msg in hostile:                                   # the handler, called as the scheduler would
            blk._on_ctrl(msg)
        self.assertEqual(blk.snr_db(), 10.0)
        blk._on_ctrl(pmt.cons(pmt.to_pmt({"snr_db": 20}), pmt.init_u8vector(0, [])))    # a PDU's metadata
        self.assertEqual(blk.snr_db(), 20.0)
        x = ones(64)
        x[[1, 9, 17]] = [3e38, np.inf, complex(np.nan, 0)]
        y, tags = run_chain(x, [make_tag(5, "packet_len", pmt.from_uint64(2 ** 64 - 1)),
                                make_tag(5, "h", pmt.intern("x"))], blk)
        self.assertEqual(len(y), 64)
        self.assertTrue(np.all(np.isfinite(y)))
        self.assertTrue(y[9] == 0 and y[17] == 0)
        self.assertEqual(len(tag_values(tags, "noise_var")), 16)


if __name__ == "__main__":
    gr_unittest.run(qa_block_fading_channel)
