"""rx: the UniToCom receiver — jscc_decoder (→ session defaults) → detokenizer."""
from gnuradio import gr

from .core import tags as tagkeys
from .core import zoo
from .detokenizer import detokenizer
from .jscc_decoder import jscc_decoder
from .runtime.sessions import session_defaults


#: PDUs per de-tokenizer call: the image de-tokenizer costs the least CPU per image at batches of 4–8
#: (its activations stay in the core's cache); 32, the block's default, costs ≈ 10–15 % more per image
#: (scripts/bench_ota_rx.py, the README, "Throughput").
DETOKENIZER_BATCH = 8


class rx(gr.hier_block2):
    """Received symbols (with CSI tags) in, content PDUs out (Eq. 3: ẑ → t̂ = R(ẑ) → x̂ = F_β(t̂)).

    Input: complex64 frames as ``tx`` sends them, through a channel that
    tags its CSI (``h``, ``snr_db``), e.g. ``block_fading_channel``.
    Message out ``pdu``: what ``detokenizer`` makes (u8 image, f32 audio at
    16 kHz, UTF-8 text) with the frame's metadata (frame_id, snr_db, h, …).
    Message out ``tokens``: the decoded token PDUs (for the MLLM). Both
    carry the frame's ``session_id`` and ``task`` (as ``tx`` tags them);
    a frame without them (or with an unusable value, logged) gets the
    arguments' (no task when ``task`` is '').

    Args:
        modality: 'image', 'audio' or 'text'.
        jscc_model: JSCC decoder name or path ('' = the bundled one).
        detokenizer_model: de-tokenizer name or path ('' = the bundled one).
        variant: tokenizer variant 'genib' or 'vae' ('' = genib; text has none).
        snr_db: SNR the decoder assumes while no CSI tag has arrived (dB).
        len_tag_key: length tag name.
        device, threads: onnxruntime device and intra-op threads.
        session_id: session of frames without one (integer 0 … 2³²−1).
        task: MLLM task of frames without one: '' (none), 'vqa', 't2i', 'asr' or 'dsc'.
    """

    def __init__(self, modality="image", jscc_model="", detokenizer_model="", variant="", snr_db=10.0,
                 len_tag_key=tagkeys.DEFAULT_LEN_TAG_KEY, device="auto", threads=1, session_id=0, task=""):
        gr.hier_block2.__init__(self, "rx", gr.io_signature(1, 1, gr.sizeof_gr_complex), gr.io_signature(0, 0, 0))
        variant = zoo.default_variant(modality, variant)
        self.session = session_defaults(session_id, task)
        self.decoder = jscc_decoder(modality, jscc_model, variant, "", snr_db, len_tag_key, device, threads)
        tokenizer_id = "" if modality == "text" else self.decoder.meta["tokenizer"]
        self.detokenizer = detokenizer(modality, detokenizer_model, variant, tokenizer_id, device, threads,
                                       DETOKENIZER_BATCH)
        self.message_port_register_hier_out("pdu")
        self.message_port_register_hier_out("tokens")
        self.connect(self, self.decoder)
        self.msg_connect(self.decoder, "tokens", self.session, "in")
        self.msg_connect(self.session, "out", self.detokenizer, "tokens")
        self.msg_connect(self.session, "out", self, "tokens")
        self.msg_connect(self.detokenizer, "pdu", self, "pdu")

    def set_session_id(self, session_id):
        self.session.set_session_id(session_id)

    def set_task(self, task):
        self.session.set_task(task)
