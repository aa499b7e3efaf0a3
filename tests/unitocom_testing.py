"""Shared helpers for the QA tests and pytest suites.

Importing this module makes ``gnuradio.unitocom`` importable from the source
tree when it is not installed (the ``./unitocom`` venv and ctest's build
tree already provide it).
"""
import pathlib
import threading
import time

import gnuradio

ROOT = pathlib.Path(__file__).resolve().parent.parent
try:
    from gnuradio import unitocom  # noqa: F401
except ImportError:
    gnuradio.__path__.append(str(ROOT / "python_blocks"))

import numpy as np  # noqa: E402
import pmt  # noqa: E402
from gnuradio import blocks, gr  # noqa: E402


def make_tag(offset, key, value):
    """A gr.tag_t; ``value`` is a pmt or a Python int/float/complex."""
    if not isinstance(value, pmt.pmt_python.pmt_base):
        if isinstance(value, complex):
            value = pmt.from_complex(value)
        elif isinstance(value, int):
            value = pmt.from_long(value)
        else:
            value = pmt.from_double(value)
    return gr.tag_utils.python_to_tag((offset, pmt.intern(key), value))


def length_tags(lengths, key="packet_len"):
    """Length tags for consecutive frames of the given lengths."""
    offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(int)
    return [make_tag(int(o), key, int(n)) for o, n in zip(offsets, lengths)]


def run_chain(data, tags, *chain, dtype=np.complex64, out_dtype=np.complex64):
    """vector_source(data, tags) → chain… → vector_sink; returns (out, tags).

    Tags come back as a list of (offset, key, python value)."""
    from gnuradio.unitocom.core import tags as tagkeys
    tb = gr.top_block()
    src = {np.complex64: blocks.vector_source_c, np.float32: blocks.vector_source_f,
           np.uint8: blocks.vector_source_b}[dtype](list(np.asarray(data)), False, 1, tags)
    snk = {np.complex64: blocks.vector_sink_c, np.float32: blocks.vector_sink_f,
           np.uint8: blocks.vector_sink_b}[out_dtype]()
    tb.connect(src, *chain, snk)
    tb.run()
    out_tags = [(t.offset, pmt.symbol_to_string(t.key), tagkeys.to_python(t.value)) for t in snk.tags()]
    return np.array(snk.data(), dtype=out_dtype), out_tags


def tag_values(tag_list, key):
    """[(offset, value)] of one key, sorted by offset."""
    return sorted((o, v) for o, k, v in tag_list if k == key)


FIXTURE_MODELS = ROOT / "tests" / "fixtures" / "models"


def wait_until(predicate, timeout=120.0, poll=0.002):
    """Wait until ``predicate()`` is true; False if ``timeout`` seconds passed first.

    For state a block exposes only through a getter (e.g. ``rate()`` after a
    ``ctrl`` message): the wait ends as soon as the condition holds, so it
    does not depend on how fast the machine is."""
    deadline = time.monotonic() + timeout
    pause = threading.Event()
    while not predicate():
        if time.monotonic() > deadline:
            return False
        pause.wait(poll)
    return True


class _publisher(gr.sync_block):
    """pdu_source's working part: one work() call publishes everything, then ends."""

    def __init__(self, steps, ports, timeout):
        gr.sync_block.__init__(self, name="pdu_source", in_sig=None, out_sig=[np.uint8])
        self._steps, self._timeout, self._done = steps, timeout, False
        self.gate_timeouts = []
        for port in ports:
            self.message_port_register_out(pmt.intern(port))

    def work(self, input_items, output_items):
        if not self._done:
            self._done = True
            for step in self._steps:
                if callable(step):
                    if not wait_until(step, self._timeout):
                        self.gate_timeouts.append(step)
                else:
                    self.message_port_pub(pmt.intern(step[0]), step[1])
        return -1                                   # WORK_DONE: "done" follows the last message


