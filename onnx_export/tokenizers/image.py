"""Image tokenizer F_α and de-tokenizer F_β with 1-D latent tokens.

Tokenizer: a convolutional stem cuts the 64×64 image into an 8×8 grid of
patch features; S learnable latent queries are appended and a Transformer
runs over [patches; latents]; the S latent outputs are projected to d
dimensions: μ = F_α(x), shape (B, S, d). Because the latents are separate
queries (not the patch grid), S ∈ {16, 32, 64, 128} all work with one design.

De-tokenizer: the S tokens are projected up, 64 learnable patch queries are
appended, a Transformer runs over [tokens; queries] and each query becomes
an 8×8×3 patch; a 3×3 convolution smooths the seams and a sigmoid gives
pixels in [0, 1]. The VAE variant adds a log-variance head to the tokenizer.
"""
import torch
from torch import nn

from ..layers import Stack

IMAGE_SIZE = 64
PATCH = 8
GRID = IMAGE_SIZE // PATCH


class ImageTokenizer(nn.Module):
    """F_α for images: (B, 3, 64, 64) in [0, 1] → μ (B, S, d), plus log σ² (B, S, d) with ``vae``.

    S = ``n_tokens``, d = ``token_dim``; Transformer ``width``, ``depth``, ``heads``."""

    def __init__(self, n_tokens=32, token_dim=16, width=128, depth=4, heads=4, vae=False):
        super().__init__()
        self.n_tokens, self.token_dim, self.vae = n_tokens, token_dim, vae
        self.stem = nn.Sequential(nn.Conv2d(3, width // 2, 3, stride=2, padding=1), nn.GELU(),
                                  nn.Conv2d(width // 2, width, PATCH // 2, stride=PATCH // 2))
        self.pos = nn.Parameter(torch.randn(1, GRID * GRID, width) * 0.02)
        self.latents = nn.Parameter(torch.randn(1, n_tokens, width) * 0.02)
        self.transformer = Stack(width, depth, heads)
        self.to_mu = nn.Linear(width, token_dim)
        self.to_logvar = nn.Linear(width, token_dim) if vae else None

    def forward(self, image):
        """image (B, 3, 64, 64) in [0, 1] → μ (B, S, d) [, log σ² (B, S, d) for the VAE]."""
        patches = self.stem(image * 2 - 1).flatten(2).transpose(1, 2) + self.pos
        x = torch.cat([patches, self.latents.expand(image.shape[0], -1, -1)], dim=1)
        h = self.transformer(x)[:, -self.n_tokens:]
        mu = self.to_mu(h)
        return (mu, self.to_logvar(h)) if self.vae else mu


class ImageDetokenizer(nn.Module):
    """F_β for images: tokens (B, S, d) → image (B, 3, 64, 64) in [0, 1]; arguments as ``ImageTokenizer``."""

    def __init__(self, n_tokens=32, token_dim=16, width=128, depth=4, heads=4):
        super().__init__()
        self.n_tokens, self.token_dim = n_tokens, token_dim
        self.from_tokens = nn.Linear(token_dim, width)
        self.token_pos = nn.Parameter(torch.randn(1, n_tokens, width) * 0.02)
        self.queries = nn.Parameter(torch.randn(1, GRID * GRID, width) * 0.02)
        self.transformer = Stack(width, depth, heads)
        self.to_patch = nn.Linear(width, PATCH * PATCH * 3)
        self.refine = nn.Conv2d(3, 3, 3, padding=1)

    def forward(self, tokens):
        """tokens (B, S, d) → image (B, 3, 64, 64) in [0, 1]."""
        b = tokens.shape[0]
        x = torch.cat([self.from_tokens(tokens) + self.token_pos, self.queries.expand(b, -1, -1)], dim=1)
        p = self.to_patch(self.transformer(x)[:, self.n_tokens:])              # (B, 64, 8·8·3)
        img = p.reshape(b, GRID, GRID, PATCH, PATCH, 3).permute(0, 5, 1, 3, 2, 4)
        img = img.reshape(b, 3, IMAGE_SIZE, IMAGE_SIZE)
        return torch.sigmoid(img + self.refine(img))
