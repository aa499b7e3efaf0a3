"""csi_equalizer: one-tap ZF/MMSE equalization from the channel's CSI tags."""
import numpy as np
import pmt
from gnuradio import gr

from . import channel_math as cm
from . import tags as tagkeys
from .droplog import DropLog

_KEYS = (tagkeys.KEY_H, tagkeys.KEY_NOISE_VAR)


def _validate(key, value):
    if key == tagkeys.KEY_H:
        return tagkeys.finite_number(key, value, complex_ok=True)
    return tagkeys.finite_number(key, value, minimum=0.0)


class csi_equalizer(gr.sync_block):
    """One-tap equalizer driven by the CSI tags of ``block_fading_channel``.

    Input ``in``: complex64 stream carrying ``h`` and ``noise_var`` tags at
    every fade start. Output ``out``: the equalized stream (see
    ``channel_math.equalize``):

    * ``zf``:   x̂ = y·h*/|h|²  (unbiased; noise σ²/|h|²)
    * ``mmse``: x̂ = y·h*/(|h|² + σ²/P)  (biased towards 0, lower MSE)

    At each CSI tag the output also gets ``eq_gain`` and ``eq_noise_var``
    (x̂ = eq_gain·z + w, E|w|² = eq_noise_var) for ``soft_demapper``. Input
    tags are passed on. Samples that arrive before the CSI is known cannot
    be equalized: they are output as 0 and logged; malformed CSI tags are
    logged and ignored.

    Args:
        method: 'zf' or 'mmse'.
        signal_power: transmit power P assumed by the MMSE weight (> 0).
    """

    def __init__(self, method="zf", signal_power=1.0):
        gr.sync_block.__init__(self, name="csi_equalizer",
                               in_sig=[np.complex64], out_sig=[np.complex64])
        if method not in cm.EQUALIZER_METHODS:
            raise ValueError(f"method must be one of {', '.join(cm.EQUALIZER_METHODS)}; got {method!r}")
        if not np.isfinite(signal_power) or signal_power <= 0:
            raise ValueError(f"signal_power must be a finite number > 0; got {signal_power}")
        self._method = method
        self._p = float(signal_power)
        self._csi = {k: None for k in _KEYS}
        self._log = DropLog(self.logger)
        self.unequalized_samples = 0

    def work(self, input_items, output_items):
        y, out = input_items[0], output_items[0]
        n = len(y)
        start = self.nitems_read(0)
        runs = tagkeys.state_runs(self, n, _KEYS, self._csi, _validate, self._log.warn)
        lengths = np.diff([r[0] for r in runs] + [n])
        known = np.array([None not in r[1].values() for r in runs])
        h = np.array([r[1][tagkeys.KEY_H] if k else 1 for r, k in zip(runs, known)], np.complex64)
        nv = np.array([r[1][tagkeys.KEY_NOISE_VAR] if k else 1 for r, k in zip(runs, known)], np.float32)
        if len(runs) == 1:
            out[:] = cm.equalize(y, h[0], nv[0], self._method, self._p)[0]
        else:
            out[:] = cm.equalize(y, np.repeat(h, lengths), np.repeat(nv, lengths), self._method, self._p)[0]
        _, gain, eff = cm.equalize(h, h, nv, self._method, self._p)
        missing = 0
        for (rel, _, tagged), length, k, g, e in zip(runs, lengths, known, gain, eff):
            if not k:
                out[rel:rel + length] = 0
                missing += int(length)
            elif tagged:
                self.add_item_tag(0, start + rel, pmt.intern(tagkeys.KEY_EQ_GAIN), pmt.from_double(float(g)))
                self.add_item_tag(0, start + rel, pmt.intern(tagkeys.KEY_EQ_NOISE_VAR), pmt.from_double(float(e)))
        if missing:
            self.unequalized_samples += missing
            self._log.warn(f"output {missing} samples as 0: no CSI tags ('h', 'noise_var') received yet")
        return n
