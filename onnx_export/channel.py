"""The channel of Eq. (2) on torch tensors, for training with the channel in
the loop (Algorithm 1). It calls the very lines the GNU Radio blocks use
(``channel_math``), so training and the flowgraph see the same channel.
"""
import importlib.util
import pathlib

import torch

try:
    from gnuradio.unitocom.dsp import channel_math as cm
except ImportError:          # a training machine without GNU Radio: load the file itself
    _path = pathlib.Path(__file__).resolve().parent.parent / "python_blocks" / "unitocom" / "dsp" / "channel_math.py"
    _spec = importlib.util.spec_from_file_location("unitocom_channel_math", _path)
    cm = importlib.util.module_from_spec(_spec)
    _spec.loader.exec_module(cm)


def torch_normal(generator=None, device=None, dtype=torch.float32):
    """``normal(shape)`` for channel_math: standard normal reals as a tensor."""
    return lambda shape: torch.randn(shape, generator=generator, device=device, dtype=dtype)


def fading_channel(z, snr_db, channel_type="rayleigh", k_factor=0.0, signal_power=1.0, generator=None):
    """Block fading over each batch row: one h per row, one SNR per row.

    Args:
        z: complex tensor (B, N) of transmitted symbols.
        snr_db: a float, or a tensor (B,) for a random SNR per sample.
    Returns:
        (y, h, noise_var): y (B, N) complex; h (B, 1) complex; noise_var (B, 1).
    The receiver gets (h, noise_var) as genie CSI, like the GNU Radio tags.
    """
    real = z.real.dtype
    normal = torch_normal(generator, z.device, real)
    h = cm.draw_fading(normal, (z.shape[0], 1), channel_type, k_factor).to(z.dtype)
    snr = torch.as_tensor(snr_db, dtype=real, device=z.device).reshape(-1, 1)
    noise_var = cm.noise_variance(snr, signal_power)
    y = cm.apply_channel(z, h, noise_var, cm.complex_normal(normal, tuple(z.shape)))
    return y, h, noise_var


def equalize(y, h, noise_var, method="zf", signal_power=1.0):
    """``channel_math.equalize`` on tensors: (x_hat, gain, eff_noise_var)."""
    return cm.equalize(y, h, noise_var, method, signal_power)
