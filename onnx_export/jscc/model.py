"""SNR- and rate-adaptive joint coding-modulation: encoder T and decoder R (Eq. 1–3).

Encoder T: tokens (B, S, d) — or text ids (B, L) through a learned
embedding — plus ``snr_db`` (B,) and ``rate`` (B,) → ``symbols``
(B, S, K, 2): up to K = ``k_max`` complex symbols per token as (I, Q).
Only the first ``rate`` symbols of each token are sent (the rest are
zero): the symbols are ordered by importance because training draws the
rate at random every step (nested truncation), so one model serves every
rate in ``RATES``. The power constraint is met exactly at the output:
(1/N)·Σ|z|² = P = 1 over the N = S·rate sent symbols of each sample.

Decoder R: MMSE-equalised symbols x̂ = h*·y / (|h|² + σ²) (B, S, K, 2)
and each symbol's reliability r = |h|² / (|h|² + σ²) (B, S, K) — both zero
for symbols that were not sent — plus ``snr_db`` and ``rate`` → token
estimates (B, S, d), or logits over the vocabulary (B, L, V) for text.
The receiver computes x̂ and r from the CSI it is told (h, snr_db tags in
GNU Radio; the genie values of ``onnx_export.channel`` in training), so R
sees equalised symbols *and* how much to trust each of them; fades that
change inside a frame are handled symbol by symbol.

SNR adaptation (SwinJSCC-style): after every Transformer block the
features are modulated channel-wise, h ← h·(1 + γ(c)) + β(c), with
c = (snr_db / 20, rate / K) through a small MLP.

Training and scoring (``train_jscc``, ``finetune_link``) run T → channel → R
with ``through_link``: ``link`` sends the symbols through the project's
channel (``onnx_export.channel``) and builds R's input with
``gnuradio.unitocom.core.jscc_frame.receive``, the function the GNU Radio
decoder calls. ``eval_grid`` is the grid of the model cards (``CHANNELS`` ×
``EVAL_SNRS`` × rates) with one fixed noise seed per point.
"""
import torch
from torch import nn

from gnuradio.unitocom.core import jscc_frame

from .. import channel as ch
from ..layers import Block

RATES = (2, 4, 8, 16)          # complex symbols per token a user can pick at run time
K_MAX = 16
CHANNELS = ("awgn", "rayleigh")           # block fading the JSCC is trained and scored on
EVAL_SNRS = (-5, 0, 5, 10, 15, 20)        # dB: the grid of the JSCC model cards


class Conditioner(nn.Module):
    """(snr_db, rate) → one (γ, β) pair per block."""

    def __init__(self, width, n_blocks, k_max):
        super().__init__()
        self.k_max, self.n = k_max, n_blocks
        self.mlp = nn.Sequential(nn.Linear(2, width), nn.GELU(), nn.Linear(width, 2 * width * n_blocks))
        nn.init.zeros_(self.mlp[-1].weight), nn.init.zeros_(self.mlp[-1].bias)

    def forward(self, snr_db, rate):
        """snr_db (B,), rate (B,) → 2·n_blocks tensors (B, 1, width): γ₀, β₀, γ₁, β₁, …"""
        c = torch.stack([snr_db / 20.0, rate / self.k_max], dim=-1)
        return self.mlp(c).unsqueeze(1).chunk(2 * self.n, dim=-1)          # each (B, 1, W)


class Trunk(nn.Module):
    """Transformer blocks over the token sequence, each followed by SNR/rate modulation."""

    def __init__(self, width, depth, heads, k_max, fixed_len=0):
        super().__init__()
        self.blocks = nn.ModuleList(Block(width, heads, mlp_ratio=2) for _ in range(depth))
        self.cond = Conditioner(width, depth, k_max)
        self.pos = nn.Parameter(torch.randn(1, fixed_len, width) * 0.02) if fixed_len else None
        self.norm = nn.LayerNorm(width)

    def forward(self, h, snr_db, rate):
        """h (B, S, width), snr_db (B,), rate (B,) → modulated, normalised features (B, S, width)."""
        if self.pos is not None:
            h = h + self.pos
        films = self.cond(snr_db, rate)
        for i, blk in enumerate(self.blocks):
            h = blk(h)
            h = h * (1 + films[2 * i]) + films[2 * i + 1]
        return self.norm(h)


def sent_mask(rate, k_max, dtype=torch.float32):
    """(B, K): 1 for the symbols of each token that are sent at ``rate``."""
    return (torch.arange(k_max, device=rate.device, dtype=rate.dtype)[None, :] < rate[:, None]).to(dtype)


