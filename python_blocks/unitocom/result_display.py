"""result_display: text PDUs (received text, MLLM answers and transcripts) shown in a QT GUI flowgraph's window."""
import pmt
from gnuradio import gr

from .runtime import pdu_util, qt_display
from .runtime.args import check_name
from .runtime.droplog import DropLog

MAX_CHARS = 2000                                     # longer texts are cut (a label, not a document)


class result_display(gr.basic_block):
    """Shows the latest text result in a QT GUI flowgraph, next to the truth when the PDU carries it.

    Message in ``pdu``: an ``mllm_client`` result (its metadata ``text``:
    the answer, the transcript) or a text PDU of ``rx`` (UTF-8 bytes: the
    received question or caption; used when the metadata has no ``text``).
    With ``truth_key`` set and in the metadata (``answer``, ``transcript``,
    as ``sample_source`` sends them), the line ends ``[truth: …]``; an
    answer with a ``trace`` (the objects an MLLM with traces named before
    answering) shows it as ``[saw: …]`` first. The
    widget (``qwidget()``, placed by the GRC GUI hint) shows ``label``,
    the text and a line from the metadata: session, task and SNR. The
    handler only emits a Qt signal; the GUI thread draws
    (``runtime.qt_display``: GNU Radio's QT GUI Message Edit Box changes
    its widget from the message thread and crashes a running flowgraph).
    PDUs with neither text are logged and dropped. ``n_results()`` counts
    what was shown, ``last_text()`` is the latest line.

    A QApplication must exist first (a QT GUI flowgraph makes one).

    Args:
        label: the title left of the text (a non-empty string).
        truth_key: metadata key of the true text ('' = none).
    """

    def __init__(self, label="result", truth_key=""):
        gr.basic_block.__init__(self, name="result_display", in_sig=None, out_sig=None)
        check_name("label", label)
        if not isinstance(truth_key, str):
            raise ValueError(f"truth_key must be a metadata key, or '' for none; got {truth_key!r}")
        qt_display.require_qapplication("result_display")
        self._truth_key = truth_key
        self._widget = qt_display.text_widget_class()(label)
        self._count, self._last = 0, ""
        self._log = DropLog(self.logger)
        self.message_port_register_in(pmt.intern("pdu"))
        self.set_msg_handler(pmt.intern("pdu"), self._on_pdu)

    def qwidget(self):
        """The Qt widget to place in a window."""
        return self._widget

    def n_results(self):
        return self._count

    def last_text(self):
        return self._last

    def _on_pdu(self, msg):
        try:
            if not (pmt.is_pair(msg) and (pmt.is_dict(pmt.car(msg)) or pmt.is_null(pmt.car(msg)))):
                raise ValueError("not a PDU (expected a pair of metadata dict and vector)")
            meta = pmt.car(msg)
            text = pdu_util.get(meta, "text")
            if not isinstance(text, str):                      # rx's text PDU: the UTF-8 bytes
                _, vec, _ = pdu_util.unpack(msg, ("u8",))
                text = vec.tobytes().decode("utf-8", "replace")
            truth = pdu_util.get(meta, self._truth_key) if self._truth_key else None
            trace = pdu_util.get(meta, "trace")
            line = (text[:MAX_CHARS] + (f"      [saw: {trace[:MAX_CHARS] or 'nothing'}]" if isinstance(trace, str) else "")
                    + (f"      [truth: {str(truth)[:MAX_CHARS]}]" if truth is not None else ""))
            info = qt_display.describe(meta)
        except Exception as exc:               # nothing a message holds may take the block down
            self._log.warn(f"dropped a PDU: {exc}")
            return
        self._count, self._last = self._count + 1, line
        self._widget.arrived.emit(line, info)
