"""ofdm_rx: baseband samples → JSCC frames with estimated CSI tags (what ``rx`` takes)."""
from gnuradio import blocks, digital, gr

from .core import tags as tagkeys
from .ofdm_deframer import ofdm_deframer
from .runtime.args import check_float


class ofdm_rx(gr.hier_block2):
    """OFDM receiver for ``ofdm_tx`` bursts.

    Input: complex64 baseband (a UHD source, or a channel model). Outputs:
    one complex64 stream of JSCC frames per entry of ``outputs``, routed by
    the header's modality, each frame with the length tag, the header's
    fields as frame tags (``frame_id``, ``modality``, ``n_tokens``,
    ``rate``, ``session_id``, ``task``, ``model_id``…) and the *estimated*
    CSI (``snr_db``, ``noise_var`` and ``h``, the channel of each symbol:
    one vector tag per frame, or with ``csi_tags='symbol'`` one complex
    tag per symbol as ``block_fading_channel`` writes it), so
    ``rx``/``jscc_decoder`` decode it unchanged and the per-frame SNR estimate ends up in the token PDU's
    ``snr_db`` (and ``snr_est_db``).

    gr-digital's ``ofdm_sync_sc_cfb`` detects frames (Schmidl & Cox);
    ``ofdm_deframer`` (new) refines timing on the LTS, corrects the CFO,
    decodes the header and estimates channel and noise from the LTS pair,
    the header and the pilots. It replaces the stock header/payload demux,
    header parser and ``ofdm_frame_equalizer_vcvc``: the DFE equaliser
    slices each carrier to a constellation point (which destroys analog
    JSCC symbols), the stock chain drops packets on S&C timing jitter
    (GNU Radio issue #6891), the header blocks have known faults (#6575),
    and nothing there estimates the noise. ``stats()`` counts detections,
    delivered frames and every kind of drop.

    Args:
        fft_len, cp_len, occupied_carriers, pilot_carriers: as ``ofdm_tx``.
        outputs: modalities, one output each (e.g. ['image', 'text']).
        sync_threshold: S&C metric threshold of the detector (0.3…0.99; lower finds frames at lower SNR).
        len_tag_key: length tag name of the outputs.
        csi_tags: 'frame' (default: one c64vector ``h`` tag per frame, N gains, what ``rx`` reads
            fastest) or 'symbol' (one complex ``h`` tag per symbol, for blocks that read scalar ``h``
            only, e.g. ``csi_equalizer``); ``rx`` decodes both identically.
    """

    def __init__(self, fft_len=64, cp_len=16, occupied_carriers=(), pilot_carriers=(), outputs=("image",),
                 sync_threshold=0.4, len_tag_key=tagkeys.DEFAULT_LEN_TAG_KEY, csi_tags="frame"):
        outputs = [outputs] if isinstance(outputs, str) else list(outputs)
        threshold = check_float("sync_threshold", sync_threshold, 0.3, 0.99)
        self.deframer = ofdm_deframer(fft_len, cp_len, occupied_carriers, pilot_carriers, outputs, len_tag_key,
                                      csi_tags)
        p = self.params = self.deframer.params
        gr.hier_block2.__init__(self, "ofdm_rx", gr.io_signature(1, 1, gr.sizeof_gr_complex),
                                gr.io_signature(len(outputs), len(outputs), gr.sizeof_gr_complex))
        self.sync = digital.ofdm_sync_sc_cfb(p.fft_len, p.cp_len, False, threshold)
        self.connect(self, (self.deframer, 0))
        self.connect(self, self.sync)
        self.connect((self.sync, 0), blocks.null_sink(gr.sizeof_float))     # CFO: the deframer measures its own
        self.connect((self.sync, 1), (self.deframer, 1))
        for i in range(len(outputs)):
            self.connect((self.deframer, i), (self, i))

    def stats(self):
        return self.deframer.stats()
