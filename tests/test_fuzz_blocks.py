"""Property-based fuzzing of every block's message and stream inputs (hypothesis).

For each of the 18 blocks a real flowgraph runs hostile input — PMTs of
every type (nil, bools, int64/uint64 edges, NaN/±Inf/±1e308/−4000 doubles,
complex, symbols, uniform vectors of every type from 0 to 2^20+1 items and
u8 up to 10^7, dicts with the project's metadata keys holding wrong types,
pairs, tuples, nested), near-miss PDUs, complex samples with NaN/Inf/3e38,
tags with random keys, values and offsets (two at one offset, length tags
of 0/negative/huge/wrong type) — *interleaved with valid items*, and each
property asserts:

* the flowgraph finishes by itself within a timeout, and no block thread
  died (GNU Radio's "thread_body_wrapper" error in the log fails at once:
  a dead thread would otherwise leave ``tb.wait()`` hanging);
* every valid item comes out exactly once, in order, with the content a
  clean run of the same valid items gives (tokens, frames, samples, soft
  bits, images, counts); "maybe" items (finite but absurd values: a 3e38
  audio sample, 1e30 tokens) may be dropped or come out, but finite;
  nothing else comes out (but a random message that happens to be valid,
  e.g. 12288 bytes of one value for an image: a "stray"). Valid items carry
  a ``fuzz_seq`` metadata key (a tag at their frame start on streams).

The newer blocks: ``mllm_client`` runs against tests/qa_mllm_client.py's
fake ZeroMQ MLLM server (one per module) on valid image/text/audio token PDUs
of random sessions and tasks among garbage and near misses; every request a
clean grouping of the valid PDUs alone makes gets one result (a question
that never got its image, one final 'incomplete' error), in order per
session, answering the very arrays of that grouping. ``ofdm_rx`` gets
bursts of ``ofdm_tx`` between noise of any level with NaN/Inf/3e38 samples,
cut bursts, headers of noise and a modality without an output: every valid
frame comes out once, in order, with the samples and tags (CSI estimates
included) of a clean run. ``sample_source``'s arguments are accepted (and
its flowgraph sends what it says) or a ValueError sentence.
``result_display`` and ``image_display`` (Qt's offscreen platform) show
each valid PDU once, in order, and nothing of garbage.

The known killers of the review (uint64 and 2^63−1 frame_ids, ctrl
``{rate: inf}``, a uint64 ``model_id`` tag, two ``h`` tags at one offset,
``snr_db`` −4000 in tags, ctrl and constructors, 10^7-item PDUs, 8000 text
ids, 3e38 samples and tokens, a 1e30 ``h``; an OFDM burst at the stream's
first sample) run as fixed examples too.

Message inputs are fed by ``fuzz_strategies.MessageSource``, which
publishes its list from ``start()`` and then says "done" (deterministic:
no strobes, no sleeps). Control ports get hostile messages whose values
could not legally change a setting (``defang_ctrl``), so the output does
not depend on when they arrive. The ONNX blocks use the tiny fixture
models (tests/fixtures/models).

Profiles (environment variable ``UNITOCOM_FUZZ``):

* ``ci`` (default): ``CI_EXAMPLES`` (40) examples per property (weighted per
  block), derandomized: the same ~12,000 generated inputs every run, about
  a minute and a quarter on 2 cores (the five newer blocks' ~1,200 inputs take
  ~20 s of it); the memory test runs 3 rounds::

      .venv/bin/python -m pytest -q tests/test_fuzz_blocks.py

* ``soak``: ``SOAK_EXAMPLES`` (400) examples per property (a quarter for the
  tx, rx, scene_source and sample_source hier blocks) with random seeds:
  ~130,000 generated inputs, 13–18 minutes; a failure prints a
  ``@reproduce_failure`` blob.
  ``test_memory_stays_bounded`` then runs one tx → channel → rx flowgraph
  for 150 rounds of 40 hostile batches (~30,000 inputs) and bounds the
  growth of resident memory (VmRSS) after a warm-up to 32 MiB::

      UNITOCOM_FUZZ=soak .venv/bin/python -m pytest -q -s tests/test_fuzz_blocks.py

  ``UNITOCOM_FUZZ_STATS=file.json`` writes the number of generated inputs
  per block and the memory figures; ``-s`` prints them.
  ``UNITOCOM_FUZZ_EXAMPLES=n`` sets the examples per property of either profile.
"""
import collections
import dataclasses
import functools
import json
import math
import os
import threading

import numpy as np
import pmt
import pytest
from gnuradio import blocks, gr
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from unitocom_testing import FIXTURE_MODELS

os.environ["UNITOCOM_MODEL_DIR"] = str(FIXTURE_MODELS)
import fuzz_strategies as fz  # noqa: E402
from fuzz_strategies import Pmt, bad_values, cons, with_entry  # noqa: E402
from gnuradio import unitocom  # noqa: E402
from gnuradio.unitocom.core import metrics  # noqa: E402
from gnuradio.unitocom.data import vocab  # noqa: E402
from gnuradio.unitocom.data.corpus import scene_image  # noqa: E402

CI_EXAMPLES, SOAK_EXAMPLES = 40, 400
if os.environ.get("UNITOCOM_FUZZ_EXAMPLES"):            # e.g. a longer soak: UNITOCOM_FUZZ_EXAMPLES=2000
    CI_EXAMPLES = SOAK_EXAMPLES = int(os.environ["UNITOCOM_FUZZ_EXAMPLES"])
_COMMON = dict(deadline=None, database=None, print_blob=True,
               suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                      HealthCheck.large_base_example, HealthCheck.filter_too_much])
settings.register_profile("unitocom-ci", max_examples=CI_EXAMPLES, derandomize=True, **_COMMON)
settings.register_profile("unitocom-soak", max_examples=SOAK_EXAMPLES, derandomize=False, **_COMMON)
PROFILE_NAME = os.environ.get("UNITOCOM_FUZZ", "ci")
if PROFILE_NAME not in ("ci", "soak"):
    raise ValueError(f"UNITOCOM_FUZZ must be 'ci' or 'soak'; got {PROFILE_NAME!r}")
PROFILE = settings.get_profile(f"unitocom-{PROFILE_NAME}")
SOAK = PROFILE_NAME == "soak"


def fuzz(weight=1.0, soak_weight=None):
    """The profile's settings with ``weight`` (in the soak ``soak_weight``) × its number of examples."""
    w = soak_weight if SOAK and soak_weight is not None else weight
    return settings(PROFILE, max_examples=max(2, round(PROFILE.max_examples * w)))


# GNU Radio 3.10 never frees a flowgraph that holds a Python hier block with a message port
# connected to one of its own blocks (tx, rx, scene_source): each run keeps its buffers' SysV
# shared memory (4096 segments in all here). The soak runs those properties less often.
HIER_SOAK_WEIGHT = 0.25


SEQ = "fuzz_seq"
TOK8, DET8 = "test_tokenizer_s8", "test_detokenizer_s8"
ENC8, DEC8 = "test_image_jscc_encoder_s8", "test_image_jscc_decoder_s8"
TXT_ENC, TXT_DEC = "test_text_jscc_encoder", "test_text_jscc_decoder"
AUD_TOK, AUD_DET = "test_audio_tokenizer", "test_audio_detokenizer"
RATES = (2, 4, 8)
SENTENCES = ("is the small red cube left of the large sphere?", "what size is the rubber cube?",
             "how many metal spheres are there?")

INPUTS = collections.Counter()        # generated inputs per property (messages, segments, tags, ctrl)
REPORT = {}


@pytest.fixture(scope="module", autouse=True)
def _report():
    yield
    REPORT.update(profile=PROFILE_NAME, inputs=dict(INPUTS), total_inputs=sum(INPUTS.values()))
    print(f"\nfuzz profile {PROFILE_NAME}: {REPORT['total_inputs']} generated inputs ("
          + ", ".join(f"{k} {v}" for k, v in sorted(INPUTS.items())) + ")")
    if "memory" in REPORT:
        print("memory:", REPORT["memory"])
    if os.environ.get("UNITOCOM_FUZZ_STATS"):
        with open(os.environ["UNITOCOM_FUZZ_STATS"], "w") as f:
            json.dump(REPORT, f, indent=1)


# ====================================================================================
# Items: what a property feeds, and what it checks came out
# ====================================================================================
@dataclasses.dataclass
class Item:
    """One input. ``valid``: must come out once, in order, equal to a clean run
    (``pool``: which pool entry); ``maybe``: may come out, finite; ``garbage``:
    must not come out; ``stray``: a random message that happens to look valid
    (may come out, finite, without a fuzz_seq). ``msg``: a Pmt (message ports)
    or a ``Segment`` (streams)."""
    kind: str
    msg: object
    seq: int = None
    pool: int = None


@dataclasses.dataclass
class Segment:
    """A stretch of a stream: samples and tags [(rel_offset, key, Pmt)]."""
    samples: np.ndarray
    tags: list

    def __repr__(self):
        return f"Segment(n={len(self.samples)}, tags={self.tags!r})"

    def _repr_pretty_(self, printer, cycle):           # hypothesis prints dataclasses field by field
        printer.text(repr(self))


def long_(i):
    return Pmt(pmt.from_long(int(i)), f"long({int(i)})")


def meta_of(seq=None, **entries):
    """A metadata dict Pmt from Pmt values (and fuzz_seq = ``seq``)."""
    m = fz.make_dict([(Pmt(pmt.intern(k), k), v) for k, v in entries.items()])
    return m if seq is None else with_entry(m, SEQ, long_(seq))


def uint64(u):
    return Pmt(pmt.from_uint64(u), f"uint64({u})")


def double(x):
    return Pmt(pmt.from_double(x), f"double({x})")


@st.composite
def item_lists(draw, valid, garbage, maybe=None, max_size=10):
    """Items made by makers (seq → Item) drawn from the three strategies; the last one valid,
    so a block that died on the way cannot go unnoticed."""
    kinds = [valid, garbage, garbage] + ([maybe] if maybe is not None else [])
    makers = draw(st.lists(st.one_of(*kinds), max_size=max_size - 1)) + [draw(valid)]
    return [make(seq) for seq, make in enumerate(makers)]


def valid_pdus(pool, meta_keys=fz.META_KEYS, kind="valid"):
    """Makers of PDUs {random metadata + fuzz_seq} × pool vector ``pool[i]`` (a Pmt)."""
    def build(i, meta):
        return lambda seq: Item(kind, cons(with_entry(meta, SEQ, long_(seq)), pool[i]), seq, i)
    return st.builds(build, st.integers(0, len(pool) - 1), fz.metadata(meta_keys))


def garbage_msgs(accepts, extra=()):
    """Makers of hostile messages: ``fz.garbage_pdus`` and the given near misses. Those the block
    could take as valid by chance (``accepts(msg)``, an over-estimate: a random 12288-byte u8 PDU
    is an image) are "stray": they may come out, without a fuzz_seq; the others must not."""
    strategies = [fz.garbage_pdus()] + ([st.sampled_from(extra)] if extra else [])
    return st.one_of(*strategies).map(
        lambda m: (lambda seq: Item("stray" if accepts(m.value) else "garbage", m, seq)))


_VECTORS = {"u8": pmt.is_u8vector, "s16": pmt.is_s16vector, "s32": pmt.is_s32vector, "f32": pmt.is_f32vector}


def pdu_kind(msg):
    """(vector kind, length) of a PDU-shaped message (metadata dict or nil), else (None, 0)."""
    if not pmt.is_pair(msg) or not (pmt.is_dict(pmt.car(msg)) or pmt.is_null(pmt.car(msg))):
        return None, 0
    vec = pmt.cdr(msg)
    kind = next((k for k, test in _VECTORS.items() if test(vec)), None)
    return kind, (pmt.length(vec) if kind else 0)


def accepts_text(msg):
    kind, n = pdu_kind(msg)
    if kind != "u8" or not 0 < n <= 1024:
        return False
    try:
        vocab.encode(bytes(pmt.u8vector_elements(pmt.cdr(msg))).decode("utf-8").strip().lower())
        return True
    except (UnicodeDecodeError, ValueError):
        return False


