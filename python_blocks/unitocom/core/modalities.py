"""Modalities and the constants every part of the project agrees on.

Blocks, training (``onnx_export``) and the subsystems that build on them
(MLLM, evaluation, OFDM) import these names from here; nothing else writes
them down again.

=============  =============================================================
modality       what travels
=============  =============================================================
``image``      64×64 RGB scenes → continuous tokens (S × d, f32)
``audio``      16 kHz mono speech → continuous tokens (25 per second × d)
``text``       UTF-8 words of the corpus vocabulary → discrete ids (s32)
=============  =============================================================
"""
from ..dsp import audio_features

MODALITIES = ("image", "audio", "text")

# --- images ------------------------------------------------------------------
IMAGE_SIZE = 64                                    # pixels per side
IMAGE_CHANNELS = 3                                 # RGB
IMAGE_SHAPE = (IMAGE_SIZE, IMAGE_SIZE, IMAGE_CHANNELS)   # row-major H, W, C as PDUs carry it
IMAGE_BYTES = IMAGE_SIZE * IMAGE_SIZE * IMAGE_CHANNELS   # 12288 u8 values per image PDU

# --- audio -------------------------------------------------------------------
SAMPLE_RATE = audio_features.SAMPLE_RATE           # Hz
FRAMES_PER_TOKEN = 4                               # the audio models' stride: 100 log-mel frames/s → 25 tokens/s
TOKENS_PER_SECOND = SAMPLE_RATE / audio_features.HOP / FRAMES_PER_TOKEN
AUDIO_MIN_SAMPLES = audio_features.N_FFT // 2 + 1  # shortest clip the log-mel front end takes
AUDIO_MAX_SECONDS = 60.0                           # longest clip a tokenizer PDU may carry
AUDIO_MAX_TOKENS = int(AUDIO_MAX_SECONDS * TOKENS_PER_SECOND) + 1

# --- text --------------------------------------------------------------------
TEXT_MAX_BYTES = 1024                              # longest UTF-8 text PDU the tokenizer takes
TEXT_MAX_TOKENS = 256                              # most ids in a text token PDU (<bos> … <eos> included)

# --- every frame -------------------------------------------------------------
MAX_FRAME_TOKENS = max(AUDIO_MAX_TOKENS, TEXT_MAX_TOKENS)   # bounds the JSCC's (quadratic) attention
MAX_PDU_ITEMS = 1 << 20                            # any PDU vector longer than this is refused unread


def check_modality(modality):
    """The modality, or ValueError with the ones there are."""
    if modality not in MODALITIES:
        raise ValueError(f"modality must be one of {', '.join(MODALITIES)}; got {modality!r}")
    return modality


def max_tokens(modality, fixed=None):
    """Most tokens a frame of ``modality`` may carry (``fixed``: the model's own count, if it has one)."""
    if fixed:
        return int(fixed)
    return {"image": AUDIO_MAX_TOKENS, "audio": AUDIO_MAX_TOKENS, "text": TEXT_MAX_TOKENS}[check_modality(modality)]
