"""jscc_decoder: complex tagged stream + CSI tags → token PDU (the decoder R of Eq. 3)."""
import numpy as np
import pmt
from gnuradio import gr

from . import model_store, pdu_util
from . import tags as tagkeys
from .droplog import DropLog
from .frame_buffer import FrameAssembler
from .jscc_encoder import open_jscc

CSI_KEYS = (tagkeys.KEY_H, tagkeys.KEY_SNR_DB, tagkeys.KEY_NOISE_VAR)
PAIR_KEYS = model_store.PAIR_KEYS + ("k_max", "rates", "tokenizer")


class jscc_decoder(gr.sync_block):
    """Frames of received symbols → token PDUs.

    Input ``in``: complex64 frames as ``jscc_encoder`` sends them (length
    tag; frame tags ``n_tokens`` and ``rate``, which may be left out when
    the model's token count fixes them) through a channel that tags its CSI:
    ``h`` and ``snr_db`` (or ``noise_var``) in force from a sample on, e.g.
    ``block_fading_channel`` or a receiver's estimator. CSI is tracked
    symbol by symbol and carries over between frames; without any CSI tag
    the decoder assumes h = 1 at the ``snr_db`` argument (logged once).
    The decoder computes x̂ = h*·y/(|h|² + σ²) and each symbol's reliability
    |h|²/(|h|² + σ²), and conditions on the SNR (signal power 1).

    Message out ``tokens``: one PDU per frame, f32 n_tokens·d tokens (image,
    audio) or s32 ids (text), with the frame's tags as metadata (``model_id``
    becomes the tokenizer's id, the encoder's is kept as ``jscc_model_id``)
    plus ``snr_db`` and ``h`` used (h at the frame's first symbol) and
    ``n_fades``. Frames that do not fit the model (length ≠ n_tokens·rate,
    unknown rate, NaN) are logged and dropped. Frames finished in one
    ``work()`` call share onnxruntime calls (up to ``max_batch``).

    Args:
        modality: 'image', 'audio' or 'text'.
        model: JSCC decoder model name or .onnx path ('' = the bundled one).
        variant: tokenizer variant it was trained for ('' = genib; vocab for text).
        encoder_model: encoder name or path to check this decoder against ('' = no check).
        snr_db: SNR to assume while no CSI tag has arrived (dB).
        len_tag_key: length tag name.
        device, threads, max_batch: as for ``jscc_encoder``.
    """

    def __init__(self, modality="image", model="", variant="", encoder_model="", snr_db=10.0,
                 len_tag_key="packet_len", device="auto", threads=1, max_batch=64):
        gr.sync_block.__init__(self, name="jscc_decoder", in_sig=[np.complex64], out_sig=None)
        if not len_tag_key:
            raise ValueError("len_tag_key must be a non-empty tag name, e.g. 'packet_len'")
        if int(max_batch) < 1:
            raise ValueError(f"max_batch must be at least 1; got {max_batch}")
        if not np.isfinite(float(snr_db)):
            raise ValueError(f"snr_db must be a finite number; got {snr_db!r}")
        path, self.meta, self._session, self.rates = open_jscc(modality, model, variant, "decoder", threads, device)
        self._encoder_id = None
        if encoder_model:
            enc_path = model_store.find(encoder_model, variant or self.meta["variant"])
            enc_meta = model_store.read_metadata(enc_path)
            bad = {k: (enc_meta.get(k), self.meta.get(k)) for k in PAIR_KEYS if enc_meta.get(k) != self.meta.get(k)}
            if bad or enc_meta.get("role") != "jscc_encoder":
                raise ValueError(f"{enc_path.name} is not this decoder's encoder: "
                                 + (", ".join(f"{k} {a!r} vs {b!r}" for k, (a, b) in bad.items()) or "not an encoder"))
            self._encoder_id = model_store.model_id(enc_path)
        self.model_id = model_store.model_id(path)
        self._k = int(self.meta["k_max"])
        self._vocab = int(self.meta.get("vocab", "0"))
        self._fixed = int(self.meta["token_len"]) if self.meta["token_len"].isdigit() else None
        self._max = int(max_batch)
        self._csi = {"h": None, "snr_db": None, "noise_var": None}
        self._default_snr = float(snr_db)
        self._frames = FrameAssembler(len_tag_key)
        self._log = DropLog(self.logger)
        self.message_port_register_out(pmt.intern("tokens"))

    def work(self, input_items, output_items):
        x = input_items[0]
        done = self._frames.push(x, self.get_tags_in_window(0, 0, len(x)), self.nitems_read(0))
        self._log.drain(self._frames.problems)
        items = []
        for frame in done:
            try:
                items.append(self._prepare(frame))
            except ValueError as exc:
                self._log.warn(f"dropped a frame: {exc}")
        for start in range(0, len(items), self._max):
            self._decode(items[start:start + self._max])
        return len(x)

    def _prepare(self, frame):
        meta = {key: value for rel, key, value in frame.tags if rel == 0 and key not in CSI_KEYS}
        info = {k: tagkeys.to_python(v) for k, v in meta.items()}
        n = len(frame.samples)
        s = info.get("n_tokens", self._fixed)
        rate = info.get("rate", n // s if s else None)
        if not (isinstance(s, int) and s > 0 and isinstance(rate, int) and rate in self.rates and s * rate == n):
            raise ValueError(f"{n} symbols do not make n_tokens={s} × rate={rate} (rates {self.rates})")
        if self._fixed and s != self._fixed:
            raise ValueError(f"{s} tokens; this model decodes {self._fixed}")
        if self._encoder_id and info.get("model_id", self._encoder_id) != self._encoder_id:
            raise ValueError(f"sent by {info.get('model_id')!r}, not by {self._encoder_id!r}")
        if not np.all(np.isfinite(frame.samples)):
            raise ValueError("NaN/Inf samples")
        h, nv, snr, first, fades = self._csi_per_symbol(frame, n)
        g2 = np.abs(h) ** 2
        x_hat = (np.conj(h) * frame.samples / (g2 + nv)).reshape(rate, s).T           # (S, rate)
        rel = (g2 / (g2 + nv)).reshape(rate, s).T
        sym = np.zeros((s, self._k, 2), np.float32)
        sym[:, :rate, 0], sym[:, :rate, 1] = x_hat.real, x_hat.imag
        reliability = np.zeros((s, self._k), np.float32)
        reliability[:, :rate] = rel
        meta.pop(self._frames.len_tag_key, None)
        return meta, sym, reliability, snr, rate, first, fades

    def _csi_per_symbol(self, frame, n):
        """Per-symbol h and σ² (forward-filled from the tags, carried across frames)."""
        h, nv = np.empty(n, np.complex64), np.empty(n, np.float32)
        marks = sorted((rel, key, tagkeys.to_python(v)) for rel, key, v in frame.tags if key in CSI_KEYS)
        pos, fades, first = 0, 0, None
        for rel, key, value in marks + [(n, None, None)]:
            if rel > pos:
                h[pos:rel], nv[pos:rel] = self._current()
                first = first if first is not None else complex(h[pos])
                pos = rel
            if key == tagkeys.KEY_H and isinstance(value, (complex, float, int)) and np.isfinite(value):
                self._csi["h"] = complex(value)
                fades += 1
            elif key in (tagkeys.KEY_SNR_DB, tagkeys.KEY_NOISE_VAR) and isinstance(value, (float, int)) \
                    and np.isfinite(value):
                self._csi[key] = float(value)
                if key == tagkeys.KEY_SNR_DB:
                    self._csi["noise_var"] = None                 # a new SNR: σ² follows it unless tagged too
        snr = self._csi["snr_db"] if self._csi["snr_db"] is not None else self._default_snr
        return h, nv, snr, first, max(fades, 1)

    def _current(self):
        if self._csi["h"] is None and self._csi["snr_db"] is None and self._csi["noise_var"] is None:
            self._log.warn_once("no CSI tags yet: assuming h = 1 at snr_db = %g dB" % self._default_snr)
        h = self._csi["h"] if self._csi["h"] is not None else 1.0
        snr = self._csi["snr_db"] if self._csi["snr_db"] is not None else self._default_snr
        nv = self._csi["noise_var"] if self._csi["noise_var"] is not None else 10.0 ** (-snr / 10.0)
        return h, max(nv, 1e-12)

    def _decode(self, items):
        """One onnxruntime call per token count; token PDUs go out in frame order."""
        groups = {}
        for i, item in enumerate(items):
            groups.setdefault(item[1].shape[0], []).append(i)
        decoded = [None] * len(items)
        for idx in groups.values():
            feed = {"symbols": np.stack([items[i][1] for i in idx]),
                    "reliability": np.stack([items[i][2] for i in idx]),
                    "snr_db": np.array([items[i][3] for i in idx], np.float32),
                    "rate": np.array([items[i][4] for i in idx], np.float32)}
            try:
                out = self._session.run(None, feed)[0]
            except Exception as exc:                               # never take the flowgraph down
                self._log.warn(f"dropped {len(idx)} frames: onnxruntime failed: {exc}")
                continue
            for j, i in enumerate(idx):
                decoded[i] = out[j]
        for item, out in zip(items, decoded):
            if out is not None:
                self._publish(item, out)

    def _publish(self, item, out):
        tags, _, _, snr, rate, first, fades = item
        meta = pmt.make_dict()
        for key, value in tags.items():
            meta = pmt.dict_add(meta, pmt.intern(key), value)
        enc_id = pdu_util.get(meta, "model_id", "")
        meta = pdu_util.with_items(meta, jscc_model_id=enc_id, model_id=pdu_util.get(meta, "tokenizer_id", ""),
                                   snr_db=float(snr), h=complex(first), n_fades=int(fades), rate=int(rate))
        vec = out.argmax(-1).astype(np.int32) if self._vocab else out.astype(np.float32).ravel()
        self.message_port_pub(pmt.intern("tokens"), pdu_util.make(meta, vec))