def accepts(kinds, sizes=None, multiple=1):
    """Over-estimate of what a block takes: a PDU of one of ``kinds`` whose length is in
    ``sizes`` (a range or a set; any > 0 if None) and a multiple of ``multiple``."""
    def check(msg):
        kind, n = pdu_kind(msg)
        return kind in kinds and n > 0 and n % multiple == 0 and (sizes is None or n in sizes)
    return check


def accepts_ids(msg):
    """A text token PDU: 1 to 256 s32 ids of the 64-word vocabulary."""
    kind, n = pdu_kind(msg)
    return kind == "s32" and 0 < n <= 256 and all(0 <= i < len(vocab.TOKENS)
                                                  for i in pmt.s32vector_elements(pmt.cdr(msg)))


ACCEPTS_IMAGE = accepts(("u8", "f32"), {12288})


def keyed_bad_values(keys):
    """(key, a value that key may not take) pairs."""
    return st.sampled_from(keys).flatmap(lambda k: st.tuples(st.just(k), bad_values(key=k)))


def pdu_parts(msg):
    """(fuzz_seq or None, numpy vector) of an output PDU; fails on anything that is not a PDU."""
    assert pmt.is_pair(msg) and pmt.is_dict(pmt.car(msg)) and pmt.is_uniform_vector(pmt.cdr(msg)), \
        f"output is not a PDU: {pmt.write_string(msg)[:200]}"
    seq = pmt.dict_ref(pmt.car(msg), pmt.intern(SEQ), pmt.PMT_NIL)
    return (pmt.to_long(seq) if pmt.is_integer(seq) else None), np.asarray(pmt.to_python(pmt.cdr(msg)))


def check_outputs(outs, items, compare):
    """``outs``: [(seq, numpy vector)] in output order."""
    by_seq = {it.seq: it for it in items if it.kind in ("valid", "maybe")}
    n_stray = sum(it.kind == "stray" for it in items)
    unknown = [s for s, _ in outs if s not in by_seq]
    assert len(unknown) <= n_stray and all(s is None for s in unknown), \
        f"outputs {[s for s, _ in outs]}: {len(unknown)} of no valid item (garbage came out, or fuzz_seq was lost)"
    outs = [(s, vec) for s, vec in outs if s is not None] + [(s, vec) for s, vec in outs if s is None]
    seqs = [s for s, _ in outs if s is not None]
    assert seqs == sorted(set(seqs)), f"outputs out of order or repeated: {seqs}"
    want = [it.seq for it in items if it.kind == "valid"]
    got = [s for s in seqs if by_seq[s].kind == "valid"]
    assert got == want, f"valid items out: {got}; expected {want} (missing {sorted(set(want) - set(got))})"
    for s, vec in outs:
        if np.issubdtype(vec.dtype, np.inexact):
            assert np.all(np.isfinite(vec)), f"item {s} came out with NaN/Inf values"
        if s is not None and by_seq[s].kind == "valid":
            compare(by_seq[s], vec)


def run_messages(block, in_port, out_port, items, ctrl=(), ctrl_port="ctrl"):
    """MessageSource(items, ctrl) → block → message_debug; returns [(seq, vector)]."""
    tb = gr.top_block()
    src = fz.MessageSource(out=[it.msg for it in items], ctrl=list(ctrl))
    tb.msg_connect(src, "out", block, in_port)
    if ctrl:
        tb.msg_connect(src, "ctrl", block, ctrl_port)
    sink = blocks.message_debug()
    tb.msg_connect(block, out_port, sink, "store")
    fz.run_flowgraph(tb)
    return [pdu_parts(sink.get_message(i)) for i in range(sink.num_messages())]


def run_messages_to_stream(block, in_port, items, ctrl=()):
    """MessageSource(items, ctrl) → block → vector_sink_c; returns [(seq, frame samples)]."""
    tb = gr.top_block()
    src = fz.MessageSource(out=[it.msg for it in items], ctrl=list(ctrl))
    sink = blocks.vector_sink_c()
    tb.msg_connect(src, "out", block, in_port)
    if ctrl:
        tb.msg_connect(src, "ctrl", block, "ctrl")
    tb.connect(block, sink)
    fz.run_flowgraph(tb)
    return stream_frames(np.array(sink.data(), np.complex64), sink.tags())


def stream_frames(data, tags, len_key="packet_len"):
    """[(fuzz_seq, samples)] of a framed stream; fails on samples outside frames."""
    lens = sorted((t.offset, pmt.to_long(t.value)) for t in tags if pmt.symbol_to_string(t.key) == len_key)
    seqs = {t.offset: pmt.to_long(t.value) for t in tags
            if pmt.symbol_to_string(t.key) == SEQ and pmt.is_integer(t.value)}
    out, pos = [], 0
    for off, n in lens:
        assert off == pos, f"output samples {pos}…{off} lie outside any frame (length tags {lens})"
        out.append((seqs.get(off), data[off:off + n]))
        pos = off + n
    assert pos == len(data), f"{len(data) - pos} output samples after the last frame"
    return out


def stream_of(items):
    """(samples, [gr tags]) of the segments of ``items``, back to back."""
    parts, tags, pos = [], [], 0
    for it in items:
        seg = it.msg
        parts.append(seg.samples)
        tags += [fz.tag(pos + rel, key, value) for rel, key, value in seg.tags]
        pos += len(seg.samples)
    data = np.concatenate(parts).astype(np.complex64) if parts else np.zeros(0, np.complex64)
    return data, sorted(tags, key=lambda t: t.offset)


def run_stream_to_messages(block, items, out_port):
    data, tags = stream_of(items)
    tb = gr.top_block()
    src, sink = blocks.vector_source_c(data.tolist(), False, 1, tags), blocks.message_debug()
    tb.connect(src, block)
    tb.msg_connect(block, out_port, sink, "store")
    fz.run_flowgraph(tb)
    return [pdu_parts(sink.get_message(i)) for i in range(sink.num_messages())]


def run_stream(block, data, tags, out=blocks.vector_sink_c, ctrl=()):
    """vector_source_c(data, tags) → block → sink (+ ctrl messages); returns the sink."""
    tb = gr.top_block()
    src, sink = blocks.vector_source_c(np.asarray(data, np.complex64).tolist(), False, 1, tags), out()
    tb.connect(src, block, sink)
    if ctrl:
        msgs = fz.MessageSource(out=list(ctrl))
        tb.msg_connect(msgs, "out", block, "ctrl")
    fz.run_flowgraph(tb)
    return sink


def clean_run(run, pool_items):
    """{pool index: output vector} of a run of valid items only; every one must come out."""
    outs = dict(run(pool_items))
    missing = [it.seq for it in pool_items if it.seq not in outs]
    assert not missing, f"a clean run lost pool items {missing}"
    return {it.pool: outs[it.seq] for it in pool_items}


def plain_items(pool):
    return [Item("valid", cons(Pmt(pmt.to_pmt({SEQ: i}), f"{{{SEQ}: {i}}}"), vec), i, i) for i, vec in enumerate(pool)]


def close(rtol=1e-4, atol=1e-5):
    def compare(want):
        def check(item, vec):
            np.testing.assert_allclose(vec, want[item.pool], rtol=rtol, atol=atol,
                                       err_msg=f"item {item.seq} (pool {item.pool}) differs from a clean run")
        return check
    return compare


def exact(want):
    def check(item, vec):
        np.testing.assert_array_equal(vec, want[item.pool], err_msg=f"item {item.seq} differs from a clean run")
    return check


def u8_close(want):
    def check(item, vec):                       # rounding to bytes may flip by one level
        diff = np.abs(vec.astype(np.int16) - want[item.pool].astype(np.int16))
        assert vec.shape == want[item.pool].shape and diff.max() <= 1, f"item {item.seq} differs from a clean run"
    return check


def count(name, items=(), extra=0):
    INPUTS[name] += len(items) + extra + sum(len(it.msg.tags) for it in items if isinstance(it.msg, Segment))


# ====================================================================================
# Pools of valid inputs and near misses
# ====================================================================================
def f32(values):
    a = np.asarray(values, np.float32)
    return Pmt(pmt.init_f32vector(len(a), a.tolist()), f"f32vector(n={len(a)})")


def u8(values):
    a = np.asarray(values, np.uint8)
    return Pmt(pmt.init_u8vector(len(a), a.tolist()), f"u8vector(n={len(a)})")


def s16(values):
    a = np.asarray(values, np.int16)
    return Pmt(pmt.init_s16vector(len(a), a.tolist()), f"s16vector(n={len(a)})")


def s32(values):
    a = np.asarray(values, np.int32)
    return Pmt(pmt.init_s32vector(len(a), a.tolist()), f"s32vector({a.tolist()})")


@functools.lru_cache(None)
def images():
    rng = np.random.default_rng(7)
    u8s = [rng.integers(0, 256, 12288).astype(np.uint8) for _ in range(3)]
    return u8s, rng.random(12288).astype(np.float32)


@functools.lru_cache(None)
def image_pool():
    u8s, f = images()
    return [u8(x) for x in u8s] + [f32(f)]


@functools.lru_cache(None)
def image_near_misses():
    u8s, f = images()
    nan = f.copy()
    nan[100] = np.nan
    image = image_pool()[0]
    return (u8(u8s[0][:-1]), u8(np.concatenate([u8s[0], [0]])), f32(nan), s32(np.zeros(12288)), f32(f[:-1]),
            cons(long_(3), image), cons(Pmt(pmt.PMT_T, "#t"), image), image,
            fz.uvector("u8", 10 ** 7, 1), fz.uvector("f32", (1 << 20) + 1, 0.5))


@functools.lru_cache(None)
def text_pool():
    return [u8(np.frombuffer(s.encode(), np.uint8)) for s in SENTENCES]


@functools.lru_cache(None)
def text_near_misses():
    return (u8(np.frombuffer(b"\xff\xfe\xfd", np.uint8)), u8(np.frombuffer(b"is the dog red?", np.uint8)),
            u8(np.zeros(0, np.uint8)), u8(np.frombuffer((" cube" * 300).encode(), np.uint8)),
            fz.uvector("u8", 10 ** 7, 32), f32(np.frombuffer(SENTENCES[0].encode(), np.uint8)))


@functools.lru_cache(None)
def audio_clips():
    rng = np.random.default_rng(11)
    return [(0.1 * rng.standard_normal(n)).astype(np.float32) for n in (3200, 4321)]


@functools.lru_cache(None)
def audio_pool():
    a, b = audio_clips()
    return [f32(a), f32(b), s16((a * 32767).astype(np.int16))]


@functools.lru_cache(None)
def audio_near_misses():
    a, _ = audio_clips()
    nan = a.copy()
    nan[5] = np.nan
    return (f32(a[:100]), f32(nan), u8(np.zeros(3200)), fz.uvector("f32", 61 * 16000, 0.0),
            fz.uvector("f32", (1 << 20) + 1, 0.0), s32(np.zeros(3200)))


@functools.lru_cache(None)
def audio_maybes():
    a, _ = audio_clips()
    spike = a.copy()
    spike[7] = 3e38
    return [f32(spike), f32(a * 1e30), fz.uvector("f32", 4000, 3e38)]


@functools.lru_cache(None)
def token_pool(n_tokens=8, dim=4, count=3, seed=3):
    rng = np.random.default_rng(seed)
    return [f32(rng.standard_normal(n_tokens * dim)) for _ in range(count)]


@functools.lru_cache(None)
def id_pool():
    return [s32(vocab.encode(s)) for s in SENTENCES]


