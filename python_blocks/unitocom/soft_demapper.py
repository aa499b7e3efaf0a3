"""soft_demapper: per-bit soft values (LLRs) using the equalizer's CSI tags."""
import numpy as np
from gnuradio import gr

from . import tags as tagkeys
from .constellations import bit_labels, qam16_gray
from .droplog import DropLog

_KEYS = (tagkeys.KEY_EQ_GAIN, tagkeys.KEY_EQ_NOISE_VAR)


def _validate(key, value):
    return tagkeys.finite_number(key, value, minimum=0.0)


def llrs(y, points, labels, gain, noise_var, max_log=False):
    """Soft bits for received samples ``y`` = gain·s + w, E|w|² = noise_var.

    Returns float32 of shape (len(y), k): log P(b=1|y) − log P(b=0|y), i.e.
    *positive means 1*, the sign convention of gr-digital's soft decoders
    (``digital.binary_slicer_fb`` turns it into bits). Exact log-sum-exp, or
    the max-log approximation. ``gain``/``noise_var``: scalars or per sample.
    """
    y = np.asarray(y, np.complex128)[:, None]
    gain = np.asarray(gain, np.float64).reshape(-1, 1)
    noise_var = np.maximum(np.asarray(noise_var, np.float64).reshape(-1, 1), 1e-30)
    d = np.abs(y - gain * points[None, :]) ** 2 / noise_var      # (n, M) metrics
    out = np.empty((len(y), labels.shape[1]), np.float32)
    for j in range(labels.shape[1]):
        d1, d0 = d[:, labels[:, j] == 1], d[:, labels[:, j] == 0]
        m1, m0 = d1.min(axis=1), d0.min(axis=1)
        value = m0 - m1
        if not max_log:
            value += (np.log(np.exp(-(d1 - m1[:, None])).sum(axis=1))
                      - np.log(np.exp(-(d0 - m0[:, None])).sum(axis=1)))
        out[:, j] = value
    return out


class soft_demapper(gr.interp_block):
    """Soft demapper: complex symbols in, ``k`` soft bits per symbol out.

    Input ``in``: equalized complex64 symbols, with ``eq_gain`` and
    ``eq_noise_var`` tags from ``csi_equalizer`` wherever the channel
    changes. Output ``out``: float32, k = bits_per_symbol values per symbol,
    MSB first; value = log P(b=1)/P(b=0) (positive means 1, as in gr-digital).
    Until the first tag arrives, gain 1 and ``noise_var`` are assumed.
    Malformed tags are logged and ignored.

    Args:
        constellation: a gr-digital constellation object (``digital.constellation_*``);
            None means 16-QAM Gray (``qam16_gray()``).
        noise_var: noise variance assumed before the first tag (> 0).
        max_log: use the max-log approximation instead of exact log-sum-exp.
    """

    def __init__(self, constellation=None, noise_var=1.0, max_log=False):
        constellation = qam16_gray() if constellation is None else constellation
        if not hasattr(constellation, "points") or not hasattr(constellation, "bits_per_symbol"):
            raise ValueError("constellation must be a gr-digital constellation object, e.g. unitocom.qam16_gray()")
        if constellation.dimensionality() != 1:
            raise ValueError("soft_demapper supports one-dimensional (complex) constellations only")
        k = constellation.bits_per_symbol()
        if constellation.arity() != 2 ** k:
            raise ValueError(f"constellation has {constellation.arity()} points, not 2^{k}")
        if not np.isfinite(noise_var) or noise_var <= 0:
            raise ValueError(f"noise_var must be a finite number > 0; got {noise_var}")
        gr.interp_block.__init__(self, name="soft_demapper", in_sig=[np.complex64],
                                 out_sig=[np.float32], interp=k)
        self._points = np.array(constellation.points(), np.complex128)
        self._labels = bit_labels(constellation)
        self._max_log = bool(max_log)
        self._state = {tagkeys.KEY_EQ_GAIN: 1.0, tagkeys.KEY_EQ_NOISE_VAR: float(noise_var)}
        self._log = DropLog(self.logger)

    def work(self, input_items, output_items):
        y = input_items[0]
        n = len(y)
        runs = tagkeys.state_runs(self, n, _KEYS, self._state, _validate, self._log.warn)
        if len(runs) == 1:
            gain, nv = runs[0][1][tagkeys.KEY_EQ_GAIN], runs[0][1][tagkeys.KEY_EQ_NOISE_VAR]
        else:
            lengths = np.diff([r[0] for r in runs] + [n])
            gain = np.repeat([r[1][tagkeys.KEY_EQ_GAIN] for r in runs], lengths)
            nv = np.repeat([r[1][tagkeys.KEY_EQ_NOISE_VAR] for r in runs], lengths)
        output_items[0][:] = llrs(y, self._points, self._labels, gain, nv, self._max_log).reshape(-1)
        return len(output_items[0])
