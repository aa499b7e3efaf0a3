"""Small Transformer pieces written out so that they export cleanly to ONNX
(plain matmuls, softmax and LayerNorm; no fused kernels).

Shared by every torch model of the project: the tokenizers
(``tokenizers.image``, ``tokenizers.audio``) stack ``Stack``; the JSCC
(``jscc.model``) interleaves ``Block`` with its SNR/rate modulation. All
take and return token sequences (B, N, width), float32.
"""
import math

import torch
from torch import nn


class Attention(nn.Module):
    """Multi-head self-attention over a sequence: (B, N, dim) → (B, N, dim); ``dim`` must divide by ``heads``."""

    def __init__(self, dim, heads):
        super().__init__()
        if dim % heads:
            raise ValueError(f"width {dim} is not divisible by {heads} heads")
        self.heads = heads
        self.head_dim = dim // heads
        self.scale = 1.0 / math.sqrt(self.head_dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)

    def forward(self, x):
        """x (B, N, dim) → every position attended over all N, (B, N, dim)."""
        b, n, d = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4).unbind(0)
        att = torch.softmax((q @ k.transpose(-2, -1)) * self.scale, dim=-1)
        return self.out((att @ v).transpose(1, 2).reshape(b, n, d))


class Block(nn.Module):
    """Pre-norm Transformer block: x + Attn(LN(x)); x + MLP(LN(x))."""

    def __init__(self, dim, heads, mlp_ratio=4):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, mlp_ratio * dim), nn.GELU(), nn.Linear(mlp_ratio * dim, dim))

    def forward(self, x):
        """x (B, N, dim) → (B, N, dim), one attention and one MLP residual step."""
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class Stack(nn.Module):
    """``depth`` pre-norm ``Block``s and a final LayerNorm: (B, N, dim) → (B, N, dim)."""

    def __init__(self, dim, depth, heads):
        super().__init__()
        self.blocks = nn.ModuleList(Block(dim, heads) for _ in range(depth))
        self.norm = nn.LayerNorm(dim)

    def forward(self, x):
        """x (B, N, dim) → the normalised output of the last block, (B, N, dim)."""
        for blk in self.blocks:
            x = blk(x)
        return self.norm(x)
