"""soft_demapper: per-bit soft values (LLRs) using the equalizer's CSI tags."""
import numpy as np
import pmt
from gnuradio import gr

from .core import tags as tagkeys
from .dsp.constellations import bit_labels, llrs, qam16_gray
from .runtime.args import check_float
from .runtime.droplog import DropLog

_KEYS = (tagkeys.KEY_EQ_GAIN, tagkeys.KEY_EQ_NOISE_VAR)
LLR_MAX = 1e30              # an infinite LLR (overflow) is output as ±LLR_MAX


def _validate(key, value):
    # any finite σ² >= 0 is meaningful (a deep fade after ZF: huge, soft values → 0); a gain is not
    maximum = tagkeys.MAX_ABS_H if key == tagkeys.KEY_EQ_GAIN else None
    return tagkeys.finite_number(key, value, minimum=0.0, maximum=maximum)


class soft_demapper(gr.interp_block):
    """Soft demapper: complex symbols in, ``k`` soft bits per symbol out.

    Input ``in``: equalized complex64 symbols, with ``eq_gain`` and
    ``eq_noise_var`` tags from ``csi_equalizer`` wherever the channel
    changes. Output ``out``: float32, k = bits_per_symbol values per symbol,
    MSB first; value = log P(b=1)/P(b=0) (positive means 1, as in gr-digital).
    Until the first tag arrives, gain 1 and ``noise_var`` are assumed.
    Malformed tags (not a finite number >= 0; a gain above ``tags.MAX_ABS_H``)
    are logged and ignored. A NaN/Inf symbol gives soft values 0 (an
    erasure), an overflowing one ±1e30; both are logged.

    Args:
        constellation: a gr-digital constellation object (``digital.constellation_*``);
            None means 16-QAM Gray (``qam16_gray()``).
        noise_var: noise variance assumed before the first tag (> 0, <= 1e30).
        max_log: use the max-log approximation instead of exact log-sum-exp.
    """

    def __init__(self, constellation=None, noise_var=1.0, max_log=False):
        constellation = qam16_gray() if constellation is None else constellation
        try:
            points = np.array(constellation.points(), np.complex128)
            k, arity, dim = constellation.bits_per_symbol(), constellation.arity(), constellation.dimensionality()
        except Exception:
            raise ValueError("constellation must be a gr-digital constellation object, "
                             "e.g. unitocom.qam16_gray()") from None
        if dim != 1:
            raise ValueError("soft_demapper supports one-dimensional (complex) constellations only")
        if not (1 <= k <= 16 and arity == 2 ** k == len(points) and np.all(np.isfinite(points))):
            raise ValueError(f"constellation has {arity} points, not 2^{k} finite ones")
        noise_var = check_float("noise_var", noise_var, maximum=1e30, above=0.0)
        gr.interp_block.__init__(self, name="soft_demapper", in_sig=[np.complex64],
                                 out_sig=[np.float32], interp=k)
        self._points = points
        self._labels = bit_labels(constellation)
        self._max_log = bool(max_log)
        self._state = {tagkeys.KEY_EQ_GAIN: 1.0, tagkeys.KEY_EQ_NOISE_VAR: noise_var}
        self._tag_keys = [(key, pmt.intern(key)) for key in _KEYS]
        self._log = DropLog(self.logger)

    def work(self, input_items, output_items):
        y, out = input_items[0], output_items[0]
        n, start = len(y), self.nitems_read(0)
        marks = [(t.offset - start, key, t.value) for key, k in self._tag_keys
                 for t in self.get_tags_in_window(0, 0, n, k)]
        runs = tagkeys.fill_runs(marks, _KEYS, self._state, _validate, self._log.warn)
        if len(runs) == 1:
            gain, nv = runs[0][1][tagkeys.KEY_EQ_GAIN], runs[0][1][tagkeys.KEY_EQ_NOISE_VAR]
        else:
            lengths = np.diff([r[0] for r in runs] + [n])
            gain = np.repeat([r[1][tagkeys.KEY_EQ_GAIN] for r in runs], lengths)
            nv = np.repeat([r[1][tagkeys.KEY_EQ_NOISE_VAR] for r in runs], lengths)
        with np.errstate(all="ignore"):                   # overflow is handled below
            out[:] = llrs(y, self._points, self._labels, gain, nv, self._max_log).reshape(-1)
            if not np.isfinite(np.dot(out, out)) and not np.isfinite(out).all():    # dot first: cheap
                self._log.warn(f"{int(np.sum(~np.isfinite(out)))} soft values of NaN/Inf/huge symbols "
                               f"output as 0 (NaN) or ±{LLR_MAX:g} (overflow)")
                np.nan_to_num(out, copy=False, nan=0.0, posinf=LLR_MAX, neginf=-LLR_MAX)
        return len(out)
