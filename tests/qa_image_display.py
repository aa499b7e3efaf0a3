#!/usr/bin/env python3
"""QA for image_display (Qt's offscreen platform: no display needed)."""
import os
import subprocess
import sys
import time

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np  # noqa: E402
import pmt  # noqa: E402
from gnuradio import gr, gr_unittest  # noqa: E402
from PyQt5 import QtGui, QtWidgets  # noqa: E402

from unitocom_testing import pdu  # noqa: E402
from gnuradio.unitocom import image_display  # noqa: E402

APP = QtWidgets.QApplication.instance() or QtWidgets.QApplication(["qa_image_display"])


def picture(seed=0):
    return np.random.default_rng(seed).integers(0, 256, (64, 64, 3), dtype=np.uint8)


def shown(block):
    """The widget's pixmap as a (H, W, 3) array, and its info line."""
    widget = block.qwidget()
    pixmap = widget._image.pixmap()
    if pixmap is None or pixmap.isNull():
        return None, widget._info.text()
    image = pixmap.toImage().convertToFormat(QtGui.QImage.Format_RGB888)
    h, w = image.height(), image.width()
    rows = np.frombuffer(image.constBits().asstring(image.byteCount()), np.uint8).reshape(h, image.bytesPerLine())
    return rows[:, :w * 3].reshape(h, w, 3), widget._info.text()


class qa_image_display(gr_unittest.TestCase):

    def test_arguments(self):
        block = image_display()
        self.assertIsInstance(block.qwidget(), QtWidgets.QWidget)
        self.assertEqual(block.qwidget()._image.width(), 3 * 64)
        for args in (("",), (None,), (5,), ("x", 0), ("x", 17), ("x", 2.5), ("x", True), ("x", "3")):
            with self.assertRaises(ValueError, msg=str(args)):
                image_display(*args)

    def test_needs_a_qapplication(self):
        code = "from gnuradio.unitocom import image_display\ntry:\n image_display()\nexcept ValueError as e:\n print(e)"
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
        self.assertIn("needs a QApplication", out.stdout, out.stderr)

    def test_shows_the_image_zoomed_with_its_metadata(self):
        block, img = image_display("received", 2), picture(1)
        block._on_pdu(pdu({"session_id": 3, "task": "vqa", "snr_db": 12.5}, img.ravel()))   # the GUI thread: at once
        pixels, info = shown(block)
        np.testing.assert_array_equal(pixels, img.repeat(2, axis=0).repeat(2, axis=1))
        self.assertEqual(info, "session 3 · vqa · 12.5 dB")
        self.assertEqual(block.n_images(), 1)

    def test_images_from_the_scheduler_thread_reach_the_gui_thread(self):
        from gnuradio import blocks
        tb, block = gr.top_block(), image_display("generated", 1)
        strobe = blocks.message_strobe(pdu({"task": "t2i"}, picture(2).ravel()), 20)
        tb.msg_connect(strobe, "strobe", block, "pdu")
        tb.start()
        try:
            deadline = time.monotonic() + 30
            while (block.n_images() < 3 or shown(block)[1] != "t2i") and time.monotonic() < deadline:
                APP.processEvents()                       # the queued signal is delivered here
                time.sleep(0.01)
        finally:
            tb.stop()
            tb.wait()
        pixels, info = shown(block)
        np.testing.assert_array_equal(pixels, picture(2))
        self.assertGreaterEqual(block.n_images(), 3)
        self.assertEqual(info, "t2i")

    def test_malformed_pdus_are_dropped(self):
        block = image_display()
        hostile = [pmt.PMT_NIL, pmt.PMT_T, pdu({}, np.zeros(10, np.uint8)),
                   pdu({}, picture().ravel().astype(np.float32)),
                   pmt.cons(pmt.PMT_T, pmt.init_u8vector(64 * 64 * 3, [0] * (64 * 64 * 3))),
                   pmt.cons(pmt.make_dict(), pmt.init_u8vector(10 ** 6, [0] * 10 ** 6))]
        for msg in hostile:
            block._on_pdu(msg)
        self.assertEqual(block.n_images(), 0)
        block._on_pdu(pdu({"session_id": "x", "snr_db": "y"}, picture().ravel()))   # odd metadata: shown, no info
        self.assertEqual((block.n_images(), shown(block)[1]), (1, ""))


if __name__ == "__main__":
    gr_unittest.run(qa_image_display)
