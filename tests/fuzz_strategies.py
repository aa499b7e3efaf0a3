"""Hypothesis strategies and a flowgraph harness for tests/test_fuzz_blocks.py.

* ``pmts()``: arbitrary PMTs — nil, bools, longs (int64 edges), uint64
  (up to 2^64−1), doubles (NaN, ±Inf, ±1e308, 3e38, −4000, denormals),
  complex, symbols, uniform vectors of every type (0 to 2^20+1 items, u8 up
  to 10^7), and dicts / pairs / tuples / vectors of those, nested; dicts use
  the project's metadata keys (``META_KEYS``) with values of the wrong type.
  Every value is a ``Pmt`` whose repr says how it was made, so a minimal
  failing example reads as a recipe (``cons(dict{frame_id: uint64(…)}, …)``)
  and never prints a ten-million-item vector.
* ``samples()``: complex64 arrays with NaN/Inf/huge values at drawn places.
* ``MessageSource``: a block that publishes given messages from ``start()``
  and then says "done", so a message-only flowgraph finishes by itself,
  deterministically (no strobe, no sleeps).
* ``run_flowgraph(tb)``: runs ``tb`` in a thread with a timeout and reads
  GNU Radio's log (fds 1 and 2) meanwhile: a block thread that died of an
  exception ("thread_body_wrapper … ERROR") or a flowgraph that does not
  finish fails the test at once, with the log in the message.
"""
import gc
import math
import os
import sys
import tempfile
import threading
import time

import numpy as np
import pmt
from gnuradio import gr
from hypothesis import strategies as st

import unitocom_testing  # noqa: F401  (makes gnuradio.unitocom importable)
from gnuradio.unitocom.core import tags as tagkeys  # noqa: E402

#: Metadata / tag keys the blocks read or write.
META_KEYS = ("frame_id", "modality", "n_tokens", "rate", "snr_db", "h", "model_id", "sample_rate", "n_samples",
             "session_id", "token_dim", "noise_var", "packet_len", "tokenizer_id", "split", "scene_index",
             "corpus_seed", "eq_gain", "eq_noise_var", "n_symbols", "tx_snr_db")
WORDS = ("image", "audio", "text", "video", "test", "train", "genib", "text_vocab", "", "packet_len",
         "test_tokenizer_s8-genib-afea97d9")
SPECIAL_FLOATS = (math.nan, math.inf, -math.inf, 1e308, -1e308, 3e38, -3e38, 1e30, -4000.0, 4000.0, 5e-324,
                  1e-45, -0.0, 0.0, 1.0, 2.0 ** 63, -1e-300)
INT_EDGES = (0, 1, -1, 2, 4, 8, 16000, 2 ** 31 - 1, -2 ** 31, 2 ** 53 + 1, 2 ** 63 - 1, -2 ** 63)
UINT_EDGES = (0, 5, 16000, 2 ** 63, 2 ** 64 - 1)
#: Sizes of the large uniform vectors: around an image's 12288 bytes and pdu limits.
LARGE_SIZES = (12287, 12288, 12289, 1 << 20, (1 << 20) + 1)
HUGE_U8 = 10 ** 7

DEAD_MARK = "thread_body_wrapper"
RUN_TIMEOUT = float(os.environ.get("UNITOCOM_FUZZ_TIMEOUT", "20"))


class Pmt:
    """A PMT with a readable recipe as its repr."""
    __slots__ = ("value", "desc")

    def __init__(self, value, desc):
        self.value, self.desc = value, desc

    def __repr__(self):
        return self.desc


# --- scalars -------------------------------------------------------------------
def _float_text(x):
    return repr(x) if math.isfinite(x) else f"float('{x}')"


ints = st.one_of(st.sampled_from(INT_EDGES), st.integers(-2 ** 63, 2 ** 63 - 1))
uints = st.one_of(st.sampled_from(UINT_EDGES), st.integers(0, 2 ** 64 - 1))
floats = st.one_of(st.sampled_from(SPECIAL_FLOATS), st.floats())
texts = st.one_of(st.sampled_from(META_KEYS + WORDS),
                  st.text(st.characters(exclude_categories=("Cs",)), max_size=12))

