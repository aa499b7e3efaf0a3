"""The JSCC frame format, written once for numpy and torch (like ``channel_math``).

The encoder T gives, per frame, ``symbols`` (S, K, 2): up to K complex
symbols per token as (I, Q), of which the first ``rate`` are sent. On the
air a frame is N = S·rate complex symbols, *importance first*: symbol 0 of
every token, then symbol 1 of every token, …, so a shorter frame is a
prefix-free truncation of a longer one.

The decoder R takes, per frame, the MMSE-equalised symbols
x̂ = h*·y/(|h|² + σ²) and each symbol's reliability r = |h|²/(|h|² + σ²)
(both laid out (S, K), zero where not sent), plus snr_db and rate. The GNU
Radio decoder builds them from CSI tags, training from the genie CSI of
``onnx_export.channel``; both call ``receive`` here, which is
``channel_math.equalize(..., 'mmse')``.

Only arithmetic that numpy arrays and torch tensors share is used; array
creation comes in from the caller (``zeros(shape)``).
"""
from ..dsp import channel_math as cm


def frame_order(symbols, rate):
    """(S, K, 2) symbols of one frame → the N = S·rate complex stream, importance first."""
    z = symbols[:, :rate, 0] + 1j * symbols[:, :rate, 1]
    return z.T.reshape(-1)


def unframe(stream, n_tokens, rate):
    """The N = n_tokens·rate stream (or per-symbol values) back to (S, rate), token by token."""
    return stream.reshape(rate, n_tokens).T


def receive(y, h, noise_var):
    """(x̂, reliability) per received symbol: MMSE equalisation with the CSI (h, σ²), signal power 1."""
    x_hat, gain, _ = cm.equalize(y, h, noise_var, "mmse")
    return x_hat, gain.real


def decoder_input(y, h, noise_var, n_tokens, rate, k_max, zeros):
    """What R takes for one frame of N = n_tokens·rate received symbols ``y``.

    ``h`` and ``noise_var`` broadcast against ``y`` (a scalar or one per
    symbol). Returns ``symbols`` (S, K, 2) and ``reliability`` (S, K), zero
    past ``rate``; ``zeros(shape)`` makes a float32 array of the caller's backend."""
    x_hat, rel = receive(y, h, noise_var)
    rel = rel + 0 * y.real                         # one reliability per symbol, also when h and σ² are scalars
    x_hat, rel = unframe(x_hat, n_tokens, rate), unframe(rel, n_tokens, rate)
    symbols, reliability = zeros((n_tokens, k_max, 2)), zeros((n_tokens, k_max))
    symbols[:, :rate, 0], symbols[:, :rate, 1] = x_hat.real, x_hat.imag
    reliability[:, :rate] = rel
    return symbols, reliability
