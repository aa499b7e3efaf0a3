"""gr-unitocom: token communication (UniToCom) as GNU Radio 3.10 blocks.

Importable as ``gnuradio.unitocom``. Blocks (one per module, same name):

* ``power_normalizer``     – scale each tagged frame to average power P (Eq. 1)
* ``block_fading_channel`` – ẑ = h·z + n with AWGN/Rayleigh/Rician block fading (Eq. 2)
* ``csi_equalizer``        – one-tap ZF/MMSE from the channel's CSI tags
* ``soft_demapper``        – soft bits (LLRs) for any gr-digital constellation
* ``ber_meter``            – exact bit-error counts between two bit streams
* ``tokenizer``            – image/audio/text PDU → token PDU (ONNX tokenizer F_α)
* ``detokenizer``          – token PDU → image/audio/text PDU (ONNX de-tokenizer F_β)
* ``jscc_encoder``         – token PDU → frame of complex symbols (SNR/rate-adaptive JSCC T)
* ``jscc_decoder``         – received frame + CSI tags → token PDU (JSCC R)
* ``tx``, ``rx``           – hier blocks: tokenizer → JSCC encoder → power normalizer, and back
* ``ofdm_tx``, ``ofdm_rx`` – hier blocks: the OFDM air interface (sync, header, estimated CSI);
  inside them ``ofdm_framer`` and ``ofdm_deframer``
* ``sample_source``        – corpus samples for vqa / t2i / asr with session ids (finite)
* ``scene_source``         – corpus test scenes as image PDUs (finite)
* ``image_sink``           – received images → PNG files and PSNR against the sent scenes
* ``image_display``, ``result_display`` – received images / texts and MLLM results shown in a QT GUI window
* ``mllm_client``          – received token PDUs → MLLM server requests by session → answers, transcripts, images

Sub-packages (helpers grouped by role; blocks import them, never each other's files):

* ``core``     – the shared vocabulary: ``modalities`` (constants and size limits),
  ``zoo`` (default model per role and modality), ``tags`` (stream-tag keys, CSI),
  ``jscc_frame`` (the JSCC wire format), ``metrics`` (PSNR, SSIM, token errors, …)
* ``dsp``      – ``channel_math`` (the channel of Eq. 2 for numpy and torch), ``ber_theory``,
  ``constellations``, ``audio_features``
* ``runtime``  – ``pdu_util``, ``frame_buffer``, ``onnx_session``, ``model_store``,
  ``batching``, ``worker``, ``droplog``, ``args``, ``sessions``, ``qt_display``
* ``apps``     – ``demo``, ``flowgraph_runner``, ``link_sim`` (``python -m gnuradio.unitocom.apps.<name>``)
* ``data``     – the CLEVR-style corpus; ``baselines`` – separate source/channel coding; ``models`` – ONNX files
"""
from .ber_meter import ber_meter
from .block_fading_channel import block_fading_channel
from .dsp.constellations import qam16_gray
from .csi_equalizer import csi_equalizer
from .detokenizer import detokenizer
from .image_display import image_display
from .image_sink import image_sink
from .jscc_decoder import jscc_decoder
from .jscc_encoder import jscc_encoder
from .mllm_client import mllm_client
from .ofdm_deframer import ofdm_deframer
from .ofdm_framer import ofdm_framer
from .ofdm_rx import ofdm_rx
from .ofdm_tx import ofdm_tx
from .power_normalizer import power_normalizer
from .result_display import result_display
from .rx import rx
from .sample_source import sample_source
from .scene_source import scene_source
from .soft_demapper import soft_demapper
from .tokenizer import tokenizer
from .tx import tx

__all__ = ["ber_meter", "block_fading_channel", "csi_equalizer", "detokenizer", "image_display", "image_sink", "jscc_decoder", "jscc_encoder",
           "mllm_client", "power_normalizer", "result_display",
           "ofdm_deframer", "ofdm_framer", "ofdm_rx", "ofdm_tx", "qam16_gray", "rx", "sample_source", "scene_source", "soft_demapper", "tokenizer", "tx"]
