"""tokenizer: source PDU (image, audio or text) → token PDU (the tokenizer F_α of Eq. 1)."""
import numpy as np
import pmt
from gnuradio import gr

from .core import modalities as mod
from .data import vocab
from .dsp import audio_features
from .runtime import model_store, pdu_util
from .runtime.batching import MessageBatcher, run_grouped
from .runtime.droplog import DropLog

AUDIO_MAX_ABS = 1e4            # f32 samples beyond this are not audio in [-1, 1] (and overflow the log-mel)


class tokenizer(gr.basic_block):
    """Turns source PDUs into token PDUs.

    Message in ``pdu``: ``pmt.cons(meta, vector)``.
      * image: u8 vector of H·W·3 RGB bytes, row-major (H = W = 64), or f32
        in [0, 1] of the same length.
      * audio: f32 samples in [-1, 1] or s16 samples, mono, 16 kHz (a
        ``sample_rate`` in the metadata must say 16000), 0.02–60 s
        (``core.modalities.AUDIO_MAX_SECONDS``).
        Log-mel features (``audio_features.log_mel``) are padded with
        silence to a whole number of tokens (4 frames = 40 ms each).
      * text: u8 vector of UTF-8 text in the corpus vocabulary (lower case),
        at most ``TEXT_MAX_BYTES`` bytes and ``TEXT_MAX_TOKENS`` ids.
    Message out ``tokens``: the input metadata plus ``modality``,
    ``n_tokens``, ``token_dim`` and ``model_id`` (audio also ``n_samples``,
    the clip's length, so the de-tokenizer can trim); the vector is f32
    (n_tokens·token_dim, continuous tokens μ = F_α(x)) for images and audio
    (25 tokens/s), s32 token ids (``<bos> … <eos>``, token_dim 1) for text.

    The ONNX session is made once; PDUs queued at the input are batched
    into one onnxruntime call (up to ``max_batch``; ``batching``). Malformed PDUs (not a PDU,
    wrong vector type or length, NaN, unknown words) are logged and dropped.

    Args:
        modality: 'image', 'audio' or 'text'.
        model: model name (e.g. 'image_tokenizer_s32', 'audio_tokenizer') or an .onnx
            path; '' picks the bundled default for the modality; unused for text.
        variant: 'genib' or 'vae' ('' = the zoo's default, genib).
        device: 'auto', 'cpu' or 'cuda' (onnxruntime providers).
        threads: onnxruntime intra-op threads (>= 1).
        max_batch: most PDUs per onnxruntime call (>= 1).
    """

    def __init__(self, modality="image", model="", variant="", device="auto",
                 threads=1, max_batch=32):
        gr.basic_block.__init__(self, name="tokenizer", in_sig=None, out_sig=None)
        self._modality = mod.check_modality(modality)
        self._log = DropLog(self.logger)
        self.meta = {"modality": "text", "token_len": "0", "token_dim": "1", "variant": "vocab"}
        self.model_id = "text_vocab"
        if modality != "text":
            path, self.meta, self._session, self._input = model_store.open_model(
                model, variant, "tokenizer", modality, threads, device)
            self.model_id = model_store.model_id(path)
        self._batcher = MessageBatcher(self, "pdu", self._check, self._run, self._publish, self._log, max_batch)
        self.message_port_register_in(pmt.intern("pdu"))
        self.message_port_register_out(pmt.intern("tokens"))
        self.set_msg_handler(pmt.intern("pdu"), self._on_pdu)

    def _on_pdu(self, msg):
        self._batcher.handle(msg)

    def _check(self, msg):
        kinds = {"image": ("u8", "f32"), "audio": ("f32", "s16"), "text": ("u8",)}[self._modality]
        meta, vec, kind = pdu_util.unpack(msg, kinds)
        if self._modality == "audio":
            return self._check_audio(meta, vec)
        if self._modality == "text":
            return meta, self._check_text(vec)
        if len(vec) != mod.IMAGE_BYTES:
            raise ValueError(f"image PDU has {len(vec)} items, expected 64·64·3 = {mod.IMAGE_BYTES}")
        img = vec.astype(np.float32) / 255.0 if kind == "u8" else vec
        if not np.all(np.isfinite(img)):
            raise ValueError("image contains NaN/Inf")
        return meta, np.clip(img, 0, 1).reshape(mod.IMAGE_SHAPE).transpose(2, 0, 1)

    @staticmethod
    def _check_text(vec):
        if not 0 < len(vec) <= mod.TEXT_MAX_BYTES:
            raise ValueError(f"text of {len(vec)} bytes; expected 1 to {mod.TEXT_MAX_BYTES}")
        try:
            ids = vocab.encode(bytes(vec).decode("utf-8").strip().lower())
        except (UnicodeDecodeError, ValueError) as exc:
            raise ValueError(f"text not in the vocabulary: {exc}") from None
        if len(ids) > mod.TEXT_MAX_TOKENS:
            raise ValueError(f"text of {len(ids)} tokens; at most {mod.TEXT_MAX_TOKENS}")
        return np.asarray(ids, np.int32)

    @staticmethod
    def _check_audio(meta, vec):
        rate = pdu_util.get(meta, "sample_rate", mod.SAMPLE_RATE)
        if rate != mod.SAMPLE_RATE:
            raise ValueError(f"audio at {rate!r} Hz; the audio tokenizer takes {mod.SAMPLE_RATE} Hz")
        seconds = len(vec) / mod.SAMPLE_RATE
        if not mod.AUDIO_MIN_SAMPLES <= len(vec) <= mod.AUDIO_MAX_SECONDS * mod.SAMPLE_RATE:
            raise ValueError(f"audio of {len(vec)} samples ({seconds:.3f} s); "
                             f"expected {mod.AUDIO_MIN_SAMPLES} samples to {mod.AUDIO_MAX_SECONDS:g} s")
        if not np.all(np.isfinite(vec)) or (vec.dtype == np.float32 and np.max(np.abs(vec)) > AUDIO_MAX_ABS):
            raise ValueError(f"audio contains NaN/Inf or samples beyond ±{AUDIO_MAX_ABS:g}")
        mel = audio_features.log_mel(vec)
        pad = -mel.shape[1] % mod.FRAMES_PER_TOKEN
        mel = np.pad(mel, ((0, 0), (0, pad)), constant_values=audio_features.SILENCE)
        return pdu_util.with_items(meta, n_samples=len(vec)), mel

    def _run(self, items):
        if self._modality == "text":
            return [x for _, x in items]
        return run_grouped(self._session, [{self._input: x.astype(np.float32)} for _, x in items],
                           lambda i, exc: self._log.warn(f"tokenizer failed on one PDU: {exc}"))

    def _publish(self, item, tokens):
        meta = pdu_util.with_items(item[0], modality=self._modality, n_tokens=int(tokens.shape[0]),
                                   token_dim=int(tokens.shape[1]) if tokens.ndim == 2 else 1,
                                   model_id=self.model_id)
        out = tokens.astype(np.float32).ravel() if self._modality != "text" else tokens
        self.message_port_pub(pmt.intern("tokens"), pdu_util.make(meta, out))
