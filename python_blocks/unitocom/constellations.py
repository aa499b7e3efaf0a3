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
