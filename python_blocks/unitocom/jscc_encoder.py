"""jscc_encoder: token PDU → complex tagged stream (the coding-modulation T of Eq. 1)."""
import numpy as np
import pmt
from gnuradio import gr

from .core import jscc_frame, tags as tagkeys
from .core import modalities as mod
from .dsp.channel_math import check_snr_db
from .runtime import model_store, pdu_util
from .runtime.args import check_int, check_name
from .runtime.batching import MessageBatcher, run_grouped
from .runtime.droplog import DropLog
from .runtime.frame_buffer import Frame, FrameWriter

TOKEN_MAX_ABS = 1e4          # continuous tokens are O(1); larger values only overflow the network
NEVER_TAGGED = {tagkeys.KEY_H, tagkeys.KEY_SNR_DB, tagkeys.KEY_NOISE_VAR}    # never fake CSI tags


class jscc_encoder(gr.basic_block):
    """Token PDUs → one frame of complex channel symbols per PDU.

    Message in ``tokens``: a token PDU from ``tokenizer`` (f32 n_tokens·d
    for image/audio, s32 ids for text; its ``model_id`` must be the
    tokenizer this JSCC was trained on). At most the model's token count
    (image), ``AUDIO_MAX_TOKENS`` (audio) or ``TEXT_MAX_TOKENS`` (text) per
    PDU (``core.modalities``). Output ``out``: complex64 stream, one frame
    per PDU of N = n_tokens·rate symbols with (1/N)Σ|z|² = 1, ordered by
    importance (``core.jscc_frame``). At each frame's first symbol: the
    length tag (``len_tag_key`` = N) and tags ``frame_id``, ``modality``,
    ``n_tokens``, ``n_symbols``, ``rate``, ``tx_snr_db``, ``model_id`` (this
    model), ``tokenizer_id`` and the PDU's other metadata. A ``frame_id``
    in the PDU (an integer 0…2⁶³−2) is kept, else the block counts on from
    the last one. Message in ``ctrl``: ``{rate: k}`` and/or ``{snr_db: x}``
    (e.g. fed back from the receiver) take effect from the next PDU;
    ``set_rate``/``set_snr_db`` do the same. Bad PDUs and ctrl messages are
    logged and dropped. Frames wait in a queue and are written across
    ``work()`` calls; the block finishes once upstream is done and every
    frame of every PDU queued by then is out. GNU Radio ends a block at the
    first "done" of *any* upstream: feed ``ctrl`` from a source that lives
    as long as the token source (or not at all).

    Args:
        modality: 'image', 'audio' or 'text'.
        model: JSCC encoder model name or .onnx path ('' = the bundled one).
        variant: tokenizer variant it was trained for ('' = genib; vocab for text).
        rate: complex symbols per token, one of the model's rates (e.g. 2, 4, 8, 16).
        snr_db: the SNR the encoder adapts to (dB, −50…100).
        len_tag_key: length tag name.
        device, threads, max_batch: onnxruntime device ('auto', 'cpu', 'cuda'),
            intra-op threads (>= 1), most PDUs per call (>= 1).
    """

    def __init__(self, modality="image", model="", variant="", rate=8, snr_db=10.0,
                 len_tag_key=tagkeys.DEFAULT_LEN_TAG_KEY, device="auto", threads=1, max_batch=32):
        gr.basic_block.__init__(self, name="jscc_encoder", in_sig=None, out_sig=[np.complex64])
        self._writer = FrameWriter(check_name("len_tag_key", len_tag_key))
        path, self.meta, self._session, self.rates = model_store.open_jscc(
            mod.check_modality(modality), model, variant, "encoder", threads, device)
        self.model_id = model_store.model_id(path)
        self.set_rate(rate)
        self.set_snr_db(snr_db)
        self._modality, self._dim, self._tokenizer = modality, int(self.meta["token_dim"]), self.meta["tokenizer"]
        self._vocab = int(self.meta.get("vocab", "0"))
        self._fixed = int(self.meta["token_len"]) if self.meta["token_len"].isdigit() else None
        self._max_tokens = mod.max_tokens(modality, self._fixed)
        self._frame_id = 0
        self._log = DropLog(self.logger)
        self._batcher = MessageBatcher(self, "tokens", self._check, self._run, self._publish, self._log, max_batch)
        self.message_port_register_in(pmt.intern("tokens"))
        self.set_msg_handler(pmt.intern("tokens"), self._on_tokens)
        self.message_port_register_in(pmt.intern("ctrl"))
        self.set_msg_handler(pmt.intern("ctrl"), self._on_ctrl)

    def set_rate(self, rate):
        if check_int("rate", rate) not in self.rates:
            raise ValueError(f"rate must be one of this model's rates {self.rates}; got {rate!r}")
        self._rate = int(rate)

    def rate(self):
        return self._rate

    def set_snr_db(self, snr_db):
        self._snr_db = check_snr_db(snr_db)

    def snr_db(self):
        return self._snr_db

    def general_work(self, input_items, output_items):
        core = self.to_basic_block()
        if not self._writer.pending and core.finished() and core.nmsgs(pmt.intern("tokens")):
            self._batcher.handle(core.delete_head_nowait(pmt.intern("tokens")))   # PDUs still queued at "done"
        if self._writer.pending:
            return self._writer.write(self, 0, output_items[0])
        return -1 if core.finished() else 0

    def _on_tokens(self, msg):              # GNU Radio finds a handler by name on the block itself
        self._batcher.handle(msg)

    def _on_ctrl(self, msg):
        rate, snr = tagkeys.read_number(msg, "rate"), tagkeys.read_number(msg, "snr_db")
        if rate is None and snr is None:
            self._log.warn(f"ignored a ctrl message without a numeric rate or snr_db: {msg}")
        try:
            if rate is not None:
                self.set_rate(rate)
            if snr is not None:
                self.set_snr_db(snr)
        except ValueError as exc:
            self._log.warn(f"ignored a ctrl message: {exc}")

    def _check(self, msg):
        meta, vec, _ = pdu_util.unpack(msg, ("s32",) if self._vocab else ("f32",))
        got = pdu_util.get(meta, "model_id", self._tokenizer)
        if got != self._tokenizer:
            raise ValueError(f"tokens from {got!r}; this JSCC was trained on {self._tokenizer!r}")
        if self._vocab:
            if not 0 < len(vec) <= self._max_tokens or np.any((vec < 0) | (vec >= self._vocab)):
                raise ValueError(f"text PDU needs 1 to {self._max_tokens} token ids in 0..{self._vocab - 1}")
            tokens = vec.astype(np.int64)
        else:
            n = len(vec) // self._dim
            if len(vec) == 0 or len(vec) % self._dim or n > self._max_tokens or (self._fixed and n != self._fixed):
                want = f"{self._fixed}·{self._dim}" if self._fixed else f"1 to {self._max_tokens} tokens of {self._dim}"
                raise ValueError(f"{len(vec)} token values; expected {want}")
            if not np.all(np.isfinite(vec)) or np.max(np.abs(vec)) > TOKEN_MAX_ABS:
                raise ValueError(f"tokens contain NaN/Inf or values beyond ±{TOKEN_MAX_ABS:g}")
            tokens = vec.reshape(-1, self._dim)
        return meta, tokens, self._rate, self._snr_db

    def _run(self, items):
        feeds = [{"tokens": tokens, "rate": np.float32(rate), "snr_db": np.float32(snr)}
                 for _, tokens, rate, snr in items]
        symbols = run_grouped(self._session, feeds, lambda i, exc: self._log.warn(f"encoder failed on one PDU: {exc}"))
        return [None if s is None else jscc_frame.frame_order(s, item[2]).astype(np.complex64)
                for s, item in zip(symbols, items)]

    def _publish(self, item, z):
        meta, tokens, rate, snr_db = item
        frame_id = pdu_util.get_int(meta, "frame_id", None, 0, tagkeys.INT64_MAX - 1)
        frame_id = self._frame_id if frame_id is None else frame_id
        self._frame_id = (frame_id + 1) % tagkeys.INT64_MAX
        meta = pdu_util.with_items(meta, frame_id=frame_id, modality=self._modality, n_tokens=int(tokens.shape[0]),
                                   n_symbols=len(z), rate=int(rate), tx_snr_db=float(snr_db),
                                   model_id=self.model_id, tokenizer_id=self._tokenizer)
        skip = NEVER_TAGGED | {pmt.symbol_to_string(self._writer.len_tag_key)}
        items = pmt.dict_items(meta)
        tags = []
        for i in range(pmt.length(items)):
            key, value = pmt.car(pmt.nth(i, items)), pmt.cdr(pmt.nth(i, items))
            if pmt.is_symbol(key) and pmt.symbol_to_string(key) not in skip:
                tags.append((0, pmt.symbol_to_string(key), value))
        self._writer.append(Frame(z, tags))
