"""The receiver's multimodal LLM of Sec. IV: one causal Transformer, an LM head (Eq. 15–16) and a
per-token diffusion head (Eq. 17–19).

Inputs are packed sequences as ``gnuradio.unitocom.mllm.layout`` defines
them (ids, continuous tokens, kinds, positions, key mask):

* discrete ids (corpus vocabulary + the control tokens ``<boi>``, ``<eoi>``,
  ``<boa>``, ``<eoa>``, ``<vqa>``, ``<t2i>``, ``<asr>``) through an embedding;
* image and audio tokens (d = 16) standardised with the training set's
  per-dimension mean and std (buffers ``image_mean`` …, set by the trainer
  with ``set_token_stats``) and projected to D by one linear map per modality;
* plus a learned absolute position embedding (positions are passed in, so a
  left-padded generation batch sees the same positions as right-padded
  training);
* L pre-norm causal blocks (``layers.Block`` with masked attention and a
  key/value cache), a final LayerNorm → h_i.

``lm_head`` maps h_i to logits over the corpus vocabulary (V = 64; control
tokens are never predicted). ``head`` is ε_ψ(cʳ, r, h_i): a small MLP of
residual blocks modulated by adaptive LayerNorm (shift, scale, gate from the
sum of an embedding of the step r and a projection of h_i; MAR-style), in
the standardised token space; its output layer and gates start at zero.

Key/value cache: ``forward(..., past=kv, cache=True)`` takes and returns
``kv`` of shape (B, L, 2, H, T, D/H) (batch first, like every graph input); with a past of T_p positions, the
``mask`` covers all T_p + T keys and new query i sits at key T_p + i.
"""
import dataclasses
import json
import math

import torch
from torch import nn

from gnuradio.unitocom.mllm import layout, schedule

from .. import layers

NEG = -1e9                    # additive attention bias of a hidden key (finite: a row of pads gives no NaN)


@dataclasses.dataclass
class Config:
    """Sizes of the MLLM. The defaults are the few-million-parameter model this machine trains."""
    dim: int = 256                    # D
    depth: int = 4                    # L
    heads: int = 4
    mlp_ratio: int = 4
    max_len: int = 256                # positions (prompt + generated)
    token_dim: int = layout.TOKEN_DIM
    image_tokens: int = layout.IMAGE_TOKENS
    head_width: int = 256             # diffusion MLP width
    head_depth: int = 3               # diffusion MLP residual blocks
    freq_dim: int = 128               # sinusoidal step-embedding size
    schedule: str = "linear"
    diffusion_steps: int = 1000       # R
    noise_draws: int = 4              # K draws of (r, ε) per continuous token per training step

    def to_json(self):
        """The config as a JSON string (sorted keys)."""
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text):
        """Inverse of ``to_json``."""
        return cls(**json.loads(text))


def attention_bias(mask, n_new):
    """(B, 1, n_new, T_k) additive bias: 0 where new query i may see key j, else NEG.

    Query i sits at key index T_k − n_new + i; it sees keys j ≤ that index with mask[j] = 1."""
    t_k = mask.shape[1]
    keys = torch.arange(t_k, device=mask.device)
    queries = torch.arange(n_new, device=mask.device) + (t_k - n_new)
    allowed = (keys[None, :] <= queries[:, None])[None] & (mask[:, None, :] > 0.5)
    return torch.where(allowed, torch.zeros((), dtype=torch.float32, device=mask.device),
                       torch.full((), NEG, device=mask.device))[:, None]


class CausalAttention(layers.Attention):
    """``layers.Attention`` with an additive bias and an optional key/value cache."""

    def forward(self, x, bias, past=None):
        """x (B, T, D), bias (B, 1, T, T_k), past (B, 2, H, T_p, D/H) or None.

        Returns (B, T, D) and (k, v), each (B, H, T_k, D/H)."""
        b, n, d = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4).unbind(0)
        if past is not None:
            k, v = torch.cat([past[:, 0], k], 2), torch.cat([past[:, 1], v], 2)
        att = torch.softmax((q @ k.transpose(-2, -1)) * self.scale + bias, dim=-1)
        return self.out((att @ v).transpose(1, 2).reshape(b, n, d)), (k, v)


class CausalBlock(layers.Block):
    """``layers.Block`` (pre-norm attention + MLP) with causal masked attention and a cache."""

    def __init__(self, dim, heads, mlp_ratio=4):
        super().__init__(dim, heads, mlp_ratio)
        self.attn = CausalAttention(dim, heads)

    def forward(self, x, bias, past=None):
        """x (B, T, D) → (B, T, D) and this layer's (k, v)."""
        a, kv = self.attn(self.norm1(x), bias, past)
        x = x + a
        return x + self.mlp(self.norm2(x)), kv


def step_embedding(r, dim):
    """Sinusoidal embedding of diffusion steps ``r`` (N,) int → (N, dim) (cos, sin at geometric frequencies)."""
    half = dim // 2
    freqs = torch.exp(torch.arange(half, dtype=torch.float32, device=r.device) * (-math.log(10000.0) / half))
    args = r.to(torch.float32)[:, None] * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


class AdaLNBlock(nn.Module):
    """x + gate · MLP(LN(x)·(1 + scale) + shift), (shift, scale, gate) from the condition c; gate starts at 0."""

    def __init__(self, width):
        super().__init__()
        self.norm = nn.LayerNorm(width, elementwise_affine=False, eps=1e-6)
        self.mlp = nn.Sequential(nn.Linear(width, width), nn.SiLU(), nn.Linear(width, width))
        self.ada = nn.Sequential(nn.SiLU(), nn.Linear(width, 3 * width))
        nn.init.zeros_(self.ada[1].weight)
        nn.init.zeros_(self.ada[1].bias)

    def forward(self, x, c):
        """x, c (N, width) → (N, width)."""
        shift, scale, gate = self.ada(c).chunk(3, dim=-1)
        return x + gate * self.mlp(self.norm(x) * (1 + scale) + shift)


