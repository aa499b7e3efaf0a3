"""Generation loops of the MLLM over any *backend*: the onnxruntime sessions (``engine``) or torch (parity tests).

A backend has, on numpy arrays:

* ``prefill(ids, cont, kind, pos, mask)`` → hidden (B, T, D), kv (B, L, 2, H, T, D/H)
* ``decode(ids, cont, kind, pos, mask, kv)`` → hidden (B, T_new, D), kv with T_p + T_new positions
  (``mask`` covers all T_p + T_new keys)
* ``lm_head(h)`` (N, D) → logits (N, V); ``denoise(x, step, h)`` (N, d), (N,) int64, (N, D) → ε̂ (N, d)
* attributes ``schedule`` (``schedule.make``'s dict), ``image_mean``, ``image_std`` (d,) float32.

The prompt batch is left-padded (``layout.pack(pad='left')``) so every row
ends at the same position and one decode step advances all rows. With
``use_cache=False`` every step re-runs ``prefill`` on the whole sequence so
far instead — the reference the cache is tested against.
"""
import numpy as np

from ..data import vocab
from . import layout, sampling, schedule


class Sequence:
    """A left-padded batch being generated: its arrays so far, the kv cache and the last hidden states."""

    def __init__(self, backend, items, use_cache=True):
        self.backend, self.use_cache = backend, use_cache
        b = layout.pack(items, pad="left")
        self.ids, self.cont, self.kind, self.pos, self.mask = b["ids"], b["cont"], b["kind"], b["pos"], b["mask"]
        hidden, self.kv = backend.prefill(self.ids, self.cont, self.kind, self.pos, self.mask)
        self.h = np.ascontiguousarray(hidden[:, -1])

    def __len__(self):
        return len(self.ids)

    def feed(self, ids, cont, kind):
        """Append one position per row (ids (B,), cont (B, d), kind (B,)) and update ``h``."""
        ids = np.asarray(ids, np.int64)[:, None]
        cont = np.asarray(cont, np.float32)[:, None]
        kind = np.asarray(kind, np.int64)[:, None]
        pos = self.pos[:, -1:] + 1
        self.ids = np.concatenate([self.ids, ids], 1)
        self.cont = np.concatenate([self.cont, cont], 1)
        self.kind = np.concatenate([self.kind, kind], 1)
        self.pos = np.concatenate([self.pos, pos], 1)
        self.mask = np.concatenate([self.mask, np.ones((len(ids), 1), np.float32)], 1)
        if self.use_cache:
            hidden, self.kv = self.backend.decode(ids, cont, kind, pos, self.mask, self.kv)
        else:
            hidden, _ = self.backend.prefill(self.ids, self.cont, self.kind, self.pos, self.mask)
        self.h = np.ascontiguousarray(hidden[:, -1])


def text(backend, items, max_new, top_p=None, temperature=1.0, rng=None, use_cache=True):
    """Generate words after each prompt item until ``<eos>`` (or ``max_new`` ids); returns a list of int64 arrays.

    Greedy with ``top_p`` None, else nucleus sampling at ``temperature``.
    The ids returned stop before ``<eos>``."""
    seq = Sequence(backend, items, use_cache)
    b = len(seq)
    out = np.full((b, max_new), vocab.PAD, np.int64)
    done = np.zeros(b, bool)
    lengths = np.full(b, max_new)
    for k in range(max_new):
        nxt = sampling.choose(backend.lm_head(seq.h), top_p, temperature, rng)
        nxt = np.where(done, vocab.PAD, nxt)
        out[:, k] = nxt
        ended = ~done & (nxt == vocab.EOS)
        lengths[ended] = k
        done |= ended
        if done.all() or k == max_new - 1:
            break
        seq.feed(nxt, np.zeros((b, seq.cont.shape[2]), np.float32), np.full(b, layout.KIND_TEXT))
    return [out[i, :lengths[i]].copy() for i in range(b)]


def image_tokens(backend, items, n_tokens, n_steps, sampler="ddpm", temperature=1.0, eta=0.0,
                 normal=None, use_cache=True, guidance=1.0):
    """Generate ``n_tokens`` image tokens after each prompt item by next-token diffusion; (B, n, d) float32.

    Each token: the reverse chain of ``schedule.sample`` on the denoiser,
    conditioned on the last hidden state, in ``n_steps`` respaced steps; the
    token (de-standardised) is fed back as the next input. ``normal(shape)``
    gives the standard normal draws (default: a fresh numpy generator).

    ``guidance`` w ≠ 1 is classifier-free guidance: every row is also run
    without its caption (``layout.t2i([])``, the prompt the trainer's
    ``--t2i-uncond`` share learns), in the same batch, and the denoiser's
    ε̂ = ε̂_uncond + w (ε̂_cond − ε̂_uncond); the generated token is fed to
    both. w = 1 is the plain conditional model (no extra rows), w = 0 the
    unconditional one."""
    b = len(items)
    guided = guidance != 1.0
    rows = list(items) + [layout.t2i([], token_dim=items[0].cont.shape[1])] * b if guided else items
    seq = Sequence(backend, rows, use_cache)
    d = seq.cont.shape[2]
    if normal is None:
        rng = np.random.default_rng()
        normal = lambda shape: rng.standard_normal(shape, dtype=np.float32)   # noqa: E731
    mean = np.asarray(backend.image_mean, np.float32)
    std = np.asarray(backend.image_std, np.float32)
    tokens = np.zeros((b, n_tokens, d), np.float32)

    def denoiser(h):
        if not guided:
            return lambda x, r: backend.denoise(x.astype(np.float32), np.full(b, r, np.int64), h)

        def guided_eps(x, r):
            x = x.astype(np.float32)
            eps = backend.denoise(np.concatenate([x, x]), np.full(2 * b, r, np.int64), h)
            return eps[b:] + guidance * (eps[:b] - eps[b:])
        return guided_eps

    for j in range(n_tokens):
        c = schedule.sample(denoiser(seq.h), lambda: np.asarray(normal((b, d)), np.float32), backend.schedule,
                            n_steps, sampler, temperature, eta)
        tokens[:, j] = np.asarray(c, np.float32) * std + mean
        if j < n_tokens - 1:
            fed = np.concatenate([tokens[:, j]] * 2) if guided else tokens[:, j]
            seq.feed(np.zeros(len(fed), np.int64), fed, np.full(len(fed), layout.KIND_IMAGE))
    return tokens
