"""ofdm_framer: JSCC frame PDUs → header (BPSK, CRC) + analog payload symbols, for the carrier allocator."""
import numpy as np
import pmt
from gnuradio import gr

from .core import tags as tagkeys
from .ofdm import header as hdr
from .ofdm.params import OfdmParams
from .runtime import pdu_util
from .runtime.args import check_name
from .runtime.droplog import DropLog
from .runtime.frame_buffer import Frame, FrameWriter

MAX_PAYLOAD = 1 << 15            # JSCC symbols per frame (a minute of audio at rate 16 fits)


class ofdm_framer(gr.basic_block):
    """JSCC frames as PDUs → one OFDM frame's data-carrier symbols each.

    Message in ``frames``: c32 PDUs of JSCC symbols whose metadata holds the
    encoder's frame tags (``pdu.tagged_stream_to_pdu`` after ``tx`` gives
    them): ``modality``, ``n_tokens``, ``rate``, ``frame_id``, ``model_id``;
    ``session_id`` and ``task`` (a name of ``ofdm.header.TASK_CODES``) when
    the content PDU had them (else 0 and none).
    Output ``out``: per frame, the whitened BPSK header (``ofdm.header``,
    each bit twice, filling ``n_header_symbols`` OFDM symbols) followed by the frame's
    complex symbols unchanged (analog), with the length tag ``len_tag_key``
    for ``ofdm_carrier_allocator_cvc``. Frames whose metadata does not fit
    the header are logged and dropped. Counters: ``frames_out``,
    ``frames_dropped``. Frames queued when upstream ends are still written.

    Args:
        fft_len, cp_len, occupied_carriers, pilot_carriers: the numerology (``ofdm.params``).
        len_tag_key: length tag name of the output.
    """

    def __init__(self, fft_len=64, cp_len=16, occupied_carriers=(), pilot_carriers=(),
                 len_tag_key=tagkeys.DEFAULT_LEN_TAG_KEY):
        gr.basic_block.__init__(self, name="ofdm_framer", in_sig=None, out_sig=[np.complex64])
        self.params = OfdmParams(fft_len, cp_len, occupied_carriers, pilot_carriers)
        self._writer = FrameWriter(check_name("len_tag_key", len_tag_key))
        self._log = DropLog(self.logger)
        self._n_bits = self.params.n_header_bits
        self.frames_out = self.frames_dropped = 0
        self.set_min_output_buffer(MAX_PAYLOAD + 2 * self.params.n_header_symbols * self.params.n_data)
        self.message_port_register_in(pmt.intern("frames"))
        self.set_msg_handler(pmt.intern("frames"), self._on_frame)

    def general_work(self, input_items, output_items):
        core = self.to_basic_block()
        if not self._writer.pending and core.finished() and core.nmsgs(pmt.intern("frames")):
            self._on_frame(core.delete_head_nowait(pmt.intern("frames")))     # PDUs still queued at "done"
        if self._writer.pending:
            return self._writer.write(self, 0, output_items[0])
        return -1 if core.finished() else 0

    def _on_frame(self, msg):
        try:
            meta, z, _ = pdu_util.unpack(msg, ("c32",), MAX_PAYLOAD)
            info = {key: pdu_util.get(meta, key) for key in
                    ("modality", "rate", "n_tokens", "frame_id", "session_id", "task", "model_id")}
            n, rate = len(z), info["rate"]
            n_tokens = info["n_tokens"] if info["n_tokens"] is not None else \
                (n // rate if isinstance(rate, int) and rate > 0 else None)
            if not isinstance(n_tokens, int) or not isinstance(rate, int) or n_tokens * rate != n:
                raise ValueError(f"{n} symbols are not n_tokens={n_tokens} × rate={rate}")
            if not np.all(np.isfinite(z)):
                raise ValueError("NaN/Inf symbols")
            ints = {k: info[k] if isinstance(info[k], int) and not isinstance(info[k], bool) else 0
                    for k in ("frame_id", "session_id")}
            head = hdr.FrameHeader(info["modality"], rate, n_tokens, ints["frame_id"], ints["session_id"],
                                   hdr.task_code(info["task"]), hdr.model_hash(info["model_id"] or ""))
            bits = hdr.to_bits(head, self._n_bits)
        except (ValueError, TypeError) as exc:
            self.frames_dropped += 1
            self._log.warn(f"dropped a frame: {exc}")
            return
        head_syms = hdr.layout(bits, self.params.n_data).ravel().astype(np.complex64)
        self._writer.append(Frame(np.concatenate([head_syms, z]), []))
        self.frames_out += 1
