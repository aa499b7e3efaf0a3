"""ofdm_tx: JSCC frames → OFDM bursts (preamble, BPSK header, analog payload, pilots)."""
from gnuradio import blocks, digital, fft, gr, pdu

from .core import tags as tagkeys
from .ofdm_framer import MAX_PAYLOAD, ofdm_framer
from .runtime.args import check_int, check_name


class ofdm_tx(gr.hier_block2):
    """OFDM transmitter for UniToCom frames (the frame layout is in ``ofdm.params``).

    Inputs: ``n_inputs`` complex64 streams of JSCC frames as ``tx`` sends
    them (length tag + frame tags), e.g. an image and its question; each
    frame becomes one burst. Message in ``frames``: the same frames as c32
    PDUs (metadata = frame tags). GNU Radio 3.10 ends the framer at the first
    "done" of any input: with finite sources, use one input. Output: complex64 baseband, unit mean power
    during a burst, one length tag (``len_tag_key``) per burst, e.g. for a
    UHD sink's "TSB tag name" (burst mode).

    Built from gr-digital: ``ofdm_framer`` (header + payload symbols; new,
    because the stock header generator only carries a length and sequence
    number and slices a byte payload) → ``ofdm_carrier_allocator_cvc`` (S&C
    and LTS sync words, pilots) → ``fft_vcc`` (inverse) →
    ``ofdm_cyclic_prefixer`` (with raised-cosine ``rolloff``) → scaling →
    ``burst_shaper`` (``gap`` zeros after each burst).

    Args:
        fft_len: FFT size (power of two, 16…4096).
        cp_len: cyclic prefix in samples (1…fft_len/2).
        occupied_carriers: data carriers (list of ints, 0 = DC excluded); [] = 802.11a-like default.
        pilot_carriers: pilot carriers (list of ints); [] = default.
        rolloff: transmit roll-off in samples (0…cp_len−1; 0 = none).
        gap: zero samples after each burst (0…10⁶; ``digital.burst_shaper``), part of the burst:
            a receiver sees a frame's end before the stream ends, and a USRP ramps down in silence.
        n_inputs: number of frame streams (1…8).
        len_tag_key: length tag name at the inputs and of the output bursts.
    """

    def __init__(self, fft_len=64, cp_len=16, occupied_carriers=(), pilot_carriers=(), rolloff=2, gap=160,
                 n_inputs=1, len_tag_key=tagkeys.DEFAULT_LEN_TAG_KEY):
        n_inputs = check_int("n_inputs", n_inputs, 1, 8)
        gr.hier_block2.__init__(self, "ofdm_tx", gr.io_signature(n_inputs, n_inputs, gr.sizeof_gr_complex),
                                gr.io_signature(1, 1, gr.sizeof_gr_complex))
        key = check_name("len_tag_key", len_tag_key)
        self.framer = ofdm_framer(fft_len, cp_len, occupied_carriers, pilot_carriers, key)
        p = self.params = self.framer.params
        rolloff = check_int("rolloff", rolloff, 0, p.cp_len - 1)
        self.message_port_register_hier_in("frames")
        self.msg_connect(self, "frames", self.framer, "frames")
        self._to_pdu = []
        for i in range(n_inputs):
            buf = blocks.copy(gr.sizeof_gr_complex)            # a whole frame must fit the PDU maker's input
            buf.set_min_output_buffer(MAX_PAYLOAD)
            to_pdu = pdu.tagged_stream_to_pdu(gr.types.complex_t, key)
            self.connect((self, i), buf, to_pdu)
            self.msg_connect(to_pdu, "pdus", self.framer, "frames")
            self._to_pdu.append((buf, to_pdu))
        self.allocator = digital.ofdm_carrier_allocator_cvc(
            p.fft_len, (p.data_carriers.tolist(),), (p.pilot_carriers.tolist(),), p.pilot_symbols(),
            p.sync_words(), key, True)
        max_syms = p.n_preamble_symbols + p.n_header_symbols + p.payload_symbols(MAX_PAYLOAD) + 1
        self.allocator.set_min_output_buffer(max_syms)
        self.ifft = fft.fft_vcc(p.fft_len, False, (), True)
        self.ifft.set_min_output_buffer(max_syms)
        self.prefixer = digital.ofdm_cyclic_prefixer(p.fft_len, p.sym_len, rolloff, key)
        self.prefixer.set_min_output_buffer(max_syms * p.sym_len + p.cp_len)
        self.scale = blocks.multiply_const_cc(float(p.scale()))
        gap = check_int("gap", gap, 0, 1_000_000)
        self.shaper = digital.burst_shaper_cc([], 0, gap, False, key)
        self.shaper.set_min_output_buffer(max_syms * p.sym_len + p.cp_len + gap)
        self.connect(self.framer, self.allocator, self.ifft, self.prefixer, self.scale, self.shaper, self)

    def frames_out(self):
        return self.framer.frames_out
