"""block_fading_channel: ẑ = h·z + n (Eq. 2) with block fading and CSI tags."""
import threading

import numpy as np
import pmt
from gnuradio import gr

from . import channel_math as cm
from . import tags as tagkeys
from .droplog import DropLog


class block_fading_channel(gr.sync_block):
    """Block-fading channel ẑ = h·z + n, n ~ CN(0, σ²), σ² = P·10^(−SNR/10).

    Input ``in`` / output ``out``: complex64 streams, one output per input.
    ``h`` is drawn once per *fade block* and held over it:

    * ``coherence_len == 0``: one fade per frame; a frame starts at each
      length tag ``len_tag_key`` (e.g. from ``power_normalizer``). Samples
      before the first length tag form one block of their own (logged once).
    * ``coherence_len > 0``: a new fade every ``coherence_len`` samples,
      counted from the first sample, whatever the framing.

    ``awgn``: h = 1; ``rayleigh``: h ~ CN(0, 1); ``rician``: h = √(K/(K+1)) +
    √(1/(K+1))·CN(0, 1). E|h|² = 1 in all three.

    At every fade start and at every SNR change the output carries the CSI
    as tags (see ``tags``): ``h`` (complex), ``snr_db`` and ``noise_var``
    (double), so a receiver can use genie CSI. Input tags are passed on.

    Message port ``ctrl``: a dict ``{snr_db: x}`` or a pair ``(snr_db . x)``
    changes the SNR like ``set_snr_db``; anything else is logged and dropped.
    Non-finite input samples are replaced by 0 and logged (a sync block
    cannot drop samples without shifting every later tag).

    Args:
        channel_type: 'awgn', 'rayleigh' or 'rician'.
        snr_db: P/σ² in dB; changeable at run time (``set_snr_db``), applied
            from the start of the next work() call, with a CSI tag there.
        coherence_len: samples per fade, or 0 for one fade per frame.
        k_factor: Rician K (linear, >= 0); ignored by the other types.
        signal_power: nominal transmit power P the SNR refers to (> 0).
        seed: seed of the random generator (>= 0), or -1 for a fresh one.
        len_tag_key: length tag that marks frame starts (coherence_len 0).
    """

    def __init__(self, channel_type="rayleigh", snr_db=10.0, coherence_len=0, k_factor=0.0,
                 signal_power=1.0, seed=0, len_tag_key=tagkeys.DEFAULT_LEN_TAG_KEY):
        gr.sync_block.__init__(self, name="block_fading_channel",
                               in_sig=[np.complex64], out_sig=[np.complex64])
        self._type = cm.check_channel_type(channel_type)
        self._los, self._scatter = cm.fading_parts(self._type, float(k_factor))
        if int(coherence_len) != coherence_len or coherence_len < 0:
            raise ValueError(f"coherence_len must be an integer >= 0 (0 = one fade per frame); got {coherence_len}")
        if not np.isfinite(signal_power) or signal_power <= 0:
            raise ValueError(f"signal_power must be a finite number > 0; got {signal_power}")
        if int(seed) != seed or seed < -1:
            raise ValueError(f"seed must be an integer >= 0, or -1 for a random seed; got {seed}")
        if not len_tag_key:
            raise ValueError("len_tag_key must be a non-empty tag name, e.g. 'packet_len'")
        self._coherence = int(coherence_len)
        self._k = float(k_factor)
        self._p = float(signal_power)
        self._len_key = pmt.intern(len_tag_key)
        self._key_h, self._key_snr, self._key_nv = (
            pmt.intern(k) for k in (tagkeys.KEY_H, tagkeys.KEY_SNR_DB, tagkeys.KEY_NOISE_VAR))
        # Separate streams for fades and noise: the output then does not
        # depend on how the scheduler cuts the stream into work() calls.
        seeds = np.random.SeedSequence(None if seed == -1 else int(seed)).spawn(2)
        self._fade_rng, self._noise_rng = (np.random.default_rng(s) for s in seeds)
        self._fades = _Reservoir(self._fade_batch, 1 << 12)
        self._noise = _Reservoir(self._noise_batch, 1 << 17)
        self._lock = threading.Lock()
        self._snr_db = None
        self._pending_snr = None
        self.set_snr_db(snr_db)
        self._h = None                       # fade in force; None before the first one
        self._log = DropLog(self.logger)
        self._warned_untagged = False
        self.message_port_register_in(pmt.intern("ctrl"))
        self.set_msg_handler(pmt.intern("ctrl"), self._on_ctrl)

    # --- run-time control -------------------------------------------------
    def set_snr_db(self, snr_db):
        snr_db = float(snr_db)
        if not np.isfinite(snr_db):
            raise ValueError(f"snr_db must be a finite number of dB; got {snr_db}")
        with self._lock:
            self._pending_snr = snr_db

    def snr_db(self):
        with self._lock:
            return self._pending_snr if self._pending_snr is not None else self._snr_db

    def noise_var(self):
        return float(cm.noise_variance(self.snr_db(), self._p))

    def _on_ctrl(self, msg):
        value = tagkeys.read_number(msg, tagkeys.KEY_SNR_DB)
        if value is None or not np.isfinite(value):
            self._log.warn(f"ctrl: dropped a message without a finite '{tagkeys.KEY_SNR_DB}' number: {msg}")
            return
        self.set_snr_db(value)

    # --- signal path ------------------------------------------------------
    def _fade_starts(self, start, n):
        """Relative offsets in [0, n) where a new fade begins."""
        if self._coherence:
            first = -start % self._coherence
            return np.arange(first, n, self._coherence)
        offsets = [t.offset - start for t in self.get_tags_in_window(0, 0, n, self._len_key)]
        return np.unique(np.asarray(offsets, dtype=np.int64))

    def _fade_batch(self, m):
        return cm.draw_fading(self._fade_rng.standard_normal, m, self._type, self._k).astype(np.complex64)

    def _noise_batch(self, m):
        """m samples of CN(0, 1) noise by polar Box–Muller, √(−ln u₁)·e^{j2πu₂}:
        exactly CN(0, 1) (|n̄|² ~ Exp(1), uniform phase), and here twice as
        fast as two float32 ziggurat normals."""
        u = self._noise_rng.random(2 * m, dtype=np.float32)
        radius = np.sqrt(-np.log1p(-u[:m]))
        phase = u[m:]
        phase *= np.float32(2 * np.pi)
        noise = np.empty(m, np.complex64)
        np.multiply(radius, np.cos(phase), out=noise.real)
        np.multiply(radius, np.sin(phase), out=noise.imag)
        return noise

    def work(self, input_items, output_items):
        x, out = input_items[0], output_items[0]
        n = len(x)
        start = self.nitems_read(0)
        with self._lock:
            snr_changed = self._pending_snr is not None
            if snr_changed:
                self._snr_db, self._pending_snr = self._pending_snr, None
        noise_var = float(cm.noise_variance(self._snr_db, self._p))

        starts = self._fade_starts(start, n)
        if self._h is None and (len(starts) == 0 or starts[0] != 0):
            if not self._coherence and self._scatter and not self._warned_untagged:
                self._warned_untagged = True
                self.logger.warn(f"no '{pmt.symbol_to_string(self._len_key)}' tag at the stream start: "
                                 "the samples before the first frame share one fade")
            starts = np.insert(starts, 0, 0)
        new_h = self._fades.take(len(starts))
        if len(starts) and starts[0] == 0:          # segments of constant h in this buffer
            seg_h, seg_start = new_h, starts
        else:
            seg_h, seg_start = np.insert(new_h, 0, self._h), np.insert(starts, 0, 0)
        self._h = seg_h[-1]

        flat = x.view(np.float32)
        if not np.isfinite(np.dot(flat, flat)):          # cheap: NaN/Inf make the sum non-finite
            bad = ~np.isfinite(x)
            if bad.any():
                self._log.warn(f"replaced {int(bad.sum())} non-finite input samples by 0")
                x = np.where(bad, np.complex64(0), x)

        # ẑ = h·z + √σ²·n̄ (channel_math.apply_channel), in place on numpy buffers.
        noise = self._noise.take(n)
        noise *= np.float32(np.sqrt(noise_var))
        if self._scatter == 0.0 and self._los == 1.0:      # AWGN: h = 1
            np.add(x, noise, out=out)
        else:
            bounds = np.append(seg_start, n).tolist()
            if len(seg_h) <= 32:
                for a, b, h in zip(bounds[:-1], bounds[1:], seg_h.tolist()):
                    np.multiply(x[a:b], np.complex64(h), out=out[a:b])
            else:
                np.multiply(x, np.repeat(seg_h, np.diff(bounds)), out=out)
            out += noise

        tag_at = starts if not snr_changed or (len(starts) and starts[0] == 0) else np.insert(starts, 0, 0)
        snr, nv = pmt.from_double(self._snr_db), pmt.from_double(noise_var)
        idx = np.searchsorted(seg_start, tag_at, side="right") - 1
        for rel, h_tag in zip(tag_at.tolist(), seg_h[idx].tolist()):
            self.add_item_tag(0, start + rel, self._key_h, pmt.from_complex(h_tag))
            self.add_item_tag(0, start + rel, self._key_snr, snr)
            self.add_item_tag(0, start + rel, self._key_nv, nv)
        return n


class _Reservoir:
    """Hands out a generator's draws in order, generated in large batches.

    ``take(n)`` returns the next n values as a fresh array; the sequence is the
    same however it is cut, and numpy's per-call cost is paid once a batch."""

    def __init__(self, generate, batch):
        self._generate = generate
        self._batch = batch
        self._buf = generate(0)
        self._pos = 0

    def take(self, n):
        parts = []
        while n:
            if self._pos == len(self._buf):
                self._buf, self._pos = self._generate(max(self._batch, n)), 0
            k = min(n, len(self._buf) - self._pos)
            parts.append(self._buf[self._pos:self._pos + k])
            self._pos += k
            n -= k
        return parts[0].copy() if len(parts) == 1 else np.concatenate(parts) if parts else self._buf[:0].copy()
