"""Receiver math for one OFDM frame (numpy only; ``ofdm_deframer`` drives it).

Given samples around a Schmidl & Cox detection:

1. **Timing**: cross-correlate with the known LTS (twice, 1 OFDM symbol
   apart); the first path within half a CP of the peak marks the LTS, and
   the FFT window starts ``backoff`` samples into the cyclic prefix (the
   resulting delay is part of the channel estimate).
2. **Frequency**: the S&C half-symbol correlation (±1 carrier spacing),
   then the LTS pair (one symbol apart) for the fine residual.
3. **Header**: per-carrier channel from the two LTS, common phase per symbol
   from the pilots, BPSK decisions, CRC (``ofdm.header``).
4. **Channel and noise**, once the header is known: every active carrier of
   the LTS pair and of the header symbols is a known symbol. The channel is
   their mean, smoothed by a least-squares fit to a channel no longer than
   the cyclic prefix; the noise variance is the residual around the mean
   (unbiased: K·(S−1) degrees of freedom less one per phase estimate).
   The SNR is mean|Ĥ|²/σ̂² over the active carriers (in-band, per carrier),
   with the estimation noise of Ĥ taken out.
5. **Payload**: common phase per OFDM symbol from the pilots, unwrapped
   and smoothed over neighbouring symbols; the JSCC symbols are taken from
   the data carriers *unequalised*, and each comes with its own channel
   gain: CSI per symbol, normalised to mean |h|² = 1 (``csi_for``).
"""
import numpy as np

from . import header as hdr

PHASE_SMOOTH = 7            # OFDM symbols in the moving average of the common phase


