"""jscc_decoder: complex tagged stream + CSI tags → token PDU (the decoder R of Eq. 3)."""
import numpy as np
import pmt
from gnuradio import gr

from .core import jscc_frame, tags as tagkeys
from .core import modalities as mod
from .dsp.channel_math import check_snr_db
from .runtime import model_store, pdu_util
from .runtime.args import check_int, check_name
from .runtime.batching import run_grouped
from .runtime.csi_tracker import CsiTracker
from .runtime.droplog import DropLog
from .runtime.frame_buffer import FrameAssembler


class jscc_decoder(gr.sync_block):
    """Frames of received symbols → token PDUs.

    Input ``in``: complex64 frames as ``jscc_encoder`` sends them (length
    tag; frame tags ``n_tokens`` and ``rate``, which may be left out when
    the model's token count fixes them) through a channel that tags its CSI
    (``core.tags``): ``h`` and ``snr_db`` (or ``noise_var``) in force from a
    sample on, e.g. ``block_fading_channel`` or a receiver's estimator. CSI
    is tracked symbol by symbol and carries over between frames; a new
    ``snr_db`` without a ``noise_var`` at the same sample sets σ² from it.
    Without any CSI tag the decoder assumes h = 1 at the ``snr_db`` argument
    (logged once). CSI tags out of range (|h| > 10⁶, SNR outside −50…100 dB)
    are logged and ignored. The decoder takes x̂ = h*·y/(|h|² + σ²) and each
    symbol's reliability |h|²/(|h|² + σ²) (``core.jscc_frame``), and
    conditions on the SNR. When both ``snr_db`` and ``noise_var`` are
    tagged, the transmit power P = σ²·10^(snr_db/10) (e.g. ``tx``'s
    ``power``) is undone (h·√P), so the decoder sees unit-power symbols.

    Message out ``tokens``: one PDU per frame, f32 n_tokens·d tokens (image,
    audio) or s32 ids (text), with the frame's tags as metadata (``model_id``
    becomes the tokenizer's id, the encoder's is kept as ``jscc_model_id``)
    plus ``snr_db`` and ``h`` used (h at the frame's first symbol) and
    ``n_fades``, in frame order. Frames that do not fit the model (length ≠
    n_tokens·rate, unknown rate, too many tokens, NaN, a non-finite decoder
    output) are logged and dropped. Frames finished in one ``work()`` call
    share onnxruntime calls (up to ``max_batch``).

    Args:
        modality: 'image', 'audio' or 'text'.
        model: JSCC decoder model name or .onnx path ('' = the bundled one).
        variant: tokenizer variant it was trained for ('' = genib; vocab for text).
        encoder_model: encoder name or path to check this decoder against ('' = no check).
        snr_db: SNR to assume while no CSI tag has arrived (dB, −50…100).
        len_tag_key: length tag name.
        device, threads, max_batch: as for ``jscc_encoder``.
    """

    def __init__(self, modality="image", model="", variant="", encoder_model="", snr_db=10.0,
                 len_tag_key=tagkeys.DEFAULT_LEN_TAG_KEY, device="auto", threads=1, max_batch=64):
        gr.sync_block.__init__(self, name="jscc_decoder", in_sig=[np.complex64], out_sig=None)
        check_name("len_tag_key", len_tag_key)
        self._max = check_int("max_batch", max_batch, 1, 4096)
        self._default_snr = check_snr_db(snr_db)
        path, self.meta, self._session, self.rates = model_store.open_jscc(
            mod.check_modality(modality), model, variant, "decoder", threads, device)
        self._encoder_id = None
        if encoder_model:
            enc_path = model_store.find(encoder_model, self.meta["variant"])
            model_store.check_jscc_pair(enc_path, model_store.read_metadata(enc_path), self.meta)
            self._encoder_id = model_store.model_id(enc_path)
        self.model_id = model_store.model_id(path)
        self._k = int(self.meta["k_max"])
        self._vocab = int(self.meta.get("vocab", "0"))
        self._fixed = int(self.meta["token_len"]) if self.meta["token_len"].isdigit() else None
        self._max_tokens = mod.max_tokens(modality, self._fixed)
        self._frames = FrameAssembler(len_tag_key, self._max_tokens * max(self.rates))
        self._log = DropLog(self.logger)
        self._csi = CsiTracker(self._default_snr, self._log)
        self.message_port_register_out(pmt.intern("tokens"))

    def work(self, input_items, output_items):
        x = input_items[0]
        done = self._frames.push(x, self.get_tags_in_window(0, 0, len(x)), self.nitems_read(0))
        self._log.drain(self._frames.problems)
        items = []
        for frame in done:
            try:
                items.append(self._prepare(frame))
            except Exception as exc:                 # one bad frame never stops the stream
                self._log.warn(f"dropped a frame: {exc}")
        for start in range(0, len(items), self._max):
            self._decode(items[start:start + self._max])
        return len(x)

    def _prepare(self, frame):
        meta = {key: value for rel, key, value in frame.tags if rel == 0 and key not in tagkeys.CSI_KEYS}
        info = {k: tagkeys.to_python(v) for k, v in meta.items()}
        n = len(frame.samples)
        s = info.get("n_tokens", self._fixed)
        rate = info.get("rate", n // s if isinstance(s, int) and s > 0 else None)
        if not (type(s) is int and 0 < s <= self._max_tokens and type(rate) is int and rate in self.rates
                and s * rate == n):
            raise ValueError(f"{n} symbols do not make n_tokens={s} × rate={rate} "
                             f"(rates {self.rates}, at most {self._max_tokens} tokens)")
        if self._fixed and s != self._fixed:
            raise ValueError(f"{s} tokens; this model decodes {self._fixed}")
        if self._encoder_id and info.get("model_id", self._encoder_id) != self._encoder_id:
            raise ValueError(f"sent by {info.get('model_id')!r}, not by {self._encoder_id!r}")
        if not np.all(np.isfinite(frame.samples)):
            raise ValueError("NaN/Inf samples")
        h, nv, snr, fades = self._csi.per_symbol(frame.tags, n)
        with np.errstate(over="ignore", invalid="ignore"):              # checked just below
            sym, rel = jscc_frame.decoder_input(frame.samples.astype(np.complex128), h, nv, s, rate, self._k,
                                                lambda shape: np.zeros(shape, np.float32))
        if not (np.all(np.isfinite(sym)) and np.all(np.isfinite(rel))):
            raise ValueError("samples too large to equalise")
        meta.pop(self._frames.len_tag_key, None)
        return meta, {"symbols": sym, "reliability": rel, "snr_db": np.float32(snr), "rate": np.float32(rate)}, \
            (snr, rate, complex(h[0]), fades)

    def _decode(self, items):
        """One onnxruntime call per token count; token PDUs go out in frame order."""
        outs = run_grouped(self._session, [feed for _, feed, _ in items],
                           lambda i, exc: self._log.warn(f"dropped a frame: the decoder failed: {exc}"))
        for (tags, _, info), out in zip(items, outs):
            if out is not None:
                self._publish(tags, info, out)

    def _publish(self, tags, info, out):
        snr, rate, first, fades = info
        meta = pmt.make_dict()
        for key, value in tags.items():
            meta = pmt.dict_add(meta, pmt.intern(key), value)
        meta = pdu_util.with_items(meta, jscc_model_id=pdu_util.get_str(meta, "model_id", ""),
                                   model_id=pdu_util.get_str(meta, "tokenizer_id", ""),
                                   snr_db=float(snr), h=complex(first), n_fades=int(fades), rate=int(rate))
        vec = out.argmax(-1).astype(np.int32) if self._vocab else out.astype(np.float32).ravel()
        self.message_port_pub(pmt.intern("tokens"), pdu_util.make(meta, vec))
