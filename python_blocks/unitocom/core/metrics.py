"""Quality metrics, one definition each: sinks, model cards, baselines and the
evaluation harness all call these (numpy only; torch code converts first).

* ``psnr`` — images, 10·log10(peak²/MSE), per image over all pixels.
* ``ssim`` — structural similarity with a 7×7 box window (per image, mean over channels).
* ``token_error_rate`` — fraction of discrete tokens received wrong.
* ``log_mel_l1`` — mean absolute log-mel error (nepers of the scaled log-mel).
* ``word_error_rate`` — corpus WER: Σ word edit distance / Σ reference words (``jiwer.wer``'s
  definition; jiwer is not a dependency).
"""
import numpy as np

MSE_FLOOR = 1e-10          # PSNR of identical images is finite: 10·log10(peak²/1e-10)


def psnr(a, b, peak=255.0):
    """PSNR in dB between images ``a`` and ``b`` (same shape; ``peak`` 255 for u8, 1 for [0, 1]).

    A leading batch axis of 4-D input gives one value per image."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape:
        raise ValueError(f"psnr of arrays of different shapes {a.shape} and {b.shape}")
    axes = tuple(range(1, a.ndim)) if a.ndim == 4 else None
    mse = np.mean((a - b) ** 2, axis=axes)
    return 10 * np.log10(peak ** 2 / np.maximum(mse, MSE_FLOOR))


def ssim(a, b, peak=255.0, window=7):
    """Mean SSIM of two (H, W, C) images with a ``window``×``window`` box filter (valid positions only)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape or a.ndim != 3:
        raise ValueError(f"ssim needs two (H, W, C) images of one shape; got {a.shape} and {b.shape}")
    c1, c2 = (0.01 * peak) ** 2, (0.03 * peak) ** 2

    def box(x):
        s = np.cumsum(np.cumsum(np.pad(x, ((1, 0), (1, 0), (0, 0))), 0), 1)
        w = window
        return (s[w:, w:] - s[:-w, w:] - s[w:, :-w] + s[:-w, :-w]) / (w * w)

    ma, mb = box(a), box(b)
    va, vb, cov = box(a * a) - ma ** 2, box(b * b) - mb ** 2, box(a * b) - ma * mb
    s = ((2 * ma * mb + c1) * (2 * cov + c2)) / ((ma ** 2 + mb ** 2 + c1) * (va + vb + c2))
    return float(np.mean(s))


def token_error_rate(sent, received):
    """Fraction of positions where two equal-length id sequences differ."""
    sent, received = np.asarray(sent), np.asarray(received)
    if sent.shape != received.shape:
        raise ValueError(f"token_error_rate of sequences of different shapes {sent.shape} and {received.shape}")
    return float(np.mean(sent != received)) if sent.size else 0.0


def log_mel_l1(a, b):
    """Mean absolute difference of two log-mel spectrograms of one shape."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape:
        raise ValueError(f"log_mel_l1 of arrays of different shapes {a.shape} and {b.shape}")
    return float(np.mean(np.abs(a - b)))


def _words(x):
    if isinstance(x, str):
        return x.split()
    return list(x)


def edit_distance(ref, hyp):
    """Word-level Levenshtein distance (substitutions, deletions, insertions cost 1) of two word lists."""
    prev = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        cur = [i] + [0] * len(hyp)
        for j, h in enumerate(hyp, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (r != h))
        prev = cur
    return prev[-1]


def word_error_rate(references, hypotheses):
    """Corpus word error rate: Σ edit distance / Σ reference words (``jiwer.wer``'s definition).

    ``references``/``hypotheses``: a string (words split on white space) or
    a list of them, or lists of word tokens. ValueError when the counts
    differ or the references hold no word."""
    if isinstance(references, str):
        references, hypotheses = [references], [hypotheses]
    references, hypotheses = list(references), list(hypotheses)
    if len(references) != len(hypotheses):
        raise ValueError(f"{len(references)} references but {len(hypotheses)} hypotheses")
    errors = total = 0
    for ref, hyp in zip(references, hypotheses):
        ref, hyp = _words(ref), _words(hyp)
        errors += edit_distance(ref, hyp)
        total += len(ref)
    if total == 0:
        raise ValueError("the references hold no word: the word error rate is undefined")
    return errors / total