# ====================================================================================
# tokenizer
# ====================================================================================
def tokenizer_case(modality):
    if modality == "image":
        return (lambda: unitocom.tokenizer("image", TOK8, "genib", "cpu", 1, 4), image_pool(), fz.META_KEYS,
                image_near_misses(), [f32(np.full(12288, 1e30)), f32(np.linspace(-3e38, 3e38, 12288))],
                ACCEPTS_IMAGE)
    if modality == "text":
        return lambda: unitocom.tokenizer("text"), text_pool(), fz.META_KEYS, text_near_misses(), None, accepts_text
    keys = tuple(k for k in fz.META_KEYS if k != "sample_rate")
    return (lambda: unitocom.tokenizer("audio", AUD_TOK, "genib", "cpu", 1, 4), audio_pool(), keys,
            audio_near_misses(), audio_maybes(), accepts(("f32", "s16"), range(100, 60 * 16000 + 1)))


@functools.lru_cache(None)
def tokenizer_expected(modality):
    make, pool, *_ = tokenizer_case(modality)
    return clean_run(lambda items: run_messages(make(), "pdu", "tokens", items), plain_items(pool))


def audio_rate_items():
    """Audio PDUs whose sample_rate is not 16000: garbage (a number) or maybe (another type)."""
    def build(i, value):
        kind = "garbage" if fz._number(value.value) is not None and fz._number(value.value) != 16000 else "maybe"
        meta = fz.make_dict([(Pmt(pmt.intern("sample_rate"), "sample_rate"), value)])
        return lambda seq: Item(kind, cons(with_entry(meta, SEQ, long_(seq)), audio_pool()[i]), seq, i)
    return st.builds(build, st.integers(0, 2), st.one_of(fz.pmt_scalars, bad_values()).filter(
        lambda v: fz._number(v.value) != 16000))


@pytest.mark.parametrize("modality", ["image", "text", "audio"])
@fuzz()
@given(data=st.data())
def test_tokenizer(modality, data):
    make, pool, keys, near, maybes, takes = tokenizer_case(modality)
    maybe = valid_pdus(maybes, kind="maybe") if maybes else None
    if modality == "audio":
        maybe = st.one_of(maybe, audio_rate_items())
    items = data.draw(item_lists(valid_pdus(pool, keys), garbage_msgs(takes, near), maybe), label="items")
    count(f"tokenizer[{modality}]", items)
    outs = run_messages(make(), "pdu", "tokens", items)
    check_outputs(outs, items, close()(tokenizer_expected(modality)))


# ====================================================================================
# detokenizer
# ====================================================================================
def detokenizer_case(modality):
    if modality == "image":
        return (lambda: unitocom.detokenizer("image", DET8, "genib", TOK8, "cpu", 1, 4), token_pool(), fz.META_KEYS,
                (f32(np.zeros(31)), f32(np.full(32, np.nan)), s32(np.zeros(32)), fz.uvector("f32", 1 << 20, 0.0)),
                [f32(np.full(32, 1e30)), f32(np.full(32, -3e38))], u8_close, accepts(("f32",), {32}))
    if modality == "text":
        return (lambda: unitocom.detokenizer("text"), id_pool(), fz.META_KEYS,
                (s32([1, 2, 64]), s32([-1]), f32([1.0, 2.0]), fz.uvector("s32", 1 << 20, 70)), None, exact,
                accepts_ids)
    keys = tuple(k for k in fz.META_KEYS if k != "n_samples")
    pool = [f32(np.random.default_rng(n).standard_normal(4 * n)) for n in (5, 9)]
    return (lambda: unitocom.detokenizer("audio", AUD_DET, "genib", AUD_TOK, "cpu", 1, 4, 2), pool, keys,
            (f32(np.zeros(6)), f32(np.zeros(0)), f32(np.full(8, np.nan)), fz.uvector("f32", 4 * 1501 + 4, 0.1)),
            [f32(np.full(20, 1e30))], close(1e-3, 1e-4), accepts(("f32",), None, 4))


@functools.lru_cache(None)
def detokenizer_expected(modality):
    make, pool, *_ = detokenizer_case(modality)
    return clean_run(lambda items: run_messages(make(), "tokens", "pdu", items), plain_items(pool))


@pytest.mark.parametrize("modality", ["image", "text", "audio"])
@fuzz()
@given(data=st.data())
def test_detokenizer(modality, data):
    make, pool, keys, near, maybes, compare, takes = detokenizer_case(modality)
    maybe = valid_pdus(maybes, kind="maybe") if maybes else None
    items = data.draw(item_lists(valid_pdus(pool, keys), garbage_msgs(takes, near), maybe), label="items")
    count(f"detokenizer[{modality}]", items)
    outs = run_messages(make(), "tokens", "pdu", items)
    check_outputs(outs, items, compare(detokenizer_expected(modality)))


# ====================================================================================
# jscc_encoder and tx (message in, frames out; hostile ctrl)
# ====================================================================================
CTRL_EFFECTIVE = {"rate": lambda n: n in RATES, "snr_db": lambda n: -50 <= n <= 100}


def encoder_case(modality):
    if modality == "image":
        keys = tuple(k for k in fz.META_KEYS if k != "model_id")
        wrong_id = cons(fz.make_dict([(Pmt(pmt.intern("model_id"), "model_id"),
                                       Pmt(pmt.intern("image_tokenizer_s32-genib-00000000"), "sym(other)"))]),
                        token_pool()[0])
        return (lambda: unitocom.jscc_encoder("image", ENC8, "genib", 4, 10.0, "packet_len", "cpu", 1, 4),
                token_pool(), keys, (f32(np.zeros(31)), f32(np.full(32, np.nan)), s32(np.zeros(32)), wrong_id,
                                     fz.uvector("f32", 1 << 20, 0.0)),
                [f32(np.full(32, 3e38)), f32(np.full(32, -1e30))], accepts(("f32",), {32}))
    keys = tuple(k for k in fz.META_KEYS if k != "model_id")
    return (lambda: unitocom.jscc_encoder("text", TXT_ENC, "", 4, 10.0, "packet_len", "cpu", 1, 4), id_pool(), keys,
            (s32([1, 64]), s32([-5, 3]), s32([]), fz.uvector("s32", 8000, 1), fz.uvector("s32", 257, 1),
             f32([1.0, 2.0])), None, accepts_ids)


@functools.lru_cache(None)
def encoder_expected(modality):
    make, pool, *_ = encoder_case(modality)
    return clean_run(lambda items: run_messages_to_stream(make(), "tokens", items), plain_items(pool))


@pytest.mark.parametrize("modality", ["image", "text"])
@fuzz()
@given(data=st.data())
def test_jscc_encoder(modality, data):
    make, pool, keys, near, maybes, takes = encoder_case(modality)
    maybe = valid_pdus(maybes, kind="maybe") if maybes else None
    items = data.draw(item_lists(valid_pdus(pool, keys), garbage_msgs(takes, near), maybe), label="items")
    ctrl = data.draw(st.lists(fz.ctrl_messages(CTRL_EFFECTIVE), max_size=4), label="ctrl")
    count(f"jscc_encoder[{modality}]", items, len(ctrl))
    outs = run_messages_to_stream(make(), "tokens", items, ctrl)
    check_outputs(outs, items, close(1e-4, 1e-5)(encoder_expected(modality)))


def tx_case(modality):
    if modality == "image":
        return (lambda: unitocom.tx("image", TOK8, "genib", ENC8, 4, 10.0, 2.0, "packet_len", "cpu", 1), image_pool(),
                image_near_misses(), [f32(np.full(12288, 1e30))], ACCEPTS_IMAGE)
    return (lambda: unitocom.tx("text", "", "", TXT_ENC, 4, 10.0, 2.0, "packet_len", "cpu", 1), text_pool(),
            text_near_misses(), None, accepts_text)


@functools.lru_cache(None)
def tx_expected(modality):
    make, pool, *_ = tx_case(modality)
    return clean_run(lambda items: run_messages_to_stream(make(), "pdu", items), plain_items(pool))


@pytest.mark.parametrize("modality", ["image", "text"])
@fuzz(soak_weight=HIER_SOAK_WEIGHT)
@given(data=st.data())
def test_tx(modality, data):
    # tx's ctrl port is jscc_encoder's (fuzzed above). It is not fed here: GNU Radio
    # ends a block at the first "done" of any upstream neighbour, so a finite ctrl
    # source would end the encoder before the tokenizer's last tokens arrive.
    make, pool, near, maybes, takes = tx_case(modality)
    maybe = valid_pdus(maybes, kind="maybe") if maybes else None
    items = data.draw(item_lists(valid_pdus(pool), garbage_msgs(takes, near), maybe), label="items")
    count(f"tx[{modality}]", items)
    outs = run_messages_to_stream(make(), "pdu", items)
    check_outputs(outs, items, close(1e-4, 1e-5)(tx_expected(modality)))


# ====================================================================================
# jscc_decoder and rx (frames + CSI tags in, PDUs out)
# ====================================================================================
FRAME_EXTRA_KEYS = ("frame_id", "session_id", "model_id", "modality", "sample_rate", "n_samples", "split",
                    "token_dim", "tx_snr_db", "tokenizer_id", "scene_index")
CSI_KEYS = ("h", "snr_db", "noise_var")


@functools.lru_cache(None)
def frame_pool(modality):
    """Valid received frames: (samples, n_tokens, rate, h, snr_db), one per rate and a few sizes."""
    rng = np.random.default_rng(21)
    sizes = [8, 8, 8] if modality == "image" else [3, 9, 5]
    pool = []
    for n_tokens, rate, snr in zip(sizes, RATES, (0.0, 10.0, 25.0)):
        z = fz.noise(n_tokens * rate, int(rng.integers(1 << 30)))
        h = complex(rng.standard_normal(), rng.standard_normal()) / np.sqrt(2)
        y = (h * z + fz.noise(len(z), int(rng.integers(1 << 30)), 10 ** (-snr / 20))).astype(np.complex64)
        pool.append((y, n_tokens, rate, h, snr))
    return pool


def frame_tags(entry, seq):
    y, n_tokens, rate, h, snr = entry
    return [(0, "packet_len", long_(len(y))), (0, "n_tokens", long_(n_tokens)), (0, "rate", long_(rate)),
            (0, "h", Pmt(pmt.from_complex(h), f"complex({h})")), (0, "snr_db", Pmt(pmt.from_double(snr), f"{snr}")),
            (0, "noise_var", Pmt(pmt.from_double(10 ** (-snr / 10)), "σ²")), (0, SEQ, long_(seq))]


@st.composite
def valid_frames(draw, modality, kind="valid"):
    """A pool frame with hostile extras that must not matter: wrong-typed metadata tags at its
    start, CSI tags of impossible values (at its start, next to the real ones, and inside)."""
    pool = frame_pool(modality)
    i = draw(st.integers(0, len(pool) - 1))
    y = pool[i][0]
    extra = [(0, k, v) for k, v in draw(st.lists(st.tuples(st.sampled_from(FRAME_EXTRA_KEYS), fz.meta_values()),
                                                 max_size=3))]
    hostile = [(draw(st.sampled_from([0, 0, draw(st.integers(0, len(y) - 1))])), k, v)
               for k, v in draw(st.lists(keyed_bad_values(CSI_KEYS), max_size=4))]
    inner = [(draw(st.integers(1, len(y) - 1)), k, v) for k, v in draw(st.lists(
        st.tuples(st.sampled_from(FRAME_EXTRA_KEYS + ("n_tokens", "rate")), fz.meta_values()), max_size=2))]
    order = draw(st.permutations(range(len(extra) + len(hostile))))
    front = extra + hostile

    def make(seq):
        tags = frame_tags(pool[i], seq)
        tags = tags[:1] + [front[j] for j in order] + tags[1:] + inner
        return Item(kind, Segment(y.copy(), tags), seq, i)
    return make


@st.composite
def maybe_frames(draw, modality):
    """A valid frame with one absurd property: a 3e38 sample, a bad n_tokens/rate tag, or no usable h."""
    make = draw(valid_frames(modality, "maybe"))
    flaw = draw(st.sampled_from(["spike", "n_tokens", "rate", "h"]))
    value = draw(bad_values())
    pos = draw(st.integers(0, 7))

    def flawed(seq):
        item = make(seq)
        seg = item.msg
        if flaw == "spike":
            seg.samples[pos % len(seg.samples)] = 3e38
        else:
            seg.tags = [(o, k, value if k == flaw and o == 0 else v) for o, k, v in seg.tags]
        return item
    return flawed


