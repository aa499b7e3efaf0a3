"""runtime.csi_tracker: the per-symbol CSI the JSCC decoder gets from the tags, both ``h`` forms.

The tracker was rewritten to forward-fill gains with numpy (so that
``ofdm_rx``'s one vector ``h`` per frame costs one tag, not N). Here it is
checked bit for bit against the original run-by-run implementation (kept
below as the reference) on random tag sets, and the vector form against the
same gains as one scalar tag per symbol."""
import numpy as np
import pmt
import pytest

from gnuradio.unitocom.core import tags as tagkeys
from gnuradio.unitocom.dsp.channel_math import noise_variance
from gnuradio.unitocom.runtime.csi_tracker import CsiTracker


class Log:
    def __init__(self):
        self.messages, self.once = [], []

    def warn(self, message):
        self.messages.append(message)

    def warn_once(self, message):
        self.once.append(message)


class ReferenceTracker:
    """The original ``CsiTracker.per_symbol`` (one run per tagged offset, Python per run), verbatim."""

    def __init__(self, default_snr_db, log):
        self._default = float(default_snr_db)
        self._log = log
        self._state = dict.fromkeys(tagkeys.CSI_KEYS)

    def per_symbol(self, frame_tags, n):
        runs = tagkeys.fill_runs(frame_tags, tagkeys.CSI_KEYS, self._state, tagkeys.csi_value, self._log.warn)
        h, nv = np.empty(n, np.complex128), np.empty(n, np.float64)
        bounds = [r[0] for r in runs[1:]] + [n]
        fades, follow_snr = 0, False
        for (start, state, tagged), end in zip(runs, bounds):
            if tagkeys.KEY_SNR_DB in tagged:
                follow_snr = tagkeys.KEY_NOISE_VAR not in tagged
            elif tagkeys.KEY_NOISE_VAR in tagged:
                follow_snr = False
            if follow_snr:
                state[tagkeys.KEY_NOISE_VAR] = None
            fades += tagkeys.KEY_H in tagged
            h[start:end], nv[start:end] = self._gain_and_noise(state)
        if follow_snr:
            self._state[tagkeys.KEY_NOISE_VAR] = None
        snr = runs[-1][1][tagkeys.KEY_SNR_DB]
        return h, nv, self._default if snr is None else snr, max(fades, 1)

    def _gain_and_noise(self, state):
        if all(v is None for v in state.values()):
            self._log.warn_once("no CSI tags yet: assuming h = 1 at snr_db = %g dB" % self._default)
        h = state[tagkeys.KEY_H] if state[tagkeys.KEY_H] is not None else 1.0
        snr = state[tagkeys.KEY_SNR_DB] if state[tagkeys.KEY_SNR_DB] is not None else self._default
        nv = state[tagkeys.KEY_NOISE_VAR]
        if nv is None or state[tagkeys.KEY_SNR_DB] is None:
            return h, max(nv if nv is not None else noise_variance(snr), 1e-12)
        power = nv * 10.0 ** (snr / 10.0)
        return h * power ** 0.5, max(nv, 1e-12)


def random_tags(rng, n):
    """A frame's CSI tags: scalar h (some invalid, some at one offset), snr_db / noise_var now and then."""
    tags = []
    for _ in range(int(rng.integers(0, 12))):
        rel = int(rng.integers(0, n))
        kind = rng.choice(["h", "h", "h", "snr_db", "noise_var", "bad_h", "bad_snr"])
        if kind == "h":
            tags.append((rel, "h", pmt.from_complex(complex(*rng.normal(size=2)))))
        elif kind == "snr_db":
            tags.append((rel, "snr_db", pmt.from_double(float(rng.uniform(-5, 30)))))
        elif kind == "noise_var":
            tags.append((rel, "noise_var", pmt.from_double(float(rng.uniform(0.01, 3)))))
        elif kind == "bad_h":
            tags.append((rel, "h", rng.choice([pmt.from_complex(complex(np.nan, 1)), pmt.from_double(2e6),
                                               pmt.intern("1"), pmt.init_f32vector(1, [1.0])])))
        else:
            tags.append((rel, "snr_db", pmt.from_double(float(rng.choice([np.inf, 500.0])))))
    if rng.random() < 0.3:                      # tags in force from the frame's first sample, as channels write them
        tags += [(0, "h", pmt.from_complex(complex(*rng.normal(size=2)))), (0, "snr_db", pmt.from_double(12.0))]
    return tags


