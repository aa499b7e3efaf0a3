"""The channel is written once: numpy (GNU Radio) and torch (training) agree."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from gnuradio.unitocom import block_fading_channel  # noqa: E402
from gnuradio.unitocom.dsp import channel_math as cm  # noqa: E402
from onnx_export import channel as tch  # noqa: E402
from unitocom_testing import run_chain, tag_values  # noqa: E402


class Recorded:
    """Hands out the same standard normals to the numpy and torch paths."""

    def __init__(self, seed, as_torch):
        self.rng = np.random.default_rng(seed)
        self.as_torch = as_torch

    def __call__(self, shape):
        draw = self.rng.standard_normal(shape).astype(np.float32)
        return torch.from_numpy(draw) if self.as_torch else draw


@pytest.mark.parametrize("channel_type,k", [("awgn", 0.0), ("rayleigh", 0.0), ("rician", 3.0)])
def test_same_draws_give_the_same_channel(channel_type, k):
    shape = (64, 1)
    h_np = cm.draw_fading(Recorded(1, False), shape, channel_type, k)
    h_t = cm.draw_fading(Recorded(1, True), shape, channel_type, k)
    np.testing.assert_allclose(h_t.numpy(), h_np, rtol=1e-6, atol=1e-7)

    z = (np.random.default_rng(2).standard_normal((64, 32)) * (1 + 1j)).astype(np.complex64)
    snr = np.linspace(-5, 20, 64, dtype=np.float32).reshape(-1, 1)
    nv_np, nv_t = cm.noise_variance(snr), cm.noise_variance(torch.from_numpy(snr))
    noise_np = cm.complex_normal(Recorded(3, False), z.shape)
    noise_t = cm.complex_normal(Recorded(3, True), z.shape)
    y_np = cm.apply_channel(z, h_np, nv_np, noise_np)
    y_t = cm.apply_channel(torch.from_numpy(z), h_t, nv_t, noise_t)
    np.testing.assert_allclose(y_t.numpy(), y_np, rtol=1e-5, atol=1e-6)
    for method in cm.EQUALIZER_METHODS:
        for a, b in zip(cm.equalize(y_t, h_t, nv_t, method), cm.equalize(y_np, h_np, nv_np, method)):
            np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-4, atol=1e-6)


def test_torch_channel_statistics_match_the_block():
    gen = torch.Generator().manual_seed(0)
    z = torch.zeros(40_000, 16, dtype=torch.complex64)
    y, h, nv = tch.fading_channel(z, 10.0, "rayleigh", generator=gen)
    assert abs(torch.mean(torch.abs(y) ** 2).item() / 0.1 - 1) < 0.02
    assert abs(torch.mean(torch.abs(h) ** 2).item() - 1) < 0.02
    assert y.dtype == torch.complex64 and h.shape == (40_000, 1)
    # the GNU Radio block, same nominal values
    blk = block_fading_channel("rayleigh", 10.0, 16, seed=0)
    y_gr, tags = run_chain(np.zeros(40_000 * 16, np.complex64), [], blk)
    h_gr = np.array([v for _, v in tag_values(tags, "h")])
    assert abs(np.mean(np.abs(y_gr) ** 2) / 0.1 - 1) < 0.02
    assert abs(np.mean(np.abs(h_gr) ** 2) - 1) < 0.02


def test_torch_channel_random_snr_per_row_and_zf_recovers():
    gen = torch.Generator().manual_seed(1)
    z = torch.exp(1j * torch.rand(8, 1000, generator=gen) * 6.28).to(torch.complex64)
    snr = torch.tensor([-5.0, 0, 5, 10, 15, 20, 60, 60])
    y, h, nv = tch.fading_channel(z, snr, "rayleigh", generator=gen)
    x_hat, gain, eff = tch.equalize(y, h, nv, "zf")
    assert torch.all(torch.isfinite(x_hat))
    err = torch.mean(torch.abs(x_hat - z) ** 2, dim=1)
    assert torch.all(err[-2:] < 1e-4)                   # 60 dB rows come back
    np.testing.assert_allclose(nv.squeeze().numpy(), 10 ** (-snr.numpy() / 10), rtol=1e-5)


def test_training_link_gives_the_decoder_what_the_block_gives_it():
    # the JSCC decoder's input: training (jscc.model.link, torch) and the GNU Radio decoder
    # (core.jscc_frame.decoder_input, numpy, on the frame-ordered stream) from the same y, h, σ²
    from gnuradio.unitocom.core import jscc_frame
    from onnx_export.jscc import model as jm
    b, s, k = 3, 5, 8
    symbols = torch.randn(b, s, k, 2, generator=torch.Generator().manual_seed(0))
    snr, rate = torch.tensor([-5.0, 5.0, 20.0]), torch.tensor([2.0, 4.0, 8.0])
    x_hat, rel = jm.link(symbols, snr, rate, "rayleigh", generator=torch.Generator().manual_seed(1))
    z = torch.complex(symbols[..., 0], symbols[..., 1]).reshape(b, s * k)
    y, h, nv = tch.fading_channel(z, snr, "rayleigh", generator=torch.Generator().manual_seed(1))
    for i in range(b):
        r = int(rate[i])
        stream = y[i].reshape(s, k)[:, :r].T.reshape(-1).numpy()            # importance first, as on the air
        h_i, nv_i = np.complex128(h[i, 0].item()), np.float64(nv[i, 0].item())
        sym, reliability = jscc_frame.decoder_input(stream.astype(np.complex128), h_i, nv_i, s, r, k,
                                                    lambda shape: np.zeros(shape, np.float32))
        np.testing.assert_allclose(x_hat[i].numpy(), sym, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(rel[i].numpy(), reliability, rtol=1e-5, atol=1e-6)
