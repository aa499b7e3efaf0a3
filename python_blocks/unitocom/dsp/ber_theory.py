"""Closed-form bit error rates used to check the simulated link.

Gray-mapped square 16-QAM is two Gray 4-PAM rails. With half the minimum
distance d and noise σ² = N0/2 per rail, (d/σ)² = (4/5)·Eb/N0 and the exact
bit error rate is

    Pb = ¾·Q(d/σ) + ½·Q(3d/σ) − ¼·Q(5d/σ).

For Rayleigh block fading (E|h|² = 1, coherent detection with known h) each
term is averaged over the exponential SNR with the standard result
E[Q(a·√γ)] = ½·(1 − √(c/(1+c))), c = a²·γ̄/2.
"""
import math

import numpy as np

_QAM16_TERMS = ((1, 0.75), (3, 0.5), (5, -0.25))   # (multiple of d, weight)


def q_function(x):
    """Gaussian tail probability Q(x)."""
    return 0.5 * math.erfc(x / math.sqrt(2.0))


def ebn0_to_snr_db(ebn0_db, bits_per_symbol=4):
    """Es/N0 in dB (the channel blocks' snr_db for unit-power symbols)."""
    return ebn0_db + 10.0 * math.log10(bits_per_symbol)


def qam16_ber_awgn(ebn0_db):
    """Exact BER of Gray 16-QAM over AWGN at Eb/N0 = ``ebn0_db``."""
    ratio = math.sqrt(0.8 * 10.0 ** (ebn0_db / 10.0))
    return sum(w * q_function(k * ratio) for k, w in _QAM16_TERMS)


def qam16_ber_rayleigh(ebn0_db):
    """Exact BER of Gray 16-QAM over Rayleigh block fading with perfect CSI."""
    ebn0 = 10.0 ** (ebn0_db / 10.0)
    total = 0.0
    for k, w in _QAM16_TERMS:
        c = 0.8 * k * k * ebn0 / 2.0
        total += w * 0.5 * (1.0 - math.sqrt(c / (1.0 + c)))
    return total


def qam16_ber(channel_type, ebn0_db):
    """BER for 'awgn' or 'rayleigh' (vectorised over ``ebn0_db``)."""
    table = {"awgn": qam16_ber_awgn, "rayleigh": qam16_ber_rayleigh}
    if channel_type not in table:
        raise ValueError(f"no closed form for channel_type {channel_type!r}; use 'awgn' or 'rayleigh'")
    return np.vectorize(table[channel_type], otypes=[float])(ebn0_db)