@st.composite
def garbage_frames(draw):
    """Stretches no frame may come out of: untagged samples, or a frame starting with a NaN/Inf
    sample whose length tag(s) may be anything (two at one offset, 0, negative, huge, wrong type)."""
    n = draw(st.integers(1, 80))
    x = fz.noise(n, draw(st.integers(0, 2 ** 32 - 1)))
    tags = [(o, k, v) for o, k, v in draw(fz.garbage_tags(n, exclude=("packet_len", SEQ))) if o > 0]
    if draw(st.booleans()):                                   # a frame that must be dropped
        x[0] = draw(st.sampled_from([complex(np.nan, 0), complex(np.inf, 0), complex(0, -np.inf)]))
        lengths = draw(st.lists(st.one_of(st.integers(-3, 300).map(long_), bad_values(), fz.pmt_uint64s),
                                min_size=1, max_size=2))
        tags = [(0, "packet_len", v) for v in lengths] + [(0, k, v) for k, v in draw(st.lists(
            st.tuples(st.sampled_from(("n_tokens", "rate") + CSI_KEYS), fz.meta_values()), max_size=3))] + tags
    return lambda seq: Item("garbage", Segment(x, tags), seq)


def decoder_case(modality):
    if modality == "image":
        return lambda: unitocom.jscc_decoder("image", DEC8, "genib", "", 10.0, "packet_len", "cpu", 1, 4), close()
    return lambda: unitocom.jscc_decoder("text", TXT_DEC, "", "", 10.0, "packet_len", "cpu", 1, 4), exact


def pool_frames(modality):
    """The pool frames alone, with just their own tags: the clean run."""
    return [Item("valid", Segment(e[0].copy(), frame_tags(e, i)), i, i) for i, e in enumerate(frame_pool(modality))]


@functools.lru_cache(None)
def decoder_expected(modality):
    make, _ = decoder_case(modality)
    return clean_run(lambda items: run_stream_to_messages(make(), items, "tokens"), pool_frames(modality))


@pytest.mark.parametrize("modality", ["image", "text"])
@fuzz()
@given(data=st.data())
def test_jscc_decoder(modality, data):
    make, compare = decoder_case(modality)
    items = data.draw(item_lists(valid_frames(modality), garbage_frames(), maybe_frames(modality)), label="items")
    count(f"jscc_decoder[{modality}]", items)
    outs = run_stream_to_messages(make(), items, "tokens")
    check_outputs(outs, items, compare(decoder_expected(modality)))


def rx_case(modality):
    if modality == "image":
        return lambda: unitocom.rx("image", DEC8, DET8, "genib", 10.0, "packet_len", "cpu", 1), u8_close
    return lambda: unitocom.rx("text", TXT_DEC, "", "", 10.0, "packet_len", "cpu", 1), exact


@functools.lru_cache(None)
def rx_expected(modality):
    make, _ = rx_case(modality)
    return clean_run(lambda items: run_stream_to_messages(make(), items, "pdu"), pool_frames(modality))


@pytest.mark.parametrize("modality", ["image", "text"])
@fuzz(soak_weight=HIER_SOAK_WEIGHT)
@given(data=st.data())
def test_rx(modality, data):
    make, compare = rx_case(modality)
    items = data.draw(item_lists(valid_frames(modality), garbage_frames(), maybe_frames(modality)), label="items")
    count(f"rx[{modality}]", items)
    outs = run_stream_to_messages(make(), items, "pdu")
    check_outputs(outs, items, compare(rx_expected(modality)))


# ====================================================================================
# power_normalizer (frames in, frames out)
# ====================================================================================
@st.composite
def normalizer_valid(draw):
    n = draw(st.integers(1, 200))
    scale = draw(st.sampled_from([1e-30, 1e-3, 1.0, 7.0, 1e3, 1e15]))
    x = fz.noise(n, draw(st.integers(0, 2 ** 32 - 1)), scale)
    length = draw(st.sampled_from([long_(n), Pmt(pmt.from_uint64(n), f"uint64({n})")]))
    inner = draw(fz.garbage_tags(n, max_count=4, exclude=("packet_len", SEQ)))
    return lambda seq: Item("valid", Segment(x, [(0, "packet_len", length), (0, SEQ, long_(seq))] + inner), seq)


@st.composite
def normalizer_garbage(draw):
    what = draw(st.sampled_from(["stretch", "zero", "long"]))
    if what == "stretch":
        return draw(garbage_frames())
    n = draw(st.integers(1, 40)) if what == "zero" else draw(st.integers(257, 400))
    x = np.zeros(n, np.complex64) if what == "zero" else fz.noise(n, draw(st.integers(0, 2 ** 32 - 1)))
    return lambda seq: Item("garbage", Segment(x, [(0, "packet_len", long_(n))]), seq)


@fuzz(1.5)
@given(items=item_lists(normalizer_valid(), normalizer_garbage(), max_size=12), power=st.sampled_from([1.0, 2.5]))
def test_power_normalizer(items, power):
    count("power_normalizer", items)
    data, tags = stream_of(items)
    sink = run_stream(unitocom.power_normalizer(power, "packet_len", 256), data, tags)
    out = np.array(sink.data(), np.complex64)
    frames = stream_frames(out, sink.tags())
    by_seq = {it.seq: it for it in items}

    def compare(item, vec):
        z = item.msg.samples.astype(np.complex128)
        want = z * np.sqrt(power / np.mean(np.abs(z) ** 2))
        np.testing.assert_allclose(vec, want, rtol=2e-6, atol=1e-30, err_msg=f"frame {item.seq}")
    check_outputs(frames, items, compare)
    # every tag of a valid frame comes out at its place; nothing else but the length tags
    starts = {}
    pos = 0
    for s, vec in frames:
        starts[s] = pos
        pos += len(vec)
    want = sorted((starts[s] + rel, k, pmt.write_string(v.value)) for s in starts
                  for rel, k, v in by_seq[s].msg.tags if k != "packet_len")
    got = [t for t in fz.tags_as_python(sink.tags()) if t[1] != "packet_len"]
    assert got == want, "the tags of the valid frames, and only those, must come out"


# ====================================================================================
# block_fading_channel, csi_equalizer, soft_demapper (sync blocks: one out per in)
# ====================================================================================
def clean_samples(x, bad):
    y = x.copy()
    y[bad] = 0
    return y


def good_mask(n, bad):
    mask = np.ones(n, bool)
    mask[bad] = False
    return mask


@fuzz(1.5)
@given(data=st.data(), channel=st.sampled_from(["awgn", "rayleigh", "rician"]),
       coherence=st.sampled_from([0, 1, 5, 64]), seed=st.integers(0, 2 ** 32 - 1))
def test_block_fading_channel(data, channel, coherence, seed):
    x, bad = data.draw(fz.samples(max_size=800), label="samples")
    hostile = data.draw(fz.garbage_tags(len(x), max_count=10), label="tags")
    ctrl = data.draw(st.lists(fz.ctrl_messages({"snr_db": CTRL_EFFECTIVE["snr_db"]}), max_size=4), label="ctrl")
    INPUTS["block_fading_channel"] += 1 + len(hostile) + len(ctrl)
    make = functools.partial(unitocom.block_fading_channel, channel, 7.0, coherence, 2.0, 1.0, seed, "packet_len")
    tags = [fz.tag(o, k, v) for o, k, v in sorted(hostile, key=lambda t: t[0])]
    sink = run_stream(make(), x, tags, ctrl=ctrl)
    ref = run_stream(make(), clean_samples(x, bad), [t for t in tags if pmt.symbol_to_string(t.key) == "packet_len"])
    y, want = np.array(sink.data(), np.complex64), np.array(ref.data(), np.complex64)
    assert len(y) == len(x) and np.all(np.isfinite(y))
    good = good_mask(len(x), bad)
    np.testing.assert_array_equal(y[good], want[good])
    passed = sorted(fz.tags_as_python(ref.tags()) + [t for t in fz.tags_as_python(tags) if t[1] != "packet_len"])
    assert fz.tags_as_python(sink.tags()) == passed, "CSI tags as a clean run, input tags passed on"


def finite_or(lo, hi, complex_ok=False):
    mags = st.floats(lo, hi)
    if complex_ok:
        return st.builds(lambda m, a: m * complex(math.cos(a), math.sin(a)), mags, st.floats(0, 2 * math.pi)).map(
            lambda z: Pmt(pmt.from_complex(z), f"complex({z})"))
    return mags.map(lambda v: Pmt(pmt.from_double(v), f"double({v})"))


@st.composite
def state_tags(draw, n, valid):
    """Valid state tags (``valid``: key → value strategy; distinct offsets per key) and hostile
    ones (impossible values for those keys, anywhere, also next to valid ones; other keys)."""
    good = []
    for key, values in valid.items():
        offsets = draw(st.lists(st.integers(0, n - 1), unique=True, max_size=4)) if n else []
        good += [(o, key, draw(values)) for o in offsets]
    hostile = [(draw(st.sampled_from([o for o, _, _ in good] or [0]) if draw(st.booleans()) or not n
                     else st.integers(0, n - 1)), k, v)
               for k, v in draw(st.lists(keyed_bad_values(tuple(valid)), max_size=5))] \
        if n else []
    hostile += draw(fz.garbage_tags(n, max_count=4, exclude=tuple(valid)))
    everything = good + hostile
    order = draw(st.permutations(range(len(everything))))
    return [everything[i] for i in order], good


def run_with_reference(make, x, bad, all_tags, good_tags, out=blocks.vector_sink_c):
    tags = [fz.tag(o, k, v) for o, k, v in sorted(all_tags, key=lambda t: t[0])]
    ref_tags = [fz.tag(o, k, v) for o, k, v in sorted(good_tags, key=lambda t: t[0])]
    sink = run_stream(make(), x, tags, out)
    ref = run_stream(make(), clean_samples(x, bad), ref_tags, out)
    hostile = [t for t in fz.tags_as_python(tags) if t not in fz.tags_as_python(ref_tags)]
    return sink, ref, hostile


@fuzz(1.5)
@given(data=st.data(), method=st.sampled_from(["zf", "mmse"]))
def test_csi_equalizer(data, method):
    x, bad = data.draw(fz.samples(max_size=600), label="samples")
    all_tags, good_tags = data.draw(state_tags(len(x), {"h": finite_or(0.01, 100.0, True),
                                                        "noise_var": finite_or(1e-6, 10.0)}), label="tags")
    INPUTS["csi_equalizer"] += 1 + len(all_tags)
    sink, ref, hostile = run_with_reference(lambda: unitocom.csi_equalizer(method, 1.0), x, bad, all_tags, good_tags)
    y, want = np.array(sink.data(), np.complex64), np.array(ref.data(), np.complex64)
    assert len(y) == len(x) and np.all(np.isfinite(y))
    good = good_mask(len(x), bad)
    np.testing.assert_array_equal(y[good], want[good])
    assert fz.tags_as_python(sink.tags()) == sorted(fz.tags_as_python(ref.tags()) + hostile)


@fuzz(1.5)
@given(data=st.data(), max_log=st.booleans())
def test_soft_demapper(data, max_log):
    x, bad = data.draw(fz.samples(max_size=400), label="samples")
    all_tags, good_tags = data.draw(state_tags(len(x), {"eq_gain": finite_or(0.1, 10.0),
                                                        "eq_noise_var": finite_or(1e-4, 10.0)}), label="tags")
    INPUTS["soft_demapper"] += 1 + len(all_tags)
    sink, ref, _ = run_with_reference(lambda: unitocom.soft_demapper(None, 0.1, max_log), x, bad, all_tags,
                                      good_tags, blocks.vector_sink_f)
    y, want = np.array(sink.data(), np.float32).reshape(-1, 4), np.array(ref.data(), np.float32).reshape(-1, 4)
    assert len(y) == len(x) and np.all(np.isfinite(y))
    good = good_mask(len(x), bad)
    np.testing.assert_array_equal(y[good], want[good])
    nan_in = [i for i in bad if not np.isfinite(x[i])]
    assert np.all(y[nan_in] == 0), "a NaN/Inf symbol gives soft values 0"


