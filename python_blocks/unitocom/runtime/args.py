"""Constructor-argument checks that end in a sentence a user understands.

Each returns the value converted (int/float) or raises ValueError naming
the argument, what it must be and what it got — for any input, including
None, strings, bools, NaN and infinities (which ``int()`` would turn into
a TypeError or an OverflowError).
"""
import math
import numbers


def check_int(name, value, minimum=None, maximum=None):
    """``value`` as an int in [minimum, maximum], or ValueError."""
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value) \
        and int(value) == value
    if ok:
        value = int(value)
        ok = (minimum is None or value >= minimum) and (maximum is None or value <= maximum)
    if not ok:
        rng = (f" from {minimum} to {maximum}" if maximum is not None else f" >= {minimum}") \
            if minimum is not None else ""
        raise ValueError(f"{name} must be an integer{rng}; got {value!r}")
    return value


def check_float(name, value, minimum=None, maximum=None, above=None):
    """``value`` as a finite float in [minimum, maximum] (and > ``above``), or ValueError."""
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
    if ok:
        value = float(value)
        ok = (minimum is None or value >= minimum) and (maximum is None or value <= maximum) \
            and (above is None or value > above)
    if not ok:
        parts = [f">= {minimum:g}" if minimum is not None else "", f"<= {maximum:g}" if maximum is not None else "",
                 f"> {above:g}" if above is not None else ""]
        rng = " and ".join(p for p in parts if p)
        raise ValueError(f"{name} must be a finite number{' ' + rng if rng else ''}; got {value!r}")
    return value


def check_name(name, value):
    """A non-empty string (tag keys, labels), or ValueError."""
    if not isinstance(value, str) or not value:
        raise ValueError(f"{name} must be a non-empty name; got {value!r}")
    return value
