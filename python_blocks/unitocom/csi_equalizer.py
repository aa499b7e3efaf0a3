"""csi_equalizer: one-tap ZF/MMSE equalization from the channel's CSI tags."""
import numpy as np
import pmt
from gnuradio import gr

from .core import tags as tagkeys
from .dsp import channel_math as cm
from .runtime.args import check_float
from .runtime.droplog import DropLog

_KEYS = (tagkeys.KEY_H, tagkeys.KEY_NOISE_VAR)
MIN_POWER, MAX_POWER = 1e-20, 1e20      # signal_power, as block_fading_channel takes it


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
    be equalized: they are output as 0 and logged. Malformed CSI tags are
    logged and ignored: ``h`` must be a finite number with |h| <=
    ``tags.MAX_ABS_H``, ``noise_var`` the σ² of an SNR in −50…100 dB at
    power P. Output samples that are not finite (NaN/Inf input, overflow)
    are output as 0 and logged.

    Args:
        method: 'zf' or 'mmse'.
        signal_power: transmit power P assumed by the MMSE weight (1e-20…1e20).
    """

    def __init__(self, method="zf", signal_power=1.0):
        gr.sync_block.__init__(self, name="csi_equalizer",
                               in_sig=[np.complex64], out_sig=[np.complex64])
        if not isinstance(method, str) or method not in cm.EQUALIZER_METHODS:
            raise ValueError(f"method must be one of {', '.join(cm.EQUALIZER_METHODS)}; got {method!r}")
        self._method = method
        self._p = check_float("signal_power", signal_power, MIN_POWER, MAX_POWER)
        self._nv_range = (cm.noise_variance(cm.SNR_DB_MAX, self._p), cm.noise_variance(cm.SNR_DB_MIN, self._p))
        self._csi = {k: None for k in _KEYS}
        self._tag_keys = [(k, pmt.intern(k)) for k in _KEYS]
        self._log = DropLog(self.logger)
        self.unequalized_samples = 0

    def _validate(self, key, value):
        if key == tagkeys.KEY_H:
            return tagkeys.finite_number(key, value, complex_ok=True, maximum=tagkeys.MAX_ABS_H)
        return tagkeys.finite_number(key, value, minimum=self._nv_range[0], maximum=self._nv_range[1])

    def work(self, input_items, output_items):
        y, out = input_items[0], output_items[0]
        n, start = len(y), self.nitems_read(0)
        marks = [(t.offset - start, key, t.value) for key, k in self._tag_keys
                 for t in self.get_tags_in_window(0, 0, n, k)]
        runs = tagkeys.fill_runs(marks, _KEYS, self._csi, self._validate, self._log.warn)
        lengths = np.diff([r[0] for r in runs] + [n])
        known = np.array([None not in r[1].values() for r in runs])
        h = np.array([r[1][tagkeys.KEY_H] if k else 1 for r, k in zip(runs, known)], np.complex64)
        nv = np.array([r[1][tagkeys.KEY_NOISE_VAR] if k else 1 for r, k in zip(runs, known)], np.float32)
        with np.errstate(all="ignore"):                   # overflow is handled below
            if len(runs) == 1:
                out[:] = cm.equalize(y, h[0], nv[0], self._method, self._p)[0]
            else:
                out[:] = cm.equalize(y, np.repeat(h, lengths), np.repeat(nv, lengths), self._method, self._p)[0]
            _, gain, eff = cm.equalize(h, h, nv, self._method, self._p)
        if not (np.isfinite(gain).all() and np.isfinite(eff).all()):      # float32 overflow: again in float64
            _, gain, eff = cm.equalize(h.astype(np.complex128), h.astype(np.complex128), nv.astype(np.float64),
                                       self._method, self._p)
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
        flat = out.view(np.float32)
        if not np.isfinite(np.dot(flat, flat)) and not np.isfinite(flat).all():   # dot first: cheap
            bad = ~np.isfinite(out)
            self._log.warn(f"output {int(bad.sum())} samples as 0: NaN/Inf input or overflow")
            out[bad] = 0
        return n
