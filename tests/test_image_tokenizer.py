"""Image tokenizer/de-tokenizer: shapes, batch independence, objectives, token
channel and ONNX export with parity (on small, untrained networks)."""
import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from onnx_export import export  # noqa: E402
from onnx_export.tokenizers import genib  # noqa: E402
from onnx_export.tokenizers.image import ImageDetokenizer, ImageTokenizer  # noqa: E402

SMALL = dict(width=32, depth=1, heads=2)


def nets(n_tokens=16, token_dim=8, vae=False):
    torch.manual_seed(0)
    return (ImageTokenizer(n_tokens, token_dim, vae=vae, **SMALL),
            ImageDetokenizer(n_tokens, token_dim, **SMALL))


@pytest.mark.parametrize("n_tokens", [16, 32, 64, 128])
def test_shapes_for_every_token_count(n_tokens):
    tok, det = nets(n_tokens)
    x = torch.rand(3, 3, 64, 64)
    mu = tok(x)
    assert mu.shape == (3, n_tokens, 8)
    img = det(mu).detach()
    assert img.shape == x.shape and float(img.min()) >= 0 and float(img.max()) <= 1


def test_batch_independence():
    tok, det = nets()
    tok.eval(), det.eval()
    x = torch.rand(4, 3, 64, 64)
    with torch.no_grad():
        together = det(tok(x))
        alone = torch.cat([det(tok(x[i:i + 1])) for i in range(4)])
    torch.testing.assert_close(together, alone, rtol=1e-4, atol=1e-5)


def test_objectives_are_finite_and_train():
    torch.manual_seed(1)     # smooth images: learnable structure, unlike white noise
    x = torch.nn.functional.interpolate(torch.rand(8, 3, 4, 4), size=64, mode="bilinear", align_corners=False)
    for vae in (False, True):
        tok, det = nets(vae=vae)
        opt = torch.optim.AdamW(list(tok.parameters()) + list(det.parameters()), lr=3e-3)
        losses = []
        for _ in range(25):
            loss, parts = (genib.vae_loss(tok, det, x) if vae else genib.genib_loss(tok, det, x, k=2))
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
        assert all(np.isfinite(losses)) and all(np.isfinite(list(parts.values())))
        assert losses[-1] < 0.7 * losses[0], (vae, losses[0], losses[-1])


def test_genib_kl_gradient_reaches_only_mu():
    # σ is fixed: d KL / d μ = μ, so the KL gradient on the tokenizer output is ξ·μ/(S·d)
    mu = torch.randn(2, 4, 6, requires_grad=True)
    kl = genib.kl_to_standard_normal(mu, torch.full_like(mu, 0.3))
    kl.backward()
    torch.testing.assert_close(mu.grad, mu.detach() / 2)


def test_token_channel_is_transparent_at_high_snr_and_finite_at_low():
    t = torch.randn(4, 16, 8)
    gen = torch.Generator().manual_seed(0)
    out = genib.token_channel(t, 80.0, "rayleigh", generator=gen)
    torch.testing.assert_close(out, t, rtol=1e-3, atol=1e-3)
    low = genib.token_channel(t, -5.0, "rayleigh", generator=gen)
    assert torch.all(torch.isfinite(low)) and low.shape == t.shape
    awgn = genib.token_channel(t, 10.0, "awgn", generator=gen)
    rel = torch.mean((awgn - t) ** 2) / torch.mean(t ** 2)
    assert 0.07 < rel.item() < 0.13          # σ² = P/10 relative to the mean token power


@pytest.mark.parametrize("vae", [False, True])
def test_onnx_export_metadata_and_parity(tmp_path, vae):
    tok, det = nets(vae=vae)
    x = torch.rand(2, 3, 64, 64)
    meta = {"role": "tokenizer", "modality": "image", "token_len": "16", "token_dim": "8", "n_symbols": "64",
            "train_data": "none (test)", "train_metrics": json.dumps({})}
    outs = ["tokens", "logvar"] if vae else ["tokens"]
    path = export.export(tok, x, "image", outs, meta, tmp_path, "image_tokenizer", "vae" if vae else "genib")
    assert path.name.startswith("image_tokenizer-") and path.suffix == ".onnx"
    props = export.metadata(path)
    for key in ("unitocom.schema", "role", "modality", "token_len", "token_dim", "n_symbols", "version",
                "train_data", "train_metrics", "io_names"):
        assert key in props
    assert export.check_parity(tok, path, torch.rand(3, 3, 64, 64))     # another batch size
    dpath = export.export(det, tok(x)[0] if vae else tok(x), "tokens", ["image"], dict(meta, role="detokenizer"),
                          tmp_path, "image_detokenizer", "genib")
    assert export.check_parity(det, dpath, torch.randn(5, 16, 8))


def test_card_scores_are_the_former_torch_formulas():
    # the tokenizer card's PSNR/SSIM now come from core.metrics (numpy); they are the formulas the
    # torch evaluation used before (PSNR over all pixels, SSIM with a 7×7 box window, valid positions),
    # here in float64 so that only the old float32 rounding (≤ 2e-5) is left out
    from onnx_export.tokenizers.tasks import image_scores
    gen = torch.Generator().manual_seed(0)
    x = torch.nn.functional.interpolate(torch.rand(4, 3, 8, 8, generator=gen), size=64, mode="bilinear")
    y = (x + 0.05 * torch.randn(x.shape, generator=gen)).clamp(0, 1)
    x64, y64 = x.double(), y.double()
    psnr = 10 * torch.log10(1.0 / torch.mean((x64 - y64) ** 2, dim=(1, 2, 3)).clamp_min(1e-10))
    pool = lambda t: torch.nn.functional.avg_pool2d(t, 7, 1)   # noqa: E731
    mx, my = pool(x64), pool(y64)
    vx, vy, cxy = pool(x64 * x64) - mx ** 2, pool(y64 * y64) - my ** 2, pool(x64 * y64) - mx * my
    c1, c2 = 0.01 ** 2, 0.03 ** 2
    ssim = (((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx ** 2 + my ** 2 + c1) * (vx + vy + c2))).mean(dim=(1, 2, 3))
    scores = image_scores(y, x)
    assert scores.shape == (4, 2)
    np.testing.assert_allclose(scores[:, 0], psnr.numpy(), rtol=0, atol=1e-9)
    np.testing.assert_allclose(scores[:, 1], ssim.numpy(), rtol=0, atol=1e-9)
