"""jscc_encoder: token PDU → complex tagged stream (the coding-modulation T of Eq. 1)."""
import json

import numpy as np
import pmt
from gnuradio import gr

from . import model_store, pdu_util
from . import tags as tagkeys
from .batching import MessageBatcher
from .droplog import DropLog
from .frame_buffer import Frame, FrameWriter

DEFAULT_MODELS = {"image": "image_jscc_encoder_s32", "audio": "audio_jscc_encoder", "text": "text_jscc_encoder"}
DEFAULT_VARIANTS = {"image": "genib", "audio": "genib", "text": "vocab"}


def open_jscc(modality, model, variant, role, threads, device):
    """(path, metadata, session, rates) of a JSCC model; ValueError when it is not what was asked."""
    if modality not in DEFAULT_MODELS:
        raise ValueError(f"modality must be one of {', '.join(DEFAULT_MODELS)}; got {modality!r}")
    path, meta, session, _ = model_store.open_model(model or DEFAULT_MODELS[modality].replace("encoder", role),
                                                    variant or DEFAULT_VARIANTS[modality], f"jscc_{role}",
                                                    modality, threads, device)
    return path, meta, session, json.loads(meta["rates"])


class _symbol_mapper(gr.basic_block):
    """The working part of jscc_encoder: token PDUs in, tagged frames out (see jscc_encoder).

    Frames wait in a FrameWriter and are written across work() calls. The
    block finishes only when upstream said "done" *and* every frame is out
    (GNU Radio's pdu_to_tagged_stream can finish with PDUs still queued)."""

    def __init__(self, owner, session, meta, model_id, max_batch, len_tag_key):
        gr.basic_block.__init__(self, name="jscc_symbol_mapper", in_sig=None, out_sig=[np.complex64])
        self._writer = FrameWriter(len_tag_key)
        self._owner, self._session, self._model_id = owner, session, model_id
        self._vocab = int(meta.get("vocab", "0"))
        self._modality, self._dim, self._tokenizer = meta["modality"], int(meta["token_dim"]), meta["tokenizer"]
        self._fixed = int(meta["token_len"]) if meta["token_len"].isdigit() else None
        self._frame_id = 0
        self._log = DropLog(self.logger)
        self._batcher = MessageBatcher(self, "tokens", self._check, self._run, self._publish, self._log, max_batch)
        self.message_port_register_in(pmt.intern("tokens"))
        self.set_msg_handler(pmt.intern("tokens"), self._on_tokens)
        self.message_port_register_in(pmt.intern("ctrl"))
        self.set_msg_handler(pmt.intern("ctrl"), self._on_ctrl)

    def _on_tokens(self, msg):
        self._batcher.handle(msg)

    def general_work(self, input_items, output_items):
        if self._writer.pending:
            return self._writer.write(self, 0, output_items[0])
        return -1 if self.to_basic_block().finished() else 0

    def _on_ctrl(self, msg):
        self._owner.control(msg, self._log)

    def _check(self, msg):
        meta, vec, kind = pdu_util.unpack(msg, ("s32",) if self._vocab else ("f32",))
        got = pdu_util.get(meta, "model_id", self._tokenizer)
        if got != self._tokenizer:
            raise ValueError(f"tokens from {got!r}; this JSCC was trained on {self._tokenizer!r}")
        if self._vocab:
            if len(vec) == 0 or np.any((vec < 0) | (vec >= self._vocab)):
                raise ValueError(f"text PDU needs 1+ token ids in 0..{self._vocab - 1}")
            tokens = vec.astype(np.int64)
        else:
            if len(vec) == 0 or len(vec) % self._dim or (self._fixed and len(vec) != self._fixed * self._dim):
                want = f"{self._fixed}·{self._dim}" if self._fixed else f"a multiple of {self._dim}"
                raise ValueError(f"{len(vec)} token values; expected {want}")
            if not np.all(np.isfinite(vec)):
                raise ValueError("tokens contain NaN/Inf")
            tokens = vec.reshape(-1, self._dim)
        return meta, tokens, self._owner.rate(), self._owner.snr_db()

    def _run(self, items):
        out = [None] * len(items)
        groups = {}
        for i, (_, tokens, _, _) in enumerate(items):
            groups.setdefault(tokens.shape, []).append(i)
        for idx in groups.values():
            feed = {"tokens": np.stack([items[i][1] for i in idx]),
                    "rate": np.array([items[i][2] for i in idx], np.float32),
                    "snr_db": np.array([items[i][3] for i in idx], np.float32)}
            symbols = self._session.run(None, feed)[0]                       # (B, S, K, 2)
            for j, i in enumerate(idx):
                rate = int(items[i][2])
                z = symbols[j, :, :rate, 0] + 1j * symbols[j, :, :rate, 1]  # (S, rate)
                out[i] = z.T.reshape(-1).astype(np.complex64)                # symbol 0 of every token first
        return out

    def _publish(self, item, z):
        meta, tokens, rate, snr_db = item
        frame_id = pdu_util.get(meta, "frame_id", self._frame_id)
        self._frame_id = (frame_id if isinstance(frame_id, int) else self._frame_id) + 1
        meta = pdu_util.with_items(meta, frame_id=frame_id, modality=self._modality, n_tokens=int(tokens.shape[0]),
                                   n_symbols=len(z), rate=int(rate), tx_snr_db=float(snr_db),
                                   model_id=self._model_id, tokenizer_id=self._tokenizer)
        skip = {tagkeys.KEY_H, tagkeys.KEY_SNR_DB, tagkeys.KEY_NOISE_VAR,    # never fake CSI tags
                pmt.symbol_to_string(self._writer.len_tag_key)}
        items = pmt.dict_items(meta)
        tags = []
        for i in range(pmt.length(items)):
            key, value = pmt.car(pmt.nth(i, items)), pmt.cdr(pmt.nth(i, items))
            if pmt.is_symbol(key) and pmt.symbol_to_string(key) not in skip:
                tags.append((0, pmt.symbol_to_string(key), value))
        self._writer.append(Frame(z, tags))


