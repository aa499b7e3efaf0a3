"""The SNR- and rate-adaptive joint coding-modulation module (T, R of Eq. 1–3)."""
