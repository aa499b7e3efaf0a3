"""Random draws for a simulated channel that do not depend on how they are cut.

A GNU Radio block is handed buffers of whatever size the scheduler picks;
its output must still be a function of the seed alone. ``Reservoir`` hands
out a generator's draws in order, generated in large batches, so the
sequence is the same however ``take`` is called (and numpy's per-call cost
is paid once a batch). ``ChannelDraws`` holds the two streams the fading
channel needs — fades h and unit noise n̄ ~ CN(0, 1) — spawned from one
seed, so the noise does not depend on the number of fades and vice versa.
"""
import numpy as np

from . import channel_math as cm

FADE_BATCH = 1 << 12
NOISE_BATCH = 1 << 17


class Reservoir:
    """``take(n)`` returns the next n values of ``generate(m)`` batches as a fresh array."""

    def __init__(self, generate, batch):
        self._generate = generate
        self._batch = batch
        self._buf = generate(0)
        self._pos = 0

    def take(self, n):
        parts = []
        while n:
            if self._pos == len(self._buf):
                self._buf, self._pos = self._generate(max(self._batch, n)), 0
            k = min(n, len(self._buf) - self._pos)
            parts.append(self._buf[self._pos:self._pos + k])
            self._pos += k
            n -= k
        return parts[0].copy() if len(parts) == 1 else np.concatenate(parts) if parts else self._buf[:0].copy()


def unit_noise(rng, m):
    """m samples of CN(0, 1) noise (complex64) by polar Box–Muller, √(−ln u₁)·e^{j2πu₂}:
    exactly CN(0, 1) (|n̄|² ~ Exp(1), uniform phase), and twice as fast as two
    float32 ziggurat normals."""
    u = rng.random(2 * m, dtype=np.float32)
    radius = np.sqrt(-np.log1p(-u[:m]))
    phase = u[m:]
    phase *= np.float32(2 * np.pi)
    noise = np.empty(m, np.complex64)
    np.multiply(radius, np.cos(phase), out=noise.real)
    np.multiply(radius, np.sin(phase), out=noise.imag)
    return noise


class ChannelDraws:
    """Fades (``fades.take(m)``, complex64, ``channel_math.draw_fading``) and unit
    noise (``noise.take(n)``) from two independent streams of ``seed``
    (an int >= 0, or None for a fresh one)."""

    def __init__(self, seed, channel_type, k_factor=0.0):
        fade_rng, noise_rng = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(2))
        self.fades = Reservoir(
            lambda m: cm.draw_fading(fade_rng.standard_normal, m, channel_type, k_factor).astype(np.complex64),
            FADE_BATCH)
        self.noise = Reservoir(lambda m: unit_noise(noise_rng, m), NOISE_BATCH)
