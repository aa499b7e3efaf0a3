"""ofdm_deframer: detected OFDM frames → JSCC symbols with per-symbol CSI tags."""
import numpy as np
import pmt
from gnuradio import gr

from .core import modalities as mod
from .core import tags as tagkeys
from .ofdm import header as hdr
from .ofdm.params import OfdmParams
from .ofdm.receiver import FrameReceiver
from .ofdm_framer import MAX_PAYLOAD
from .runtime import model_store
from .runtime.args import check_name
from .runtime.droplog import DropLog
from .runtime.frame_buffer import Frame, FrameWriter

MAX_QUEUED = 1 << 16          # output samples queued before the input is held back
CSI_TAG_FORMS = ("frame", "symbol")     # one vector h per frame, or one scalar h per symbol
COUNTERS = ("detections", "frames", "no_preamble", "header_errors", "truncated", "unrouted")


class ofdm_deframer(gr.basic_block):
    """Synchronises, estimates and deframes OFDM frames (``ofdm.receiver`` does the math).

    Input 0: complex64 baseband; input 1: the Schmidl & Cox trigger (u8, 1 at
    a detection) of ``digital.ofdm_sync_sc_cfb`` on the same samples. Timing
    is refined on the LTS, so the trigger's jitter does not matter.
    Outputs: one complex64 stream per entry of ``outputs`` (modalities);
    a frame goes to the output of its header's modality. Each frame: the
    payload's N = n_tokens·rate symbols, unequalised, scaled so that the
    mean channel gain over the active carriers is 1, with

    * at its first symbol the length tag, ``frame_id`` (mod 2³²),
      ``modality``, ``n_tokens``, ``rate``, ``n_symbols``, ``session_id``,
      ``task`` (its name; none for code 0), ``snr_est_db``, ``cfo`` (carrier spacings), ``rx_offset``
      (its sample index) and, when the model hash names a local model,
      ``model_id`` and ``tokenizer_id``;
    * the CSI of ``core.tags``: ``snr_db`` (the estimate) and ``noise_var``
      = 10^(−snr_db/10) at the first symbol, and ``h``, the estimated
      channel of each symbol's carrier: with ``csi_tags='frame'`` (default)
      one c64vector tag of N gains at the first symbol, with ``'symbol'``
      one complex tag at *every* symbol (the form ``block_fading_channel``
      writes, for blocks that read scalar ``h`` only, e.g.
      ``csi_equalizer``). ``jscc_decoder``/``rx`` read both and give the
      model the same input bit for bit; the vector costs one tag instead
      of N (≈ 1.5 ms of Python per image frame less, see the benchmark).

    Triggers without an LTS, headers failing the CRC, frames cut off (pilots
    lost), and frames of a modality without an output are dropped and
    counted (``stats()``); reception goes on with the next detection.

    Args:
        fft_len, cp_len, occupied_carriers, pilot_carriers: as ``ofdm_tx``.
        outputs: modalities, one output each (e.g. ['image', 'text']).
        len_tag_key: length tag name of the outputs.
        csi_tags: 'frame' (one vector ``h`` per frame) or 'symbol' (one scalar ``h`` per symbol).
    """

    def __init__(self, fft_len=64, cp_len=16, occupied_carriers=(), pilot_carriers=(), outputs=("image",),
                 len_tag_key=tagkeys.DEFAULT_LEN_TAG_KEY, csi_tags="frame"):
        outputs = [outputs] if isinstance(outputs, str) else list(outputs)
        if not outputs or len(set(outputs)) != len(outputs) or not all(o in mod.MODALITIES for o in outputs):
            raise ValueError(f"outputs must be distinct modalities out of {mod.MODALITIES}; got {outputs!r}")
        if csi_tags not in CSI_TAG_FORMS:
            raise ValueError(f"csi_tags must be one of {', '.join(CSI_TAG_FORMS)}; got {csi_tags!r}")
        self._per_symbol = csi_tags == "symbol"
        gr.basic_block.__init__(self, name="ofdm_deframer", in_sig=[np.complex64, np.uint8],
                                out_sig=[np.complex64] * len(outputs))
        self.params = p = OfdmParams(fft_len, cp_len, occupied_carriers, pilot_carriers)
        self.set_tag_propagation_policy(gr.TPP_DONT)           # input tags (e.g. the sender's) mean nothing here
        self.rx = FrameReceiver(p)
        self._route = {m: i for i, m in enumerate(outputs)}
        key = check_name("len_tag_key", len_tag_key)
        self._writers = [FrameWriter(key) for _ in outputs]
        self._log = DropLog(self.logger)
        self._counts = dict.fromkeys(COUNTERS, 0)
        pad = self.rx.search + p.sym_len             # zeros before sample 0: a burst there has room for the LTS search
        self._buf, self._base = np.zeros(pad, np.complex64), -pad
        self._pending, self._busy_until, self._current = [], 0, None
        self._lag = p.sym_len + p.cp_len - (p.fft_len + p.cp_len // 2 - 1)      # trigger → LTS 1 (measured)
        self._models = None
        self.set_min_output_buffer(MAX_PAYLOAD)

    def stats(self):
        """Counters: detections, frames (delivered), no_preamble, header_errors, truncated, unrouted."""
        return dict(self._counts)

    def forecast(self, noutput_items, ninputs):
        return [0] * ninputs if any(w.pending for w in self._writers) else [1] * ninputs

    def general_work(self, input_items, output_items):
        if sum(w.pending for w in self._writers) < MAX_QUEUED:
            n = min(len(input_items[0]), len(input_items[1]))
            if n:
                start = self.nitems_read(0)
                self._append(input_items[0][:n], start)
                trig = np.flatnonzero(input_items[1][:n])
                self._pending.extend((trig + start).tolist())
                self._counts["detections"] += len(trig)
                self.consume(0, n)
                self.consume(1, n)
                self._process()
        for i, w in enumerate(self._writers):
            if w.pending:
                self.produce(i, w.write(self, i, output_items[i]))
        return gr.WORK_CALLED_PRODUCE

    def _append(self, x, start):
        end = self._base + len(self._buf)
        if start != end:                                        # never happens: both inputs are consumed together
            self._buf, self._base = np.zeros(0, np.complex64), start
        self._buf = np.concatenate([self._buf, x])

    def _process(self):
        p, rx = self.params, self.rx
        end = self._base + len(self._buf)
        while True:
            if self._current is not None:
                if self._current["end"] > end:
                    break
                try:
                    self._finish(self._current)
                except Exception as exc:                  # one bad frame never stops reception
                    self._counts["truncated"] += 1
                    self._log.warn(f"dropped a frame: {exc}")
                self._current = None
                continue
            if not self._pending:
                break
            t = self._pending[0]
            if t < self._busy_until:
                self._pending.pop(0)
                continue
            nominal = t + self._lag
            if nominal + rx.search + (2 + p.n_header_symbols) * p.sym_len > end:
                break
            self._pending.pop(0)
            try:
                self._start(nominal - self._base)
            except Exception as exc:
                self._counts["header_errors"] += 1
                self._log.warn(f"dropped a detection: {exc}")
        keep = end - (rx.search + 3 * p.sym_len)
        if self._pending:
            keep = min(keep, self._pending[0] + self._lag - rx.search - 2 * p.sym_len)
        if self._current is not None:
            keep = min(keep, self._current["t1"] - 2 * p.sym_len)
        drop = int(np.clip(keep - self._base, 0, len(self._buf)))
        if drop:
            self._buf, self._base = self._buf[drop:], self._base + drop

    def _start(self, nominal):
        p, rx, x = self.params, self.rx, self._buf
        t1 = rx.lts_start(x, nominal)
        if t1 is None:
            self._counts["no_preamble"] += 1
            return
        eps = rx.cfo(x, t1)
        head, state = rx.header(x, t1, eps)
        if head is None:
            self._counts["header_errors"] += 1
            return
        if head.modality not in self._route or head.n_symbols > MAX_PAYLOAD:
            self._counts["unrouted"] += 1
            self._busy_until = self._base + t1 + (1 + p.n_header_symbols) * p.sym_len
            return
        h_s, nv, snr, gain = rx.estimate(state)
        n_ofdm = 2 + p.n_header_symbols + p.payload_symbols(head.n_symbols)
        self._current = dict(t1=self._base + t1, eps=eps, head=head, h=h_s, snr=snr, gain=gain,
                             end=self._base + t1 + n_ofdm * p.sym_len)

    def _finish(self, c):
        p, head = self.params, c["head"]
        t1 = c["t1"] - self._base
        sym, h, ok = self.rx.payload(self._buf, t1, c["eps"], c["h"], head.n_symbols, c["snr"], c["gain"])
        if not ok:
            self._counts["truncated"] += 1
            self._busy_until = self._base + t1 + (1 + p.n_header_symbols) * p.sym_len
            return
        self._counts["frames"] += 1
        self._busy_until = c["end"] - p.cp_len
        frame_start = self._base + t1 - p.sym_len - p.cp_len + self.rx.backoff
        tags = [(0, k, v) for k, v in self._frame_tags(head, c, frame_start).items()]
        tags.append((0, tagkeys.KEY_SNR_DB, pmt.from_double(c["snr"])))
        tags.append((0, tagkeys.KEY_NOISE_VAR, pmt.from_double(10.0 ** (-c["snr"] / 10.0))))
        if self._per_symbol:
            tags.extend((i, tagkeys.KEY_H, pmt.from_complex(v)) for i, v in enumerate(h.tolist()))
        else:                                                    # complex128: the same gains as the scalar tags
            tags.append((0, tagkeys.KEY_H, pmt.init_c64vector(len(h), h.tolist())))
        self._writers[self._route[head.modality]].append(Frame(sym.astype(np.complex64), tags))

    def _frame_tags(self, head, c, frame_start):
        tags = {"frame_id": head.frame_id, "modality": head.modality, "n_tokens": head.n_tokens, "rate": head.rate,
                "n_symbols": head.n_symbols, "session_id": head.session_id,
                "snr_est_db": c["snr"], "cfo": c["eps"] * self.params.fft_len / (2 * np.pi),
                "rx_offset": int(frame_start)}
        if 0 < head.task < len(hdr.TASK_CODES):
            tags["task"] = hdr.TASK_CODES[head.task]
        tags.update(self._model_ids(head.model_hash))
        return {k: pmt.intern(v) if isinstance(v, str) else pmt.from_double(v) if isinstance(v, float)
                else pmt.from_long(int(v)) for k, v in tags.items()}

    def _model_ids(self, mhash):
        """{model_id, tokenizer_id} of the local JSCC encoder whose id ends in ``mhash`` (cached), or {}."""
        if self._models is None:
            self._models = {}
            for path in model_store.available():
                stem = model_store.model_id(path)
                if "jscc_encoder" in stem:
                    self._models.setdefault(int(stem[-8:], 16) if stem[-9:-8] == "-" else -1, [path, None])
        entry = self._models.get(mhash)
        if entry is None:
            return {}
        if entry[1] is None:
            try:
                entry[1] = {"model_id": model_store.model_id(entry[0]),
                            "tokenizer_id": model_store.read_metadata(entry[0]).get("tokenizer", "")}
            except ValueError:
                entry[1] = {}
        return entry[1]

    def stop(self):
        if self._current is not None:
            self._counts["truncated"] += 1
            self._current = None
        return True
