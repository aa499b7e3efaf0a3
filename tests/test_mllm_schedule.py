"""The diffusion head's noise schedule and samplers (``gnuradio.unitocom.mllm.schedule``, Sec. IV-B):
Eq. (18)'s closed form against the Markov chain, numpy and torch running the same lines, respacing,
and DDPM/DDIM with the exact ε of a Gaussian reaching that Gaussian (no training involved)."""
import numpy as np
import pytest

from gnuradio.unitocom.mllm import schedule


@pytest.mark.parametrize("kind", schedule.KINDS)
def test_schedule_is_a_valid_markov_chain(kind):
    s = schedule.make(kind, 1000)
    phi, omega = np.array(s["phi"]), np.array(s["omega"])
    assert phi.shape == omega.shape == (1001,) and phi[0] == 0 and omega[0] == 1
    assert np.all((phi[1:] > 0) & (phi[1:] <= schedule.PHI_MAX))
    np.testing.assert_allclose(omega, np.cumprod(1 - phi), rtol=1e-12)      # ω_r = ∏ (1 − ϕ_i)
    assert np.all(np.diff(omega) < 0) and omega[-1] < 1e-3                    # ends in (almost) pure noise
    assert schedule.make(**schedule.describe(s)) == s


def test_linear_schedule_is_ddpm_s():
    s = schedule.make("linear", 1000)
    assert s["phi"][1] == pytest.approx(1e-4) and s["phi"][1000] == pytest.approx(0.02)
    assert s["omega"][1000] == pytest.approx(4.04e-5, rel=0.02)
    short = schedule.make("linear", 10)
    assert max(short["phi"]) <= schedule.PHI_MAX


@pytest.mark.parametrize("kind", schedule.KINDS)
def test_forward_process_matches_closed_form(kind):
    """Run q(cʳ | cʳ⁻¹) = N(√(1−ϕ_r) cʳ⁻¹, ϕ_r I) step by step; at every r the samples are N(√ω_r c⁰, (1 − ω_r) I)."""
    s = schedule.make(kind, 200)
    rng = np.random.default_rng(0)
    c0 = np.array([2.0, -1.0, 0.5])
    c = np.tile(c0, (20000, 1))
    for r in range(1, 201):
        c = (1 - s["phi"][r]) ** 0.5 * c + s["phi"][r] ** 0.5 * rng.standard_normal(c.shape)
        if r in (1, 10, 50, 120, 200):
            w = s["omega"][r]
            np.testing.assert_allclose(c.mean(0), w ** 0.5 * c0, atol=4.5 * (1 - w) ** 0.5 / 20000 ** 0.5 + 1e-9)
            np.testing.assert_allclose(c.var(0), 1 - w, rtol=0.05, atol=1e-9)
    # and Eq. (18) itself is the same affine map on given draws
    eps = rng.standard_normal(c0.shape)
    np.testing.assert_allclose(schedule.q_sample(c0, eps, s["omega"][50]),
                               s["omega"][50] ** 0.5 * c0 + (1 - s["omega"][50]) ** 0.5 * eps)


def test_numpy_and_torch_run_the_same_steps():
    torch = pytest.importorskip("torch")
    s = schedule.make("linear", 1000)
    rng = np.random.default_rng(1)
    c, eps, z = (rng.standard_normal((5, 16)).astype(np.float32) for _ in range(3))
    for fn, args in ((schedule.q_sample, (c, eps, s["omega"][300])),
                     (schedule.ddpm_step, (c, eps, s["omega"][600], s["omega"][560], z, 0.8)),
                     (schedule.ddim_step, (c, eps, s["omega"][600], s["omega"][560], z, 0.5, 0.9))):
        ref = fn(*args)
        got = fn(*(torch.from_numpy(a) if isinstance(a, np.ndarray) else a for a in args))
        np.testing.assert_allclose(got.numpy(), ref, rtol=1e-6, atol=1e-6)


def test_respace():
    assert schedule.respace(1000, 1000) == list(range(1001))
    for n in (100, 50, 25, 7, 1):
        kept = schedule.respace(1000, n)
        assert len(kept) == n + 1 and kept[0] == 0 and kept[-1] == 1000 and np.all(np.diff(kept) > 0)
    for bad in (0, 1001, 2.5, True, "50"):
        with pytest.raises(ValueError, match="sampling steps"):
            schedule.respace(1000, bad)


def test_bad_schedule_arguments():
    with pytest.raises(ValueError, match="kind"):
        schedule.make("sigmoid")
    with pytest.raises(ValueError, match="steps"):
        schedule.make("linear", 0)
    with pytest.raises(ValueError, match="sampler"):
        schedule.sample(lambda c, r: c, lambda: np.zeros(2), schedule.make(), 10, sampler="euler")


def _gaussian_oracle(mu, cov, omega):
    """The exact ε-prediction E[ε | cʳ] for data N(mu, cov): √(1−ω) Σ_r⁻¹ (cʳ − √ω μ), Σ_r = ω Σ + (1−ω) I."""
    def denoise(c, r):
        w = omega[r]
        sig = w * cov + (1 - w) * np.eye(len(mu))
        return (1 - w) ** 0.5 * np.linalg.solve(sig, (c - w ** 0.5 * mu).T).T
    return denoise


# Respaced chains with the *exact* ε still under-disperse: each step is a first-order discretisation
# (for DDIM on unit-variance data every step multiplies the variance by cos² of the step's angle).
# Measured here (variance ratio): DDPM 100 steps 0.93, 25 steps 0.76; DDIM 50 steps 0.92, 10 steps 0.69.
@pytest.mark.parametrize("sampler,steps,tol", [("ddpm", 1000, 0.04), ("ddpm", 100, 0.1), ("ddpm", 25, 0.3),
                                              ("ddim", 50, 0.1), ("ddim", 10, 0.35)])
def test_samplers_with_the_exact_denoiser_reach_the_data_distribution(sampler, steps, tol):
    s = schedule.make("linear", 1000)
    mu = np.array([1.0, -2.0])
    cov = np.array([[1.0, 0.6], [0.6, 0.5]])
    rng = np.random.default_rng(3)
    out = schedule.sample(_gaussian_oracle(mu, cov, s["omega"]), lambda: rng.standard_normal((20000, 2)), s, steps,
                          sampler)
    np.testing.assert_allclose(out.mean(0), mu, atol=0.03)
    np.testing.assert_allclose(np.cov(out.T), cov, atol=tol)


def test_temperature_scales_the_spread():
    s = schedule.make("linear", 1000)
    mu, cov = np.zeros(2), np.eye(2)
    rng = np.random.default_rng(4)
    draw = lambda: rng.standard_normal((20000, 2))   # noqa: E731
    full = schedule.sample(_gaussian_oracle(mu, cov, s["omega"]), draw, s, 50, "ddim", temperature=1.0)
    cold = schedule.sample(_gaussian_oracle(mu, cov, s["omega"]), draw, s, 50, "ddim", temperature=0.5)
    zero = schedule.sample(_gaussian_oracle(mu, cov, s["omega"]), draw, s, 50, "ddpm", temperature=0.0)
    assert cold.std() == pytest.approx(0.5 * full.std(), rel=0.05)
    np.testing.assert_allclose(zero, 0.0, atol=1e-6)
