"""Log-mel features of 16 kHz speech, and a Griffin–Lim vocoder back to sound.

The same arithmetic runs in numpy (GNU Radio blocks) and torch (training:
``onnx_export.tokenizers.audio`` mirrors ``log_mel`` and is tested against
it): 25 ms Hann frames every 10 ms (n_fft 400, hop 160, centred with
reflection padding), power spectrum, ``N_MELS`` = 64 HTK-mel triangles from
0 to 8 kHz, natural log of (mel energy + 1e-6), scaled to roughly [-1, 1]
by ``(log − LOG_SHIFT) / LOG_SCALE``.

``griffin_lim`` turns a log-mel spectrogram back into a waveform (mel →
linear magnitude by non-negative least squares on the filterbank, then
phase recovery), so a person can listen to a reconstruction.
"""
import numpy as np

SAMPLE_RATE = 16000
N_FFT = 400
HOP = 160
N_MELS = 64
LOG_EPS = 1e-6
LOG_SHIFT = -4.0
LOG_SCALE = 6.0
SILENCE = float((np.log(LOG_EPS) - LOG_SHIFT) / LOG_SCALE)     # the scaled log-mel of digital silence


def hz_to_mel(f):
    return 2595.0 * np.log10(1.0 + np.asarray(f) / 700.0)


def mel_to_hz(m):
    return 700.0 * (10.0 ** (np.asarray(m) / 2595.0) - 1.0)


def mel_filterbank(n_mels=N_MELS, n_fft=N_FFT, rate=SAMPLE_RATE):
    """(n_mels, n_fft // 2 + 1) triangular HTK-mel filters, float32."""
    bins = np.linspace(0, rate / 2, n_fft // 2 + 1)
    edges = mel_to_hz(np.linspace(hz_to_mel(0), hz_to_mel(rate / 2), n_mels + 2))
    lo, mid, hi = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    up = (bins[None, :] - lo) / (mid - lo)
    down = (hi - bins[None, :]) / (hi - mid)
    return np.maximum(0, np.minimum(up, down)).astype(np.float32)


def frames(x, n_fft=N_FFT, hop=HOP):
    """Centred, reflection-padded frames (T, n_fft) of a 1-D float signal."""
    x = np.pad(np.asarray(x, np.float32), (n_fft // 2, n_fft // 2), mode="reflect")
    n = 1 + (len(x) - n_fft) // hop
    return np.lib.stride_tricks.as_strided(x, (n, n_fft), (x.strides[0] * hop, x.strides[0]))


def log_mel(audio):
    """float waveform in [-1, 1] (or int16) → scaled log-mel (N_MELS, T), float32."""
    x = np.asarray(audio)
    if x.dtype == np.int16:
        x = x.astype(np.float32) / 32768.0
    if len(x) <= N_FFT // 2:
        raise ValueError(f"audio of {len(x)} samples is too short (need > {N_FFT // 2})")
    window = np.hanning(N_FFT + 1)[:-1].astype(np.float32)
    spec = np.abs(np.fft.rfft(frames(x) * window, axis=1)) ** 2                   # (T, F)
    mel = spec.astype(np.float32) @ mel_filterbank().T                              # (T, M)
    return ((np.log(mel + LOG_EPS) - LOG_SHIFT) / LOG_SCALE).T.astype(np.float32)


def griffin_lim(logmel, iterations=32, seed=0):
    """Scaled log-mel (N_MELS, T) → float32 waveform at 16 kHz."""
    mel = np.exp(np.asarray(logmel, np.float64) * LOG_SCALE + LOG_SHIFT) - LOG_EPS
    fb = mel_filterbank().astype(np.float64)
    power = np.maximum(np.linalg.lstsq(fb, np.maximum(mel, 0), rcond=None)[0], 0)  # (F, T)
    mag = np.sqrt(power)
    window = np.hanning(N_FFT + 1)[:-1]
    rng = np.random.default_rng(seed)
    phase = np.exp(2j * np.pi * rng.random(mag.shape))
    n_out = (mag.shape[1] - 1) * HOP
    for _ in range(iterations):
        signal = _istft(mag * phase, window, n_out)
        phase = np.exp(1j * np.angle(np.fft.rfft(frames(signal) * window, axis=1).T[:, :mag.shape[1]]))
    return _istft(mag * phase, window, n_out).astype(np.float32)


def _istft(spec, window, n_out):
    pieces = np.fft.irfft(spec.T, n=N_FFT, axis=1) * window                        # (T, n_fft)
    total = N_FFT + HOP * (len(pieces) - 1)
    out, norm = np.zeros(total), np.zeros(total)
    for t, piece in enumerate(pieces):
        out[t * HOP:t * HOP + N_FFT] += piece
        norm[t * HOP:t * HOP + N_FFT] += window ** 2
    out /= np.maximum(norm, 1e-8)
    return out[N_FFT // 2:N_FFT // 2 + n_out]
