#!/usr/bin/env python3
"""QA for scene_source."""
import numpy as np
import pmt
from gnuradio import blocks, gr, gr_unittest

import unitocom_testing  # noqa: F401
from gnuradio.unitocom import scene_source
from gnuradio.unitocom.data.corpus import scene_image


class qa_scene_source(gr_unittest.TestCase):

    def test_arguments(self):
        scene_source()
        for kwargs in ({"split": "dev"}, {"first": -1}, {"n_images": 0}):
            with self.assertRaises(ValueError, msg=str(kwargs)):
                scene_source(**kwargs)

    def test_emits_the_corpus_scenes_and_finishes(self):
        tb = gr.top_block()
        src = scene_source("test", 5, 3, 0)
        sink = blocks.message_debug()
        tb.msg_connect(src, "pdu", sink, "store")
        tb.run()                                                  # ends by itself
        self.assertEqual(sink.num_messages(), 3)
        for i in range(3):
            msg = sink.get_message(i)
            meta = pmt.to_python(pmt.car(msg))
            self.assertEqual((meta["frame_id"], meta["scene_index"], meta["split"], meta["corpus_seed"]),
                             (i, 5 + i, "test", 0))
            image = np.array(pmt.u8vector_elements(pmt.cdr(msg)), np.uint8).reshape(64, 64, 3)
            np.testing.assert_array_equal(image, scene_image("test", 5 + i, 0))

    def test_bad_arguments_are_sentences(self):
        for kwargs in ({"seed": -1}, {"seed": 1.5}, {"seed": None}, {"first": None}, {"first": "3"},
                       {"first": 2 ** 63}, {"n_images": 10_001}, {"n_images": float("inf")}, {"split": None},
                       {"split": ["test"]}):
            with self.assertRaises(ValueError, msg=str(kwargs)) as ctx:
                scene_source(**kwargs)
            self.assertIn("must be", str(ctx.exception))


if __name__ == "__main__":
    gr_unittest.run(qa_scene_source)
