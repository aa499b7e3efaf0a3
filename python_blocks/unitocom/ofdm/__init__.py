"""The OFDM air interface of ``ofdm_tx`` / ``ofdm_rx``: numerology (``params``),
the frame header with its CRC (``header``) and the per-frame receiver math
(``receiver``: timing, CFO, channel, noise and SNR estimation)."""
