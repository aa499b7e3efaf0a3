"""Constellations used by the link, built on gr-digital's constellation objects."""
import numpy as np
from gnuradio import digital
from gnuradio.digital import qam


def qam16_gray():
    """Square 16-QAM, Gray mapped, unit average power, as a gr-digital object.

    ``digital.constellation_16qam()`` is *not* Gray mapped (it is laid out
    for differential use), so the Gray labelling is taken from
    ``digital.qam.qam_constellation(16, mod_code='gray')`` and its points are
    scaled to E|s|² = 1. Symbol value i (bits b3b2b1b0, MSB first) maps to
    ``points()[i]``; it works with ``digital.constellation_encoder_bc`` and
    ``digital.constellation_decoder_cb``.
    """
    points = np.array(qam.qam_constellation(16, differential=False, mod_code="gray").points())
    points = points / np.sqrt(np.mean(np.abs(points) ** 2))
    spacing = float(2 / np.sqrt(10))           # distance between adjacent levels
    return digital.constellation_rect(list(points), [], 4, 4, 4, spacing, spacing,
                                      digital.constellation.POWER_NORMALIZATION)


def bit_labels(constellation):
    """(M, k) array of 0/1: bit j (MSB first) of each symbol value."""
    k = constellation.bits_per_symbol()
    values = np.arange(constellation.arity())
    return (values[:, None] >> np.arange(k - 1, -1, -1)[None, :]) & 1


def llrs(y, points, labels, gain, noise_var, max_log=False):
    """Soft bits for received samples ``y`` = gain·s + w, E|w|² = noise_var.

    Returns float32 of shape (len(y), k): log P(b=1|y) − log P(b=0|y), i.e.
    *positive means 1*, the sign convention of gr-digital's soft decoders
    (``digital.binary_slicer_fb`` turns it into bits). Exact log-sum-exp, or
    the max-log approximation. ``gain``/``noise_var``: scalars or per sample.
    """
    y = np.asarray(y, np.complex128)[:, None]
    gain = np.asarray(gain, np.float64).reshape(-1, 1)
    noise_var = np.maximum(np.asarray(noise_var, np.float64).reshape(-1, 1), 1e-30)
    d = np.abs(y - gain * points[None, :]) ** 2 / noise_var      # (n, M) metrics
    out = np.empty((len(y), labels.shape[1]), np.float32)
    for j in range(labels.shape[1]):
        d1, d0 = d[:, labels[:, j] == 1], d[:, labels[:, j] == 0]
        m1, m0 = d1.min(axis=1), d0.min(axis=1)
        value = m0 - m1
        if not max_log:
            value += (np.log(np.exp(-(d1 - m1[:, None])).sum(axis=1))
                      - np.log(np.exp(-(d0 - m0[:, None])).sum(axis=1)))
        out[:, j] = value
    return out
