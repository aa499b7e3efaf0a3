"""The channel of Eq. (2), written once for numpy and torch.

    ẑ = h·z + n,    n ~ CN(0, σ²),   σ² = P · 10^(−SNR/10)

Every function here uses only arithmetic that numpy arrays and torch tensors
(and Python scalars) share: ``+ - * / **``, ``.real``, ``.imag``, ``.conj()``
and broadcasting. No module is imported, so the GNU Radio blocks (numpy) and
the training code in ``onnx_export`` (torch) call the very same lines.
Random numbers come in from the caller: ``normal(shape)`` must return an
array/tensor of independent standard normal reals of the caller's backend.

SNR convention: ``snr_db`` is the ratio of the *nominal* transmit power P
(``signal_power``) to the noise power σ² per complex sample, i.e. Es/N0 for
a unit-energy symbol stream. With block fading E|h|² = 1, so it is also the
average received SNR.
"""

CHANNEL_TYPES = ("awgn", "rayleigh", "rician")

#: SNRs (dB) that blocks accept as arguments, control messages or CSI tags.
#: Outside it σ² under- or overflows float32 arithmetic long before it means
#: anything physical; values beyond are refused (constructors) or dropped
#: and logged (messages, tags).
SNR_DB_MIN, SNR_DB_MAX = -50.0, 100.0
EQUALIZER_METHODS = ("zf", "mmse")

#: Guards ZF/MMSE divisions against an (improbable) exact zero gain.
_TINY = 1e-30


def check_channel_type(channel_type):
    """Return the canonical channel name or raise ValueError."""
    name = str(channel_type).lower()
    if name not in CHANNEL_TYPES:
        raise ValueError(
            f"channel_type must be one of {', '.join(CHANNEL_TYPES)}; got {channel_type!r}")
    return name


def check_snr_db(snr_db, name="snr_db"):
    """``snr_db`` as a float, or ValueError unless it is a number in [SNR_DB_MIN, SNR_DB_MAX]."""
    try:
        value = float(snr_db)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number of dB; got {snr_db!r}") from None
    if not SNR_DB_MIN <= value <= SNR_DB_MAX:
        raise ValueError(f"{name} must be between {SNR_DB_MIN:g} and {SNR_DB_MAX:g} dB; got {snr_db!r}")
    return value


def noise_variance(snr_db, signal_power=1.0):
    """σ² = P · 10^(−snr_db/10). Works on scalars, arrays and tensors."""
    return signal_power * 10.0 ** (-snr_db / 10.0)


def fading_parts(channel_type, k_factor=0.0):
    """(line-of-sight amplitude, scatter amplitude) with E|h|² = 1.

    awgn: (1, 0); rayleigh: (0, 1); rician with K: (√(K/(K+1)), √(1/(K+1))).
    """
    channel_type = check_channel_type(channel_type)
    if channel_type == "awgn":
        return 1.0, 0.0
    if channel_type == "rayleigh":
        return 0.0, 1.0
    if k_factor < 0:
        raise ValueError(f"k_factor must be >= 0 for a Rician channel; got {k_factor}")
    return (k_factor / (k_factor + 1.0)) ** 0.5, (1.0 / (k_factor + 1.0)) ** 0.5


def complex_normal(normal, shape):
    """CN(0, 1) samples: (a + j·b)/√2 from two standard normal draws."""
    return (normal(shape) + 1j * normal(shape)) * 0.5 ** 0.5


def draw_fading(normal, shape, channel_type, k_factor=0.0):
    """Block-fading gains h of the given shape (one per frame/coherence block).

    The same number of normal draws is taken for every channel type, so a
    seed gives the same noise sequence whether the channel is AWGN or not.
    """
    los, scatter = fading_parts(channel_type, k_factor)
    return los + scatter * complex_normal(normal, shape)


def apply_channel(z, h, noise_var, unit_noise):
    """ẑ = h·z + √σ² · n̄ with n̄ ~ CN(0,1) given (``unit_noise``, shape of z).

    ``h`` and ``noise_var`` broadcast against ``z`` (a scalar, one per sample,
    or one per batch row for training)."""
    return h * z + noise_var ** 0.5 * unit_noise


def abs2(x):
    """|x|² without a square root."""
    return x.real * x.real + x.imag * x.imag


def equalize(y, h, noise_var, method="zf", signal_power=1.0):
    """One-tap equalizer for ẑ = h·z + n.

    Returns ``(x_hat, gain, eff_noise_var)`` such that
    ``x_hat = gain · z + w`` with ``E|w|² = eff_noise_var``:

    * ``zf``:   x̂ = y·h*/|h|²;               gain 1, σ_w² = σ²/|h|²
    * ``mmse``: x̂ = y·h*/(|h|² + σ²/P);      gain |h|²/(|h|²+σ²/P) (biased),
      σ_w² = |h|²σ²/(|h|²+σ²/P)²
    """
    if method not in EQUALIZER_METHODS:
        raise ValueError(f"method must be one of {', '.join(EQUALIZER_METHODS)}; got {method!r}")
    g2 = abs2(h)
    if method == "zf":
        denom = g2 + _TINY
        return y * h.conj() / denom, 1.0 + 0.0 * g2, noise_var / denom
    denom = g2 + noise_var / signal_power + _TINY
    return y * h.conj() / denom, g2 / denom, g2 * noise_var / (denom * denom)
