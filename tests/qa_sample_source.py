#!/usr/bin/env python3
"""QA for sample_source."""
import numpy as np
import pmt
from gnuradio import blocks, gr, gr_unittest

import unitocom_testing  # noqa: F401
from gnuradio.unitocom import sample_source
from gnuradio.unitocom.data import corpus, speech


def _run(src):
    tb = gr.top_block()
    sinks = {p: blocks.message_debug() for p in ("image", "text", "audio")}
    for port, sink in sinks.items():
        tb.msg_connect(src, port, sink, "store")
    tb.run()                                                      # ends by itself
    out = {}
    for port, sink in sinks.items():
        msgs = [sink.get_message(i) for i in range(sink.num_messages())]
        out[port] = [(pmt.to_python(pmt.car(m)), pmt.to_python(pmt.cdr(m))) for m in msgs]
    return out


class qa_sample_source(gr_unittest.TestCase):

    def test_vqa_and_t2i_samples_are_the_corpus_items_with_session_ids(self):
        src = sample_source("test", 3, 2, 0, "vqa,t2i")
        out = _run(src)
        self.assertEqual(len(out["image"]), 2)
        self.assertEqual(len(out["text"]), 4)
        self.assertEqual(out["audio"], [])
        for i in range(2):
            item = corpus.make_item("test", 3 + i, 0)
            meta, image = out["image"][i]
            self.assertEqual((meta["session_id"], meta["task"], meta["scene_index"], meta["modality"]),
                             (3 * i, "vqa", 3 + i, "image"))
            np.testing.assert_array_equal(np.asarray(image, np.uint8).reshape(64, 64, 3), item["image"])
            q = item["questions"][i % 3]
            (qm, qtext), (cm, ctext) = out["text"][2 * i], out["text"][2 * i + 1]
            self.assertEqual((qm["session_id"], qm["task"], qm["answer"]), (3 * i, "vqa", q["answer"]))
            self.assertEqual(bytes(np.asarray(qtext, np.uint8)).decode(), q["text"])
            self.assertEqual((cm["session_id"], cm["task"]), (3 * i + 1, "t2i"))
            self.assertEqual(bytes(np.asarray(ctext, np.uint8)).decode(), item["caption"]["text"])

    def test_asr_samples_are_speech_of_the_question(self):
        if not speech.espeak_available():
            self.skipTest("espeak-ng missing")
        out = _run(sample_source("test", 0, 1, 0, "asr"))
        self.assertEqual((len(out["image"]), len(out["text"]), len(out["audio"])), (0, 0, 1))
        meta, audio = out["audio"][0]
        self.assertEqual((meta["session_id"], meta["task"], meta["modality"]), (2, "asr", "audio"))
        self.assertEqual(meta["transcript"], corpus.make_item("test", 0, 0)["questions"][0]["text"])
        audio = np.asarray(audio, np.float32)
        self.assertTrue(16000 < len(audio) < 16000 * 10 and 0.01 < np.abs(audio).max() <= 1.0)

    def test_bad_arguments_are_sentences(self):
        for kwargs in ({"split": "dev"}, {"first": -1}, {"n_samples": 0}, {"n_samples": 1001}, {"seed": -1},
                       {"tasks": ""}, {"tasks": "vqa,caption"}, {"tasks": None}):
            with self.assertRaises(ValueError, msg=str(kwargs)):
                sample_source(**kwargs)


if __name__ == "__main__":
    gr_unittest.run(qa_sample_source)