class JSCCEncoder(nn.Module):
    """Encoder T: tokens (or text ids) + snr_db + rate → unit-power symbols (B, S, K, 2), zero past ``rate``.

    ``token_dim`` d, ``k_max`` K, Transformer ``width``/``depth``/``heads``;
    ``fixed_len`` S adds learned positions (image tokens), ``vocab`` > 0 embeds text ids."""

    def __init__(self, token_dim=16, k_max=K_MAX, width=64, depth=2, heads=4, fixed_len=0, vocab=0):
        super().__init__()
        self.token_dim, self.k_max, self.vocab = token_dim, k_max, vocab
        self.embed = nn.Embedding(vocab, token_dim) if vocab else None
        self.inp = nn.Linear(token_dim, width)
        self.trunk = Trunk(width, depth, heads, k_max, fixed_len)
        self.out = nn.Linear(width, 2 * k_max)

    def forward(self, tokens, snr_db, rate):
        """tokens (B, S, d) f32 [text: ids (B, L) int64], snr_db (B,), rate (B,) → symbols (B, S, K, 2)."""
        x = self.embed(tokens) if self.embed is not None else tokens
        z = self.out(self.trunk(self.inp(x), snr_db, rate))
        z = z.reshape(z.shape[0], z.shape[1], self.k_max, 2) * sent_mask(rate, self.k_max)[:, None, :, None]
        n_sent = z.shape[1] * rate                                          # S·rate symbols per sample
        power = z.pow(2).sum(dim=(1, 2, 3)) / n_sent
        return z / torch.sqrt(power + 1e-12)[:, None, None, None]


class JSCCDecoder(nn.Module):
    """Decoder R: equalised symbols + reliability + snr_db + rate → tokens (B, S, d), or logits (B, L, vocab).

    Same arguments as ``JSCCEncoder``; a decoder built with the encoder's arguments is its pair."""

    def __init__(self, token_dim=16, k_max=K_MAX, width=64, depth=2, heads=4, fixed_len=0, vocab=0):
        super().__init__()
        self.token_dim, self.k_max, self.vocab = token_dim, k_max, vocab
        self.inp = nn.Linear(3 * k_max, width)
        self.trunk = Trunk(width, depth, heads, k_max, fixed_len)
        self.out = nn.Linear(width, vocab or token_dim)

    def forward(self, symbols, reliability, snr_db, rate):
        """symbols (B, S, K, 2), reliability (B, S, K), snr_db (B,), rate (B,) → tokens (B, S, d) or logits."""
        x = torch.cat([symbols.flatten(2), reliability], dim=-1)
        return self.out(self.trunk(self.inp(x), snr_db, rate))


def per_rate(heads, rate, rates):
    """heads (B, S, n·len(rates)): one block of n outputs per rate → (B, S, n), the block of each sample's
    ``rate`` (B,); zeros for a rate not in ``rates`` (a tensor)."""
    b, s, _ = heads.shape
    pick = (rate[:, None] == rates[None, :]).to(heads.dtype)                          # (B, R)
    return torch.einsum("bsrn,br->bsn", heads.reshape(b, s, len(rates), -1), pick)