def same(a, b):
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert (a[2], a[3]) == (b[2], b[3])


@pytest.mark.parametrize("seed", range(40))
def test_scalar_tags_match_the_original_tracker_bit_for_bit(seed):
    rng = np.random.default_rng(seed)
    new_log, ref_log = Log(), Log()
    new, ref = CsiTracker(7.0, new_log), ReferenceTracker(7.0, ref_log)
    for _ in range(6):                              # state carried over frame to frame
        n = int(rng.integers(1, 60))
        tags = random_tags(rng, n)
        same(new.per_symbol(tags, n), ref.per_symbol(tags, n))
        assert new._state == ref._state
    assert sorted(new_log.messages) == sorted(ref_log.messages) and set(new_log.once) == set(ref_log.once)


def expand(vector_tags):
    """Vector ``h`` tags → the same gains as one scalar ``h`` tag per sample."""
    out = []
    for rel, key, value in vector_tags:
        vec = tagkeys.complex_vector(value) if key == "h" else None
        out += [(rel, key, value)] if vec is None else [(rel + i, "h", pmt.from_complex(complex(v)))
                                                        for i, v in enumerate(vec)]
    return out


@pytest.mark.parametrize("seed", range(20))
def test_a_vector_h_is_one_scalar_h_per_symbol(seed):
    rng = np.random.default_rng(100 + seed)
    a, b = CsiTracker(3.0, Log()), CsiTracker(3.0, Log())
    for _ in range(4):
        n = int(rng.integers(8, 300))
        g = rng.normal(size=n) + 1j * rng.normal(size=n)
        start = int(rng.integers(0, 3))
        make = pmt.init_c64vector if rng.random() < 0.7 else pmt.init_c32vector
        if make is pmt.init_c32vector:
            g = g.astype(np.complex64).astype(complex)
        tags = [(start, "h", make(n - start, g[start:].tolist()))]
        tags += [(0, "snr_db", pmt.from_double(float(rng.uniform(0, 25))))] if rng.random() < 0.8 else []
        tags += [(0, "noise_var", pmt.from_double(0.5))] if rng.random() < 0.3 else []
        tags += [(int(rng.integers(0, n)), "h", pmt.from_complex(2 - 1j))] if rng.random() < 0.3 else []
        same(a.per_symbol(tags, n), b.per_symbol(expand(tags), n))
        assert a._state == b._state


def test_bad_gains_in_a_vector_and_gains_past_the_frame_are_ignored_and_logged():
    log = Log()
    t = CsiTracker(10.0, log)
    g = np.array([1 + 1j, np.nan, 2, 3e6, 4j, 5, 6])
    h, nv, snr, fades = t.per_symbol([(1, "h", pmt.init_c64vector(7, g.tolist()))], 5)
    np.testing.assert_array_equal(h, [1, 1 + 1j, 1 + 1j, 2, 2])        # before: h = 1; NaN and 3e6 keep the gain
    assert fades == 2 and t._state["h"] == 2
    assert any("2 of the 7 gains" in m for m in log.messages) and any("last 3 gains" in m for m in log.messages)
    h, *_ = t.per_symbol([(0, "h", pmt.init_c64vector(0, []))], 3)          # empty: malformed, state kept
    np.testing.assert_array_equal(h, [2, 2, 2])
    assert any("empty vector" in m for m in log.messages)
    h, *_ = t.per_symbol([(0, "h", pmt.init_f32vector(2, [1.0, 2.0]))], 2)  # a real vector is not a gain form
    np.testing.assert_array_equal(h, [2, 2])
