"""The DDPM noise schedule of the diffusion head (Sec. IV-B, Eq. 17–19), written once for numpy and torch.

Notation follows the paper. A continuous token ``c⁰ = c_i`` (d = 16, in the
model's standardised token space) is noised over ``R`` steps by the Markov
chain

    q(cʳ | cʳ⁻¹) = N(cʳ; √(1 − ϕ_r) cʳ⁻¹, ϕ_r I),        r = 1 … R,

whose marginal has the closed form of Eq. (18)

    cʳ = √ω_r c⁰ + √(1 − ω_r) ε,    ε ~ N(0, I),    ω_r = ∏_{i=1}^{r} (1 − ϕ_i),    ω_0 = 1.

**The schedule** (``make("linear")``, the default; Ho et al. 2020): ϕ_r
rises linearly from ϕ_1 = 1e-4 to ϕ_R = 0.02 at R = 1000 (both scaled by
1000/R for other R, at most 0.999), so ω_R ≈ 4·10⁻⁵ (the last token is essentially noise).
``"cosine"`` (Nichol & Dhariwal 2021) is there too:

    ω̃_r = f(r) / f(0),   f(r) = cos²( (r/R + s) / (1 + s) · π/2 ),   s = 0.008,
    ϕ_r = min(1 − ω̃_r / ω̃_{r−1}, 0.999).

In both, ω is the product of the (1 − ϕ_i) actually used, so the Markov
chain and Eq. (18) agree exactly. Why linear: the cosine ends with ϕ_R =
0.999 and ω_R ≈ 2·10⁻⁹, and the first reverse step multiplies the error of
ε̂ by √(ω_p/ω_R) (≈ 300 at 100 steps). Images survive that because ĉ⁰ is
clipped to the pixel range; tokens are unbounded, and on the toy 2-D test
distribution a small head trained 600 steps gave samples off by 10³ with
the cosine and within 0.15 (mean and covariance) with the linear schedule.

**Reverse process.** ε_ψ(cʳ, r, h_i) predicts ε; the loss is Eq. (19),
E‖ε − ε_ψ(cʳ, r, h_i)‖². Sampling runs on a subsequence of steps
``R = s_S > … > s_1 > s_0 = 0`` (``respace``: any number of steps S ≤ R).
Between two kept steps t > p the effective forward step has
ϕ' = 1 − ω_t/ω_p, and with ĉ⁰ = (cᵗ − √(1−ω_t) ε̂)/√ω_t:

* DDPM (Ho et al. 2020, posterior of the respaced chain):
  cᵖ = √ω_p ϕ'/(1−ω_t) ĉ⁰ + √(1−ϕ') (1−ω_p)/(1−ω_t) cᵗ + τ σ z,
  σ² = ϕ' (1−ω_p)/(1−ω_t).
* DDIM (Song et al. 2021), with η ∈ [0, 1] (η = 0: deterministic):
  σ = η √((1−ω_p)/(1−ω_t)) √ϕ',
  cᵖ = √ω_p ĉ⁰ + √(1−ω_p−σ²) ε̂ + τ σ z.

**Temperature** τ scales every Gaussian draw of the reverse chain: the start
c^R = τ z and each step's τ σ z. τ = 1 is the sampler as derived; τ < 1
trades diversity for fidelity; τ = 0 gives the chain's mean path.

Like ``dsp.channel_math``: the schedule itself is a list of Python floats
(``make``, only ``math`` on scalars), and the per-step functions use only arithmetic
that numpy arrays, torch tensors and Python floats share (``+ - * / **``).
Random draws come in from the caller. Training (``onnx_export.mllm``) and the
runtime sampler (``mllm.generate``) call the same lines.
"""

import math

KINDS = ("cosine", "linear")
DEFAULT = {"kind": "linear", "steps": 1000}
COSINE_S = 0.008
PHI_MAX = 0.999
LINEAR_BETA = (1e-4, 0.02)                 # at R = 1000
SAMPLERS = ("ddpm", "ddim")
#: classifier-free guidance scale of t2i when a caller names none (1: no guidance). 4 was the best of 1, 2, 4
#: for the shipped model on 200 validation captions (mean attribute accuracy 0.38, 0.44, 0.51; docs/models/mllm.md).
DEFAULT_GUIDANCE = 4.0


def make(kind="linear", steps=1000):
    """The schedule as a dict of Python floats: ``phi[r]`` = ϕ_r and ``omega[r]`` = ω_r for r = 0 … R.

    ``phi[0] = 0`` and ``omega[0] = 1`` (the clean token), so index r is the
    paper's step r. Also returns ``kind`` and ``steps`` (R): ``describe``
    gives the JSON that rebuilds it."""
    if kind not in KINDS:
        raise ValueError(f"schedule kind must be one of {', '.join(KINDS)}; got {kind!r}")
    if not isinstance(steps, int) or isinstance(steps, bool) or not 1 <= steps <= 100000:
        raise ValueError(f"schedule steps R must be an integer from 1 to 100000; got {steps!r}")
    if kind == "cosine":
        f0 = math.cos(COSINE_S / (1 + COSINE_S) * math.pi / 2) ** 2
        raw = [math.cos((r / steps + COSINE_S) / (1 + COSINE_S) * math.pi / 2) ** 2 / f0 for r in range(steps + 1)]
        phi = [0.0] + [min(1.0 - raw[r] / raw[r - 1], PHI_MAX) for r in range(1, steps + 1)]
    else:
        lo, hi = (b * 1000.0 / steps for b in LINEAR_BETA)
        phi = [0.0] + [min(lo + (hi - lo) * (r - 1) / max(steps - 1, 1), PHI_MAX) for r in range(1, steps + 1)]
    omega = [1.0]
    for r in range(1, steps + 1):
        omega.append(omega[-1] * (1.0 - phi[r]))
    return {"kind": kind, "steps": steps, "phi": phi, "omega": omega}