class DiffusionHead(nn.Module):
    """ε_ψ(cʳ, r, h): noisy token (N, d), step r (N,) int64 in 1 … R, hidden state (N, D) → ε̂ (N, d)."""

    def __init__(self, token_dim, cond_dim, width=256, depth=3, freq_dim=128):
        super().__init__()
        self.freq_dim = freq_dim
        self.inp = nn.Linear(token_dim, width)
        self.time = nn.Sequential(nn.Linear(freq_dim, width), nn.SiLU(), nn.Linear(width, width))
        self.cond = nn.Linear(cond_dim, width)
        self.blocks = nn.ModuleList(AdaLNBlock(width) for _ in range(depth))
        self.final_norm = nn.LayerNorm(width, elementwise_affine=False, eps=1e-6)
        self.final_ada = nn.Sequential(nn.SiLU(), nn.Linear(width, 2 * width))
        self.out = nn.Linear(width, token_dim)
        for lin in (self.final_ada[1], self.out):
            nn.init.zeros_(lin.weight)
            nn.init.zeros_(lin.bias)

    def forward(self, x, r, h):
        """x (N, d), r (N,), h (N, D) → ε̂ (N, d)."""
        c = self.time(step_embedding(r, self.freq_dim)) + self.cond(h)
        x = self.inp(x)
        for blk in self.blocks:
            x = blk(x, c)
        shift, scale = self.final_ada(c).chunk(2, dim=-1)
        return self.out(self.final_norm(x) * (1 + scale) + shift)


class MLLM(nn.Module):
    """The causal Transformer with its LM head and diffusion head (see the module docstring)."""

    def __init__(self, config=None):
        super().__init__()
        self.config = cfg = config or Config()
        if cfg.dim % cfg.heads:
            raise ValueError(f"dim {cfg.dim} is not divisible by {cfg.heads} heads")
        self.embed_ids = nn.Embedding(layout.N_IDS, cfg.dim)
        self.embed_pos = nn.Embedding(cfg.max_len, cfg.dim)
        self.proj_image = nn.Linear(cfg.token_dim, cfg.dim)
        self.proj_audio = nn.Linear(cfg.token_dim, cfg.dim)
        for name in ("image", "audio"):
            self.register_buffer(f"{name}_mean", torch.zeros(cfg.token_dim))
            self.register_buffer(f"{name}_std", torch.ones(cfg.token_dim))
        self.blocks = nn.ModuleList(CausalBlock(cfg.dim, cfg.heads, cfg.mlp_ratio) for _ in range(cfg.depth))
        self.norm = nn.LayerNorm(cfg.dim)
        self.lm_head = nn.Linear(cfg.dim, layout.VOCAB)
        self.head = DiffusionHead(cfg.token_dim, cfg.dim, cfg.head_width, cfg.head_depth, cfg.freq_dim)
        for m in (self.embed_ids, self.embed_pos):
            nn.init.normal_(m.weight, std=0.02)
        self.schedule = schedule.make(cfg.schedule, cfg.diffusion_steps)

    def set_token_stats(self, modality, mean, std):
        """Set the per-dimension mean and std (d,) of a modality's training tokens (inputs are standardised)."""
        getattr(self, f"{modality}_mean").copy_(torch.as_tensor(mean, dtype=torch.float32))
        getattr(self, f"{modality}_std").copy_(torch.as_tensor(std, dtype=torch.float32).clamp_min(1e-6))

    def standardise(self, tokens, modality="image"):
        """Raw tokens (…, d) → the standardised space the diffusion head works in."""
        return (tokens - getattr(self, f"{modality}_mean")) / getattr(self, f"{modality}_std")

    def embed(self, ids, cont, kind, pos):
        """T⁰: (B, T) ids, (B, T, d) tokens, (B, T) kinds and positions → (B, T, D)."""
        text = (kind == layout.KIND_TEXT).unsqueeze(-1).to(torch.float32)
        image = (kind == layout.KIND_IMAGE).unsqueeze(-1).to(torch.float32)
        audio = (kind == layout.KIND_AUDIO).unsqueeze(-1).to(torch.float32)
        x = self.embed_ids(ids) * text + self.proj_image(self.standardise(cont, "image")) * image \
            + self.proj_audio(self.standardise(cont, "audio")) * audio
        return x + self.embed_pos(pos)

    def forward(self, ids, cont, kind, pos, mask, past=None, cache=False):
        """Hidden states h = Norm(T^L) (B, T, D), and with ``cache`` the kv cache (B, L, 2, H, T_p + T, D/H).

        ``mask`` (B, T_p + T) marks real keys (1) and pads (0); ``past`` is the
        cache of the T_p earlier positions (or None)."""
        x = self.embed(ids, cont, kind, pos)
        bias = attention_bias(mask, x.shape[1])
        kvs = []
        for i, blk in enumerate(self.blocks):
            x, (k, v) = blk(x, bias, None if past is None else past[:, i])
            if cache:
                kvs.append(torch.stack([k, v], 1))
        h = self.norm(x)
        return (h, torch.stack(kvs, 1)) if cache else h

    def parameter_counts(self):
        """{'transformer', 'lm_head', 'diffusion_head', 'total'}: parameter counts."""
        head = sum(p.numel() for p in self.head.parameters())
        lm = sum(p.numel() for p in self.lm_head.parameters())
        total = sum(p.numel() for p in self.parameters())
        return {"transformer": total - head - lm, "lm_head": lm, "diffusion_head": head, "total": total}
