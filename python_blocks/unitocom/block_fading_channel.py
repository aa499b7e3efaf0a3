"""block_fading_channel: ẑ = h·z + n (Eq. 2) with block fading and CSI tags."""
import threading

import numpy as np
import pmt
from gnuradio import gr

from .core import tags as tagkeys
from .dsp import channel_math as cm
from .dsp.random_stream import ChannelDraws
from .runtime.args import check_float, check_int, check_name
from .runtime.droplog import DropLog

MIN_POWER, MAX_POWER = 1e-20, 1e20     # signal_power: σ² = P·10^(−SNR/10) stays well inside float32


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

    Message port ``ctrl``: ``{snr_db: x}`` or ``(snr_db . x)`` changes the SNR
    like ``set_snr_db``; anything else (an SNR outside −50…100 dB too) is
    logged and dropped. Output samples that are not finite (NaN/Inf input,
    |h·z| beyond float32) are output as 0 and logged: a sync block cannot
    drop samples without shifting every later tag.

    Args:
        channel_type: 'awgn', 'rayleigh' or 'rician'.
        snr_db: P/σ² in dB (−50…100); changeable at run time (``set_snr_db``),
            applied from the start of the next work() call, with a CSI tag there.
        coherence_len: samples per fade, or 0 for one fade per frame.
        k_factor: Rician K (linear, finite, >= 0); ignored by the other types.
        signal_power: nominal transmit power P the SNR refers to (1e-20…1e20).
        seed: seed of the random generator (>= 0), or -1 for a fresh one.
        len_tag_key: length tag that marks frame starts (coherence_len 0).
    """

    def __init__(self, channel_type="rayleigh", snr_db=10.0, coherence_len=0, k_factor=0.0,
                 signal_power=1.0, seed=0, len_tag_key=tagkeys.DEFAULT_LEN_TAG_KEY):
        gr.sync_block.__init__(self, name="block_fading_channel",
                               in_sig=[np.complex64], out_sig=[np.complex64])
        self._type = cm.check_channel_type(channel_type)
        self._k = check_float("k_factor", k_factor, minimum=0.0)
        self._los, self._scatter = cm.fading_parts(self._type, self._k)
        self._coherence = check_int("coherence_len", coherence_len, 0, 1 << 62)
        self._p = check_float("signal_power", signal_power, MIN_POWER, MAX_POWER)
        seed = check_int("seed", seed, -1)
        self._len_key = pmt.intern(check_name("len_tag_key", len_tag_key))
        self._key_h, self._key_snr, self._key_nv = map(pmt.intern, (tagkeys.KEY_H, tagkeys.KEY_SNR_DB, tagkeys.KEY_NOISE_VAR))
        # Separate streams for fades and noise: the output then does not
        # depend on how the scheduler cuts the stream into work() calls.
        self._draws = ChannelDraws(None if seed == -1 else seed, self._type, self._k)
        self._lock = threading.Lock()
        self._snr_db = self._pending_snr = None
        self.set_snr_db(snr_db)
        self._h = None                       # fade in force; None before the first one
        self._log = DropLog(self.logger)
        self.message_port_register_in(pmt.intern("ctrl"))
        self.set_msg_handler(pmt.intern("ctrl"), self._on_ctrl)

    def set_snr_db(self, snr_db):
        snr_db = cm.check_snr_db(snr_db)
        with self._lock:
            self._pending_snr = snr_db

    def snr_db(self):
        with self._lock:
            return self._pending_snr if self._pending_snr is not None else self._snr_db

    def noise_var(self):
        return float(cm.noise_variance(self.snr_db(), self._p))

    def _on_ctrl(self, msg):
        try:
            value = tagkeys.read_number(msg, tagkeys.KEY_SNR_DB)
            if value is None:
                raise ValueError(f"no '{tagkeys.KEY_SNR_DB}' number in it")
            self.set_snr_db(value)
        except Exception as exc:          # a control message never takes the block down
            self._log.warn(f"ctrl: dropped a message: {exc}")

    def _fade_starts(self, start, n):
        """Relative offsets in [0, n) where a new fade begins."""
        if self._coherence:
            return np.arange(-start % self._coherence, n, self._coherence)
        offsets = [t.offset - start for t in self.get_tags_in_window(0, 0, n, self._len_key)]
        return np.unique(np.asarray(offsets, dtype=np.int64))

    @np.errstate(over="ignore", invalid="ignore")        # hostile samples: handled at the end
    def work(self, input_items, output_items):
        x, out = input_items[0], output_items[0]
        n, start = len(x), self.nitems_read(0)
        with self._lock:
            snr_changed = self._pending_snr is not None
            if snr_changed:
                self._snr_db, self._pending_snr = self._pending_snr, None
        noise_var = float(cm.noise_variance(self._snr_db, self._p))
        starts = self._fade_starts(start, n)
        if self._h is None and (len(starts) == 0 or starts[0] != 0):
            if not self._coherence and self._scatter:
                self._log.warn_once(f"no '{pmt.symbol_to_string(self._len_key)}' tag at the stream start: "
                                    "the samples before the first frame share one fade")
            starts = np.insert(starts, 0, 0)
        new_h = self._draws.fades.take(len(starts))
        fresh = bool(len(starts)) and starts[0] == 0        # segments of constant h in this buffer:
        seg_h, seg_start = (new_h, starts) if fresh else (np.insert(new_h, 0, self._h), np.insert(starts, 0, 0))
        self._h = seg_h[-1]

        # ẑ = h·z + √σ²·n̄ (channel_math.apply_channel), in place on numpy buffers.
        noise = self._draws.noise.take(n)
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
        flat = out.view(np.float32)
        if not np.isfinite(np.dot(flat, flat)) and not np.isfinite(flat).all():   # dot first: cheap
            bad = ~np.isfinite(out)
            self._log.warn(f"output {int(bad.sum())} samples as 0: NaN/Inf input or |h·z| beyond float32")
            out[bad] = 0

        tag_at = starts if not snr_changed or fresh else np.insert(starts, 0, 0)
        snr, nv = pmt.from_double(self._snr_db), pmt.from_double(noise_var)
        idx = np.searchsorted(seg_start, tag_at, side="right") - 1
        for rel, h_tag in zip(tag_at.tolist(), seg_h[idx].tolist()):
            self.add_item_tag(0, start + rel, self._key_h, pmt.from_complex(h_tag))
            self.add_item_tag(0, start + rel, self._key_snr, snr)
            self.add_item_tag(0, start + rel, self._key_nv, nv)
        return n
