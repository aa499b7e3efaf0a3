"""Audio tokenizer F_α and de-tokenizer F_β over log-mel spectrograms.

Input: the scaled log-mel of ``gnuradio.unitocom.dsp.audio_features.log_mel``
(64 mels, 100 frames/s), shape (B, 64, T) with T a multiple of 4. Two
stride-2 convolutions bring it to 25 tokens per second, a Transformer mixes
them over time, and a linear layer gives d-dimensional tokens: μ = F_α(x),
shape (B, T/4, d). The de-tokenizer mirrors it (Transformer, two stride-2
transposed convolutions) back to (B, 64, T). Waveforms come back through
``audio_features.griffin_lim``. The VAE variant adds a log-variance head.
"""
from torch import nn

from ..layers import Stack

N_MELS = 64
STRIDE = 4                     # mel frames per token: 100 frames/s → 25 tokens/s


class AudioTokenizer(nn.Module):
    """F_α for audio: scaled log-mel (B, 64, T), T a multiple of 4 → μ (B, T/4, d), plus log σ² with ``vae``.

    d = ``token_dim``; Transformer ``width``, ``depth``, ``heads``."""

    def __init__(self, token_dim=16, width=128, depth=2, heads=4, vae=False):
        super().__init__()
        self.token_dim, self.vae = token_dim, vae
        self.convs = nn.Sequential(
            nn.Conv1d(N_MELS, width, 3, padding=1), nn.GELU(),
            nn.Conv1d(width, width, 4, stride=2, padding=1), nn.GELU(),
            nn.Conv1d(width, width, 4, stride=2, padding=1), nn.GELU())
        self.transformer = Stack(width, depth, heads)
        self.to_mu = nn.Linear(width, token_dim)
        self.to_logvar = nn.Linear(width, token_dim) if vae else None

    def forward(self, mel):
        """mel (B, 64, T) → μ (B, T/4, d) [, log σ² for the VAE]."""
        h = self.transformer(self.convs(mel).transpose(1, 2))
        mu = self.to_mu(h)
        return (mu, self.to_logvar(h)) if self.vae else mu


class AudioDetokenizer(nn.Module):
    """F_β for audio: tokens (B, T/4, d) → scaled log-mel (B, 64, T); arguments as ``AudioTokenizer``."""

    def __init__(self, token_dim=16, width=128, depth=2, heads=4):
        super().__init__()
        self.token_dim = token_dim
        self.from_tokens = nn.Linear(token_dim, width)
        self.transformer = Stack(width, depth, heads)
        self.deconvs = nn.Sequential(
            nn.ConvTranspose1d(width, width, 4, stride=2, padding=1), nn.GELU(),
            nn.ConvTranspose1d(width, width, 4, stride=2, padding=1), nn.GELU(),
            nn.Conv1d(width, N_MELS, 3, padding=1))

    def forward(self, tokens):
        """tokens (B, T/4, d) → log-mel (B, 64, T)."""
        return self.deconvs(self.transformer(self.from_tokens(tokens)).transpose(1, 2))
