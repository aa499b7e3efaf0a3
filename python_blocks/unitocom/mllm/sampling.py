"""Choosing the next word from the LM head's logits (Eq. 15's Sample): greedy and top-p (nucleus), numpy."""
import numpy as np


def softmax(logits, temperature=1.0):
    """Row-wise softmax of ``logits / temperature`` (N, V), float64, stable."""
    z = np.asarray(logits, np.float64) / temperature
    z = z - z.max(axis=-1, keepdims=True)
    p = np.exp(z)
    return p / p.sum(axis=-1, keepdims=True)


def greedy(logits):
    """The most probable id per row (the first one on a tie): (N, V) → (N,) int64."""
    return np.argmax(np.asarray(logits), axis=-1).astype(np.int64)


def top_p(logits, p, temperature, rng):
    """Nucleus sampling: per row, the smallest set of most probable ids whose probability reaches ``p``,
    renormalised, one draw from ``rng``. (N, V) → (N,) int64. ``temperature`` 0 or ``p`` → 0 is greedy."""
    if temperature == 0:
        return greedy(logits)
    probs = softmax(logits, temperature)
    order = np.argsort(-probs, axis=-1, kind="stable")
    sorted_p = np.take_along_axis(probs, order, axis=-1)
    cum = np.cumsum(sorted_p, axis=-1)
    keep = (cum - sorted_p) < p                    # ids before which less than p was gathered
    keep[:, 0] = True
    sorted_p = np.where(keep, sorted_p, 0.0)
    sorted_p /= sorted_p.sum(axis=-1, keepdims=True)
    u = rng.random((len(sorted_p), 1))
    idx = np.minimum((np.cumsum(sorted_p, axis=-1) < u).sum(axis=-1), sorted_p.shape[1] - 1)
    return np.take_along_axis(order, idx[:, None], axis=-1)[:, 0].astype(np.int64)


def choose(logits, p=None, temperature=1.0, rng=None):
    """Greedy when ``p`` is None, else ``top_p`` (``rng``: a numpy Generator)."""
    if p is None:
        return greedy(logits)
    return top_p(logits, p, temperature, rng if rng is not None else np.random.default_rng())
