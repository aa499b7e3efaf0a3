"""Spoken sentences synthesised offline with espeak-ng, at 16 kHz mono.

A *speaker* is an espeak-ng English voice (accent) with a voice variant
(``en-us+f3``), plus a speaking rate and pitch drawn per utterance. Some
speakers exist only in the test split (``TEST_ONLY_VARIANTS`` with any
accent, and every variant with ``TEST_ONLY_ACCENT``), so speech recognition
is measured on unseen speakers.
"""
import shutil
import subprocess

import numpy as np

SAMPLE_RATE = 16000
ACCENTS = ("en-us", "en-gb", "en-gb-scotland", "en-gb-x-rp", "en-gb-x-gbclan", "en-gb-x-gbcwmd", "en-029")
VARIANTS = ("m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f2", "f3", "f4", "f5",
            "klatt", "klatt2", "klatt3", "Andy", "Annie", "Denis", "Gene", "Jacky", "Lee", "Mario",
            "Michael", "Mike", "Tweaky", "anika", "belinda", "david", "edward", "linda", "paul", "robert")
TEST_ONLY_VARIANTS = ("m6", "f4", "klatt3", "Annie", "Mario", "linda")
TEST_ONLY_ACCENT = "en-029"
RATE_WPM = (130, 200)
PITCH = (25, 75)


def speakers(split):
    """Speaker names usable in ``split`` ('train', 'val' or 'test')."""
    all_speakers = [f"{a}+{v}" for a in ACCENTS for v in VARIANTS]
    held_out = [s for s in all_speakers
                if s.split("+")[0] == TEST_ONLY_ACCENT or s.split("+")[1] in TEST_ONLY_VARIANTS]
    if split == "test":
        return all_speakers
    return [s for s in all_speakers if s not in held_out]


def espeak_available():
    return shutil.which("espeak-ng") is not None


def synthesize(text, speaker, rate_wpm, pitch):
    """int16 samples at 16 kHz of ``text`` spoken by ``speaker``."""
    from scipy.signal import resample_poly
    cmd = ["espeak-ng", "-v", speaker, "-s", str(int(rate_wpm)), "-p", str(int(pitch)), "-a", "70",
           "--stdout", text]
    wav = subprocess.run(cmd, capture_output=True, check=True, timeout=60).stdout
    if wav[:4] != b"RIFF" or wav[8:12] != b"WAVE":
        raise RuntimeError(f"espeak-ng gave no WAV for {speaker!r}: {wav[:40]!r}")
    rate = int.from_bytes(wav[24:28], "little")
    data = wav.find(b"data") + 8                     # streamed header: sizes are placeholders
    samples = np.frombuffer(wav[data:len(wav) - (len(wav) - data) % 2], np.int16).astype(np.float64)
    g = np.gcd(SAMPLE_RATE, rate)
    audio = resample_poly(samples, SAMPLE_RATE // g, rate // g)
    return np.clip(np.round(audio), -32768, 32767).astype(np.int16)


def add_noise(audio, snr_db, rng):
    """Additive white Gaussian noise at ``snr_db`` relative to the speech power."""
    x = audio.astype(np.float64)
    power = np.mean(x ** 2)
    noisy = x + rng.standard_normal(len(x)) * np.sqrt(power / 10 ** (snr_db / 10))
    return np.clip(np.round(noisy), -32768, 32767).astype(np.int16)


def utterance(rng, text, split, noise_snr_db=None):
    """(int16 audio, metadata dict) for one sentence in ``split``."""
    pool = speakers(split)
    speaker = pool[int(rng.integers(len(pool)))]
    rate = int(rng.integers(RATE_WPM[0], RATE_WPM[1] + 1))
    pitch = int(rng.integers(PITCH[0], PITCH[1] + 1))
    audio = synthesize(text, speaker, rate, pitch)
    if noise_snr_db is not None:
        audio = add_noise(audio, noise_snr_db, rng)
    return audio, {"speaker": speaker, "rate_wpm": rate, "pitch": pitch, "noise_snr_db": noise_snr_db}