class pdu_source(gr.hier_block2):
    """Test source: publishes messages, then finishes, so the flowgraph ends by itself.

    ``items``: messages published on ``port``, ``(port, message)`` pairs for
    other ports, and callables: gates, called in the source's own thread,
    that hold back what follows until they return True (e.g.
    ``lambda: enc.rate() == 8`` after a ``ctrl`` message). A gate that
    stays False for ``timeout`` seconds is recorded in ``gate_timeouts``
    and passed. GNU Radio delivers the source's "done" to each downstream
    message block after the messages it sent, so a message-only graph
    terminates once everything has been handled."""

    def __init__(self, items, port="out", timeout=120.0):
        gr.hier_block2.__init__(self, "pdu_source", gr.io_signature(0, 0, 0), gr.io_signature(0, 0, 0))
        steps = [item if callable(item) or isinstance(item, tuple) else (port, item) for item in items]
        ports = sorted({port} | {s[0] for s in steps if not callable(s)})
        self._pub = _publisher(steps, ports, timeout)
        self._null = blocks.null_sink(gr.sizeof_char)
        self.connect(self._pub, self._null)
        for name in ports:
            self.message_port_register_hier_out(name)
            self.msg_connect(self._pub, name, self, name)

    @property
    def gate_timeouts(self):
        return self._pub.gate_timeouts


class message_collector(gr.basic_block):
    """Test sink: stores every message that arrives on ``in``, in order.

    ``wait(n, timeout)`` blocks until n messages are there (True) or the
    timeout passed (False): an event to wait on, not a sleep. ``pdus()``
    gives ``(metadata as Python dict, vector as numpy array)`` pairs."""

    def __init__(self):
        gr.basic_block.__init__(self, name="message_collector", in_sig=None, out_sig=None)
        self.messages = []
        self._arrived = threading.Condition()
        self.message_port_register_in(pmt.intern("in"))
        self.set_msg_handler(pmt.intern("in"), self._store)

    def _store(self, msg):
        with self._arrived:
            self.messages.append(msg)
            self._arrived.notify_all()

    def wait(self, n, timeout=120.0):
        with self._arrived:
            return self._arrived.wait_for(lambda: len(self.messages) >= n, timeout)

    def pdus(self):
        return [unpack(m) for m in self.messages]


def unpack(msg):
    """(metadata dict, numpy vector) of a PDU."""
    return pmt.to_python(pmt.car(msg)), np.asarray(pmt.to_python(pmt.cdr(msg)))


def run_flowgraph(tb, timeout=120.0):
    """``tb.run()`` that fails instead of hanging: the graph must finish by
    itself (sources end, "done" propagates) within ``timeout`` seconds."""
    finished = threading.Event()

    def wait():
        tb.wait()
        finished.set()

    tb.start()
    waiter = threading.Thread(target=wait, daemon=True)
    waiter.start()
    if not finished.wait(timeout):
        tb.stop()
        waiter.join(10.0)
        raise AssertionError(f"the flowgraph did not finish by itself within {timeout:g} s")


def run_pdus(block, in_port, out_port, messages, timeout=120.0):
    """pdu_source(messages) → ``block``'s ``in_port``; ``out_port`` → collector.

    Runs until the flowgraph finishes by itself (every message handled, so
    nothing unexpected can still be in flight) and returns what came out,
    in order. Fails if the graph does not terminate within ``timeout``."""
    tb = gr.top_block()
    src, sink = pdu_source(messages), message_collector()
    tb.msg_connect(src, "out", block, in_port)
    tb.msg_connect(block, out_port, sink, "in")
    run_flowgraph(tb, timeout)
    return list(sink.messages)


def post_and_collect(block, in_port, out_port, messages, expect=None, timeout=120.0):
    """Former name of ``run_pdus`` (``expect`` is no longer needed: the run
    ends when the flowgraph does, with every message handled)."""
    return run_pdus(block, in_port, out_port, messages, timeout)


def pdu(meta, array):
    from gnuradio.unitocom.runtime import pdu_util
    return pdu_util.make(pmt.to_pmt(meta), np.asarray(array))
