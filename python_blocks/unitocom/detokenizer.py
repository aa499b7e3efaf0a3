"""detokenizer: token PDU → image, audio or text PDU (the de-tokenizer F_β⁻¹ of Eq. 3)."""
import numpy as np
import pmt
from gnuradio import gr

from .core import modalities as mod
from .data import vocab
from .dsp import audio_features
from .runtime import model_store, pdu_util
from .runtime.batching import MessageBatcher, run_grouped
from .runtime.droplog import DropLog

TOKEN_MAX_ABS = 1e4            # continuous tokens are O(1); beyond this the de-tokenizer's output is meaningless


class detokenizer(gr.basic_block):
    """Turns token PDUs back into content.

    Message in ``tokens``: f32 vector of n_tokens·token_dim continuous tokens
    (image: n_tokens fixed by the model; audio: any whole number of tokens,
    25 per second), or s32 token ids (text). Message out ``pdu``: u8 RGB
    bytes (64·64·3, row-major; metadata ``width``, ``height``, ``channels``)
    for images; f32 samples at 16 kHz for audio (metadata ``sample_rate``;
    trimmed to ``n_samples`` when the input metadata has it), made from the
    decoded log-mel by Griffin–Lim (``vocoder_iterations``); u8 UTF-8 text
    for text. The input metadata is kept.

    ``tokenizer_model`` (optional) names the tokenizer this de-tokenizer must
    pair with: construction fails with a clear error when their modality,
    token length, token dimension or variant differ. Malformed PDUs (wrong
    type or length, NaN, ids outside the vocabulary) are logged and dropped.

    Args:
        modality: 'image', 'audio' or 'text'.
        model: de-tokenizer model name (e.g. 'image_detokenizer_s32', 'audio_detokenizer')
            or .onnx path; '' picks the bundled default for the modality.
        variant: 'genib' or 'vae' ('' = the zoo's default, genib).
        tokenizer_model: tokenizer name or path to check against ('' = no check).
        device, threads, max_batch: as for ``tokenizer``.
        vocoder_iterations: Griffin–Lim iterations for audio (>= 1).
    """

    def __init__(self, modality="image", model="", variant="", tokenizer_model="",
                 device="auto", threads=1, max_batch=32, vocoder_iterations=32):
        gr.basic_block.__init__(self, name="detokenizer", in_sig=None, out_sig=None)
        self._modality = mod.check_modality(modality)
        if isinstance(vocoder_iterations, bool) or int(vocoder_iterations) != vocoder_iterations \
                or not 1 <= vocoder_iterations <= 1000:
            raise ValueError(f"vocoder_iterations must be an integer from 1 to 1000; got {vocoder_iterations!r}")
        self._iterations = int(vocoder_iterations)
        self._log = DropLog(self.logger)
        if modality != "text":
            _, self.meta, self._session, self._input = model_store.open_model(
                model, variant, "detokenizer", modality, threads, device)
            if tokenizer_model:
                model_store.check_pair(model_store.read_metadata(model_store.find(tokenizer_model, self.meta["variant"])),
                                       self.meta)
            self._d = int(self.meta["token_dim"])
            self._n = int(self.meta["token_len"]) if modality == "image" else None
        self._batcher = MessageBatcher(self, "tokens", self._check, self._run, self._publish, self._log, max_batch)
        self.message_port_register_in(pmt.intern("tokens"))
        self.message_port_register_out(pmt.intern("pdu"))
        self.set_msg_handler(pmt.intern("tokens"), self._on_tokens)

    def _on_tokens(self, msg):
        self._batcher.handle(msg)

    def _check(self, msg):
        if self._modality == "text":
            meta, ids, _ = pdu_util.unpack(msg, ("s32",))
            if not 0 < len(ids) <= mod.TEXT_MAX_TOKENS or np.any((ids < 0) | (ids >= len(vocab.TOKENS))):
                raise ValueError(f"text PDU needs 1 to {mod.TEXT_MAX_TOKENS} ids inside the vocabulary")
            return meta, ids
        meta, vec, _ = pdu_util.unpack(msg, ("f32",))
        if self._n is not None and len(vec) != self._n * self._d:
            raise ValueError(f"{len(vec)} values, expected {self._n}·{self._d} tokens")
        if self._n is None and (len(vec) == 0 or len(vec) % self._d or len(vec) > mod.AUDIO_MAX_TOKENS * self._d):
            raise ValueError(f"{len(vec)} values: not 1 to {mod.AUDIO_MAX_TOKENS} tokens of dimension {self._d}")
        if not np.all(np.isfinite(vec)) or np.max(np.abs(vec)) > TOKEN_MAX_ABS:
            raise ValueError(f"tokens contain NaN/Inf or values beyond ±{TOKEN_MAX_ABS:g}")
        return meta, vec.reshape(-1, self._d)

    def _run(self, items):
        if self._modality == "text":
            return [np.frombuffer(vocab.decode(ids.tolist()).encode("utf-8"), np.uint8) for _, ids in items]
        outs = run_grouped(self._session, [{self._input: t} for _, t in items],
                           lambda i, exc: self._log.warn(f"de-tokenizer failed on one PDU: {exc}"))
        if self._modality == "image":                                               # (3, 64, 64) each
            return [None if im is None else np.round(np.clip(im, 0, 1) * 255).astype(np.uint8).transpose(1, 2, 0).ravel()
                    for im in outs]
        waves = []
        for (meta, _), mel in zip(items, outs):                                      # (64, frames) each
            if mel is None:
                waves.append(None)
                continue
            wave = audio_features.griffin_lim(mel, self._iterations)
            n = pdu_util.get_int(meta, "n_samples", None, 1)
            if n is not None and n <= len(wave) + audio_features.HOP * mod.FRAMES_PER_TOKEN:
                wave = np.pad(wave, (0, max(0, n - len(wave))))[:n]
            waves.append(np.clip(wave, -1, 1).astype(np.float32))
        return waves

    def _publish(self, item, data):
        meta = item[0]
        if self._modality == "image":
            meta = pdu_util.with_items(meta, width=mod.IMAGE_SIZE, height=mod.IMAGE_SIZE, channels=mod.IMAGE_CHANNELS)
        elif self._modality == "audio":
            meta = pdu_util.with_items(meta, sample_rate=mod.SAMPLE_RATE)
        self.message_port_pub(pmt.intern("pdu"), pdu_util.make(meta, data))
