"""The over-the-air link in simulation: ``tx`` → ``ofdm_tx`` → impairments → ``ofdm_rx`` → ``rx``.

Three steps, each its own small flowgraph so that tests and scripts can
place the impairments exactly (random gaps, garbage bursts, cut frames):

* ``transmit(images)`` — image PDUs through ``tx`` and ``ofdm_tx``: the
  baseband bursts, one per image;
* ``impair(bursts, …)`` — bursts laid out in numpy (random timing offset,
  gaps, garbage), then GNU Radio's ``channels.channel_model`` (noise,
  carrier frequency offset, sampling-rate offset, multipath taps);
* ``receive(samples)`` — ``ofdm_rx`` → ``rx``: image PDUs and the
  receiver's counters.

``genie(images, snr_db)`` is the reference: ``tx`` → ``block_fading_channel``
(AWGN, the decoder gets the true CSI) → ``rx`` at the same SNR.
``python -m gnuradio.unitocom.apps.ota_loopback`` prints one comparison.
"""
import argparse
import dataclasses

import numpy as np
import pmt
from gnuradio import blocks, channels, gr

from ..block_fading_channel import block_fading_channel
from ..core import metrics
from ..core.modalities import IMAGE_SHAPE
from ..data import corpus
from ..ofdm.params import OfdmParams
from ..ofdm_rx import ofdm_rx
from ..ofdm_tx import ofdm_tx
from ..runtime import pdu_util
from ..rx import rx
from ..tx import tx

#: The verification's multipath: 3 taps (delays 0, 2, 5 samples), unit energy.
TAPS = np.array([0.85, 0, 0.45j, 0, 0, -0.25], np.complex64) / np.sqrt(0.85 ** 2 + 0.45 ** 2 + 0.25 ** 2)
LEN_KEY = "packet_len"


class _Publisher(gr.sync_block):
    """Publishes a list of PDUs in its first work() call, then ends (the flowgraph ends with it)."""

    def __init__(self, pdus):
        gr.sync_block.__init__(self, name="ota_pdu_source", in_sig=None, out_sig=[np.uint8])
        self._pdus = pdus
        self.message_port_register_out(pmt.intern("out"))

    def work(self, input_items, output_items):
        for msg in self._pdus:
            self.message_port_pub(pmt.intern("out"), msg)
        return -1


class _Collector(gr.basic_block):
    def __init__(self):
        gr.basic_block.__init__(self, name="ota_collector", in_sig=None, out_sig=None)
        self.pdus = []
        self.message_port_register_in(pmt.intern("in"))
        self.set_msg_handler(pmt.intern("in"), self._store)

    def _store(self, msg):
        self.pdus.append((pmt.to_python(pmt.car(msg)), np.asarray(pmt.to_python(pmt.cdr(msg)))))


def scenes(n, first=0, split="test"):
    """n corpus test images (u8, 64×64×3)."""
    return [corpus.scene_image(split, first + i, 0) for i in range(n)]


def image_pdus(images, first_id=0, session_id=0, task=""):
    extra = {"task": task} if task else {}
    return [pdu_util.make(pdu_util.with_items(pmt.make_dict(), frame_id=first_id + i, session_id=session_id,
                                              **extra), np.asarray(img, np.uint8).ravel())
            for i, img in enumerate(images)]


def transmit(images, rate=8, snr_db=15.0, params=None, first_id=0):
    """(list of bursts as complex64 arrays, one per image) from ``tx`` → ``ofdm_tx``."""
    p = params or OfdmParams()
    tb = gr.top_block()
    src, t = _Publisher(image_pdus(images, first_id, session_id=0xC0FFEE, task="vqa")), tx("image", rate=rate,
                                                                                      snr_db=snr_db, device="cpu")
    o = ofdm_tx(p.fft_len, p.cp_len, p.data_carriers.tolist(), p.pilot_carriers.tolist())
    snk = blocks.vector_sink_c()
    tb.msg_connect(src, "out", t, "pdu")
    tb.connect(src, blocks.null_sink(gr.sizeof_char))
    tb.connect(t, o, snk)
    tb.run()
    y = np.array(snk.data(), np.complex64)
    starts = sorted(tg.offset for tg in snk.tags() if pmt.symbol_to_string(tg.key) == LEN_KEY)
    return [y[a:b] for a, b in zip(starts, starts[1:] + [len(y)])]


@dataclasses.dataclass
class Impairments:
    snr_db: float = 15.0
    cfo: float = 0.1                 # carrier spacings
    sro_ppm: float = 20.0
    taps: tuple = tuple(TAPS)
    max_gap: int = 200               # random silence between bursts (samples)
    garbage_every: int = 0           # a burst of random samples before every k-th frame (0 = none)
    cut_every: int = 0               # every k-th frame cut short (0 = none)
    seed: int = 0


def true_snr_db(imp, params):
    """Mean in-band SNR over the active carriers for the multipath taps at ``imp.snr_db`` on a unit channel."""
    h = np.fft.fftshift(np.fft.fft(np.asarray(imp.taps), params.fft_len))[params.active_idx]
    return imp.snr_db + 10 * np.log10(np.mean(np.abs(h) ** 2))


