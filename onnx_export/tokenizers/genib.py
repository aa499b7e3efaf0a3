"""The σ-GenIB objective (Eq. 13–14), the VAE baseline, and the token channel.

σ-GenIB, for μ = F_α(x) and a *fixed* σ per sample, σ ~ N(0, C_σ) (its
magnitude is used):

    L = ξ·KL(N(μ, σ²) ‖ N(0, I)) + λ·(1/K)·Σ_k D(F_β(t_k), x) + (1 − λ)·D(F_β(μ), x),
    t_k = μ + σ ⊙ ε_k,  ε_k ~ N(0, I)

with the reconstruction "CE" D = mean squared error for images and log-mel
spectra. Since σ is not learned, the KL term's gradient only reaches μ
(ξ·μ per dimension); its value is reported in full. The VAE baseline learns
log σ² with the same networks and minimises the standard ELBO,
ξ·KL(N(μ, σ²) ‖ N(0, I)) + D(F_β(μ + σ ⊙ ε), x).

Channel in the loop (Algorithm 1, steps 7–8): ``token_channel`` maps tokens
to complex symbols with a fixed linear mapping (dimension pairs → I/Q),
normalises each sample to unit power, sends them through the project's
channel (``channel_math`` via ``onnx_export.channel``), equalises with
genie CSI (ZF) and maps back. [4/7] replaces the fixed mapping by the JSCC.
"""
import torch
import torch.nn.functional as F

from .. import channel as ch

KL_CLAMP = 1e-4


def kl_to_standard_normal(mu, var):
    """KL(N(μ, var) ‖ N(0, I)) summed over token dims, averaged over the batch."""
    var = var.clamp_min(KL_CLAMP)
    return 0.5 * (var + mu ** 2 - 1 - torch.log(var)).flatten(1).sum(1).mean()


def token_channel(tokens, snr_db, channel_type="rayleigh", generator=None):
    """tokens (B, S, d), d even → tokens after a fixed-mapping link over the channel.

    Dimension pairs become I/Q, each sample is scaled to unit power, sent through
    ``channel.fading_channel`` at ``snr_db`` (a float or (B,)) with ``channel_type``,
    ZF-equalised with the genie CSI and scaled back."""
    b, s, d = tokens.shape
    pairs = tokens.reshape(b, s * d // 2, 2)
    z = torch.complex(pairs[..., 0].float(), pairs[..., 1].float())
    scale = torch.sqrt(torch.mean(torch.abs(z) ** 2, dim=1, keepdim=True).clamp_min(1e-12))
    y, h, nv = ch.fading_channel(z / scale, snr_db, channel_type, generator=generator)
    x_hat, _, _ = ch.equalize(y, h, nv, "zf")
    x_hat = x_hat * scale
    return torch.stack([x_hat.real, x_hat.imag], dim=-1).reshape(b, s, d)


def genib_loss(tokenizer, detokenizer, x, xi=1e-3, lam=0.5, k=2, c_sigma=0.25, channel=None):
    """σ-GenIB loss and its parts for a batch ``x`` (what ``tokenizer`` takes and ``detokenizer`` gives back).

    ``xi`` ξ, ``lam`` λ, ``k`` K samples, ``c_sigma`` C_σ; ``channel``: None, or a function
    tokens → received tokens (the link). Returns (scalar loss tensor,
    {"kl", "mse_stochastic", "mse_deterministic"} as floats)."""
    mu = tokenizer(x)
    sigma = torch.randn(x.shape[0], 1, 1, device=x.device).mul(c_sigma ** 0.5).abs()
    kl = kl_to_standard_normal(mu, (sigma ** 2).expand_as(mu))
    link = channel or (lambda t: t)
    stochastic = sum(F.mse_loss(detokenizer(link(mu + sigma * torch.randn_like(mu))), x) for _ in range(k)) / k
    deterministic = F.mse_loss(detokenizer(link(mu)), x)
    loss = xi * kl / mu[0].numel() + lam * stochastic + (1 - lam) * deterministic
    return loss, {"kl": kl.item(), "mse_stochastic": stochastic.item(), "mse_deterministic": deterministic.item()}


def vae_loss(tokenizer, detokenizer, x, xi=1e-3, channel=None):
    """The VAE baseline's ELBO (learned variance) for a batch ``x``: ``tokenizer`` returns (μ, log σ²).

    Returns (scalar loss tensor, {"kl", "mse"} as floats); ``channel`` as in ``genib_loss``."""
    mu, logvar = tokenizer(x)
    t = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
    kl = kl_to_standard_normal(mu, torch.exp(logvar))
    rec = F.mse_loss(detokenizer((channel or (lambda v: v))(t)), x)
    return xi * kl / mu[0].numel() + rec, {"kl": kl.item(), "mse": rec.item()}
