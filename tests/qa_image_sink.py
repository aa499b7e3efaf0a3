#!/usr/bin/env python3
"""QA for image_sink."""
import tempfile

import numpy as np
import pmt
from gnuradio import gr_unittest

from unitocom_testing import pdu
from gnuradio.unitocom import image_sink
from gnuradio.unitocom.data.corpus import scene_image


class qa_image_sink(gr_unittest.TestCase):

    def test_arguments(self):
        image_sink()
        with self.assertRaises(ValueError):
            image_sink("", "")

    def test_psnr_against_the_sent_scene_and_png_files(self):
        ref = scene_image("test", 2, 0).astype(np.int16)
        noisy = np.clip(ref + np.random.default_rng(0).integers(-8, 9, ref.shape), 0, 255).astype(np.uint8)
        want = 10 * np.log10(255 ** 2 / np.mean((noisy.astype(float) - ref) ** 2))
        scene = {"split": "test", "scene_index": 2, "corpus_seed": 0}
        with tempfile.TemporaryDirectory() as folder:
            sink = image_sink(folder, "link")
            msgs = [pdu(dict(scene, frame_id=7), noisy.ravel()), pdu({"frame_id": 8}, noisy.ravel()),
                    pdu({}, np.zeros(10, np.uint8)), pmt.PMT_T, pdu(scene, noisy.ravel().astype(np.float32))]
            for msg in msgs:                                      # the handler, called as the scheduler would
                sink._on_pdu(msg)
            self.assertEqual(sink.n_images(), 2)                      # the unscored one counts, bad ones do not
            self.assertEqual(len(sink.psnr_values()), 1)
            self.assertAlmostEqual(sink.mean_psnr(), want, places=6)
            from PIL import Image
            saved = np.array(Image.open(f"{folder}/link_00007.png"))
            np.testing.assert_array_equal(saved, noisy)

    def test_scores_what_a_scene_source_sends(self):
        from gnuradio import gr
        from gnuradio.unitocom import scene_source
        tb = gr.top_block()
        src, sink = scene_source("test", 0, 3, 0), image_sink("", "direct")
        tb.msg_connect(src, "pdu", sink, "pdu")
        tb.run()
        self.assertEqual((sink.n_images(), len(sink.psnr_values())), (3, 3))
        self.assertGreater(min(sink.psnr_values()), 100)              # identical images

    def test_more_bad_arguments(self):
        with tempfile.NamedTemporaryFile() as f:
            for args in (("", "a/b"), ("", None), (5, "x"), (None, "x"), (f.name + "/sub", "x")):
                with self.assertRaises(ValueError, msg=str(args)):
                    image_sink(*args)

    def test_hostile_pdus_are_dropped_or_unscored(self):
        ref = scene_image("test", 1, 0)
        sink = image_sink("", "x")
        scene = {"split": "test", "scene_index": 1, "corpus_seed": 0}
        hostile = [pmt.cons(pmt.make_dict(), pmt.init_u8vector(10 ** 6, [0] * 10 ** 6)), pmt.PMT_NIL,
                   pmt.cons(pmt.PMT_T, pmt.init_u8vector(12288, ref.ravel().tolist())),
                   pmt.cons(pmt.make_dict(), pmt.init_s32vector(12288, [0] * 12288)), pmt.from_uint64(2 ** 64 - 1)]
        unscored = [dict(scene, scene_index=-1), dict(scene, corpus_seed=pmt.from_uint64(2 ** 64 - 1)),
                    dict(scene, scene_index=True), dict(scene, split=5), {"split": "test"}]
        for msg in hostile:
            sink._on_pdu(msg)
        def image(meta):
            m = pmt.make_dict()
            for k, v in meta.items():
                m = pmt.dict_add(m, pmt.intern(k), v if isinstance(v, pmt.pmt_python.pmt_base) else pmt.to_pmt(v))
            return pmt.cons(m, pmt.init_u8vector(12288, ref.ravel().tolist()))
        for meta in unscored:
            sink._on_pdu(image(meta))
        sink._on_pdu(image(dict(scene, frame_id=pmt.from_uint64(2 ** 64 - 1))))
        self.assertEqual(sink.n_images(), len(unscored) + 1)
        self.assertEqual(len(sink.psnr_values()), 1)
        self.assertGreater(sink.psnr_values()[0], 99)


if __name__ == "__main__":
    gr_unittest.run(qa_image_sink)