pmt_nil = st.just(Pmt(pmt.PMT_NIL, "nil"))
pmt_bools = st.booleans().map(lambda b: Pmt(pmt.from_bool(b), f"bool({b})"))
pmt_longs = ints.map(lambda i: Pmt(pmt.from_long(i), f"long({i})"))
pmt_uint64s = uints.map(lambda u: Pmt(pmt.from_uint64(u), f"uint64({u})"))
pmt_doubles = floats.map(lambda x: Pmt(pmt.from_double(x), f"double({_float_text(x)})"))
pmt_complexes = st.builds(complex, floats, floats).map(
    lambda z: Pmt(pmt.from_complex(z), f"complex({_float_text(z.real)}, {_float_text(z.imag)})"))
pmt_symbols = texts.map(lambda s: Pmt(pmt.intern(s), f"sym({s!r})"))
pmt_scalars = st.one_of(pmt_nil, pmt_bools, pmt_longs, pmt_uint64s, pmt_doubles, pmt_complexes, pmt_symbols)

# --- uniform vectors -------------------------------------------------------------
_VEC = {  # kind: (make(n, fill), init(n, list), element strategy)
    "u8": (pmt.make_u8vector, pmt.init_u8vector, st.integers(0, 255)),
    "s8": (pmt.make_s8vector, pmt.init_s8vector, st.integers(-128, 127)),
    "u16": (pmt.make_u16vector, pmt.init_u16vector, st.integers(0, 2 ** 16 - 1)),
    "s16": (pmt.make_s16vector, pmt.init_s16vector, st.integers(-2 ** 15, 2 ** 15 - 1)),
    "u32": (pmt.make_u32vector, pmt.init_u32vector, st.integers(0, 2 ** 32 - 1)),
    "s32": (pmt.make_s32vector, pmt.init_s32vector, st.integers(-2 ** 31, 2 ** 31 - 1)),
    "u64": (pmt.make_u64vector, pmt.init_u64vector, uints),
    "s64": (pmt.make_s64vector, pmt.init_s64vector, ints),
    "f32": (pmt.make_f32vector, pmt.init_f32vector, floats),
    "f64": (pmt.make_f64vector, pmt.init_f64vector, floats),
    "c32": (pmt.make_c32vector, pmt.init_c32vector, st.builds(complex, floats, floats)),
    "c64": (pmt.make_c64vector, pmt.init_c64vector, st.builds(complex, floats, floats)),
}


def uvector(kind, n, fill):
    """A uniform vector of ``n`` items all ``fill`` (made in C++: fast for 10^7 items)."""
    return Pmt(_VEC[kind][0](n, fill), f"{kind}vector(n={n}, fill={fill!r})")


def uvector_of(kind, items):
    return Pmt(_VEC[kind][1](len(items), list(items)), f"{kind}vector({list(items)!r})")


@st.composite
def small_uvectors(draw, kinds=tuple(_VEC)):
    kind = draw(st.sampled_from(kinds))
    return uvector_of(kind, draw(st.lists(_VEC[kind][2], max_size=8)))


@st.composite
def large_uvectors(draw, kinds=tuple(_VEC)):
    kind = draw(st.sampled_from(kinds))
    sizes = LARGE_SIZES + ((HUGE_U8,) if kind == "u8" else ())
    return uvector(kind, draw(st.sampled_from(sizes)), draw(_VEC[kind][2]))


# --- containers ---------------------------------------------------------------------
def make_dict(entries):
    """A dict PMT from [(key Pmt, value Pmt)]."""
    d = pmt.make_dict()
    for k, v in entries:
        d = pmt.dict_add(d, k.value, v.value)
    return Pmt(d, "dict{" + ", ".join(f"{k!r}: {v!r}" for k, v in entries) + "}")


def cons(a, b):
    return Pmt(pmt.cons(a.value, b.value), f"cons({a!r}, {b!r})")


def _vector(items):
    v = pmt.make_vector(len(items), pmt.PMT_NIL)
    for i, x in enumerate(items):
        pmt.vector_set(v, i, x.value)
    return Pmt(v, "vector[" + ", ".join(map(repr, items)) + "]")


def _tuple(items):
    return Pmt(pmt.to_tuple(_vector(items).value), "tuple(" + ", ".join(map(repr, items)) + ")")


key_symbols = st.sampled_from(META_KEYS).map(lambda s: Pmt(pmt.intern(s), s))


