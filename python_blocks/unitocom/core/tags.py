"""Stream-tag keys and small pmt helpers shared by the blocks.

Frame metadata travels as stream tags at the frame's first sample (DESIGN.md
§3). The channel state information (CSI) that ``block_fading_channel``
writes, and that ``csi_equalizer`` and ``soft_demapper`` read:

===============  ========  =================================================
key              type      meaning
===============  ========  =================================================
``h``            complex   fading gain in force from this sample on
``snr_db``       double    nominal SNR (P/σ²) in dB in force from here on
``noise_var``    double    σ², noise power per complex sample
``eq_gain``      double    after equalization: x̂ = eq_gain·z + w
``eq_noise_var`` double    after equalization: E|w|²
===============  ========  =================================================

``h`` may also be a complex vector (c64vector, or c32vector): one gain per
sample from its sample on, the same as that many scalar ``h`` tags at
consecutive samples (the last gain stays in force). ``ofdm_rx`` writes its
per-carrier channel this way, one tag per frame instead of one per symbol;
``jscc_decoder`` (``runtime.csi_tracker``) reads both forms.

The session a frame belongs to travels the same way, from ``tx`` through
the frame tags into ``rx``'s token PDUs, where ``mllm_client`` groups by it
(``runtime.sessions``):

===============  ========  =================================================
``session_id``   integer   uint32: the user/session the frame belongs to
``task``         symbol    what the MLLM should do: vqa, t2i, asr or dsc
===============  ========  =================================================
"""
import math
import numbers

import numpy as np
import pmt

from ..dsp.channel_math import SNR_DB_MAX, SNR_DB_MIN, noise_variance

KEY_H = "h"
KEY_SNR_DB = "snr_db"
KEY_NOISE_VAR = "noise_var"
KEY_EQ_GAIN = "eq_gain"
KEY_EQ_NOISE_VAR = "eq_noise_var"
DEFAULT_LEN_TAG_KEY = "packet_len"
KEY_SESSION_ID = "session_id"
KEY_TASK = "task"
CSI_KEYS = (KEY_H, KEY_SNR_DB, KEY_NOISE_VAR)

#: Largest |h| a CSI tag may carry; beyond it |h|² leaves float32 and decoding means nothing.
MAX_ABS_H = 1e6
INT64_MAX = (1 << 63) - 1


def to_python(value):
    """pmt -> Python scalar/str/None (complex, float, int, bool, symbol); None for anything else.

    Never raises: a PMT of a type no tag should have (a vector, a dict, a
    pair) and a malformed one both give None."""
    try:
        if pmt.is_complex(value):
            return complex(pmt.to_complex(value))
        if pmt.is_uint64(value):
            return int(pmt.to_uint64(value))
        if pmt.is_integer(value):
            return int(pmt.to_long(value))
        if pmt.is_real(value):
            return float(pmt.to_double(value))
        if pmt.is_bool(value):
            return bool(pmt.to_bool(value))
        if pmt.is_symbol(value):
            return pmt.symbol_to_string(value)
    except Exception:
        return None
    return None


def is_length(value):
    """True when ``value`` is an integral count > 0 (pmt or Python)."""
    value = to_python(value) if isinstance(value, pmt.pmt_python.pmt_base) else value
    return isinstance(value, numbers.Integral) and not isinstance(value, bool) and value > 0


def read_number(msg, key):
    """Numeric value for ``key`` from a control message, or None.

    Accepts a dict ``{key: number}``, a pair ``(key . number)`` and a PDU
    whose metadata dict holds ``key``. Never raises."""
    k = pmt.intern(key)
    try:
        if pmt.is_dict(msg):
            if not pmt.dict_has_key(msg, k):
                return None
            value = pmt.dict_ref(msg, k, pmt.PMT_NIL)
        elif pmt.is_pair(msg):
            car, cdr = pmt.car(msg), pmt.cdr(msg)
            if pmt.is_dict(car):
                return read_number(car, key)
            if not (pmt.is_symbol(car) and pmt.symbol_to_string(car) == key):
                return None
            value = cdr
        else:
            return None
    except Exception:
        return None
    number = to_python(value)
    if isinstance(number, bool) or not isinstance(number, (int, float)):
        return None
    try:
        return float(number)
    except OverflowError:
        return None


