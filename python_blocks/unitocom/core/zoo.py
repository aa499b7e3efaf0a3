"""The model registry: which shipped model each block uses by default.

One table maps (role, modality) to a model *name*; ``runtime.model_store``
turns a name (+ variant) into the ``<name>-<variant>-<hash>.onnx`` file. A
block's ``model=''`` and ``variant=''`` arguments mean "the entry here".

Roles: ``tokenizer``, ``detokenizer``, ``jscc_encoder``, ``jscc_decoder``.
Variants: ``genib`` (σ-GenIB) and ``vae`` for image/audio tokenizers; text
tokens come from the vocabulary (variant ``vocab``).
"""
from .modalities import check_modality

ROLES = ("tokenizer", "detokenizer", "jscc_encoder", "jscc_decoder")
VARIANTS = ("genib", "vae", "vocab")

DEFAULT_MODELS = {
    ("tokenizer", "image"): "image_tokenizer_s32",
    ("tokenizer", "audio"): "audio_tokenizer",
    ("detokenizer", "image"): "image_detokenizer_s32",
    ("detokenizer", "audio"): "audio_detokenizer",
    ("jscc_encoder", "image"): "image_jscc_encoder_s32",
    ("jscc_encoder", "audio"): "audio_jscc_encoder",
    ("jscc_encoder", "text"): "text_jscc_encoder",
    ("jscc_decoder", "image"): "image_jscc_decoder_s32",
    ("jscc_decoder", "audio"): "audio_jscc_decoder",
    ("jscc_decoder", "text"): "text_jscc_decoder",
}
DEFAULT_VARIANTS = {"image": "genib", "audio": "genib", "text": "vocab"}


def default_variant(modality, variant=""):
    """``variant``, or the modality's default when it is ''."""
    check_modality(modality)
    if variant and variant not in VARIANTS:
        raise ValueError(f"variant must be one of {', '.join(VARIANTS)} (or '' for {DEFAULT_VARIANTS[modality]}); "
                         f"got {variant!r}")
    return variant or DEFAULT_VARIANTS[modality]


def resolve(role, modality, model="", variant=""):
    """(model name or path, variant) a block opens for ``role`` and ``modality``."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}; got {role!r}")
    variant = default_variant(modality, variant)
    if model:
        return model, variant
    if (role, modality) not in DEFAULT_MODELS:
        raise ValueError(f"there is no {modality} {role}: {modality} needs none")
    return DEFAULT_MODELS[(role, modality)], variant
