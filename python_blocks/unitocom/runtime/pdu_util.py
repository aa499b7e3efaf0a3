"""PDU helpers: check, unpack and build ``pmt.cons(meta_dict, uvector)``.

``unpack`` is the boundary where messages from outside enter a block: it
never raises anything but ValueError (with a reason the block logs) and it
refuses vectors longer than ``core.modalities.MAX_PDU_ITEMS`` before
copying them. ``get_int``/``get_str`` read metadata values of the type a
block expects and ignore anything else.
"""
import numpy as np
import pmt

from ..core import tags as tagkeys
from ..core.modalities import MAX_PDU_ITEMS

_TO_NUMPY = {
    "u8": (pmt.is_u8vector, pmt.u8vector_elements, np.uint8),
    "s16": (pmt.is_s16vector, pmt.s16vector_elements, np.int16),
    "s32": (pmt.is_s32vector, pmt.s32vector_elements, np.int32),
    "f32": (pmt.is_f32vector, pmt.f32vector_elements, np.float32),
    "c32": (pmt.is_c32vector, pmt.c32vector_elements, np.complex64),
}


def unpack(msg, kinds, max_items=MAX_PDU_ITEMS):
    """(meta dict pmt, numpy array, kind) of a PDU whose vector is one of ``kinds``.

    Raises ValueError with a readable reason otherwise (the caller logs and drops)."""
    try:
        if not pmt.is_pair(msg):
            raise ValueError("not a PDU (expected a pair of metadata dict and vector)")
        meta, vec = pmt.car(msg), pmt.cdr(msg)
        if not (pmt.is_dict(meta) or pmt.is_null(meta)):
            raise ValueError("PDU metadata is not a dict")
        for kind in kinds:
            test, elements, dtype = _TO_NUMPY[kind]
            if test(vec):
                n = pmt.length(vec)
                if n > max_items:
                    raise ValueError(f"PDU vector of {n} items; at most {max_items} are taken")
                return (pmt.make_dict() if pmt.is_null(meta) else meta), np.asarray(elements(vec), dtype), kind
    except ValueError:
        raise
    except Exception as exc:            # pmt raises RuntimeError/TypeError on some malformed objects
        raise ValueError(f"unreadable PDU ({type(exc).__name__}: {exc})") from None
    raise ValueError(f"PDU vector is not one of {', '.join(kinds)}")


def make(meta, array):
    """PDU from a metadata dict pmt and a numpy array (u8, s16, s32, f32 or c32)."""
    array = np.ascontiguousarray(array)
    maker = {np.uint8: pmt.init_u8vector, np.int16: pmt.init_s16vector, np.int32: pmt.init_s32vector,
             np.float32: pmt.init_f32vector, np.complex64: pmt.init_c32vector}[array.dtype.type]
    return pmt.cons(meta, maker(len(array), array.ravel().tolist()))


def to_pmt(value):
    """A Python scalar as a pmt; ints beyond int64 become uint64 (or double), never an overflow."""
    if isinstance(value, int) and not isinstance(value, bool) and not -tagkeys.INT64_MAX - 1 <= value <= tagkeys.INT64_MAX:
        return pmt.from_uint64(value) if 0 <= value < 1 << 64 else pmt.from_double(float(value))
    return pmt.to_pmt(value)


def with_items(meta, **items):
    """A copy of ``meta`` with Python values set (ints, floats, complex, strings)."""
    for key, value in items.items():
        meta = pmt.dict_add(meta, pmt.intern(key), to_pmt(value))
    return meta


def _value(meta, key):
    try:
        return tagkeys.to_python(pmt.dict_ref(meta, pmt.intern(key), pmt.PMT_NIL))
    except Exception:
        return None


def get(meta, key, default=None):
    """Python scalar of ``key`` in a metadata dict pmt (number, bool, string), or ``default``."""
    value = _value(meta, key)
    return default if value is None else value


def get_int(meta, key, default=None, minimum=0, maximum=tagkeys.INT64_MAX):
    """``key`` as a Python int within [minimum, maximum], or ``default`` (absent or unusable)."""
    value = _value(meta, key)
    if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= maximum:
        return default
    return value


def get_str(meta, key, default=None):
    """``key`` as a string (a PMT symbol), or ``default``."""
    value = _value(meta, key)
    return value if isinstance(value, str) else default
