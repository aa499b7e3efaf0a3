"""Channel state per received symbol, from the CSI tags of ``core.tags``.

A receiver learns the channel from tags in force from a sample on: ``h``
(the fading gain), ``snr_db`` (P/σ²) and ``noise_var`` (σ²), as written by
``block_fading_channel`` or, over the air, by an estimator. ``CsiTracker``
turns the tags of one frame into per-symbol values, carrying the state
over from frame to frame:

* ``h`` is a complex number in force from its sample on, or a complex
  vector (``c64vector``/``c32vector``, ``core.tags.KEY_H``) of one gain per
  sample from its sample on — exactly as many scalar ``h`` tags, one per
  sample, would be (``ofdm_rx`` writes one per frame: one tag instead of
  N). Gains past the end of the frame are ignored (logged);
* a new ``snr_db`` without a ``noise_var`` at the same sample sets σ² from
  it (σ² = 10^(−snr_db/10)); a ``noise_var`` alone keeps the SNR;
* when both are known, the transmit power P = σ²·10^(snr_db/10) is folded
  into the gain (h·√P), so what is returned describes unit-power symbols;
* before any tag: h = 1 at the default SNR (logged once);
* tags out of range (``tags.csi_value``) are logged and ignored; in a
  vector, each gain out of range is ignored on its own (its sample keeps
  the gain before it).

The gains are forward-filled with numpy (``np.searchsorted``), so a frame
costs the same whether its channel came as one tag or as one per symbol;
the SNR/noise state, which changes rarely, goes through ``tags.fill_runs``.
"""
import numpy as np

from ..core import tags as tagkeys
from ..dsp.channel_math import noise_variance

_SNR_KEYS = (tagkeys.KEY_SNR_DB, tagkeys.KEY_NOISE_VAR)


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
        """Forward-fill ``frame_tags`` ([(rel_offset, key, pmt)]) over n symbols; ``fades`` counts the
        samples at which an ``h`` (scalar or vector element) took effect (>= 1)."""
        h_marks = [m for m in frame_tags if m[1] == tagkeys.KEY_H]
        runs = tagkeys.fill_runs([m for m in frame_tags if m[1] in _SNR_KEYS], _SNR_KEYS, self._state,
                                 tagkeys.csi_value, self._log.warn)
        gains, known, fades = self._fill_h(h_marks, n)
        h, nv = np.empty(n, np.complex128), np.empty(n, np.float64)
        bounds = [r[0] for r in runs[1:]] + [n]
        follow_snr = False
        for (start, state, tagged), end in zip(runs, bounds):
            if tagkeys.KEY_SNR_DB in tagged:                       # a new SNR: σ² follows it unless tagged too
                follow_snr = tagkeys.KEY_NOISE_VAR not in tagged
            elif tagkeys.KEY_NOISE_VAR in tagged:
                follow_snr = False
            if follow_snr:
                state[tagkeys.KEY_NOISE_VAR] = None
            if start >= end:
                continue
            if state[tagkeys.KEY_SNR_DB] is None and state[tagkeys.KEY_NOISE_VAR] is None \
                    and not known[start:end].all():
                self._log.warn_once("no CSI tags yet: assuming h = 1 at snr_db = %g dB" % self._default)
            scale, nv[start:end] = self._power_and_noise(state)
            h[start:end] = gains[start:end] if scale is None else gains[start:end] * scale
        if follow_snr:
            self._state[tagkeys.KEY_NOISE_VAR] = None
        snr = runs[-1][1][tagkeys.KEY_SNR_DB]
        return h, nv, self._default if snr is None else snr, max(fades, 1)

    def _fill_h(self, marks, n):
        """(gain per sample (n,) complex128, known (n,) bool, fades) from the frame's ``h`` marks; updates the state.

        Equivalent to forward-filling one scalar mark per sample: marks sort
        by offset (stably, so at one offset the last to arrive wins)."""
        prev = self._state[tagkeys.KEY_H]
        pos, val = [], []
        for rel, key, raw in marks:
            vec = tagkeys.complex_vector(raw)
            if vec is None:                                          # a scalar gain
                try:
                    value = tagkeys.csi_value(key, tagkeys.to_python(raw))
                except Exception:
                    value = None
                if value is None:
                    self._log.warn(f"ignored a malformed '{key}' tag: {raw}")
                    continue
                pos.append(np.array([rel])), val.append(np.array([value], np.complex128))
                continue
            if not len(vec):
                self._log.warn(f"ignored a malformed '{key}' tag: an empty vector")
                continue
            good = np.isfinite(vec) & (np.abs(vec) <= tagkeys.MAX_ABS_H)
            if not good.all():
                self._log.warn(f"ignored {int(np.sum(~good))} of the {len(vec)} gains of an '{key}' vector tag: "
                               f"NaN/Inf or |h| > {tagkeys.MAX_ABS_H:g}")
            where = rel + np.arange(len(vec))
            inside = where < n
            if not inside.all():
                self._log.warn(f"ignored the last {int(np.sum(~inside))} gains of an '{key}' vector tag: "
                               "past the end of the frame")
            keep = good & inside
            pos.append(where[keep]), val.append(vec[keep])
        if not pos or not sum(len(p) for p in pos):
            fill = np.full(n, 1.0 if prev is None else prev, np.complex128)
            return fill, np.full(n, prev is not None), 0
        pos, val = np.concatenate(pos), np.concatenate(val)
        order = np.argsort(pos, kind="stable")
        pos, val = pos[order], val[order]
        idx = np.searchsorted(pos, np.arange(n), side="right") - 1          # the last mark at or before each sample
        table = np.concatenate([[1.0 if prev is None else prev], val]).astype(np.complex128)
        self._state[tagkeys.KEY_H] = complex(val[-1])
        return table[idx + 1], (idx >= 0) | (prev is not None), int(len(np.unique(pos)))

    def _power_and_noise(self, state):
        """(√P to fold into h, or None; σ²) of one run of SNR/noise state."""
        snr, nv = state[tagkeys.KEY_SNR_DB], state[tagkeys.KEY_NOISE_VAR]
        if nv is None or snr is None:
            snr = self._default if snr is None else snr
            return None, max(nv if nv is not None else noise_variance(snr), 1e-12)
        power = nv * 10.0 ** (snr / 10.0)            # the transmit power P the SNR refers to: E|z|² = P
        return power ** 0.5, max(nv, 1e-12)
