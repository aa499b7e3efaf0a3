"""gr-unitocom: token communication (UniToCom) as GNU Radio 3.10 blocks.

Importable as ``gnuradio.unitocom``. Blocks (one per module, same name):

* ``power_normalizer``     – scale each tagged frame to average power P (Eq. 1)
* ``block_fading_channel`` – ẑ = h·z + n with AWGN/Rayleigh/Rician block fading (Eq. 2)
* ``csi_equalizer``        – one-tap ZF/MMSE from the channel's CSI tags
* ``soft_demapper``        – soft bits (LLRs) for any gr-digital constellation
* ``ber_meter``            – exact bit-error counts between two bit streams
* ``tokenizer``            – image/text PDU → token PDU (ONNX tokenizer F_α)
* ``detokenizer``          – token PDU → image/text PDU (ONNX de-tokenizer F_β)

Helpers: ``channel_math`` (the channel, for numpy and torch), ``ber_theory``,
``constellations.qam16_gray``, ``onnx_session``, ``model_store``, ``tags``,
``pdu_util``; ``data`` is the CLEVR-style corpus generator.
"""
from .ber_meter import ber_meter
from .block_fading_channel import block_fading_channel
from .constellations import qam16_gray
from .csi_equalizer import csi_equalizer
from .detokenizer import detokenizer
from .power_normalizer import power_normalizer
from .soft_demapper import soft_demapper
from .tokenizer import tokenizer

__all__ = ["ber_meter", "block_fading_channel", "csi_equalizer", "detokenizer", "power_normalizer",
           "qam16_gray", "soft_demapper", "tokenizer"]
