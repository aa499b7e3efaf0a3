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
"""
import numbers

import pmt

KEY_H = "h"
KEY_SNR_DB = "snr_db"
KEY_NOISE_VAR = "noise_var"
KEY_EQ_GAIN = "eq_gain"
KEY_EQ_NOISE_VAR = "eq_noise_var"
DEFAULT_LEN_TAG_KEY = "packet_len"


def to_python(value):
    """pmt -> Python scalar/str/None (complex, float, int, bool, symbol)."""
    if pmt.is_complex(value):
        return complex(pmt.to_complex(value))
    if pmt.is_integer(value) or pmt.is_uint64(value):
        return int(pmt.to_python(value))
    if pmt.is_real(value):
        return float(pmt.to_double(value))
    if pmt.is_bool(value):
        return bool(pmt.to_bool(value))
    if pmt.is_symbol(value):
        return pmt.symbol_to_string(value)
    return None


def is_length(value):
    """True when ``value`` is an integral count > 0 (pmt or Python)."""
    value = to_python(value) if isinstance(value, pmt.pmt_python.pmt_base) else value
    return isinstance(value, numbers.Integral) and not isinstance(value, bool) and value > 0


def read_number(msg, key):
    """Numeric value for ``key`` from a control message, or None.

    Accepts a dict ``{key: number}``, a pair ``(key . number)`` and a PDU
    whose metadata dict holds ``key``."""
    k = pmt.intern(key)
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
    number = to_python(value)
    if isinstance(number, bool) or not isinstance(number, (int, float)):
        return None
    return float(number)


def state_runs(block, n, keys, state, validate, on_bad):
    """Cut ``block``'s current input buffer (port 0, ``n`` items) into runs of
    constant tag state.

    ``state`` maps each key in ``keys`` to its value in force (None when
    unknown) and is updated in place, so it carries over between work()
    calls. ``validate(key, python_value)`` returns the value to keep or None
    to reject it; a rejected tag is reported via ``on_bad(message)``.
    Returns ``[(rel_offset, {key: value}, tagged)]``: one run starting at 0
    with the carried-over state, then one per offset where a tag changed it.
    """
    start = block.nitems_read(0)
    runs = [[0, dict(state), False]]
    for t in sorted(block.get_tags_in_window(0, 0, n), key=lambda t: t.offset):
        key = pmt.symbol_to_string(t.key)
        if key not in keys:
            continue
        value = validate(key, to_python(t.value))
        if value is None:
            on_bad(f"ignored a malformed '{key}' tag: {t.value}")
            continue
        rel = t.offset - start
        if runs[-1][0] != rel:
            runs.append([rel, dict(runs[-1][1]), True])
        runs[-1][1][key] = value
        runs[-1][2] = True
    state.update(runs[-1][1])
    return [tuple(r) for r in runs]


def finite_number(key, value, complex_ok=False, minimum=None):
    """A validator helper: the value as float/complex, or None."""
    if isinstance(value, bool) or not isinstance(value, (int, float, complex)):
        return None
    if isinstance(value, complex) and not complex_ok:
        if value.imag != 0:
            return None
        value = value.real
    if not (abs(value) < float("inf")):
        return None
    if minimum is not None and value < minimum:
        return None
    return complex(value) if complex_ok else float(value)
