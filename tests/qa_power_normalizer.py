#!/usr/bin/env python3
"""QA for power_normalizer."""
import numpy as np
import pmt
from gnuradio import blocks, gr, gr_unittest

from unitocom_testing import length_tags, make_tag, run_chain, tag_values
from gnuradio.unitocom import power_normalizer


def frames(lengths, seed=0, scale=3.0):
    rng = np.random.default_rng(seed)
    n = int(sum(lengths))
    return (scale * (rng.standard_normal(n) + 1j * rng.standard_normal(n))).astype(np.complex64)


class qa_power_normalizer(gr_unittest.TestCase):

    def test_defaults(self):
        blk = power_normalizer()
        self.assertEqual(blk.power(), 1.0)

    def test_bad_arguments_raise(self):
        for kwargs in ({"power": 0}, {"power": -1}, {"power": float("nan")},
                       {"len_tag_key": ""}, {"max_frame_len": 0}):
            with self.assertRaises(ValueError):
                power_normalizer(**kwargs)

    def test_each_frame_has_power_p_and_keeps_its_tags(self):
        lengths = [100, 37, 500, 1]
        x = frames(lengths)
        tags = length_tags(lengths) + [make_tag(137 + 5, "frame_id", 7)]
        blk = power_normalizer(power=2.5)
        y, out_tags = run_chain(x, tags, blk)
        self.assertEqual(len(y), sum(lengths))
        self.assertEqual(y.dtype, np.complex64)
        starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
        for s, n in zip(starts, lengths):
            self.assertAlmostEqual(np.mean(np.abs(y[s:s + n]) ** 2), 2.5, places=4)
            ratio = y[s:s + n] / x[s:s + n]          # one real gain per frame
            self.assertTrue(np.allclose(ratio, ratio[0].real, rtol=1e-5))
        self.assertEqual(tag_values(out_tags, "packet_len"), list(zip(starts, lengths)))
        self.assertEqual(tag_values(out_tags, "frame_id"), [(142, 7)])
        self.assertEqual(blk.dropped_frames(), 0)

    def test_frames_longer_than_a_buffer_pass(self):
        lengths = [200_000, 70_000]
        x = frames(lengths, seed=1)
        y, out_tags = run_chain(x, length_tags(lengths), power_normalizer())
        self.assertEqual(len(y), sum(lengths))
        self.assertAlmostEqual(np.mean(np.abs(y[:200_000]) ** 2), 1.0, places=4)
        self.assertEqual(tag_values(out_tags, "packet_len"), [(0, 200_000), (200_000, 70_000)])

    def test_bad_input_is_dropped_and_counted(self):
        # 10 untagged samples, a good frame, a frame with NaN, a frame cut
        # short by the next tag, an all-zero frame, an over-long frame, a good frame.
        parts = [frames([10], 1), frames([50], 2), frames([40], 3), frames([30], 4),
                 np.zeros(20, np.complex64), frames([300], 5), frames([60], 6)]
        parts[2][7] = np.nan
        x = np.concatenate(parts)
        tags = [make_tag(10, "packet_len", 50), make_tag(60, "packet_len", 40),
                make_tag(100, "packet_len", 45),            # only 30 follow
                make_tag(130, "packet_len", 20), make_tag(150, "packet_len", 300),
                make_tag(450, "packet_len", 60), make_tag(470, "packet_len", pmt.intern("oops"))]
        blk = power_normalizer(max_frame_len=256)
        y, out_tags = run_chain(x, tags, blk)
        # the bogus tag at 470 splits the last frame: it is cut short too
        self.assertEqual(tag_values(out_tags, "packet_len"), [(0, 50)])
        self.assertEqual(len(y), 50)
        self.assertEqual(blk.dropped_frames(), 6)
        self.assertGreaterEqual(blk.dropped_samples(), 10 + 30)

    def test_wrong_item_size_is_refused_at_connect(self):
        tb = gr.top_block()
        with self.assertRaises((ValueError, RuntimeError)):
            tb.connect(blocks.vector_source_f([1.0]), power_normalizer())

    def test_bad_arguments_are_sentences(self):
        for kwargs in ({"power": float("inf")}, {"power": 1e30}, {"power": "1"}, {"power": None},
                       {"len_tag_key": 5}, {"len_tag_key": None}, {"max_frame_len": 1.5}, {"max_frame_len": None},
                       {"max_frame_len": 2 ** 30}, {"max_frame_len": float("nan")}):
            with self.assertRaises(ValueError, msg=str(kwargs)) as ctx:
                power_normalizer(**kwargs)
            self.assertIn("must be", str(ctx.exception))
        with self.assertRaises(ValueError):
            power_normalizer().set_power(float("nan"))

    def test_extreme_power_frames_and_hostile_tags(self):
        # a frame of tiny samples (float32 power underflows), one of huge samples
        # (overflows), each scaled in float64; length tags of uint64 / bool /
        # huge / negative values do not take the block down.
        lengths = [20, 20, 20]
        x = frames(lengths, seed=3)
        x[:20] *= 1e-30
        x[20:40] *= 1e35
        tags = length_tags(lengths) + [make_tag(3, "frame_id", pmt.from_uint64(2 ** 64 - 1)),
                                       make_tag(60, "packet_len", pmt.from_uint64(5)),
                                       make_tag(65, "packet_len", pmt.PMT_T),
                                       make_tag(66, "packet_len", pmt.from_uint64(2 ** 64 - 1)),
                                       make_tag(70, "packet_len", pmt.from_long(-3))]
        x = np.concatenate([x, frames([15], seed=4)])
        blk = power_normalizer(max_frame_len=64)
        y, out_tags = run_chain(x, tags, blk)
        self.assertEqual(tag_values(out_tags, "packet_len"), [(0, 20), (20, 20), (40, 20), (60, 5)])
        self.assertTrue(np.all(np.isfinite(y)))
        for s in (0, 20, 40):
            self.assertAlmostEqual(np.mean(np.abs(y[s:s + 20]) ** 2), 1.0, places=4)
        self.assertEqual(blk.dropped_frames(), 3)


if __name__ == "__main__":
    gr_unittest.run(qa_power_normalizer)