def impair(bursts, imp, params=None):
    """(received samples, {frame index: 'ok' | 'cut'}) after laying out the bursts and the channel model."""
    p = params or OfdmParams()
    rng = np.random.default_rng(imp.seed)
    parts, kinds = [np.zeros(int(rng.integers(300, 1300)), np.complex64)], {}
    for i, b in enumerate(bursts):
        if imp.garbage_every and i % imp.garbage_every == 0:
            g = rng.integers(200, 2000)
            parts.append(((rng.normal(size=g) + 1j * rng.normal(size=g)) * 0.7).astype(np.complex64))
        if imp.cut_every and i % imp.cut_every == imp.cut_every - 1:
            parts.append(b[:int((len(b) - 2 * p.sym_len) * rng.uniform(0.5, 0.9))])     # inside the frame, not its gap
            kinds[i] = "cut"
        else:
            parts.append(b)
            kinds[i] = "ok"
        parts.append(np.zeros(int(rng.integers(0, imp.max_gap + 1)), np.complex64))
    parts.append(np.zeros(4 * p.sym_len + 2000, np.complex64))
    x = np.concatenate(parts)
    frac = rng.uniform(0, 1)                                   # fractional timing offset
    spec = np.fft.fft(x)
    x = np.fft.ifft(spec * np.exp(-2j * np.pi * np.fft.fftfreq(len(x)) * frac)).astype(np.complex64)
    tb = gr.top_block()
    src, snk = blocks.vector_source_c(x), blocks.vector_sink_c()
    taps = np.asarray(imp.taps, np.complex64)
    noise = p.noise_voltage_for_snr(imp.snr_db)
    chan = channels.channel_model(noise, imp.cfo / p.fft_len, 1.0 + imp.sro_ppm * 1e-6, taps.tolist(),
                                  int(rng.integers(1, 1 << 30)), False)
    tb.connect(src, chan, snk)
    tb.run()
    return np.array(snk.data(), np.complex64), kinds


def receive(samples, params=None):
    """(image PDUs as (meta, u8 array), ofdm_rx counters) from ``ofdm_rx`` → ``rx``."""
    p = params or OfdmParams()
    tb = gr.top_block()
    src = blocks.vector_source_c(samples)
    o = ofdm_rx(p.fft_len, p.cp_len, p.data_carriers.tolist(), p.pilot_carriers.tolist(), ["image"])
    r, col = rx("image", device="cpu"), _Collector()
    tb.connect(src, o, r)
    tb.msg_connect(r, "pdu", col, "in")
    tb.run()
    return col.pdus, o.stats()


def genie(images, snr_db, rate=8, seed=0, chunk=100):
    """Image PDUs through tx → block_fading_channel (AWGN, genie CSI) → rx (``chunk`` images per flowgraph)."""
    if len(images) > chunk:
        return [item for i in range(0, len(images), chunk)
                for item in _genie(images[i:i + chunk], snr_db, rate, seed + i, i)]
    return _genie(images, snr_db, rate, seed, 0)


def _genie(images, snr_db, rate, seed, first_id):
    tb = gr.top_block()
    src = _Publisher(image_pdus(images, first_id))
    t, r, col = tx("image", rate=rate, snr_db=snr_db, device="cpu"), rx("image", device="cpu"), _Collector()
    tb.msg_connect(src, "out", t, "pdu")
    tb.connect(src, blocks.null_sink(gr.sizeof_char))
    chan = block_fading_channel("awgn", snr_db, 0, 0.0, 1.0, seed, LEN_KEY)     # keep a reference while it runs
    tb.connect(t, chan, r)
    tb.msg_connect(r, "pdu", col, "in")
    tb.run()
    return col.pdus


def psnrs(pdus, images, first_id=0):
    """{frame_id: PSNR} of received image PDUs against the sent images."""
    out = {}
    for meta, img in pdus:
        i = int(meta["frame_id"]) - first_id
        out[int(meta["frame_id"])] = float(metrics.psnr(img.reshape(IMAGE_SHAPE), images[i]))
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-images", type=int, default=24)
    ap.add_argument("--snr-db", type=float, nargs="+", default=[15.0])
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    images = scenes(args.n_images)
    bursts = transmit(images)
    for snr in args.snr_db:
        imp = Impairments(snr_db=snr, seed=args.seed)
        got, stats = receive(impair(bursts, imp)[0])
        est = psnrs(got, images)
        ref = psnrs(genie(images, snr, seed=args.seed), images)
        snr_err = [m["snr_db"] - true_snr_db(imp, OfdmParams()) for m, _ in got]
        print(f"snr {snr:5.1f} dB: {len(got)}/{len(images)} frames, SNR estimate error mean {np.mean(snr_err):+.2f} "
              f"max |{np.max(np.abs(snr_err)):.2f}| dB, PSNR estimated CSI {np.mean(list(est.values())):.2f} dB, "
              f"genie {np.mean(list(ref.values())):.2f} dB, stats {stats}")


if __name__ == "__main__":
    main()