# ====================================================================================
# ber_meter, image_sink, scene_source
# ====================================================================================
@fuzz()
@given(ref=st.binary(max_size=3000), flips=st.binary(max_size=3000),
       skip=st.one_of(st.integers(0, 4000), st.sampled_from([2 ** 63 - 1, 2 ** 70])), data=st.data())
def test_ber_meter(ref, flips, skip, data):
    n = min(len(ref), len(flips))
    a, b = np.frombuffer(ref[:n], np.uint8), np.frombuffer(ref[:n], np.uint8) ^ np.frombuffer(flips[:n], np.uint8)
    tags = [fz.tag(o, k, v) for o, k, v in sorted(data.draw(fz.garbage_tags(n)), key=lambda t: t[0])]
    INPUTS["ber_meter"] += 2 + len(tags)
    tb = gr.top_block()
    meter = unitocom.ber_meter("", skip)
    tb.connect(blocks.vector_source_b(a.tolist(), False, 1, tags), (meter, 0))
    tb.connect(blocks.vector_source_b(b.tolist(), False, 1, tags), (meter, 1))
    fz.run_flowgraph(tb)
    assert meter.bits() == max(0, n - skip)
    assert meter.errors() == int(np.count_nonzero((a[skip:] ^ b[skip:]) & 1)) if skip < n else meter.errors() == 0


@functools.lru_cache(None)
def scenes():
    refs = [scene_image("test", i, 0) for i in (0, 1)]
    noisy = np.clip(refs[0].astype(np.int16) + np.random.default_rng(0).integers(-9, 10, refs[0].shape), 0, 255)
    return refs, [u8(refs[0].ravel()), u8(refs[1].ravel()), u8(noisy.astype(np.uint8).ravel())]


@st.composite
def sink_valid(draw):
    """An image PDU: scored (scene metadata right), or unscored (none, or unusable scene metadata)."""
    refs, pool = scenes()
    i = draw(st.integers(0, 2))
    meta = draw(fz.metadata(tuple(k for k in fz.META_KEYS if k not in ("split", "scene_index", "corpus_seed"))))
    scored = draw(st.booleans())
    if scored:
        index = 1 if i == 1 else 0
        entries = [("split", Pmt(pmt.intern("test"), "test")), ("scene_index", long_(index)),
                   ("corpus_seed", long_(0))]
        want = float(metrics.psnr(np.asarray(pmt.u8vector_elements(pool[i].value)).reshape(64, 64, 3), refs[index]))
    else:
        entries = draw(st.lists(st.tuples(st.sampled_from(("split", "scene_index", "corpus_seed")),
                                          st.one_of(bad_values(long_(-1)), fz.pmt_doubles)),
                                max_size=2, unique_by=lambda e: e[0]))
        want = None
    for k, v in entries:
        meta = with_entry(meta, k, v)
    return lambda seq: Item("valid", cons(with_entry(meta, SEQ, long_(seq)), pool[i]), seq, want)


@fuzz()
@given(items=item_lists(sink_valid(), garbage_msgs(accepts(("u8",), {12288}), image_near_misses()), max_size=8))
def test_image_sink(items):
    count("image_sink", items)
    tb = gr.top_block()
    src, sink = fz.MessageSource(out=[it.msg for it in items]), unitocom.image_sink("", "fuzz")
    tb.msg_connect(src, "out", sink, "pdu")          # (a Python block must outlive the run: keep src)
    fz.run_flowgraph(tb)
    valid = [it for it in items if it.kind == "valid"]
    strays = sum(it.kind == "stray" for it in items)           # 12288-byte PDUs of garbage metadata: images too
    assert len(valid) <= sink.n_images() <= len(valid) + strays
    want, got = [it.pool for it in valid if it.pool is not None], iter(sink.psnr_values())
    assert all(any(v == g for g in got) for v in want), (want, sink.psnr_values())    # in order, among any strays'
    assert len(sink.psnr_values()) <= len(want) + strays


def arg(valid, *garbage):
    """A valid argument three times in four, else one of the ``garbage`` (or a generic bad one)."""
    bad = st.sampled_from(garbage + (None, "1", math.nan, math.inf, 1.5, True, -1, 2 ** 64))
    return st.one_of(valid, valid, valid, bad)


@fuzz(soak_weight=HIER_SOAK_WEIGHT)
@given(split=arg(st.sampled_from(["train", "val", "test"]), "dev", "", ["test"]),
       first=arg(st.integers(0, 2 ** 40), 2 ** 63, -5), n_images=arg(st.integers(1, 3), 0, 10 ** 4 + 1, 10 ** 9),
       seed=arg(st.integers(0, 2 ** 63 - 1), -1, 2 ** 63))
def test_scene_source(split, first, n_images, seed):
    INPUTS["scene_source"] += 1

    def is_int(v, lo, hi):
        return isinstance(v, int) and not isinstance(v, bool) and lo <= v <= hi
    ok = (isinstance(split, str) and split in ("train", "val", "test") and is_int(n_images, 1, 10_000)
          and is_int(first, 0, 2 ** 63 - n_images if is_int(n_images, 1, 10_000) else 0) and is_int(seed, 0, 2 ** 63 - 1))
    if not ok or n_images > 3:
        with pytest.raises(ValueError, match="must be"):
            unitocom.scene_source(split, first, n_images, seed)
        return
    tb = gr.top_block()
    src, sink = unitocom.scene_source(split, first, n_images, seed), blocks.message_debug()
    tb.msg_connect(src, "pdu", sink, "store")
    fz.run_flowgraph(tb)
    assert sink.num_messages() == n_images
    for i in range(n_images):
        msg = sink.get_message(i)
        meta = pmt.to_python(pmt.car(msg))
        assert (meta["frame_id"], meta["split"], meta["scene_index"], meta["corpus_seed"]) == (i, split, first + i, seed)
        np.testing.assert_array_equal(np.asarray(pmt.u8vector_elements(pmt.cdr(msg))).reshape(64, 64, 3),
                                      scene_image(split, first + i, seed))


# ====================================================================================
# mllm_client (token PDUs in, one result per request out; against a fake MLLM server)
# ====================================================================================
# Valid token PDUs carry random metadata of the keys that do not decide the request
# (frame_id, h, snr_db, rate, model_id … of any type: they go into the request's csi).
MLLM_META_KEYS = tuple(k for k in fz.META_KEYS if k not in ("modality", "session_id", "n_tokens", "token_dim"))
MLLM_SESSIONS = (0, 1, 0, 1, 2, 7, 2 ** 32 - 1)                   # mostly two: questions find their images
MLLM_TASKS = {"image": ("dsc", "vqa", None, ""), "text": ("t2i", "vqa", "vqa", None, ""), "audio": ("asr", None, "")}


@pytest.fixture(scope="module")
def mllm_server():
    """qa_mllm_client's fake MLLM server (a ZeroMQ ROUTER thread answering deterministically), one per module."""
    from qa_mllm_client import FakeServer
    server = FakeServer().start()
    yield server
    server.stop()


def sym(s):
    return Pmt(pmt.intern(s), f"sym({s!r})")


@functools.lru_cache(None)
def mllm_pool():
    """Token vectors per modality: image 32·16 f32, text ids (s32), audio M·16 f32."""
    rng = np.random.default_rng(31)
    return {"image": [f32(rng.standard_normal(512)) for _ in range(3)],
            "text": list(id_pool()),
            "audio": [f32(rng.standard_normal(16 * m)) for m in (1, 9, 40)]}


def mllm_meta(entries, meta=None):
    """A metadata dict Pmt: ``meta`` (or empty) + [(key, Pmt)]."""
    meta = meta if meta is not None else fz.make_dict([])
    for k, v in entries:
        meta = with_entry(meta, k, v)
    return meta


