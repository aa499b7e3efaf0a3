"""Helpers for the OFDM tests: synthetic JSCC frames through ofdm_tx, an impaired channel, ofdm_rx."""
import numpy as np
import pmt
from gnuradio import blocks, channels, gr

from unitocom_testing import make_tag, run_flowgraph
from gnuradio.unitocom.ofdm.params import OfdmParams

MODEL_ID = "image_jscc_encoder_s32-genib-246013fd"


def jscc_frames(n, n_tokens=32, rate=8, seed=0, first_id=0, session_id=0xC0FFEE, task="vqa", modality="image"):
    """(list of unit-power complex frames, stream tags as tx writes them)."""
    rng = np.random.default_rng(seed)
    frames, tags, off = [], [], 0
    for i in range(n):
        k = n_tokens * rate
        z = ((rng.standard_normal(k) + 1j * rng.standard_normal(k)) / np.sqrt(2)).astype(np.complex64)
        frames.append(z)
        for key, value in (("packet_len", k), ("modality", pmt.intern(modality)), ("rate", rate),
                           ("n_tokens", n_tokens), ("frame_id", first_id + i), ("session_id", session_id),
                           ("task", pmt.intern(task)), ("model_id", pmt.intern(MODEL_ID))):
            tags.append(make_tag(off, key, value))
        off += k
    return frames, tags


def transmit(frames, tags, tx_block):
    """Bursts (list of arrays) out of ``tx_block`` (an ofdm_tx) for the given tagged frames."""
    tb = gr.top_block()
    src = blocks.vector_source_c(np.concatenate(frames).tolist(), False, 1, tags)
    snk = blocks.vector_sink_c()
    tb.connect(src, tx_block, snk)
    run_flowgraph(tb, 60)
    y = np.array(snk.data(), np.complex64)
    starts = sorted(t.offset for t in snk.tags() if pmt.symbol_to_string(t.key) == "packet_len")
    return [y[a:b] for a, b in zip(starts, starts[1:] + [len(y)])]


def channel(x, snr_db=30.0, cfo=0.0, sro_ppm=0.0, taps=(1.0,), seed=1, params=None):
    p = params or OfdmParams()
    tb = gr.top_block()
    src, snk = blocks.vector_source_c(np.asarray(x, np.complex64)), blocks.vector_sink_c()
    chan = channels.channel_model(p.noise_voltage_for_snr(snr_db), cfo / p.fft_len, 1.0 + sro_ppm * 1e-6,
                                  list(taps), seed, False)
    tb.connect(src, chan, snk)
    run_flowgraph(tb, 60)
    return np.array(snk.data(), np.complex64)


def receive(x, rx_block, n_outputs=1):
    """[(samples, tags as (offset, key, python value))] per output of ``rx_block`` (an ofdm_rx)."""
    tb = gr.top_block()
    src = blocks.vector_source_c(np.asarray(x, np.complex64))
    sinks = [blocks.vector_sink_c() for _ in range(n_outputs)]
    tb.connect(src, rx_block)
    for i, s in enumerate(sinks):
        tb.connect((rx_block, i), s)
    run_flowgraph(tb, 60)
    return [(np.array(s.data(), np.complex64),
             [(t.offset, pmt.symbol_to_string(t.key), pmt.to_python(t.value)) for t in s.tags()]) for s in sinks]


def noise(n, seed=0):
    rng = np.random.default_rng(seed)
    return ((rng.standard_normal(n) + 1j * rng.standard_normal(n)) * 0.05).astype(np.complex64)
