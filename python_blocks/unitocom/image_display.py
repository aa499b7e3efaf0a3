"""image_display: image PDUs (u8 64×64×3) shown in a QT GUI flowgraph's window as they arrive."""
import pmt
from gnuradio import gr

from .core.modalities import IMAGE_BYTES, IMAGE_SHAPE
from .runtime import pdu_util, qt_display
from .runtime.args import check_int, check_name
from .runtime.droplog import DropLog

MAX_SCALE = 16


class image_display(gr.basic_block):
    """Shows the latest received image in a QT GUI flowgraph.

    Message in ``pdu``: u8 64·64·3 RGB bytes, as ``rx`` and ``detokenizer``
    send them. The widget (``qwidget()``, placed by the GRC GUI hint) shows
    ``label``, the image zoomed ``scale`` times, and a line from the
    metadata: session, task and SNR when the PDU has them. The handler only
    emits a Qt signal; the GUI thread draws (``runtime.qt_display``).
    Malformed PDUs (not a PDU, not 64·64·3 u8 bytes) are logged and dropped.
    ``n_images()`` counts the images handed to the widget.

    A QApplication must exist first (a QT GUI flowgraph makes one).

    Args:
        label: the title above the image (a non-empty string).
        scale: integer zoom, 1…16 (64·scale pixels on screen).
    """

    def __init__(self, label="image", scale=3):
        gr.basic_block.__init__(self, name="image_display", in_sig=None, out_sig=None)
        check_name("label", label)
        scale = check_int("scale", scale, 1, MAX_SCALE)
        qt_display.require_qapplication("image_display")
        self._widget = qt_display.image_widget_class()(label, IMAGE_SHAPE, scale)
        self._count = 0
        self._log = DropLog(self.logger)
        self.message_port_register_in(pmt.intern("pdu"))
        self.set_msg_handler(pmt.intern("pdu"), self._on_pdu)

    def qwidget(self):
        """The Qt widget to place in a window."""
        return self._widget

    def n_images(self):
        return self._count

    def _on_pdu(self, msg):
        try:
            vec = pmt.cdr(msg) if pmt.is_pair(msg) else None       # the size first: no copy of a huge vector
            if vec is not None and pmt.is_u8vector(vec) and pmt.length(vec) != IMAGE_BYTES:
                raise ValueError(f"{pmt.length(vec)} bytes, expected 64·64·3 = {IMAGE_BYTES}")
            meta, vec, _ = pdu_util.unpack(msg, ("u8",))
            if len(vec) != IMAGE_BYTES:
                raise ValueError(f"{len(vec)} bytes, expected 64·64·3 = {IMAGE_BYTES}")
            info = qt_display.describe(meta)
        except Exception as exc:               # nothing a message holds may take the block down
            self._log.warn(f"dropped a PDU: {exc}")
            return
        self._count += 1
        self._widget.arrived.emit(vec.tobytes(), info)
