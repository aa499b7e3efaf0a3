"""Next-token diffusion in torch (Sec. IV-B): Eq. (18)'s forward process, Eq. (19)'s ε-loss, DDPM/DDIM sampling.

The schedule and every step of the arithmetic are ``gnuradio.unitocom.mllm.schedule``
(one definition shared with the numpy runtime; its docstring writes out the
cosine schedule ϕ_r, ω_r, the closed form and both samplers). This module
only puts it on tensors:

* ``omegas(sched)``: ω_0 … ω_R as a float32 tensor, for gathering per row;
* ``loss(head, h, c0, draws)``: Eq. (19) with K = ``draws`` independent
  (r, ε) per continuous token. The Transformer pass that made ``h`` is
  shared: h and c⁰ are repeated K times and only the small head runs K
  times — K times the denoising signal per token for a few percent more
  compute;
* ``sample(head, h, sched, n_steps, …)``: ``schedule.sample`` with the
  torch head (respaced DDPM or DDIM, temperature).
"""
import torch

from gnuradio.unitocom.mllm import schedule


def omegas(sched):
    """ω_r for r = 0 … R as a float32 tensor (R + 1,)."""
    return torch.tensor(sched["omega"], dtype=torch.float64).to(torch.float32)


def forward_noise(c0, r, eps, omega):
    """Eq. (18) on a batch: cʳ = √ω_r c⁰ + √(1 − ω_r) ε, with ``r`` (N,) steps and ``omega`` from ``omegas``."""
    return schedule.q_sample(c0, eps, omega[r].unsqueeze(-1))


def loss(head, h, c0, draws, omega, generator=None):
    """Eq. (19): mean over tokens, draws and dimensions of ‖ε − ε_ψ(cʳ, r, h)‖² / d.

    ``h`` (N, D) hidden states that predict the tokens ``c0`` (N, d)
    (standardised); ``draws`` (K) noise draws per token, r uniform in 1 … R.
    Returns a scalar tensor (0 when N = 0)."""
    if c0.shape[0] == 0:
        return h.sum() * 0.0
    steps = omega.shape[0] - 1
    h, c0 = h.repeat(draws, 1), c0.repeat(draws, 1)
    # drawn on the CPU (``generator`` is a CPU generator), then moved: the same draws on every device
    r = torch.randint(1, steps + 1, (c0.shape[0],), generator=generator).to(h.device)
    eps = torch.randn(c0.shape, generator=generator).to(h.device)
    return ((eps - head(forward_noise(c0, r, eps, omega.to(h.device)), r, h)) ** 2).mean()


@torch.no_grad()
def sample(head, h, sched, n_steps, sampler="ddpm", temperature=1.0, eta=0.0, normal=None):
    """Tokens (N, d) drawn from p(c | h) by the reverse chain (standardised space).

    ``normal(shape)`` → standard normal draws (default ``torch.randn``);
    pass the same draws as the runtime to compare the two."""
    n, d = h.shape[0], head.out.out_features
    draw = normal or torch.randn

    def denoise(c, r):
        return head(c, torch.full((n,), r, dtype=torch.int64), h)

    return schedule.sample(denoise, lambda: torch.as_tensor(draw((n, d)), dtype=torch.float32), sched,
                           n_steps, sampler, temperature, eta)