def complex_vector(value):
    """A complex pmt vector (c64vector or c32vector) as a complex128 numpy array, or None for anything else.

    The vector form of an ``h`` tag (one gain per sample). Never raises."""
    try:
        if pmt.is_c64vector(value):
            return np.asarray(pmt.c64vector_elements(value), np.complex128)
        if pmt.is_c32vector(value):
            return np.asarray(pmt.c32vector_elements(value), np.complex128)
    except Exception:
        return None
    return None


def fill_runs(marks, keys, state, validate, on_bad):
    """Cut a span into runs of constant tag state (CSI forward fill).

    ``marks``: ``[(rel_offset, key_str, pmt_value)]`` in any order (tags of
    a buffer or of a frame). ``state`` maps each key in ``keys`` to its value
    in force (None when unknown) and is updated in place, so it carries
    over. ``validate(key, python_value)`` returns the value to keep or None
    to reject it; a rejected tag is reported via ``on_bad(message)``. Tags
    at one offset apply in arrival order (the last one wins).
    Returns ``[(rel_offset, {key: value}, tagged_keys)]``: one run starting
    at 0 with the carried-over state (``tagged_keys`` empty), then one per
    offset where a tag changed it, ``tagged_keys`` naming the keys tagged there.
    """
    runs = [[0, dict(state), set()]]
    for rel, key, raw in sorted((m for m in marks if m[1] in keys), key=lambda m: m[0]):
        try:
            value = validate(key, to_python(raw))
        except Exception:
            value = None
        if value is None:
            on_bad(f"ignored a malformed '{key}' tag: {raw}")
            continue
        if runs[-1][0] != rel:
            runs.append([rel, dict(runs[-1][1]), set()])
        runs[-1][1][key] = value
        runs[-1][2].add(key)
    state.update(runs[-1][1])
    return [(r[0], r[1], frozenset(r[2])) for r in runs]


def state_runs(block, n, keys, state, validate, on_bad):
    """``fill_runs`` over ``block``'s current input buffer (port 0, ``n`` items)."""
    start = block.nitems_read(0)
    marks = [(t.offset - start, pmt.symbol_to_string(t.key), t.value) for t in block.get_tags_in_window(0, 0, n)]
    return fill_runs(marks, keys, state, validate, on_bad)


def finite_number(key, value, complex_ok=False, minimum=None, maximum=None):
    """A validator helper: the value as float/complex, or None.

    None unless ``value`` is a finite number (complex only with
    ``complex_ok``) with ``minimum`` <= value (<= ``maximum``; for complex
    values the bounds apply to |value|)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, complex)):
        return None
    try:
        if isinstance(value, complex) and not complex_ok:
            if value.imag != 0:
                return None
            value = value.real
        value = complex(value) if complex_ok else float(value)
    except OverflowError:
        return None
    size = abs(value) if complex_ok else value
    if not math.isfinite(abs(value)):
        return None
    if minimum is not None and size < minimum:
        return None
    if maximum is not None and size > maximum:
        return None
    return value


def csi_value(key, value):
    """Validator for the channel's CSI tags (``h``, ``snr_db``, ``noise_var``): the value or None."""
    if key == KEY_H:
        return finite_number(key, value, complex_ok=True, maximum=MAX_ABS_H)
    if key == KEY_SNR_DB:
        v = finite_number(key, value, minimum=SNR_DB_MIN)
        return v if v is not None and v <= SNR_DB_MAX else None
    return finite_number(key, value, minimum=float(noise_variance(SNR_DB_MAX)), maximum=float(noise_variance(SNR_DB_MIN)))