def describe(sched):
    """The JSON-able description (``{"kind", "steps"}``) that ``make(**description)`` rebuilds."""
    return {"kind": sched["kind"], "steps": sched["steps"]}


def respace(total_steps, n_steps):
    """The kept steps ``[0, s_1, …, s_S = R]`` for sampling in ``n_steps`` (S) steps out of R = ``total_steps``.

    Evenly spaced, rounded, strictly increasing, always ending at R:
    ``s_k = round(k R / S)``. S = R keeps every step."""
    if not isinstance(n_steps, int) or isinstance(n_steps, bool) or not 1 <= n_steps <= total_steps:
        raise ValueError(f"sampling steps must be an integer from 1 to {total_steps}; got {n_steps!r}")
    return [int(k * total_steps / n_steps + 0.5) for k in range(n_steps + 1)]


def q_sample(c0, eps, omega_r):
    """Eq. (18): cʳ = √ω_r c⁰ + √(1 − ω_r) ε. ``omega_r`` broadcasts against ``c0`` (a float or one per row)."""
    return omega_r ** 0.5 * c0 + (1.0 - omega_r) ** 0.5 * eps


def predict_c0(c_t, eps_hat, omega_t):
    """ĉ⁰ = (cᵗ − √(1 − ω_t) ε̂) / √ω_t: the clean token implied by a noise estimate."""
    return (c_t - (1.0 - omega_t) ** 0.5 * eps_hat) / omega_t ** 0.5


def ddpm_step(c_t, eps_hat, omega_t, omega_p, noise, temperature=1.0):
    """One DDPM reverse step from kept step t to the previous kept step p (ω_t, ω_p floats).

    ``noise`` ~ N(0, I) shaped like ``c_t`` (unused, but still passed, when p = 0,
    where σ = 0). Returns cᵖ; see the module docstring for the formula."""
    phi = 1.0 - omega_t / omega_p
    c0 = predict_c0(c_t, eps_hat, omega_t)
    mean = (omega_p ** 0.5 * phi / (1.0 - omega_t)) * c0 \
        + ((1.0 - phi) ** 0.5 * (1.0 - omega_p) / (1.0 - omega_t)) * c_t
    sigma = (phi * (1.0 - omega_p) / (1.0 - omega_t)) ** 0.5
    return mean + (temperature * sigma) * noise


def ddim_step(c_t, eps_hat, omega_t, omega_p, noise, eta=0.0, temperature=1.0):
    """One DDIM reverse step from kept step t to p with stochasticity ``eta`` (0: deterministic)."""
    phi = 1.0 - omega_t / omega_p
    sigma = eta * ((1.0 - omega_p) / (1.0 - omega_t)) ** 0.5 * phi ** 0.5
    c0 = predict_c0(c_t, eps_hat, omega_t)
    direction = max(1.0 - omega_p - sigma * sigma, 0.0) ** 0.5
    return omega_p ** 0.5 * c0 + direction * eps_hat + (temperature * sigma) * noise


def reverse_step(sampler, c_t, eps_hat, omega_t, omega_p, noise, temperature=1.0, eta=0.0):
    """``ddpm_step`` or ``ddim_step`` by name (``sampler`` in ``SAMPLERS``)."""
    if sampler == "ddpm":
        return ddpm_step(c_t, eps_hat, omega_t, omega_p, noise, temperature)
    if sampler == "ddim":
        return ddim_step(c_t, eps_hat, omega_t, omega_p, noise, eta, temperature)
    raise ValueError(f"sampler must be one of {', '.join(SAMPLERS)}; got {sampler!r}")


def sample(denoise, normal, sched, n_steps, sampler="ddpm", temperature=1.0, eta=0.0):
    """Run the reverse chain: c^R = τ z, then one ``reverse_step`` per kept step; returns ĉ⁰.

    ``denoise(c, r)`` → ε̂ for the batch ``c`` at step ``r`` (a Python int, 1 … R);
    ``normal()`` → a fresh standard normal draw shaped like the batch (it is
    called ``n_steps + 1`` times: the start, then once per step). Works with
    numpy arrays (the runtime) and torch tensors (training, parity tests) alike."""
    if sampler not in SAMPLERS:
        raise ValueError(f"sampler must be one of {', '.join(SAMPLERS)}; got {sampler!r}")
    kept = respace(sched["steps"], n_steps)
    omega = sched["omega"]
    c = temperature * normal()
    for k in range(n_steps, 0, -1):
        t, p = kept[k], kept[k - 1]
        c = reverse_step(sampler, c, denoise(c, t), omega[t], omega[p], normal(), temperature, eta)
    return c
