"""Property-based fuzzing of how mllm_client forms requests (``mllm.requests``; hypothesis).

Hostile messages (``fuzz_strategies`` PMTs of every shape) and near misses (token
PDUs whose metadata keys — modality, session_id, task, token_dim, n_tokens,
snr_db, h, … — hold valid or wrong-typed values, around valid and invalid
vectors) go into a ``SessionTable``. Each must either raise ValueError (the
block logs and drops it) or give requests the server would take: they pass
the same checks the server runs (``schema.encode_request``), with the
session's metadata and a JSON-able csi. The block's flowgraph behaviour is
in ``qa_mllm_client.py``.
"""
import numpy as np
import pmt
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fuzz_strategies as fz
from fuzz_strategies import Pmt
from gnuradio.unitocom.mllm import schema
from gnuradio.unitocom.mllm.requests import SessionTable

KEYS = ("modality", "session_id", "task", "token_dim", "n_tokens", "snr_db", "h", "frame_id", "rate", "model_id")
GOOD = {
    "modality": st.sampled_from(["image", "audio", "text"]).map(lambda s: Pmt(pmt.intern(s), s)),
    "session_id": st.integers(0, 2 ** 32 - 1).map(lambda i: Pmt(pmt.from_long(i), f"long({i})")),
    "task": st.sampled_from(["vqa", "t2i", "asr", "dsc", ""]).map(lambda s: Pmt(pmt.intern(s), s)),
    "token_dim": st.just(Pmt(pmt.from_long(16), "long(16)")),
    "snr_db": st.floats(-10, 40).map(lambda x: Pmt(pmt.from_double(x), f"double({x})")),
}
VECTORS = [fz.uvector_of("f32", np.random.default_rng(0).standard_normal(512).astype(np.float32)),
           fz.uvector("f32", 16 * 7, 0.5), fz.uvector_of("s32", [1, 10, 6, 13, 2]), fz.uvector("s32", 300, 3),
           fz.uvector("f32", 511, 0.0), fz.uvector("f32", 512, float("nan")), fz.uvector_of("s32", [1, 64]),
           fz.uvector("f32", 1502 * 16, 0.1), fz.uvector("u8", 12288, 1)]

#: ``fz.garbage_pdus`` without its 2^20-item vectors (``pdu_util.unpack``'s size limit has its own fuzz tests)
SMALL_GARBAGE = st.one_of(st.builds(fz.cons, st.one_of(fz.metadata(KEYS), fz.pmts(large=False)),
                                    st.one_of(fz.small_uvectors(), fz.pmts(large=False))), fz.pmts(large=False))


@st.composite
def near_misses(draw):
    entries = []
    for key in draw(st.lists(st.sampled_from(KEYS), unique=True, max_size=len(KEYS))):
        good = GOOD.get(key)
        value = draw(good) if good is not None and draw(st.booleans()) else draw(fz.meta_values())
        entries.append((Pmt(pmt.intern(key), key), value))
    return fz.cons(fz.make_dict(entries), draw(st.sampled_from(VECTORS)))


@settings(max_examples=150, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.lists(st.one_of(SMALL_GARBAGE, near_misses(), near_misses()), min_size=1, max_size=8))
def test_every_message_is_a_request_the_server_takes_or_a_value_error(messages):
    table = SessionTable(max_sessions=3, max_waiting=2)
    out = []
    for msg in messages:
        try:
            requests, orphans = table.add(msg.value)
        except ValueError:
            continue
        out += requests + [r for r, _ in orphans]
    out += [r for r, _ in table.close()]
    for r in out:
        if not r.arrays:                               # an orphan question: reported, never sent
            continue
        schema.encode_request("fuzz-1", r.task, r.arrays, session=r.session, snr_db=r.snr_db, csi=r.csi)
        meta = pmt.to_python(r.meta)
        assert (meta["session_id"], meta["task"]) == (r.session, r.task)