class FrameReceiver:
    """Stateless per-frame processing for one ``OfdmParams``."""

    def __init__(self, params, search=None):
        p = self.p = params
        self.backoff = max(1, p.cp_len // 4)
        self.search = int(search if search is not None else p.sym_len)
        delays = np.arange(-self.backoff - 2, p.cp_len + 2)
        if len(delays) < p.n_active:
            basis = np.exp(-2j * np.pi * np.outer(p.active, delays) / p.fft_len)
            self.smooth = basis @ np.linalg.pinv(basis)
            self.rank = len(delays)
        else:
            self.smooth, self.rank = np.eye(p.n_active), p.n_active

    # -- 1, 2: timing and frequency ------------------------------------------------
    def lts_start(self, x, approx):
        """FFT-window start of LTS 1 near ``approx`` (its nominal index in ``x``), or None."""
        p = self.p
        lo, hi = approx - self.search, approx + self.search
        if lo < p.sym_len or hi + 2 * p.sym_len > len(x):
            return None
        seg = x[lo:hi + p.sym_len + p.fft_len]
        c = np.abs(np.correlate(seg, p.lts_time, "valid"))
        m = c[:-p.sym_len] + c[p.sym_len:]
        peak = int(np.argmax(m))
        if m[peak] <= 0:
            return None
        early = np.flatnonzero(m[max(0, peak - p.cp_len // 2):peak + 1] >= 0.5 * m[peak])
        first = max(0, peak - p.cp_len // 2) + int(early[0])
        return lo + first - self.backoff

    def cfo(self, x, t1):
        """Carrier frequency offset in rad/sample, from the S&C symbol and the LTS pair at ``t1``."""
        p, h = self.p, self.p.fft_len // 2
        s = t1 - p.sym_len
        coarse = np.angle(-np.vdot(x[s:s + h], x[s + h:s + 2 * h])) / h      # odd carriers: halves of opposite sign
        rot = np.exp(-1j * coarse * np.arange(p.sym_len + p.fft_len))
        a = x[t1:t1 + p.sym_len + p.fft_len] * rot
        return coarse + np.angle(np.vdot(a[:p.fft_len], a[p.sym_len:])) / p.sym_len

    def symbols(self, x, t1, eps, first, count):
        """Active carriers (count, n_active) of OFDM symbols first… (0 = S&C, 1 = LTS 1) with CFO ``eps`` removed."""
        p = self.p
        starts = t1 + (np.arange(first, first + count) - 1) * p.sym_len
        idx = starts[:, None] + np.arange(p.fft_len)[None, :]
        w = x[idx] * np.exp(-1j * eps * (idx - t1))
        return p.demodulate(w)[:, p.active_idx]

    # -- 3: header -----------------------------------------------------------------
    def header(self, x, t1, eps):
        """(FrameHeader or None, state for ``payload``) from the samples of the preamble and header."""
        p = self.p
        y = self.symbols(x, t1, eps, 1, 2 + p.n_header_symbols)
        h_lts = self.smooth @ ((y[0] + y[1]) / 2 / p.lts_active)
        yh = y[2:]
        pil = p.pilots_for(p.n_header_symbols)
        phase = np.angle(np.sum(yh[:, p.pos_pilot] * np.conj(h_lts[p.pos_pilot] * pil), axis=1))
        z = yh[:, p.pos_data] * np.exp(-1j * phase)[:, None] * np.conj(h_lts[p.pos_data])
        head, bits = hdr.decode(hdr.combine(z.real, p.n_data))
        return head, (y, bits)

    # -- 4: channel and noise ------------------------------------------------------
    def estimate(self, state):
        """(smoothed channel (n_active,), noise variance, snr_db) from the LTS pair and the decoded header."""
        p = self.p
        y, bits = state
        nh = p.n_header_symbols
        known = np.empty((2 + nh, p.n_active), np.complex128)
        known[:2] = p.lts_active
        known[2:, p.pos_data] = hdr.layout(bits, p.n_data)
        known[2:, p.pos_pilot] = p.pilots_for(nh)
        obs = y * np.conj(known)                               # |known| = 1: H_k + noise
        h0 = obs[:2].mean(axis=0)
        phase = np.angle(np.sum(obs[2:] * np.conj(h0), axis=1))
        obs[2:] *= np.exp(-1j * phase)[:, None]
        h_mean = obs.mean(axis=0)
        s = len(obs)
        dof = p.n_active * (s - 1) - nh
        nv = float(np.sum(np.abs(obs - h_mean) ** 2) / dof)
        h_s = self.smooth @ h_mean
        gain = float(np.mean(np.abs(h_s) ** 2)) - nv * self.rank / (p.n_active * s)
        nv = max(nv, 1e-30)
        gain = max(gain, 1e-3 * nv)
        return h_s, nv, float(10 * np.log10(gain / nv)), gain

    # -- 5: payload ----------------------------------------------------------------
    def payload(self, x, t1, eps, h_s, n_symbols, snr_db, gain):
        """(received symbols (n,), channel per symbol (n,), ok) of the payload, both divided by √gain
        (the CSI form of ``core.tags``: mean |h|² = 1, noise variance 10^(−snr_db/10)); ok is False
        when the pilots say the frame was cut off."""
        p = self.p
        nh, npay = p.n_header_symbols, p.payload_symbols(n_symbols)
        y = self.symbols(x, t1, eps, 3 + nh, npay)
        pil = p.pilots_for(nh + npay)[nh:]
        hp = h_s[p.pos_pilot] * pil
        corr = np.sum(y[:, p.pos_pilot] * np.conj(hp), axis=1)
        ref = np.sum(np.abs(hp) ** 2, axis=1)
        coherence = np.abs(corr) / np.maximum(ref, 1e-30)
        limit = np.clip(1.0 - 5.0 / np.sqrt(len(p.pilot_carriers) * 10 ** (snr_db / 10)), 0.0, 0.5)
        ok = bool(np.all(coherence >= limit))
        phase = np.unwrap(np.angle(corr))
        k, h0 = np.ones(PHASE_SMOOTH), PHASE_SMOOTH // 2
        w = np.convolve(ref, k)[h0:h0 + npay]
        phase = np.convolve(phase * ref, k)[h0:h0 + npay] / np.maximum(w, 1e-30)
        scale = 1.0 / np.sqrt(gain)
        sym = (y[:, p.pos_data] * (np.exp(-1j * phase) * scale)[:, None]).ravel()[:n_symbols]
        h = np.broadcast_to(h_s[p.pos_data] * scale, (npay, p.n_data)).ravel()[:n_symbols]
        return sym, h, ok

