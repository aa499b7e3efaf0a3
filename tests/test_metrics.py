"""core.metrics against values worked out by hand."""
import numpy as np
import pytest

from unitocom_testing import ROOT  # noqa: F401

from gnuradio.unitocom.core import metrics


def test_psnr_of_a_known_error():
    a = np.zeros((8, 8, 3), np.uint8)
    b = np.full((8, 8, 3), 16, np.uint8)                                   # MSE 256
    assert metrics.psnr(a, b) == pytest.approx(10 * np.log10(255 ** 2 / 256))
    assert metrics.psnr(a / 255, b / 255, peak=1.0) == pytest.approx(10 * np.log10(255 ** 2 / 256))
    assert metrics.psnr(a, a) == pytest.approx(10 * np.log10(255 ** 2 / metrics.MSE_FLOOR))   # finite
    batch = metrics.psnr(np.stack([a, a]), np.stack([b, a]))
    assert batch.shape == (2,) and batch[0] == pytest.approx(metrics.psnr(a, b))


def test_ssim_is_one_for_identical_images_and_falls_with_noise():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (32, 32, 3)).astype(np.float64)
    assert metrics.ssim(img, img) == pytest.approx(1.0)
    noisy = np.clip(img + rng.normal(0, 40, img.shape), 0, 255)
    assert 0 < metrics.ssim(img, noisy) < 0.9


def test_token_error_rate_and_log_mel_l1():
    assert metrics.token_error_rate([1, 2, 3, 4], [1, 0, 3, 0]) == 0.5
    assert metrics.token_error_rate([], []) == 0.0
    assert metrics.log_mel_l1(np.zeros((2, 3)), np.full((2, 3), -0.25)) == 0.25


def test_shapes_must_agree():
    for f in (metrics.psnr, metrics.token_error_rate, metrics.log_mel_l1):
        with pytest.raises(ValueError, match="different shapes"):
            f(np.zeros(3), np.zeros(4))
