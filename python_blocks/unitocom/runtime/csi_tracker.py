"""Channel state per received symbol, from the CSI tags of ``core.tags``.

A receiver learns the channel from tags in force from a sample on: ``h``
(the fading gain), ``snr_db`` (P/σ²) and ``noise_var`` (σ²), as written by
``block_fading_channel`` or, over the air, by an estimator. ``CsiTracker``
turns the tags of one frame into per-symbol values, carrying the state
over from frame to frame:

* a new ``snr_db`` without a ``noise_var`` at the same sample sets σ² from
  it (σ² = 10^(−snr_db/10)); a ``noise_var`` alone keeps the SNR;
* when both are known, the transmit power P = σ²·10^(snr_db/10) is folded
  into the gain (h·√P), so what is returned describes unit-power symbols;
* before any tag: h = 1 at the default SNR (logged once);
* tags out of range (``tags.csi_value``) are logged and ignored.
"""
import numpy as np

from ..core import tags as tagkeys
from ..dsp.channel_math import noise_variance


class CsiTracker:
    """``per_symbol(frame_tags, n)`` → (h (n,), σ² (n,), snr_db, fades) for one frame.

    Args:
        default_snr_db: SNR assumed while no CSI tag has arrived.
        log: a ``DropLog`` for malformed tags and the missing-CSI notice.
    """

    def __init__(self, default_snr_db, log):
        self._default = float(default_snr_db)
        self._log = log
        self._state = dict.fromkeys(tagkeys.CSI_KEYS)

    def per_symbol(self, frame_tags, n):
        """Forward-fill ``frame_tags`` ([(rel_offset, key, pmt)]) over n symbols; ``fades`` counts h tags (>= 1)."""
        runs = tagkeys.fill_runs(frame_tags, tagkeys.CSI_KEYS, self._state, tagkeys.csi_value, self._log.warn)
        h, nv = np.empty(n, np.complex128), np.empty(n, np.float64)
        bounds = [r[0] for r in runs[1:]] + [n]
        fades, follow_snr = 0, False
        for (start, state, tagged), end in zip(runs, bounds):
            if tagkeys.KEY_SNR_DB in tagged:                       # a new SNR: σ² follows it unless tagged too
                follow_snr = tagkeys.KEY_NOISE_VAR not in tagged
            elif tagkeys.KEY_NOISE_VAR in tagged:
                follow_snr = False
            if follow_snr:
                state[tagkeys.KEY_NOISE_VAR] = None
            fades += tagkeys.KEY_H in tagged
            h[start:end], nv[start:end] = self._gain_and_noise(state)
        if follow_snr:
            self._state[tagkeys.KEY_NOISE_VAR] = None
        snr = runs[-1][1][tagkeys.KEY_SNR_DB]
        return h, nv, self._default if snr is None else snr, max(fades, 1)

    def _gain_and_noise(self, state):
        if all(v is None for v in state.values()):
            self._log.warn_once("no CSI tags yet: assuming h = 1 at snr_db = %g dB" % self._default)
        h = state[tagkeys.KEY_H] if state[tagkeys.KEY_H] is not None else 1.0
        snr = state[tagkeys.KEY_SNR_DB] if state[tagkeys.KEY_SNR_DB] is not None else self._default
        nv = state[tagkeys.KEY_NOISE_VAR]
        if nv is None or state[tagkeys.KEY_SNR_DB] is None:
            return h, max(nv if nv is not None else noise_variance(snr), 1e-12)
        power = nv * 10.0 ** (snr / 10.0)            # the transmit power P the SNR refers to: E|z|² = P
        return h * power ** 0.5, max(nv, 1e-12)