def fixed_index(token_dim, k_max):
    """Which token dimension pair symbol k of the fixed mapping carries: k mod d/2 (a list of K ints)."""
    return [k % (token_dim // 2) for k in range(k_max)]


class FixedMappingEncoder(nn.Module):
    """Encoder T = the fixed token mapping plus a learned residual that starts at zero.

    The fixed mapping is the one the tokenizers were trained through
    (``tokenizers.genib.token_channel``): token dimensions (2j, 2j+1) become the
    I/Q of symbol j, and the frame is scaled to unit power. A token of d
    dimensions fills d/2 symbols; symbol k carries pair k mod d/2, so at rate
    r ≤ d/2 the first 2r dimensions are sent and at rate d (K = 16, d = 16)
    each pair is sent twice (repetition). A Transformer trunk (``Trunk``, SNR-
    and rate-modulated) adds a residual to the symbols through a last layer
    initialised at zero, so an untrained encoder *is* the fixed mapping. That
    last layer is one per rate of ``rates`` (a rate outside them sends the
    fixed mapping), so what training does for one rate cannot move the
    symbols of another except through the shared trunk. The power constraint
    is met exactly at the output, as in ``JSCCEncoder``. Same inputs, outputs
    and arguments as ``JSCCEncoder`` (no ``vocab``), plus ``rates``."""

    def __init__(self, token_dim=16, k_max=K_MAX, width=64, depth=2, heads=4, fixed_len=0, vocab=0, rates=RATES):
        super().__init__()
        if vocab or token_dim % 2:
            raise ValueError("the fixed mapping needs continuous tokens of an even dimension")
        self.token_dim, self.k_max, self.vocab = token_dim, k_max, 0
        self.register_buffer("index", torch.tensor(fixed_index(token_dim, k_max)), persistent=False)
        self.register_buffer("rates", torch.tensor([float(r) for r in rates]), persistent=False)
        self.inp = nn.Linear(token_dim, width)
        self.trunk = Trunk(width, depth, heads, k_max, fixed_len)
        self.out = nn.Linear(width, 2 * k_max * len(rates))
        nn.init.zeros_(self.out.weight), nn.init.zeros_(self.out.bias)
        self.register_buffer("scale", torch.ones(()))          # the RMS of a symbol, set from the training tokens

    def fixed(self, tokens):
        """tokens (B, S, d) → the fixed mapping's symbols (B, S, K, 2), before masking and power scaling."""
        b, s, d = tokens.shape
        return tokens.reshape(b, s, d // 2, 2).index_select(2, self.index)

    def forward(self, tokens, snr_db, rate):
        """tokens (B, S, d) f32, snr_db (B,), rate (B,) → symbols (B, S, K, 2), unit power over the sent ones."""
        res = per_rate(self.out(self.trunk(self.inp(tokens), snr_db, rate)), rate, self.rates)
        z = self.fixed(tokens) / self.scale + res.reshape(res.shape[0], res.shape[1], self.k_max, 2)
        z = z * sent_mask(rate, self.k_max)[:, None, :, None]
        power = z.pow(2).sum(dim=(1, 2, 3)) / (z.shape[1] * rate)
        z = z / torch.sqrt(power + 1e-12)[:, None, None, None]
        return z.reshape(tokens.shape[0], tokens.shape[1], self.k_max, 2)          # static K, 2 in the ONNX graph


class FixedMappingDecoder(nn.Module):
    """Decoder R = the fixed mapping's inverse plus a learned correction that starts at zero.

    The inverse: the sent symbols that carry a token pair (one, or two at the
    repetition rate) are combined, o = Σ x̂ with total gain g = Σ r (x̂ = r·s +
    noise of variance r(1 − r) for MMSE-equalised unit-power symbols), and
    s = o / g is the zero-forcing estimate the tokenizers were trained with
    (``token_channel``), scaled back by the typical RMS of the sent symbols'
    pairs (the receiver does not know the frame's own); a pair that was not
    sent gets the training mean. Also formed: the per-dimension linear MMSE
    estimate under the training tokens' mean and spread, which shrinks toward
    the mean where the channel is poor. A Transformer trunk reads x̂, r and
    the LMMSE estimate and outputs, per token and dimension, a weight a and an
    offset b through a last layer initialised at zero:
    t̂ = t̂_zf + a·(t̂_lmmse − t̂_zf) + b·std. So an untrained decoder *is* the
    fixed mapping's inverse, and training can move each token anywhere
    between the two estimates and beyond; as in the encoder, the last layer
    is one per rate. Same inputs, outputs and arguments as ``JSCCDecoder``
    (no ``vocab``), plus ``rates``."""

    def __init__(self, token_dim=16, k_max=K_MAX, width=64, depth=2, heads=4, fixed_len=0, vocab=0, rates=RATES):
        super().__init__()
        if vocab or token_dim % 2:
            raise ValueError("the fixed mapping needs continuous tokens of an even dimension")
        self.token_dim, self.k_max, self.vocab = token_dim, k_max, 0
        pairs = token_dim // 2
        onehot = torch.zeros(k_max, pairs)
        onehot[torch.arange(k_max), torch.tensor(fixed_index(token_dim, k_max))] = 1.0
        self.register_buffer("combine", onehot, persistent=False)           # (K, d/2): symbol k → its pair
        self.register_buffer("power", torch.ones(k_max))         # E|pair carried by symbol k|² of the training tokens
        self.register_buffer("mean", torch.zeros(token_dim))
        self.register_buffer("std", torch.ones(token_dim))
        self.register_buffer("rates", torch.tensor([float(r) for r in rates]), persistent=False)
        self.inp = nn.Linear(3 * k_max + token_dim, width)
        self.trunk = Trunk(width, depth, heads, k_max, fixed_len)
        self.out = nn.Linear(width, 2 * token_dim * len(rates))
        nn.init.zeros_(self.out.weight), nn.init.zeros_(self.out.bias)

    def frame_scale(self, rate):
        """rate (B,) → (B, 1, 1, 1): the typical RMS of a frame's sent symbols before the power scaling."""
        power = (sent_mask(rate, self.k_max) * self.power).sum(-1) / rate
        return power.sqrt()[:, None, None, None]

    def inverse(self, symbols, reliability, rate):
        """symbols (B, S, K, 2), reliability (B, S, K), rate (B,) → the fixed mapping's token estimates
        (zero-forcing, linear MMSE), each (B, S, d)."""
        b, s = symbols.shape[:2]
        scale = self.frame_scale(rate)
        o = torch.einsum("bskc,kp->bspc", symbols, self.combine)            # Σ x̂ per pair (B, S, d/2, 2)
        g = torch.einsum("bsk,kp->bsp", reliability, self.combine)[..., None]            # g = Σ r
        noise = torch.einsum("bsk,kp->bsp", reliability * (1 - reliability), self.combine)[..., None] / 2
        mean = self.mean.reshape(1, 1, -1, 2) / scale
        var = self.std.pow(2).reshape(1, 1, -1, 2) / scale.pow(2)
        zf = torch.where(g > 0, o / g.clamp_min(1e-12), mean)
        lmmse = mean + var * g / (g * g * var + noise + 1e-12) * (o - g * mean)
        return (zf * scale).reshape(b, s, self.token_dim), (lmmse * scale).reshape(b, s, self.token_dim)

    def forward(self, symbols, reliability, snr_db, rate):
        """symbols (B, S, K, 2), reliability (B, S, K), snr_db (B,), rate (B,) → tokens (B, S, d)."""
        zf, lmmse = self.inverse(symbols, reliability, rate)
        x = torch.cat([symbols.flatten(2), reliability, (lmmse - self.mean) / self.std], dim=-1)
        a, b = per_rate(self.out(self.trunk(self.inp(x), snr_db, rate)), rate, self.rates).chunk(2, dim=-1)
        out = zf + a * (lmmse - zf) + b * self.std
        return out.reshape(symbols.shape[0], symbols.shape[1], self.token_dim)      # static d in the ONNX graph


def set_token_stats(enc, dec, tokens):
    """Set the fixed mapping's statistics from training tokens (N, d): the encoder's ``scale`` (the RMS
    of a symbol), the decoder's ``power`` per symbol and per-dimension ``mean`` and ``std``."""
    t = torch.as_tensor(tokens, dtype=torch.float32)
    with torch.no_grad():
        pair_power = t.pow(2).reshape(len(t), -1, 2).sum(-1).mean(0)          # (d/2,)
        enc.scale.fill_(float(pair_power.mean().sqrt()))
        dec.power.copy_(pair_power[torch.tensor(fixed_index(dec.token_dim, dec.k_max))])
        dec.mean.copy_(t.mean(0)), dec.std.copy_(t.std(0))


def link(symbols, snr_db, rate, channel_type="rayleigh", generator=None, k_factor=0.0):
    """Encoder output → what the decoder gets, through the project's channel.

    ``symbols`` (B, S, K, 2) from T, ``snr_db`` (B,), ``rate`` (B,). Block
    fading with one h per sample (a frame per PDU, as in the GNU Radio link),
    AWGN at ``snr_db`` over unit signal power (``channel.fading_channel``,
    draws from ``generator``), then ``jscc_frame.receive`` with the genie
    CSI. Returns (x̂ (B, S, K, 2), reliability (B, S, K)), zero past ``rate``."""
    b, s, k, _ = symbols.shape
    z = torch.complex(symbols[..., 0], symbols[..., 1]).reshape(b, s * k)
    y, h, nv = ch.fading_channel(z, snr_db, channel_type, k_factor, generator=generator)
    x_hat, gain = jscc_frame.receive(y, h, nv)
    mask = sent_mask(rate, k)[:, None, :]                                   # (B, 1, K)
    x_hat = x_hat.reshape(b, s, k) * mask
    reliability = gain.reshape(b, 1, 1).expand(b, s, k) * mask
    return torch.stack([x_hat.real, x_hat.imag], dim=-1), reliability


def through_link(enc, dec, tokens, snr_db, rate, channel_type, generator=None):
    """T → channel → R: ``tokens`` (B, S, d) or text ids (B, L), ``snr_db`` (B,), ``rate`` (B,)
    → R's output (token estimates (B, S, d) or logits (B, L, V)); the channel as in ``link``."""
    y, reliability = link(enc(tokens, snr_db, rate), snr_db, rate, channel_type, generator=generator)
    return dec(y, reliability, snr_db, rate)


def eval_grid(snrs, rates, channels=CHANNELS):
    """The scoring grid of the model cards: yields (key, channel, snr_db, rate, generator) for every
    channel × SNR × rate, key ``"<channel>/<snr:g>dB/r<rate>"``; each point's noise comes from its own
    generator seeded ``1000 + int(10·snr_db) + rate``, so every model sees the same noise."""
    for channel in channels:
        for snr_db in snrs:
            for rate in rates:
                yield (f"{channel}/{snr_db:g}dB/r{rate}", channel, snr_db, rate,
                       torch.Generator().manual_seed(1000 + int(snr_db * 10) + rate))


def params(module):
    """Number of parameters of ``module`` (an int)."""
    return sum(p.numel() for p in module.parameters())


def bandwidth_ratio(n_symbols, source_dims):
    """Channel uses per source dimension (SwinJSCC's CBR)."""
    return n_symbols / float(source_dims)

