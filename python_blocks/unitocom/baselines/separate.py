"""Separate source and channel coding for images: JPEG + gr-fec LDPC + 16-QAM, and its capacity bound.

The reference the UniToCom image link is compared against, with the same
number of complex channel uses ``n_symbols`` per image and the same channel
(one block-fading coefficient h per image, unit symbol power, the receiver
knows h and the SNR):

* ``ldpc``: JPEG at the best quality whose bits fit the codewords of the
  gr-fec LDPC code that carries the most info bits in 4·n_symbols coded bits
  (:func:`ldpc.best_fit`), Gray 16-QAM, exact LLRs, sum-product decoding. An
  image whose codewords fail their parity checks (or that will not decode as
  JPEG) is lost, and the receiver shows its fallback picture.
* ``capacity``: an ideal code at Shannon capacity: JPEG at the best quality
  that fits n_symbols·log2(1 + |h|²·SNR) bits, delivered without error.

JPEG (Pillow, baseline, standard tables, 4:2:0) sends only its entropy-coded
scan: the header is fixed by the quality and the image size, so the receiver
rebuilds it; the quality (7 bits) and the scan length (12 bits) are sent.
When not even quality 1 fits, the image is not sent and the receiver shows
the fallback picture too (by default the mean training image).
"""
import functools
import io

import numpy as np
from PIL import Image

from ..core import metrics
from ..dsp import channel_math
from ..dsp.constellations import bit_labels, llrs, qam16_gray
from . import ldpc

SIDE_BITS = 7 + 12          # quality 1..100, scan length in bytes (< 4096)
QUALITIES = tuple(range(1, 96))


def _split_scan(buf):
    i = buf.index(b"\xff\xda")
    length = int.from_bytes(buf[i + 2:i + 4], "big")
    return buf[:i + 2 + length], buf[i + 2 + length:-2]


def jpeg_bytes(image, quality):
    """Pillow JPEG of a uint8 H×W×3 image: baseline, standard Huffman tables, 4:2:0."""
    out = io.BytesIO()
    Image.fromarray(np.asarray(image, np.uint8)).save(out, "JPEG", quality=int(quality), subsampling=2,
                                                       optimize=False, progressive=False)
    return out.getvalue()


@functools.lru_cache(maxsize=None)
def jpeg_header(quality, height, width):
    """The JPEG header up to the scan, which depends only on quality and size."""
    return _split_scan(jpeg_bytes(np.zeros((height, width, 3), np.uint8), quality))[0]


def jpeg_scan(image, quality):
    """The entropy-coded scan of ``image`` at ``quality`` (what is transmitted)."""
    header, scan = _split_scan(jpeg_bytes(image, quality))
    if header != jpeg_header(int(quality), *np.asarray(image).shape[:2]):
        raise RuntimeError("JPEG header depends on more than quality and size; cannot rebuild it")
    return scan


def jpeg_rebuild(scan, quality, height, width):
    """Decode a received scan with the rebuilt header: uint8 H×W×3, or None when it does not decode."""
    try:
        img = Image.open(io.BytesIO(jpeg_header(int(quality), height, width) + bytes(scan) + b"\xff\xd9"))
        out = np.asarray(img.convert("RGB"), np.uint8)
    except Exception:           # a corrupt scan: PIL raises OSError, SyntaxError, ...
        return None
    return out if out.shape == (height, width, 3) else None


class JpegLadder:
    """Every quality's scan size and PSNR for one image, computed once."""

    def __init__(self, image):
        self.image = np.asarray(image, np.uint8)
        self.scans = {q: jpeg_scan(self.image, q) for q in QUALITIES}
        self.bits = {q: SIDE_BITS + 8 * len(s) for q, s in self.scans.items()}
        self.psnr = {}
        for q, s in self.scans.items():
            rec = jpeg_rebuild(s, q, *self.image.shape[:2])
            self.psnr[q] = float(metrics.psnr(rec, self.image))

    def best_quality(self, budget_bits):
        """Highest quality whose transmission fits ``budget_bits`` (None if none does)."""
        fits = [q for q in QUALITIES if self.bits[q] <= budget_bits and len(self.scans[q]) < 4096]
        return max(fits) if fits else None


def _bits_of(q, scan):
    side = [(q >> i) & 1 for i in range(6, -1, -1)] + [(len(scan) >> i) & 1 for i in range(11, -1, -1)]
    return np.concatenate([np.array(side, np.uint8), np.unpackbits(np.frombuffer(bytes(scan), np.uint8))])


def _parse(bits):
    q = int("".join(map(str, bits[:7])), 2)
    n = int("".join(map(str, bits[7:19])), 2)
    body = bits[19:19 + 8 * n]
    if q < 1 or 8 * n > len(bits) - 19:
        return None, None
    return q, np.packbits(body).tobytes()


def fading(channel_type, rng):
    """One block-fading coefficient (complex), the channel layer's definition."""
    return complex(channel_math.draw_fading(rng.standard_normal, (1,), channel_type)[0])


def send_ldpc(ladder, n_symbols, snr_db, h, rng, fallback):
    """One image through JPEG + LDPC + 16-QAM with ``n_symbols`` channel uses: (received image, quality or None)."""
    name, n_blocks = ldpc.best_fit(4 * int(n_symbols))
    code = ldpc.code(name)
    q = ladder.best_quality(n_blocks * code.k)
    if q is None:
        return fallback, None
    info = np.zeros(n_blocks * code.k, np.uint8)
    payload = _bits_of(q, ladder.scans[q])
    info[:payload.size] = payload
    info[payload.size:] = rng.integers(0, 2, info.size - payload.size)
    coded = code.encode(info)
    constellation = qam16_gray()
    points, labels = np.array(constellation.points()), bit_labels(constellation)
    weights = 1 << np.arange(3, -1, -1)
    symbols = points[(coded.reshape(-1, 4) * weights).sum(axis=1)]
    noise_var = channel_math.noise_variance(snr_db)
    noise = np.sqrt(noise_var / 2) * (rng.standard_normal(symbols.size) + 1j * rng.standard_normal(symbols.size))
    y = h * symbols + noise
    # coherent receiver with perfect CSI: de-rotate, then exact LLRs with gain |h|
    y = y * np.conj(h) / max(abs(h), 1e-30)
    soft = llrs(y, points, labels, abs(h), noise_var).ravel()
    decoded, ok = code.decode(soft)
    if not ok.all():
        return fallback, None
    rq, scan = _parse(decoded)
    rec = None if rq is None else jpeg_rebuild(scan, rq, *ladder.image.shape[:2])
    return (fallback, None) if rec is None else (rec, rq)


def send_capacity(ladder, n_symbols, snr_db, h, fallback):
    """One image through an ideal capacity-achieving code: (received image, quality or None)."""
    budget = int(n_symbols * np.log2(1 + abs(h) ** 2 * 10 ** (snr_db / 10)))
    q = ladder.best_quality(budget)
    if q is None:
        return fallback, None
    return jpeg_rebuild(ladder.scans[q], q, *ladder.image.shape[:2]), q