def dicts(values, keys=None):
    keys = keys if keys is not None else st.one_of(key_symbols, key_symbols, pmt_symbols, pmt_scalars)
    return st.lists(st.tuples(keys, values), max_size=6).map(make_dict)


def _extend(children):
    return st.one_of(dicts(children), st.builds(cons, children, children),
                     st.lists(children, max_size=4).map(_tuple), st.lists(children, max_size=4).map(_vector))


def pmts(large=True):
    """Any PMT: scalars, vectors (large ones when ``large``), containers, nested."""
    leaves = st.one_of(pmt_scalars, small_uvectors(), *((large_uvectors(),) if large else ()))
    return st.recursive(leaves, _extend, max_leaves=8)


def _edge_values():
    values = [Pmt(pmt.from_uint64(u), f"uint64({u})") for u in (2 ** 63, 2 ** 64 - 1, 16000)]
    values += [Pmt(pmt.from_long(i), f"long({i})") for i in (2 ** 63 - 1, -2 ** 63, -1, 0)]
    values += [Pmt(pmt.from_double(x), f"double({_float_text(x)})")
               for x in (math.nan, math.inf, -math.inf, 1e308, -4000.0, 3e38, 1e30, 0.5)]
    values += [Pmt(pmt.from_complex(complex(math.nan, 1)), "complex(nan, 1)"), Pmt(pmt.PMT_T, "#t"),
               Pmt(pmt.PMT_NIL, "nil"), Pmt(pmt.intern(""), "sym('')"), Pmt(pmt.make_dict(), "dict{}"),
               Pmt(pmt.make_vector(0, pmt.PMT_NIL), "vector[]"), Pmt(pmt.init_u8vector(0, []), "u8vector([])")]
    return values


#: The values that broke blocks before: uint64 beyond int64, int64 edges, NaN/±Inf/1e308/−4000, …
edge_values = st.sampled_from(_edge_values())


def meta_values():
    """Metadata values of any (mostly wrong) type, small enough to copy around; edge values
    (``edge_values``) half of the time."""
    return st.one_of(edge_values, st.recursive(st.one_of(pmt_scalars, small_uvectors()), _extend, max_leaves=4))


def metadata(keys=META_KEYS):
    """A metadata dict PMT whose keys are drawn from ``keys`` and values from ``meta_values``."""
    return st.lists(st.tuples(st.sampled_from(keys), meta_values()), max_size=5, unique_by=lambda e: e[0]).map(
        lambda es: make_dict([(Pmt(pmt.intern(k), k), v) for k, v in es]))


def with_entry(meta, key, value):
    """``meta`` (a dict Pmt) with one more entry (Pmt value)."""
    return Pmt(pmt.dict_add(meta.value, pmt.intern(key), value.value), f"{meta!r}+{{{key}: {value!r}}}")


@st.composite
def garbage_pdus(draw, kinds=tuple(_VEC)):
    """A message of any shape meant for a PDU port: not a pair, a pair with a
    bad metadata part, or metadata with wrong-typed values around any vector."""
    meta = draw(st.one_of(metadata(), pmts(large=False), st.just(Pmt(pmt.PMT_NIL, "nil"))))
    vec = draw(st.one_of(small_uvectors(kinds), large_uvectors(kinds), pmts(large=False)))
    return draw(st.one_of(st.just(cons(meta, vec)), pmts()))


# --- control messages ------------------------------------------------------------------
def _number(value):
    """Python number a control reader would see in a PMT value, or None (what ``tags.read_number`` reads)."""
    number = tagkeys.to_python(value)
    return number if isinstance(number, (int, float)) and not isinstance(number, bool) else None


