"""Qt widgets of the QT GUI display blocks (``image_display``, ``result_display``).

PyQt5 is imported only when a display block is made, so headless flowgraphs never load it. Each widget
has a signal (``arrived``) that its block emits from the scheduler's thread; Qt queues it to the GUI
thread, which alone draws. A widget must never be changed from another thread: GNU Radio 3.10's
QT GUI Message Edit Box sets its text from the message thread, and a running flowgraph that feeds
it results crashes (SIGSEGV in QLineEdit::paintEvent).
"""
import functools

from . import pdu_util

PLACEHOLDER_STYLE = "background: #202020; color: #a0a0a0"
INFO_STYLE = "color: #707070"


def require_qapplication(block):
    """ValueError unless a QApplication exists (making a widget without one aborts the process)."""
    from PyQt5 import QtWidgets
    if QtWidgets.QApplication.instance() is None:
        raise ValueError(f"{block} needs a QApplication: use it in a QT GUI flowgraph")


def describe(meta):
    """'session 3 · vqa · 12.5 dB' from whichever of those the metadata dict pmt has."""
    session, task, snr = (pdu_util.get(meta, k) for k in ("session_id", "task", "snr_db"))
    parts = [f"session {session}" if isinstance(session, int) and not isinstance(session, bool) else "",
             task if isinstance(task, str) else "",
             f"{snr:.1f} dB" if isinstance(snr, (int, float)) and not isinstance(snr, bool) else ""]
    return " · ".join(p for p in parts if p)


def _title(QtCore, QtWidgets, text):
    title = QtWidgets.QLabel(text)
    title.setTextFormat(QtCore.Qt.PlainText)
    font = title.font()
    font.setBold(True)
    title.setFont(font)
    return title


@functools.lru_cache(maxsize=None)
def image_widget_class():
    """QFrame: title, the latest image (zoomed, pixels kept sharp), an info line. arrived(rgb bytes, info)."""
    from PyQt5 import QtCore, QtGui, QtWidgets

    class ImageWidget(QtWidgets.QFrame):
        arrived = QtCore.pyqtSignal(bytes, str)

        def __init__(self, label, shape, scale):
            super().__init__()
            self._shape, self._side = shape, shape[0] * scale
            self._image = QtWidgets.QLabel("waiting for an image")
            self._image.setFixedSize(self._side, self._side)
            self._image.setAlignment(QtCore.Qt.AlignCenter)
            self._image.setStyleSheet(PLACEHOLDER_STYLE)
            self._info = QtWidgets.QLabel("")
            self._info.setStyleSheet(INFO_STYLE)
            layout = QtWidgets.QVBoxLayout(self)
            for w in (_title(QtCore, QtWidgets, label), self._image, self._info):
                layout.addWidget(w, alignment=QtCore.Qt.AlignHCenter)
            layout.addStretch(1)
            self.arrived.connect(self._show)               # queued when emitted from another thread

        def _show(self, data, info):
            h, w, c = self._shape
            image = QtGui.QImage(data, w, h, w * c, QtGui.QImage.Format_RGB888).copy()   # own the pixels
            self._image.setPixmap(QtGui.QPixmap.fromImage(image).scaled(
                self._side, self._side, QtCore.Qt.IgnoreAspectRatio, QtCore.Qt.FastTransformation))
            self._info.setText(info)

    return ImageWidget


@functools.lru_cache(maxsize=None)
def text_widget_class():
    """QFrame: title, the latest text (selectable, wrapped), an info line. arrived(text, info)."""
    from PyQt5 import QtCore, QtWidgets

    class TextWidget(QtWidgets.QFrame):
        arrived = QtCore.pyqtSignal(str, str)

        def __init__(self, label):
            super().__init__()
            self.setFrameShape(QtWidgets.QFrame.StyledPanel)
            self.setSizePolicy(QtWidgets.QSizePolicy.Expanding, QtWidgets.QSizePolicy.Maximum)   # one line high
            self._text = QtWidgets.QLabel("…")
            self._text.setTextFormat(QtCore.Qt.PlainText)
            self._text.setWordWrap(True)
            self._text.setTextInteractionFlags(QtCore.Qt.TextSelectableByMouse)
            self._text.setSizePolicy(QtWidgets.QSizePolicy.Expanding, QtWidgets.QSizePolicy.Preferred)
            self._info = QtWidgets.QLabel("")
            self._info.setStyleSheet(INFO_STYLE)
            title = _title(QtCore, QtWidgets, label)
            title.setMinimumWidth(150)
            layout = QtWidgets.QHBoxLayout(self)
            layout.addWidget(title)
            layout.addWidget(self._text, 1)
            layout.addWidget(self._info)
            self.arrived.connect(self._show)               # queued when emitted from another thread

        def _show(self, text, info):
            self._text.setText(text)
            self._info.setText(info)

    return TextWidget
