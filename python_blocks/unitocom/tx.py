"""tx: the UniToCom transmitter — (session defaults →) tokenizer → jscc_encoder → power_normalizer."""
from gnuradio import gr

from .core import tags as tagkeys
from .core import zoo
from .jscc_encoder import jscc_encoder
from .power_normalizer import power_normalizer
from .runtime.sessions import session_defaults
from .tokenizer import tokenizer


class tx(gr.hier_block2):
    """Content PDUs in, complex channel symbols out (Eq. 1: x → t = F_α(x) → z = T(t)).

    Message in ``pdu``: what ``tokenizer`` takes (64×64×3 u8 image, 16 kHz
    audio samples, UTF-8 text). Message in ``ctrl``: ``{rate: k}`` /
    ``{snr_db: x}`` for the JSCC encoder. Output: complex64 frames, one per
    PDU, with the encoder's frame tags, scaled to average power ``power``.
    Every frame's tags carry a ``session_id`` (uint32) and, unless it is '',
    a ``task`` for the receiver's MLLM (vqa, t2i, asr, dsc): the PDU
    metadata's own when it has them, else the arguments (an unusable value
    in the metadata is logged and replaced); ``rx`` hands them on in its
    token PDUs, ``mllm_client`` groups by them.

    Args:
        modality: 'image', 'audio' or 'text'.
        tokenizer_model: tokenizer name or path ('' = the bundled one).
        variant: tokenizer variant 'genib' or 'vae' ('' = genib; text has none).
        jscc_model: JSCC encoder name or path ('' = the bundled one).
        rate: complex symbols per token (one of the JSCC model's rates).
        snr_db: SNR the encoder adapts to (dB).
        power: average power per complex symbol P (> 0).
        len_tag_key: length tag name.
        device, threads: onnxruntime device ('auto', 'cpu', 'cuda') and intra-op threads.
        session_id: session of PDUs without one (integer 0 … 2³²−1).
        task: MLLM task of PDUs without one: '' (none), 'vqa', 't2i', 'asr' or 'dsc'.
    """

    def __init__(self, modality="image", tokenizer_model="", variant="", jscc_model="", rate=8, snr_db=10.0,
                 power=1.0, len_tag_key=tagkeys.DEFAULT_LEN_TAG_KEY, device="auto", threads=1, session_id=0, task=""):
        gr.hier_block2.__init__(self, "tx", gr.io_signature(0, 0, 0), gr.io_signature(1, 1, gr.sizeof_gr_complex))
        variant = zoo.default_variant(modality, variant)
        self.session = session_defaults(session_id, task)
        self.tokenizer = tokenizer(modality, tokenizer_model, variant, device, threads)
        self.encoder = jscc_encoder(modality, jscc_model, variant, rate, snr_db, len_tag_key, device, threads)
        if self.tokenizer.model_id != self.encoder.meta["tokenizer"]:
            raise ValueError(f"the JSCC encoder {self.encoder.model_id} was trained on tokens of "
                             f"{self.encoder.meta['tokenizer']}, not of {self.tokenizer.model_id}")
        self.normalizer = power_normalizer(power, len_tag_key)
        self.message_port_register_hier_in("pdu")
        self.message_port_register_hier_in("ctrl")
        self.msg_connect(self, "pdu", self.session, "in")
        self.msg_connect(self.session, "out", self.tokenizer, "pdu")
        self.msg_connect(self.tokenizer, "tokens", self.encoder, "tokens")
        self.msg_connect(self, "ctrl", self.encoder, "ctrl")
        self.connect(self.encoder, self.normalizer, self)

    def set_rate(self, rate):
        self.encoder.set_rate(rate)

    def set_snr_db(self, snr_db):
        self.encoder.set_snr_db(snr_db)

    def set_session_id(self, session_id):
        self.session.set_session_id(session_id)

    def set_task(self, task):
        self.session.set_task(task)