def defang_ctrl(msg, effective):
    """``msg`` with every value a control port would *apply* replaced by a symbol.

    ``effective[key](number)`` says whether a number for ``key`` is one the
    block must accept (e.g. a rate of the model, an SNR in −50…100 dB);
    everything left must be ignored by the block, so its setting cannot
    depend on when the message arrives."""
    bad = pmt.intern("defanged")

    def fix_dict(d):
        for key, ok in effective.items():
            k = pmt.intern(key)
            if pmt.dict_has_key(d, k):
                n = _number(pmt.dict_ref(d, k, pmt.PMT_NIL))
                if n is not None and ok(n):
                    d = pmt.dict_add(d, k, bad)
        return d

    v = msg.value
    if pmt.is_dict(v):
        return Pmt(fix_dict(v), f"{msg!r}")
    if pmt.is_pair(v) and not pmt.is_dict(v):
        car, cdr = pmt.car(v), pmt.cdr(v)
        if pmt.is_dict(car):
            return Pmt(pmt.cons(fix_dict(car), cdr), f"{msg!r}")
        if pmt.is_symbol(car) and pmt.symbol_to_string(car) in effective:
            n = _number(cdr)
            if n is not None and effective[pmt.symbol_to_string(car)](n):
                return Pmt(pmt.cons(car, bad), f"cons({pmt.symbol_to_string(car)!r}, sym('defanged'))")
    return msg


def ctrl_messages(effective):
    """Hostile control messages: dicts/pairs with the control keys holding bad values, and anything else."""
    control_keys = st.sampled_from(tuple(effective)).map(lambda s: Pmt(pmt.intern(s), s))
    values = st.one_of(pmt_scalars, small_uvectors(), meta_values())
    shaped = st.one_of(
        dicts(values, st.one_of(control_keys, key_symbols)),
        st.builds(cons, control_keys, values),
        st.builds(cons, dicts(values, st.one_of(control_keys, key_symbols)), st.one_of(small_uvectors(), pmt_nil)))
    return st.one_of(shaped, shaped, pmts()).map(lambda m: defang_ctrl(m, effective))


# --- streams ---------------------------------------------------------------------------
SPECIAL_SAMPLES = (complex(math.nan, 0), complex(0, math.nan), complex(math.inf, 0), complex(-math.inf, 1),
                   complex(3e38, 3e38), complex(-3e38, 0), complex(1e30, 0), complex(0, 1e-45))


@st.composite
def specials(draw, n, max_count=6):
    """[(position, hostile sample)] within [0, n)."""
    if n == 0:
        return []
    return draw(st.lists(st.tuples(st.integers(0, n - 1), st.sampled_from(SPECIAL_SAMPLES)), max_size=max_count))


def noise(n, seed, scale=1.0):
    rng = np.random.default_rng(seed)
    return (scale * (rng.standard_normal(n) + 1j * rng.standard_normal(n)) / np.sqrt(2)).astype(np.complex64)


@st.composite
def samples(draw, min_size=0, max_size=600):
    """(complex64 array, positions of hostile samples)."""
    n = draw(st.integers(min_size, max_size))
    x = noise(n, draw(st.integers(0, 2 ** 32 - 1)))
    bad = draw(specials(n))
    for pos, value in bad:
        x[pos] = value
    return x, sorted({p for p, _ in bad})


def tag(offset, key, value):
    """A gr.tag_t; ``value`` is a Pmt."""
    return gr.tag_utils.python_to_tag((int(offset), pmt.intern(key), value.value))


@st.composite
def garbage_tags(draw, n, keys=META_KEYS, max_count=8, exclude=()):
    """[(offset, key, Pmt)] of random keys (not in ``exclude``) and values at offsets in [0, n)."""
    if n == 0:
        return []
    key = st.one_of(st.sampled_from(keys), texts).filter(lambda k: k and k not in exclude)
    return draw(st.lists(st.tuples(st.integers(0, n - 1), key, meta_values()), max_size=max_count))


def bad_values(*extra, key=None):
    """Values no CSI/length/rate tag may be taken for (wrong types, NaN/Inf, absurd sizes), plus
    ``extra``. Per ``key``: −4000 is a number for an ``h`` (a gain of 4000, if a big one), and
    any finite σ² >= 0, however huge, is one for an ``eq_noise_var`` (a deep fade after ZF)."""
    huge = () if key == "eq_noise_var" else (1e308, 3e38, 1e30)
    numbers = (math.nan, math.inf, -math.inf, -1e308) + huge + ((-4000.0,) if key != "h" else ())
    fixed = [Pmt(pmt.from_double(x), f"double({_float_text(x)})") for x in numbers]
    fixed += [Pmt(pmt.from_uint64(2 ** 64 - 1), "uint64(2**64-1)")] if huge else []
    fixed += [Pmt(pmt.from_long(-2 ** 63), "long(-2**63)"),
              Pmt(pmt.from_complex(complex(math.nan, 1)), "complex(nan, 1)"), Pmt(pmt.PMT_T, "#t"),
              Pmt(pmt.intern("1.0"), "sym('1.0')"), Pmt(pmt.PMT_NIL, "nil"), Pmt(pmt.make_dict(), "dict{}"),
              Pmt(pmt.init_f32vector(1, [1.0]), "f32vector([1.0])")]
    return st.sampled_from(fixed + list(extra))


