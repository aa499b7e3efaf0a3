"""detokenizer: token PDU → image or text PDU (the de-tokenizer F_β⁻¹ of Eq. 3)."""
import numpy as np
import pmt
from gnuradio import gr

from . import model_store, pdu_util
from .batch_worker import BatchWorker
from .data import vocab
from .droplog import DropLog
from .tokenizer import MODALITIES


class detokenizer(gr.basic_block):
    """Turns token PDUs back into content.

    Message in ``tokens``: f32 vector of n_tokens·token_dim continuous tokens
    (image), or s32 token ids (text), with ``n_tokens``/``token_dim`` in the
    metadata when known. Message out ``pdu``: u8 RGB bytes (64·64·3,
    row-major; metadata ``width``, ``height``, ``channels``) for images,
    u8 UTF-8 text for text; the input metadata is kept.

    ``tokenizer_model`` (optional) names the tokenizer this de-tokenizer must
    pair with: construction fails with a clear error when their modality,
    token length, token dimension or variant differ. Malformed PDUs (wrong
    type or length, NaN, ids outside the vocabulary) are logged and dropped.

    Args:
        modality: 'image' or 'text'.
        model: de-tokenizer model name (e.g. 'image_detokenizer_s32') or .onnx path.
        variant: 'genib' or 'vae'.
        tokenizer_model: tokenizer name or path to check against ('' = no check).
        device, threads, max_batch: as for ``tokenizer``.
    """

    def __init__(self, modality="image", model="image_detokenizer_s32", variant="genib", tokenizer_model="",
                 device="auto", threads=1, max_batch=32):
        gr.basic_block.__init__(self, name="detokenizer", in_sig=None, out_sig=None)
        if modality not in MODALITIES:
            raise ValueError(f"modality must be one of {', '.join(MODALITIES)}; got {modality!r}")
        if int(max_batch) < 1:
            raise ValueError(f"max_batch must be at least 1; got {max_batch}")
        self._modality = modality
        self._log = DropLog(self.logger)
        if modality == "image":
            _, self.meta, self._session, self._input = model_store.open_model(
                model, variant, "detokenizer", "image", threads, device)
            if tokenizer_model:
                model_store.check_pair(model_store.read_metadata(model_store.find(tokenizer_model, variant)),
                                       self.meta)
            self._n, self._d = int(self.meta["token_len"]), int(self.meta["token_dim"])
        self._worker = BatchWorker(self._run, self._publish, self._log, max_batch)
        self.message_port_register_in(pmt.intern("tokens"))
        self.message_port_register_out(pmt.intern("pdu"))
        self.set_msg_handler(pmt.intern("tokens"), self._on_tokens)

    def start(self):
        self._worker.start()
        return True

    def stop(self):
        self._worker.stop()
        return True

    def _on_tokens(self, msg):
        try:
            if self._modality == "text":
                meta, ids, _ = pdu_util.unpack(msg, ("s32",))
                if np.any((ids < 0) | (ids >= len(vocab.TOKENS))):
                    raise ValueError("token id outside the vocabulary")
                text = vocab.decode(ids.tolist()).encode("utf-8")
                self._publish((meta, None), np.frombuffer(text, np.uint8))
                return
            meta, vec, _ = pdu_util.unpack(msg, ("f32",))
            if len(vec) != self._n * self._d:
                raise ValueError(f"{len(vec)} values, expected {self._n}·{self._d} tokens")
            if not np.all(np.isfinite(vec)):
                raise ValueError("tokens contain NaN/Inf")
        except ValueError as exc:
            self._log.warn(f"dropped a PDU: {exc}")
            return
        self._worker.submit((meta, vec.reshape(self._n, self._d)))

    def _run(self, items):
        batch = np.stack([t for _, t in items]).astype(np.float32)
        images = self._session.run(None, {self._input: batch})[0]                  # (B, 3, 64, 64)
        return [np.round(np.clip(im, 0, 1) * 255).astype(np.uint8).transpose(1, 2, 0).ravel() for im in images]

    def _publish(self, item, data):
        meta = item[0]
        if self._modality == "image":
            meta = pdu_util.with_items(meta, width=64, height=64, channels=3)
        self.message_port_pub(pmt.intern("pdu"), pdu_util.make(meta, data))