@st.composite
def mllm_valid(draw):
    """A token PDU mllm_client must take: any modality, session (as long, uint64, or none for 0) and task
    of its modality (or none, or ''), n_tokens/token_dim agreeing or absent, random other metadata."""
    modality = draw(st.sampled_from(("image", "image", "text", "text", "audio")))
    i = draw(st.integers(0, 2))
    vec = mllm_pool()[modality][i]
    session = draw(st.sampled_from(MLLM_SESSIONS))
    entries = [("modality", sym(modality))]
    form = draw(st.sampled_from(("long", "uint64") + (("absent",) if session == 0 else ())))
    if form != "absent":
        entries.append(("session_id", long_(session) if form == "long" else uint64(session)))
    task = draw(st.sampled_from(MLLM_TASKS[modality]))
    if task is not None:
        entries.append(("task", sym(task)))
    if draw(st.booleans()):
        n = pmt.length(vec.value)
        entries.append(("n_tokens", long_(n if modality == "text" else n // 16)))
        if modality != "text":
            entries.append(("token_dim", long_(16)))
    meta = mllm_meta(entries, draw(fz.metadata(MLLM_META_KEYS)))
    return lambda seq: Item("valid", cons(with_entry(meta, SEQ, long_(seq)), vec), seq, (modality, i))


@functools.lru_cache(None)
def mllm_near_misses():
    """(metadata entries, vector) token PDUs that miss by one thing: sizes, types, NaN/Inf, ids outside
    the vocabulary, session ids and tasks that cannot be, the wrong task for the modality."""
    pool = mllm_pool()
    img, txt, aud = pool["image"][0], pool["text"][0], pool["audio"][1]
    image, text, audio = [("modality", sym("image"))], [("modality", sym("text"))], [("modality", sym("audio"))]
    nan_img = np.asarray(pmt.f32vector_elements(img.value), np.float32).copy()
    nan_img[7] = np.nan
    inf_aud = np.asarray(pmt.f32vector_elements(aud.value), np.float32).copy()
    inf_aud[-1] = -np.inf
    return (
        (image, f32(np.zeros(511))), (image, f32(np.zeros(528))), (image, f32(nan_img)),
        (image, f32(np.full(512, np.inf))), (image, s32(np.zeros(512))), (image, fz.uvector("f32", 1 << 20, 0.5)),
        (image + [("n_tokens", long_(31))], img), (image + [("token_dim", long_(8))], img),
        (image + [("session_id", long_(-1))], img), (image + [("session_id", uint64(2 ** 32))], img),
        (image + [("session_id", double(1.0))], img), (image + [("session_id", sym("1"))], img),
        (image + [("task", sym("t2i"))], img), (image + [("task", sym("asr"))], img),
        (image + [("task", sym("sing"))], img), (image + [("task", long_(1))], img),
        (text, s32([1, len(vocab.TOKENS)])), (text, s32([-1])), (text, s32([])), (text, fz.uvector("s32", 257, 1)),
        (text, f32([1.0, 2.0])), (text, u8(np.frombuffer(b"is it red?", np.uint8))),
        (text + [("task", sym("dsc"))], txt), (text + [("task", sym("asr"))], txt),
        (audio, f32(np.zeros(17))), (audio, f32(np.zeros(0))), (audio, fz.uvector("f32", 1502 * 16, 0.1)),
        (audio, f32(inf_aud)), (audio + [("n_tokens", long_(2))], aud), (audio + [("task", sym("vqa"))], aud),
        ([("modality", sym("video"))], img), ([], img), ([("modality", long_(1))], txt),
        ([("modality", sym("IMAGE"))], img))


def mllm_near_miss_items():
    """Makers of the near misses, each with a fuzz_seq (so one that comes out is named)."""
    def build(k):
        entries, vec = mllm_near_misses()[k]
        meta = mllm_meta(entries)
        return lambda seq: Item("garbage", cons(with_entry(meta, SEQ, long_(seq)), vec), seq)
    return st.builds(build, st.integers(0, len(mllm_near_misses()) - 1))


def accepts_token_pdu(msg):
    """Over-estimate of a token PDU mllm_client could take: f32 of whole 16-value tokens (≤ 1501) or 1…256 s32."""
    kind, n = pdu_kind(msg)
    return (kind == "f32" and 0 < n <= 1501 * 16 and n % 16 == 0) or (kind == "s32" and 0 < n <= 256)


def mllm_reference(items):
    """The clean run's grouping: (requests, orphans) the valid items alone make (``SessionTable``)."""
    from gnuradio.unitocom.mllm.requests import SessionTable
    table, requests, orphans = SessionTable(), [], []
    for it in items:
        if it.kind == "valid":
            done, lost = table.add(it.msg.value)
            requests += done
            orphans += [r for r, _ in lost]
    return requests, orphans + [r for r, _ in table.close()]


def meta_value(msg, key):
    """The Python value of ``key`` in an output PDU's metadata (None when absent); fails on anything else."""
    from gnuradio.unitocom.runtime import pdu_util
    assert pmt.is_pair(msg) and pmt.is_dict(pmt.car(msg)), f"output is not a PDU: {pmt.write_string(msg)[:200]}"
    return pdu_util.get(pmt.car(msg), key)


def request_seq(request):
    """The fuzz_seq of the PDU that completed a ``mllm.requests.Request`` (its metadata's)."""
    return meta_value(pmt.cons(request.meta, pmt.PMT_NIL), SEQ)


@fuzz(1.5)
@given(items=item_lists(mllm_valid(), st.one_of(garbage_msgs(accepts_token_pdu), mllm_near_miss_items()), mllm_valid(),
                       max_size=10))
def test_mllm_client(mllm_server, items):
    """Every request the valid PDUs make gets one result (or, a question that never got its image, one
    final 'incomplete' error), in order per session, with the answer to the very arrays a clean grouping
    of the valid PDUs gives; garbage gets nothing; the flowgraph ends once all are answered."""
    from qa_mllm_client import answer
    count("mllm_client", items)
    tb = gr.top_block()
    src = fz.MessageSource(out=[it.msg for it in items])
    client = unitocom.mllm_client(mllm_server.address, timeout_s=10.0, max_retries=2, backoff_s=0.05)
    results, errors = blocks.message_debug(), blocks.message_debug()
    tb.msg_connect(src, "out", client, "tokens")
    tb.msg_connect(client, "result", results, "store")
    tb.msg_connect(client, "errors", errors, "store")
    fz.run_flowgraph(tb)
    assert client.pending() == 0
    results = [results.get_message(i) for i in range(results.num_messages())]
    errors = [errors.get_message(i) for i in range(errors.num_messages())]
    finals = [m for m in errors if meta_value(m, "final") is True]
    requests, orphans = mllm_reference(items)
    kinds = {it.seq: it.kind for it in items}
    seq_of = [meta_value(m, SEQ) for m in results]
    unknown = sum(s is None for s in seq_of) + sum(meta_value(m, SEQ) is None for m in finals)
    assert unknown <= sum(it.kind == "stray" for it in items), "results or errors of garbage came out"
    assert all(kinds.get(s) == "valid" for s in seq_of if s is not None), f"a garbage PDU got a result: {seq_of}"
    got = [s for s in seq_of if s is not None]
    want = [request_seq(r) for r in requests]
    assert sorted(got) == sorted(want), f"results of {got}; expected one for each of {want}"
    for session in set(r.session for r in requests):
        order = [s for s, m in zip(seq_of, results) if s is not None and meta_value(m, "session_id") == session]
        assert order == [s for s, r in zip(want, requests) if r.session == session], f"session {session} out of order"
    served = {info["id"]: (info, arrays) for info, arrays in list(mllm_server.requests)}
    by_seq = dict(zip(want, requests))
    for msg in results:
        seq = meta_value(msg, SEQ)
        if seq is None:
            continue
        request, vec = by_seq[seq], np.asarray(pmt.to_python(pmt.cdr(msg)))
        assert meta_value(msg, "status") == "ok"
        info, arrays = served[meta_value(msg, "request_id")]
        assert (info["task"], info["session"]) == (request.task, request.session), f"item {seq}"
        assert sorted(arrays) == sorted(request.arrays), f"item {seq}: arrays {sorted(arrays)}"
        for name, a in request.arrays.items():
            np.testing.assert_array_equal(arrays[name], a, err_msg=f"item {seq}: {name} differs from a clean run")
        result = answer(info, arrays)
        if request.task == "t2i":
            np.testing.assert_array_equal(vec, result.ravel(), err_msg=f"item {seq}")
        else:
            assert (meta_value(msg, "text"), vec.tolist()) == (result[0], result[1]), f"item {seq}"
    lost = sorted((meta_value(m, SEQ), meta_value(m, "status")) for m in finals if meta_value(m, SEQ) is not None)
    assert lost == sorted((request_seq(r), "incomplete") for r in orphans), f"final errors {lost}"


# ====================================================================================
# ofdm_rx (OFDM bursts of ofdm_tx in, JSCC frames with estimated CSI out)
# ====================================================================================
OFDM_FRAMES = ((8, 2, "dsc"), (4, 8, "vqa"), (12, 4, "t2i"))       # (n_tokens, rate, task) of the valid bursts
OFDM_VALID_IDS, OFDM_MAYBE_BASE, OFDM_CUT_BASE, OFDM_TEXT_ID = (0, 1, 2), 100, 200, 300
OFDM_TAIL = 3000                  # zeros after the last item: the receiver sees the end of the last frame


@functools.lru_cache(None)
def ofdm_bursts():
    """{frame_id: burst}: ofdm_tx bursts (the burst shaper's 160 zeros at the end) with noise 30 dB down
    baked in; ids 0-2 the valid frames, 100+ the same frames again (for "maybe" items), 200+ again (cut
    into garbage), 300 a text frame (garbage: ofdm_rx has an image output only)."""
    import ofdm_testing as ot
    from gnuradio.unitocom import ofdm_tx
    rng = np.random.default_rng(41)
    out = {}
    for base in (0, OFDM_MAYBE_BASE, OFDM_CUT_BASE):
        for i, (n_tokens, rate, task) in enumerate(OFDM_FRAMES):
            frames, tags = ot.jscc_frames(1, n_tokens, rate, seed=i, first_id=base + i, session_id=5 + i, task=task)
            out[base + i], = ot.transmit(frames, tags, ofdm_tx())
    frames, tags = ot.jscc_frames(1, 10, 2, seed=9, first_id=OFDM_TEXT_ID, modality="text", task="t2i")
    out[OFDM_TEXT_ID], = ot.transmit(frames, tags, ofdm_tx())
    for k, b in out.items():
        out[k] = (b + fz.noise(len(b), int(rng.integers(1 << 30)), 10 ** (-30 / 20))).astype(np.complex64)
    return out


def ofdm_params():
    from gnuradio.unitocom.ofdm.params import OfdmParams
    return OfdmParams()


def lead(n):
    return np.zeros(n, np.complex64)


@st.composite
def ofdm_valid(draw, kind="valid"):
    """A valid burst after 0 to 400 zeros."""
    i = draw(st.integers(0, len(OFDM_FRAMES) - 1))
    fid = (OFDM_MAYBE_BASE if kind == "maybe" else 0) + i
    x = np.concatenate([lead(draw(st.integers(0, 400))), ofdm_bursts()[fid]])
    return lambda seq: Item(kind, Segment(x, []), seq, fid)


@st.composite
def ofdm_maybe(draw):
    """A burst with NaN/Inf/3e38 samples in it: it may come out (finite) or not."""
    make = draw(ofdm_valid("maybe"))
    bad = draw(st.lists(st.tuples(st.integers(0, 10 ** 6), st.sampled_from(fz.SPECIAL_SAMPLES[:6])), min_size=1,
                        max_size=3))

    def spoiled(seq):
        item = make(seq)
        x = item.msg.samples.copy()
        for pos, value in bad:
            x[pos % len(x)] = value
        item.msg = Segment(x, [])
        return item
    return spoiled


@st.composite
def ofdm_garbage(draw):
    """Sample stretches no frame may come out of: noise of any level with NaN/Inf/3e38 samples, constant
    and non-finite runs, bursts cut anywhere (preamble, header, payload), a preamble alone, a burst whose
    header symbols are noise, a whole burst of a modality without an output."""
    p, bursts = ofdm_params(), ofdm_bursts()
    what = draw(st.sampled_from(["noise", "noise", "constant", "cut", "cut", "preamble", "header", "unrouted"]))
    if what == "noise":
        n = draw(st.integers(1, 2500))
        x = fz.noise(n, draw(st.integers(0, 2 ** 32 - 1)), draw(st.sampled_from([1e-3, 0.05, 0.7, 1.0, 1e3, 1e18])))
        for pos, value in draw(fz.specials(n)):
            x[pos] = value
    elif what == "constant":
        value = draw(st.sampled_from(fz.SPECIAL_SAMPLES + (complex(1, 0), complex(0, 0))))
        x = np.full(draw(st.integers(1, 300)), value, np.complex64)
    else:
        b = bursts[OFDM_CUT_BASE + draw(st.integers(0, len(OFDM_FRAMES) - 1))]
        payload_end = len(b) - 160
        if what == "cut":                   # at least a symbol short of the payload's end
            x = b[:draw(st.integers(1, payload_end - p.sym_len))].copy()
        elif what == "preamble":
            x = b[:p.n_preamble_symbols * p.sym_len].copy()
        elif what == "header":
            x = b.copy()
            start = p.n_preamble_symbols * p.sym_len
            x[start:start + p.n_header_symbols * p.sym_len] = fz.noise(p.n_header_symbols * p.sym_len,
                                                                          draw(st.integers(0, 2 ** 32 - 1)))
        else:
            x = bursts[OFDM_TEXT_ID].copy()
        x = np.concatenate([lead(draw(st.integers(0, 400))), x])
    return lambda seq: Item("garbage", Segment(x, []), seq)


def ofdm_frames(sink):
    """[(frame_id, samples, [(rel offset, key, value text)])] of ofdm_rx's output, by its length tags."""
    data = np.array(sink.data(), np.complex64)
    tags = fz.tags_as_python(sink.tags())
    lens = sorted((o, int(v)) for o, k, v in tags if k == "packet_len")
    out, pos = [], 0
    for off, n in lens:
        assert off == pos, f"output samples {pos}…{off} lie outside any frame"
        mine = [(o - off, k, v) for o, k, v in tags if off <= o < off + n and k != "rx_offset"]
        fid = [int(v) for o, k, v in mine if k == "frame_id" and o == 0]
        assert len(fid) == 1, f"a frame with frame_id tags {fid}"
        out.append((fid[0], data[off:off + n], mine))
        pos = off + n
    assert pos == len(data), f"{len(data) - pos} output samples after the last frame"
    return out


def run_ofdm_rx(items, csi):
    from gnuradio.unitocom import ofdm_rx
    data, _ = stream_of(items)
    data = np.concatenate([data, lead(OFDM_TAIL)])
    blk = ofdm_rx(csi_tags=csi)
    sink = run_stream(blk, data, [])
    return ofdm_frames(sink), blk.stats()


@functools.lru_cache(None)
def ofdm_expected(csi):
    """{frame_id: (samples, tags)} of a clean run: the valid bursts alone, 300 zeros apart."""
    items = [Item("valid", Segment(np.concatenate([lead(300), b]), []), i, i)
             for i, b in ((fid, ofdm_bursts()[fid]) for fid in OFDM_VALID_IDS)]
    frames, _ = run_ofdm_rx(items, csi)
    assert [f for f, _, _ in frames] == list(OFDM_VALID_IDS), "a clean run lost frames"
    return {fid: (y, tags) for fid, y, tags in frames}


@pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning")       # NaN samples into the FFT
@fuzz(1.5)
@given(items=item_lists(ofdm_valid(), ofdm_garbage(), ofdm_maybe(), max_size=8),
       csi=st.sampled_from(["frame", "symbol"]))
def test_ofdm_rx(items, csi):
    """Every valid burst's frame comes out once, in order, with the very samples and tags (CSI
    estimates included) of a clean run; a spoiled burst's frame maybe, but finite; nothing else."""
    count("ofdm_rx", items)
    frames, stats = run_ofdm_rx(items, csi)
    want = ofdm_expected(csi)
    maybes = collections.Counter(it.pool for it in items if it.kind == "maybe")
    got = [fid for fid, _, _ in frames]
    assert all(f in want or maybes[f] for f in got), f"frames {got}: garbage came out"
    assert all(got.count(f) <= n for f, n in maybes.items()), f"frames {got}: a spoiled one twice"
    valid = [f for f in got if f in want]
    assert valid == [it.pool for it in items if it.kind == "valid"], f"valid frames out: {valid}"
    assert stats["frames"] == len(frames)
    for fid, y, tags in frames:
        assert np.all(np.isfinite(y)), f"frame {fid} came out with NaN/Inf samples"
        assert all("nan" not in v and "inf" not in v for _, k, v in tags if k in CSI_KEYS), \
            f"frame {fid} came out with non-finite CSI tags"
        if fid in want:
            np.testing.assert_array_equal(y, want[fid][0], err_msg=f"frame {fid} differs from a clean run")
            assert tags == want[fid][1], f"frame {fid}: tags differ from a clean run"


# ====================================================================================
# sample_source (constructor arguments)
# ====================================================================================
@fuzz(soak_weight=HIER_SOAK_WEIGHT)
@given(split=arg(st.sampled_from(["train", "val", "test"]), "dev", "", "TEST", ["test"], b"test"),
       first=arg(st.one_of(st.integers(0, 2 ** 40), st.sampled_from([2 ** 63 - 2, 2 ** 63 - 1])), 2 ** 63, -5, 3.0),
       n_samples=arg(st.integers(1, 2), 0, 1001, 10 ** 9, 2.0, 1.5),
       seed=arg(st.one_of(st.integers(0, 2 ** 63 - 1), st.just(2 ** 63 - 1)), -1, 2 ** 63, 7.0),
       tasks=arg(st.lists(st.sampled_from(["vqa", "t2i", "asr", " vqa ", "asr "]), min_size=1, max_size=3)
                 .map(",".join),
                 "", ",", "VQA", "vqa,caption", "vqa;t2i", ["vqa"], b"vqa", 5))
def test_sample_source(split, first, n_samples, seed, tasks):
    """Any argument: accepted (the flowgraph then sends the samples it says) or a ValueError sentence."""
    from gnuradio.unitocom import sample_source
    from gnuradio.unitocom.data import speech
    INPUTS["sample_source"] += 5

    def is_int(v, lo, hi):
        return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v == int(v) \
            and lo <= v <= hi
    wanted = {t.strip() for t in tasks.split(",") if t.strip()} if isinstance(tasks, str) else {"?"}
    ok = (isinstance(split, str) and split in ("train", "val", "test") and is_int(n_samples, 1, 1000)
          and is_int(first, 0, 2 ** 63 - int(n_samples) if is_int(n_samples, 1, 1000) else -1)
          and is_int(seed, 0, 2 ** 63 - 1) and wanted and wanted <= {"vqa", "t2i", "asr"}
          and ("asr" not in wanted or speech.espeak_available()))
    if not ok or n_samples > 2:
        with pytest.raises(ValueError, match=r"\w+ \w+"):
            sample_source(split, first, n_samples, seed, tasks)
        return
    src = sample_source(split, first, n_samples, seed, tasks)
    tb = gr.top_block()
    sinks = {port: blocks.message_debug() for port in ("image", "text", "audio")}
    for port, sink in sinks.items():
        tb.msg_connect(src, port, sink, "store")
    fz.run_flowgraph(tb)
    n = int(n_samples)
    want = {"image": [3 * i for i in range(n)] if "vqa" in wanted else [],
            "text": [s for i in range(n)
                     for s in ([3 * i] if "vqa" in wanted else []) + ([3 * i + 1] if "t2i" in wanted else [])],
            "audio": [3 * i + 2 for i in range(n)] if "asr" in wanted else []}
    for port, sink in sinks.items():
        msgs = [sink.get_message(i) for i in range(sink.num_messages())]
        assert [meta_value(m, "session_id") for m in msgs] == want[port], port
        for m in msgs:
            assert (meta_value(m, "split"), meta_value(m, "corpus_seed")) == (split, int(seed))
            assert meta_value(m, "scene_index") == int(first) + meta_value(m, "session_id") // 3
            assert (pmt.length(pmt.cdr(m)) == 12288) if port == "image" else (pmt.length(pmt.cdr(m)) > 0)


# ====================================================================================
# result_display, image_display (QT GUI sinks; Qt's offscreen platform)
# ====================================================================================
@functools.lru_cache(None)
def qt_app():
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PyQt5 import QtWidgets
    return QtWidgets.QApplication.instance() or QtWidgets.QApplication(["test_fuzz_blocks"])


def run_display(block, items):
    """MessageSource(items) → block; returns what the block handed its widget ([signal args], in order),
    after the GUI thread has drawn it all."""
    from PyQt5 import QtCore
    app, shown = qt_app(), []
    block.qwidget().arrived.connect(lambda *args: shown.append(args), QtCore.Qt.DirectConnection)
    tb = gr.top_block()
    src = fz.MessageSource(out=[it.msg for it in items])
    tb.msg_connect(src, "out", block, "pdu")
    fz.run_flowgraph(tb)
    app.processEvents()                       # the queued signals: the widget draws them all
    return shown


@st.composite
def display_texts(draw):
    """A text PDU result_display must show, and the line it shows: the metadata's ``text`` (a symbol of any
    characters, maybe over 2000 long; any vector) or, without one, the vector's UTF-8 (broken bytes too);
    an ``answer`` (the truth) of a symbol, long, uint64 or double, or none; random other metadata."""
    chars = st.characters(exclude_categories=("Cs",))
    body = draw(st.text(chars, max_size=40)) + "x" * draw(st.sampled_from([0, 0, 0, 2500]))
    truth = draw(st.one_of(st.none(), st.text(chars, max_size=8).map(lambda s: (sym(s), s)),
                           st.sampled_from([(long_(-7), "-7"), (long_(2 ** 63 - 1), str(2 ** 63 - 1)),
                                            (uint64(2 ** 64 - 1), str(2 ** 64 - 1)), (double(0.5), "0.5"),
                                            (double(math.nan), "nan")])))
    in_meta = draw(st.booleans())
    vec = draw(st.sampled_from([s32([30, 36]), f32([]), u8(np.zeros(3, np.uint8)),
                                fz.uvector("f32", (1 << 20) + 1, 0)]))
    junk = draw(st.binary(max_size=3))
    meta = draw(fz.metadata())

    def make(seq):
        text = f"#{seq} {body}"
        m = with_entry(meta, "answer", truth[0]) if truth else meta
        if in_meta:
            m, v, shown = with_entry(m, "text", sym(text)), vec, text
        else:
            raw = text.encode() + junk
            v, shown = u8(np.frombuffer(raw, np.uint8)), raw.decode("utf-8", "replace")
        line = shown[:2000] + (f"      [truth: {truth[1][:2000]}]" if truth else "")
        return Item("valid", cons(with_entry(m, SEQ, long_(seq)), v), seq, line)
    return make


def display_near_misses():
    """Messages result_display must drop: not PDUs, no text in the metadata and no UTF-8 bytes (f32, s16,
    more than 2^20 bytes), a ``text`` that is not a string."""
    return (Pmt(pmt.PMT_T, "#t"), cons(Pmt(pmt.PMT_T, "#t"), u8([65, 66])), cons(long_(3), u8([65])),
            cons(meta_of(), f32([1.0])), cons(meta_of(text=long_(5)), s32([1])),
            cons(meta_of(text=double(1.0)), u8([])),
            cons(meta_of(), fz.uvector("u8", (1 << 20) + 1, 65)), cons(meta_of(), fz.uvector("u8", 10 ** 7, 65)),
            cons(meta_of(), s16([65, 66])))


def is_pdu_shaped(msg):
    """Over-estimate of what result_display shows: a pair of a dict (or nil) and anything."""
    return pmt.is_pair(msg) and (pmt.is_dict(pmt.car(msg)) or pmt.is_null(pmt.car(msg)))


def check_shown(shown, items, want, count_):
    """``shown``: the lines (or images) the block handed its widget; ``want``: the valid items'. Each
    valid item's once, in order, among those of strays; none of garbage (their number bounds the rest);
    the last one the last item's; ``count_`` (the block's counter) counts them all."""
    strays = sum(it.kind == "stray" for it in items)
    assert len(want) <= len(shown) <= len(want) + strays, f"{len(shown)} shown for {len(want)} valid, {strays} strays"
    rest = iter(shown)
    missing = [w for w in want if not any(s == w for s in rest)]
    assert not missing, f"valid items not shown in order: {[str(m)[:60] for m in missing]}"
    assert shown[-1] == want[-1] and count_ == len(shown)


@fuzz()
@given(items=item_lists(display_texts(), garbage_msgs(is_pdu_shaped, display_near_misses()), max_size=8))
def test_result_display(items):
    """Each valid text PDU's line (its text, cut at 2000 characters, and its truth) is handed to the widget
    once, in order; garbage never; the widget shows the last one."""
    from gnuradio.unitocom import result_display
    count("result_display", items)
    qt_app()
    block = result_display("fuzz", "answer")
    shown = run_display(block, items)
    check_shown([line for line, _ in shown], items, [it.pool for it in items if it.kind == "valid"], block.n_results())
    assert block.last_text() == shown[-1][0] and block.qwidget()._text.text() == shown[-1][0]


@fuzz()
@given(items=item_lists(valid_pdus(image_pool()[:3]), garbage_msgs(accepts(("u8",), {12288}), image_near_misses()),
                        max_size=8))
def test_image_display(items):
    """Each valid image PDU's pixels are handed to the widget once, in order; garbage never."""
    from gnuradio.unitocom import image_display
    count("image_display", items)
    qt_app()
    want = [bytes(pmt.u8vector_elements(image_pool()[it.pool].value)) for it in items if it.kind == "valid"]
    block = image_display("fuzz", 1)
    shown = run_display(block, items)
    check_shown([data for data, _ in shown], items, want, block.n_images())


# ====================================================================================
# The review's known killers, as fixed examples (run in every profile)
# ====================================================================================
def test_killers_jscc_encoder_frame_ids_and_ctrl():
    """frame_id as uint64, frame_id 2^63−1 followed by a PDU without one, ctrl {rate: inf} …"""
    pool = token_pool()
    frame_ids = [uint64(2 ** 64 - 1), long_(2 ** 63 - 1), None, long_(-5), Pmt(pmt.intern("x"), "sym('x')"),
                 double(3.0), long_(2 ** 63 - 1)]
    items = [Item("valid", cons(meta_of(i, **({"frame_id": f} if f else {})), pool[i % 3]), i, i % 3)
             for i, f in enumerate(frame_ids)]
    items.insert(3, Item("maybe", cons(meta_of(100), f32(np.full(32, 3e38))), 100))
    ctrl = [Pmt(pmt.to_pmt({"rate": x}), f"{{rate: {x}}}") for x in (math.inf, -math.inf, math.nan, 1e308, 2.5)]
    ctrl += [Pmt(pmt.to_pmt({"snr_db": x}), f"{{snr_db: {x}}}") for x in (-4000.0, math.inf, 1e308)]
    ctrl += [cons(Pmt(pmt.intern("rate"), "rate"), uint64(2 ** 64 - 1)), Pmt(pmt.to_pmt({"rate": True}), "{rate: #t}")]
    items.sort(key=lambda it: it.seq)
    outs = run_messages_to_stream(encoder_case("image")[0](), "tokens", items, ctrl)
    check_outputs(outs, items, close()(encoder_expected("image")))


def test_killers_jscc_encoder_8000_text_ids():
    """8,000 text ids once took 2.1 GB: dropped (or encoded) within a bounded memory."""
    before = fz.rss_kib()
    items = [Item("garbage", cons(meta_of(), fz.uvector("s32", 8000, 1)), 0),
             Item("garbage", cons(meta_of(), fz.uvector("s32", 1 << 20, 1)), 1),
             Item("valid", cons(meta_of(2), id_pool()[0]), 2, 0)]
    outs = run_messages_to_stream(encoder_case("text")[0](), "tokens", items)
    check_outputs(outs, items, close()(encoder_expected("text")))
    assert fz.rss_kib() - before < 256 * 1024


@pytest.mark.parametrize("modality", ["image", "text"])
def test_killers_jscc_decoder_tags(modality):
    """A uint64 model_id tag, two h tags at one offset, an snr_db tag of −4000, an h of 1e30."""
    pool = frame_pool(modality)

    def frame(seq, i, extra=(), replace=None, kind="valid"):
        tags = frame_tags(pool[i], seq)
        if replace:
            tags = [(o, k, replace[k] if k in replace else v) for o, k, v in tags]
        return Item(kind, Segment(pool[i][0].copy(), tags[:1] + list(extra) + tags[1:]), seq, i)
    items = [frame(0, 0, [(0, "model_id", uint64(2 ** 64 - 1))]),
             frame(1, 1, [(0, "h", double(math.nan)), (0, "h", double(1e30))]),
             frame(2, 2, [(0, "snr_db", double(-4000.0)), (0, "noise_var", double(-1.0))]),
             frame(3, 0, replace={"h": double(1e30)}, kind="maybe"),
             frame(4, 1, replace={"snr_db": double(-4000.0), "noise_var": double(1e30)}, kind="maybe"),
             frame(5, 2, [(0, "frame_id", uint64(2 ** 64 - 1)), (0, "rate", double(math.inf))])]
    make, compare = decoder_case(modality)
    check_outputs(run_stream_to_messages(make(), items, "tokens"), items, compare(decoder_expected(modality)))


def test_killers_huge_pdus():
    """A 10^7-item PDU once made pdu_util.unpack raise: dropped by every PDU input."""
    huge = [cons(meta_of(), fz.uvector(kind, n, 1)) for kind, n in (("u8", 10 ** 7), ("f32", (1 << 20) + 1),
                                                                    ("s32", (1 << 20) + 1))]
    for modality in ("image", "text"):
        items = [Item("garbage", m, i) for i, m in enumerate(huge)]
        items.append(Item("valid", cons(meta_of(3), tokenizer_case(modality)[1][0]), 3, 0))
        check_outputs(run_messages(tokenizer_case(modality)[0](), "pdu", "tokens", items), items,
                      close()(tokenizer_expected(modality)))
    items = [Item("garbage", m, i) for i, m in enumerate(huge)] + [
        Item("valid", cons(meta_of(3), token_pool()[0]), 3, 0)]
    check_outputs(run_messages(detokenizer_case("image")[0](), "tokens", "pdu", items), items,
                  u8_close(detokenizer_expected("image")))
    tb, sink = gr.top_block(), unitocom.image_sink("", "fuzz")
    src = fz.MessageSource(out=huge + [cons(meta_of(), image_pool()[0])])
    tb.msg_connect(src, "out", sink, "pdu")
    fz.run_flowgraph(tb)
    assert sink.n_images() == 1


def test_killers_non_finite_content():
    """Audio samples of 3e38 (NaN tokens once) and image tokens of 3e38 (a NaN frame once):
    dropped, or out and finite."""
    make, pool, *_ = tokenizer_case("audio")
    items = [Item("maybe", cons(meta_of(i), m), i) for i, m in enumerate(audio_maybes())]
    items.append(Item("valid", cons(meta_of(9), pool[0]), 9, 0))
    check_outputs(run_messages(make(), "pdu", "tokens", items), items, close()(tokenizer_expected("audio")))
    items = [Item("maybe", cons(meta_of(0), f32(np.full(32, 3e38))), 0),
             Item("maybe", cons(meta_of(1), f32(np.linspace(-3e38, 3e38, 32))), 1),
             Item("valid", cons(meta_of(2), token_pool()[1]), 2, 1)]
    check_outputs(run_messages_to_stream(encoder_case("image")[0](), "tokens", items), items,
                  close()(encoder_expected("image")))


def test_killers_ofdm_burst_at_stream_start():
    """A burst in the first OFDM symbol of the stream was lost (no room before it for the LTS search):
    ofdm_tx → channel → ofdm_rx without a delay lost its first frame."""
    for zeros in (0, 1, 40):
        items = [Item("valid", Segment(np.concatenate([lead(zeros if i == 0 else 0), ofdm_bursts()[i]]), []), i, i)
                 for i in OFDM_VALID_IDS]
        frames, stats = run_ofdm_rx(items, "frame")
        assert [f for f, _, _ in frames] == [0, 1, 2], (zeros, stats)
        for fid, y, tags in frames:
            np.testing.assert_array_equal(y, ofdm_expected("frame")[fid][0], err_msg=f"frame {fid}")
            assert tags == ofdm_expected("frame")[fid][1], f"frame {fid}: tags differ from a clean run"


def test_killers_block_fading_channel_ctrl():
    """ctrl {snr_db: −4000} once killed the channel (10**400 overflows): ignored."""
    x = fz.noise(500, 1)
    ctrl = [Pmt(pmt.to_pmt({"snr_db": v}), f"{{snr_db: {v}}}") for v in (-4000.0, 4000.0, math.nan, 1e308)]
    ctrl.append(cons(Pmt(pmt.intern("snr_db"), "snr_db"), uint64(2 ** 64 - 1)))
    blk = unitocom.block_fading_channel("rayleigh", 5.0, 50, 0.0, 1.0, 3)
    y = np.array(run_stream(blk, x, [], ctrl=ctrl).data(), np.complex64)
    want = np.array(run_stream(unitocom.block_fading_channel("rayleigh", 5.0, 50, 0.0, 1.0, 3), x, []).data(),
                    np.complex64)
    np.testing.assert_array_equal(y, want)
    assert blk.snr_db() == 5.0


@pytest.mark.parametrize("make", [
    lambda: unitocom.block_fading_channel("rician", k_factor=math.nan),
    lambda: unitocom.block_fading_channel(snr_db=-4000),
    lambda: unitocom.jscc_encoder("image", ENC8, "genib", 4, -4000.0),
    lambda: unitocom.jscc_decoder("image", DEC8, "genib", "", -4000.0),
    lambda: unitocom.tx("image", TOK8, "genib", ENC8, 4, -4000.0),
    lambda: unitocom.rx("image", DEC8, DET8, "genib", -4000.0),
    lambda: unitocom.scene_source(seed=-1),
    lambda: unitocom.power_normalizer(math.inf),
    lambda: unitocom.csi_equalizer("zf", math.nan),
    lambda: unitocom.soft_demapper(None, -1.0),
    lambda: unitocom.ber_meter("x", math.nan),
    lambda: unitocom.image_sink("", None),
], ids=["channel_k_nan", "channel_snr", "encoder_snr", "decoder_snr", "tx_snr", "rx_snr", "scene_seed",
        "normalizer_power", "equalizer_power", "demapper_noise", "ber_skip", "sink_label"])
def test_killers_constructor_arguments(make):
    """Bad constructor arguments: a ValueError with a sentence, not a numpy error or NaN output."""
    with pytest.raises(ValueError, match=r"\w+ \w+"):
        make()


# ====================================================================================
# memory over a long run (soak)
# ====================================================================================
class PacedSource(gr.basic_block):
    """Publishes batches of messages round after round from a thread of its own, each batch
    only once the sink has seen the batch before (so queues stay short), and samples VmRSS
    after every round; then says "done"."""

    def __init__(self, batches, rounds, sink, timeout=fz.RUN_TIMEOUT):
        gr.basic_block.__init__(self, name="fuzz_paced_source", in_sig=None, out_sig=None)
        self.batches, self.rounds, self.sink, self.timeout = batches, rounds, sink, timeout
        self.rss, self.errors = [], []
        self.message_port_register_out(pmt.intern("out"))

    def start(self):
        threading.Thread(target=self._run, daemon=True).start()
        return True

    def _run(self):
        port = pmt.intern("out")
        try:
            for _ in range(self.rounds):
                for items in self.batches:
                    want = [it.seq for it in items if it.kind == "valid"]
                    self.sink.expect(len(want))
                    for it in items:
                        self.message_port_pub(port, it.msg.value)
                    got = self.sink.wait(self.timeout)
                    if got != want:
                        self.errors.append(f"batch {items!r}: out {got}, expected {want}")
                        return
                self.rss.append(fz.rss_kib())
        finally:
            self.to_basic_block()._post(pmt.intern("system"), pmt.cons(pmt.intern("done"), pmt.from_long(1)))


class CountingSink(gr.basic_block):
    """Keeps only the fuzz_seq of each PDU of the current batch (no copies of the PDUs)."""

    def __init__(self):
        gr.basic_block.__init__(self, name="fuzz_counting_sink", in_sig=None, out_sig=None)
        self._seqs, self._want, self._cond = [], 0, threading.Condition()
        self.message_port_register_in(pmt.intern("in"))
        self.set_msg_handler(pmt.intern("in"), self._store)

    def _store(self, msg):
        seq = pdu_parts(msg)[0] if pmt.is_pair(msg) and pmt.is_dict(pmt.car(msg)) else "not a PDU"
        with self._cond:
            self._seqs.append(seq)
            self._cond.notify_all()

    def expect(self, n):
        with self._cond:
            self._seqs, self._want = [], n

    def wait(self, timeout):
        with self._cond:
            self._cond.wait_for(lambda: len(self._seqs) >= self._want, timeout)
            return list(self._seqs)


def test_memory_stays_bounded():
    """One link tx → channel → rx runs for a long time on hostile input around valid
    items: every valid item comes back, and resident memory stops growing after a warm-up."""
    collected = []

    @settings(PROFILE, max_examples=40, derandomize=True, phases=[Phase.generate])
    @given(items=item_lists(valid_pdus(image_pool()), garbage_msgs(ACCEPTS_IMAGE, image_near_misses()), max_size=8))
    def collect(items):
        collected.append([it for it in items if it.kind != "stray"])
    collect()
    rounds = 150 if SOAK else 3
    tb = gr.top_block()
    sink = CountingSink()
    src = PacedSource(collected, rounds, sink)
    transmitter = unitocom.tx("image", TOK8, "genib", ENC8, 4, 10.0, 1.0, "packet_len", "cpu", 1)
    channel = unitocom.block_fading_channel("rayleigh", 10.0, 0, 0.0, 1.0, 1, "packet_len")
    receiver = unitocom.rx("image", DEC8, DET8, "genib", 10.0, "packet_len", "cpu", 1)
    tb.msg_connect(src, "out", transmitter, "pdu")
    tb.connect(transmitter, channel, receiver)
    tb.msg_connect(receiver, "pdu", sink, "in")
    fz.run_flowgraph(tb, timeout=fz.RUN_TIMEOUT + 5 * rounds)
    n_inputs = rounds * sum(len(items) for items in collected)
    INPUTS["memory_link"] += n_inputs
    assert not src.errors, src.errors[0]
    assert len(src.rss) == rounds
    warm = src.rss[max(0, rounds // 10 - 1)]
    REPORT["memory"] = {"rounds": rounds, "inputs": n_inputs, "rss_after_warmup_kib": warm,
                        "rss_end_kib": src.rss[-1], "rss_max_kib": max(src.rss), "growth_kib": src.rss[-1] - warm}
    # a leak of PDUs, frames or state per input would be ~12 KiB × inputs; allow allocator noise
    assert src.rss[-1] - warm < 32 * 1024, REPORT["memory"]