def tags_as_python(tags):
    """Sink tags as sorted [(offset, key, write_string(value))] (NaN-safe comparison)."""
    return sorted((t.offset, pmt.symbol_to_string(t.key), pmt.write_string(t.value)) for t in tags)


# --- the harness ----------------------------------------------------------------------
class MessageSource(gr.basic_block):
    """Publishes lists of messages on its output ports from start(), then says "done".

    ``MessageSource(out=[pmt, …], ctrl=[…])``: one output port per keyword.
    GNU Radio delivers a block's "done" to its message neighbours after the
    messages it sent before, so the blocks downstream see every message and
    a message-only graph ends by itself. A message-only block has no stream
    buffers (a stream source would hold SysV shared memory until Python's
    cyclic GC runs). Keep a reference to it while the graph runs: GNU Radio
    calls back into the Python object."""

    def __init__(self, **ports):
        gr.basic_block.__init__(self, name="fuzz_message_source", in_sig=None, out_sig=None)
        self._ports = [(pmt.intern(name), [m.value if isinstance(m, Pmt) else m for m in msgs])
                       for name, msgs in ports.items()]
        for port, _ in self._ports:
            self.message_port_register_out(port)

    def start(self):
        for port, msgs in self._ports:
            for msg in msgs:
                self.message_port_pub(port, msg)
        self.to_basic_block()._post(pmt.intern("system"), pmt.cons(pmt.intern("done"), pmt.from_long(1)))
        return True


_RUNS = [0]


class FlowgraphFailure(AssertionError):
    pass


def run_flowgraph(tb, timeout=None):
    """``tb.run()`` in a thread; returns GNU Radio's log of the run.

    Raises FlowgraphFailure when a block thread died of an exception (seen in
    the log, at once) or the flowgraph did not finish within ``timeout``."""
    timeout = RUN_TIMEOUT if timeout is None else timeout
    _RUNS[0] += 1
    if _RUNS[0] % 16 == 0:
        # Python blocks and their flowgraphs form reference cycles; until the cyclic GC
        # frees them, each keeps its buffers' SysV shared memory segments (a few
        # thousand graphs exhaust the system's segments: "shmget: No space left").
        gc.collect()
    finished, raised = threading.Event(), []

    def target():
        try:
            tb.run()
        except BaseException as exc:       # noqa: B902  (reported below)
            raised.append(exc)
        finally:
            finished.set()

    with tempfile.TemporaryFile() as log:
        sys.stdout.flush()
        sys.stderr.flush()
        saved = [os.dup(1), os.dup(2)]              # GNU Radio logs to stdout, Python to stderr
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        try:
            threading.Thread(target=target, daemon=True).start()
            deadline, dead = time.monotonic() + timeout, False
            while not finished.wait(0.01):
                size = os.fstat(log.fileno()).st_size
                dead = DEAD_MARK.encode() in os.pread(log.fileno(), size, 0)
                if dead or time.monotonic() > deadline:
                    break
        finally:
            for fd, copy in zip((1, 2), saved):
                os.dup2(copy, fd)
                os.close(copy)
        text = os.pread(log.fileno(), os.fstat(log.fileno()).st_size, 0).decode("utf-8", "replace")
    if text:
        os.write(1, text[-20000:].encode())          # pytest shows it with a failure
    if DEAD_MARK in text or not finished.is_set() or raised:
        threading.Thread(target=tb.stop, daemon=True).start()       # a hung graph cannot be joined
        what = ("a block thread died" if DEAD_MARK in text else
                f"tb.run() raised {raised[0]!r}" if raised else f"the flowgraph did not finish in {timeout:g} s")
        lines = [line for line in text.splitlines() if "warning" not in line][-30:]
        raise FlowgraphFailure(what + ":\n" + "\n".join(lines))
    return text


def rss_kib():
    """Resident memory of this process (VmRSS, KiB)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0
