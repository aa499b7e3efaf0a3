"""Shared helpers for the QA tests and pytest suites.

Importing this module makes ``gnuradio.unitocom`` importable from the source
tree when it is not installed (the ``./unitocom`` venv and ctest's build
tree already provide it).
"""
import pathlib

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
    from gnuradio.unitocom import tags as tagkeys
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


def post_and_collect(block, in_port, out_port, messages, expect, timeout=20.0):
    """Run ``block`` in a flowgraph, post ``messages`` to ``in_port`` and
    return the PDUs that come out of ``out_port`` once ``expect`` arrived
    (or the timeout passed). The flowgraph is stopped and waited for, so a
    test also shows that a message-only graph terminates."""
    import time
    tb = gr.top_block()
    sink = blocks.message_debug()
    tb.msg_connect((block, out_port), (sink, "store"))
    tb.start()
    for msg in messages:
        block.to_basic_block()._post(pmt.intern(in_port), msg)
    deadline = time.time() + timeout
    while sink.num_messages() < expect and time.time() < deadline:
        time.sleep(0.01)
    time.sleep(0.05)                      # anything unexpected still in flight shows up
    tb.stop()
    tb.wait()
    return [sink.get_message(i) for i in range(sink.num_messages())]


def pdu(meta, array):
    from gnuradio.unitocom import pdu_util
    return pdu_util.make(pmt.to_pmt(meta), np.asarray(array))