class jscc_encoder(gr.hier_block2):
    """Token PDUs → one frame of complex channel symbols per PDU.

    Message in ``tokens``: a token PDU from ``tokenizer`` (f32 n_tokens·d
    for image/audio, s32 ids for text; its ``model_id`` must be the
    tokenizer this JSCC was trained on). Output ``out``: complex64 stream,
    one frame per PDU of N = n_tokens·rate symbols with (1/N)Σ|z|² = 1,
    ordered by importance (symbol 0 of every token, then symbol 1, …). At
    each frame's first symbol: the length tag (``len_tag_key`` = N) and
    tags ``frame_id``, ``modality``, ``n_tokens``, ``n_symbols``, ``rate``,
    ``tx_snr_db``, ``model_id`` (this model), ``tokenizer_id`` and the
    PDU's other metadata. Message in ``ctrl``: ``{rate: k}`` and/or
    ``{snr_db: x}`` (e.g. fed back from the receiver) take effect from the
    next PDU; ``set_rate``/``set_snr_db`` do the same.

    Args:
        modality: 'image', 'audio' or 'text'.
        model: JSCC encoder model name or .onnx path ('' = the bundled one).
        variant: tokenizer variant it was trained for ('' = genib; vocab for text).
        rate: complex symbols per token, one of the model's rates (e.g. 2, 4, 8, 16).
        snr_db: the SNR the encoder adapts to (dB).
        len_tag_key: length tag name.
        device, threads, max_batch: onnxruntime device ('auto', 'cpu', 'cuda'),
            intra-op threads (>= 1), most PDUs per call (>= 1).
    """

    def __init__(self, modality="image", model="", variant="", rate=8, snr_db=10.0, len_tag_key="packet_len",
                 device="auto", threads=1, max_batch=32):
        gr.hier_block2.__init__(self, "jscc_encoder", gr.io_signature(0, 0, 0),
                                gr.io_signature(1, 1, gr.sizeof_gr_complex))
        if not len_tag_key:
            raise ValueError("len_tag_key must be a non-empty tag name, e.g. 'packet_len'")
        if int(max_batch) < 1:
            raise ValueError(f"max_batch must be at least 1; got {max_batch}")
        path, self.meta, session, self.rates = open_jscc(modality, model, variant, "encoder", threads, device)
        self.model_id = model_store.model_id(path)
        self.set_rate(rate)
        self.set_snr_db(snr_db)
        self.mapper = _symbol_mapper(self, session, self.meta, self.model_id, max_batch, len_tag_key)
        self.message_port_register_hier_in("tokens")
        self.message_port_register_hier_in("ctrl")
        self.msg_connect(self, "tokens", self.mapper, "tokens")
        self.msg_connect(self, "ctrl", self.mapper, "ctrl")
        self.connect(self.mapper, self)

    def set_rate(self, rate):
        if isinstance(rate, bool) or int(rate) != rate or int(rate) not in self.rates:
            raise ValueError(f"rate must be one of this model's rates {self.rates}; got {rate!r}")
        self._rate = int(rate)

    def rate(self):
        return self._rate

    def set_snr_db(self, snr_db):
        if not np.isfinite(float(snr_db)):
            raise ValueError(f"snr_db must be a finite number; got {snr_db!r}")
        self._snr_db = float(snr_db)

    def snr_db(self):
        return self._snr_db

    def control(self, msg, log):
        """Apply a ``ctrl`` message; bad ones are logged and ignored."""
        rate, snr = tagkeys.read_number(msg, "rate"), tagkeys.read_number(msg, "snr_db")
        if rate is None and snr is None:
            log.warn(f"ignored a ctrl message without rate or snr_db: {msg}")
        try:
            if rate is not None:
                self.set_rate(rate)
            if snr is not None:
                self.set_snr_db(snr)
        except ValueError as exc:
            log.warn(f"ignored a ctrl message: {exc}")
