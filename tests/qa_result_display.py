#!/usr/bin/env python3
"""QA for result_display (Qt's offscreen platform: no display needed)."""
import os
import time

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np  # noqa: E402
import pmt  # noqa: E402
from gnuradio import blocks, gr, gr_unittest  # noqa: E402
from PyQt5 import QtWidgets  # noqa: E402

from unitocom_testing import pdu  # noqa: E402
from gnuradio.unitocom import result_display  # noqa: E402

APP = QtWidgets.QApplication.instance() or QtWidgets.QApplication(["qa_result_display"])


def shown(block):
    widget = block.qwidget()
    return widget._text.text(), widget._info.text()


def utf8(text):
    return np.frombuffer(text.encode(), np.uint8)


class qa_result_display(gr_unittest.TestCase):

    def test_arguments(self):
        block = result_display()
        self.assertIsInstance(block.qwidget(), QtWidgets.QWidget)
        for args in (("",), (None,), (5,), ("x", None), ("x", 3)):
            with self.assertRaises(ValueError, msg=str(args)):
                result_display(*args)

    def test_an_mllm_answer_next_to_the_truth(self):
        block = result_display("Answer (MLLM)", "answer")
        ids = np.array([30, 36], np.int32)                          # the word ids: the metadata text is shown
        block._on_pdu(pdu({"text": "no", "answer": "yes", "session_id": 0, "task": "vqa", "snr_db": 7.0}, ids))
        self.assertEqual(shown(block), ("no      [truth: yes]", "session 0 · vqa · 7.0 dB"))
        self.assertEqual((block.n_results(), block.last_text()), (1, "no      [truth: yes]"))

    def test_an_answer_with_the_objects_the_mllm_named(self):
        block = result_display("Answer (MLLM)", "answer")
        ids = np.array([57], np.int32)
        block._on_pdu(pdu({"text": "metal", "trace": "large yellow metal cube", "answer": "metal"}, ids))
        self.assertEqual(block.last_text(), "metal      [saw: large yellow metal cube]      [truth: metal]")
        block._on_pdu(pdu({"text": "0", "trace": ""}, ids))           # an empty trace: nothing matched
        self.assertEqual(block.last_text(), "0      [saw: nothing]")

    def test_received_text_without_a_truth(self):
        block = result_display("Question (received)")
        block._on_pdu(pdu({"question": "is it red?", "task": "vqa"}, utf8("is it rex?")))
        self.assertEqual(shown(block), ("is it rex?", "vqa"))
        block._on_pdu(pdu({}, np.frombuffer(b"caf\xc3", np.uint8)))  # a broken UTF-8 ending: replaced, shown
        self.assertEqual(shown(block)[0], "caf\ufffd")

    def test_results_from_the_scheduler_thread_reach_the_gui_thread(self):
        tb, block = gr.top_block(), result_display("Transcript (MLLM)", "transcript")
        strobe = blocks.message_strobe(pdu({"text": "two cubes", "transcript": "two cubes?", "task": "asr"},
                                           np.zeros(2, np.int32)), 20)
        tb.msg_connect(strobe, "strobe", block, "pdu")
        tb.start()
        try:
            deadline = time.monotonic() + 30
            while (block.n_results() < 3 or shown(block)[1] != "asr") and time.monotonic() < deadline:
                APP.processEvents()                       # the queued signal is delivered here
                time.sleep(0.01)
        finally:
            tb.stop()
            tb.wait()
        self.assertGreaterEqual(block.n_results(), 3)
        self.assertEqual(shown(block), ("two cubes      [truth: two cubes?]", "asr"))

    def test_malformed_pdus_are_dropped(self):
        block = result_display("x", "answer")
        hostile = [pmt.PMT_NIL, pmt.PMT_T, pmt.cons(pmt.PMT_T, pmt.init_u8vector(3, [65, 66, 67])),
                   pdu({}, np.zeros(3, np.float32)), pdu({"text": 5}, np.zeros(3, np.int32)),
                   pmt.cons(pmt.make_dict(), pmt.make_u8vector((1 << 20) + 1, 0))]
        for msg in hostile:
            block._on_pdu(msg)
        self.assertEqual((block.n_results(), shown(block)[0]), (0, "…"))
        block._on_pdu(pdu({"text": "x" * 5000, "answer": 3}, np.zeros(0, np.int32)))   # long: cut; any truth
        self.assertEqual(block.last_text(), "x" * 2000 + "      [truth: 3]")


if __name__ == "__main__":
    gr_unittest.run(qa_result_display)
