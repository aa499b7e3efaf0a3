"""OFDM numerology and the fixed sequences both ends agree on.

Carriers are numbered -fft_len/2 … fft_len/2-1 (0 = DC), the way
gr-digital's ``ofdm_carrier_allocator_cvc`` takes them; an OFDM symbol in
*shifted* order holds carrier k at index k + fft_len/2.

A frame (``ofdm_tx``):

====================  =======================================================
OFDM symbols          content
====================  =======================================================
1                     Schmidl & Cox symbol: BPSK·√2 on the odd active carriers
                      (two half-symbols of opposite sign; detection, coarse CFO)
2                     the long training symbol (LTS) twice: BPSK on every active
                      carrier (fine timing, fine CFO, channel and noise)
``n_header_symbols``  the header (``ofdm.header``): BPSK on the data carriers,
                      every bit twice (frequency diversity)
⌈N/n_data⌉            payload: the JSCC's N complex symbols placed directly
                      on the data carriers (analog, no slicing), zero-filled
====================  =======================================================

Every symbol after the preamble carries ``pilot_symbols`` (±1) on the pilot
carriers for phase tracking. Time-domain samples have unit mean power over
the active carriers: x = IFFT(X)/√n_active, each symbol with a cyclic prefix.

SNR convention (``snr_db`` everywhere in the OFDM layer): the *in-band* SNR
per active carrier, E|H_k X_k|²/E|N_k|², i.e. the Es/N0 the JSCC symbols
see. With unit-power time samples and complex white noise of variance σ²
(e.g. ``channels.channel_model``'s noise_voltage² ), snr = (fft_len/n_active)/σ²
for a flat channel of unit gain (``noise_voltage_for_snr``).
"""
import numpy as np

PILOT_SCRAMBLE_SEED = 0x5EED        # pilot polarity per OFDM symbol
SYNC_SEED = 42                       # BPSK of the S&C symbol and of the LTS


def default_carriers(fft_len):
    """(occupied data carriers, pilot carriers) for ``fft_len``: IEEE 802.11a's for 64, scaled otherwise."""
    if fft_len == 64:
        pilots = [-21, -7, 7, 21]
    else:
        edge = int(round(26 * fft_len / 64))
        n_pilots = max(2, 2 * int(round(2 * fft_len / 64)))
        step = 2 * edge / n_pilots
        pilots = sorted({int(round(-edge + step * (i + 0.5))) or 1 for i in range(n_pilots)})
    edge = int(round(26 * fft_len / 64))
    data = [k for k in range(-edge, edge + 1) if k != 0 and k not in pilots]
    return data, pilots


class OfdmParams:
    """The OFDM numerology: FFT size, cyclic prefix, data and pilot carriers, header length.

    Args:
        fft_len: FFT size (a power of two, 16…4096).
        cp_len: cyclic prefix in samples (1 … fft_len/2).
        occupied_carriers: data carriers (ints, −fft_len/2 … fft_len/2−1, not 0); () = default.
        pilot_carriers: pilot carriers (at least 2, disjoint from the data ones); () = default.
    """

    def __init__(self, fft_len=64, cp_len=16, occupied_carriers=(), pilot_carriers=()):
        from . import header                              # header length depends on the data carriers
        if isinstance(fft_len, bool) or not isinstance(fft_len, (int, np.integer)) or fft_len < 16 \
                or fft_len > 4096 or fft_len & (fft_len - 1):
            raise ValueError(f"fft_len must be a power of two from 16 to 4096; got {fft_len!r}")
        if isinstance(cp_len, bool) or not isinstance(cp_len, (int, np.integer)) or not 1 <= cp_len <= fft_len // 2:
            raise ValueError(f"cp_len must be an integer from 1 to fft_len/2 = {fft_len // 2}; got {cp_len!r}")
        self.fft_len, self.cp_len = int(fft_len), int(cp_len)
        d_def, p_def = default_carriers(self.fft_len)
        data = [int(k) for k in (occupied_carriers if len(occupied_carriers) else d_def)]
        pilots = [int(k) for k in (pilot_carriers if len(pilot_carriers) else p_def)]
        half = self.fft_len // 2
        for name, cs in (("occupied_carriers", data), ("pilot_carriers", pilots)):
            if any(not -half <= k < half or k == 0 for k in cs) or len(set(cs)) != len(cs):
                raise ValueError(f"{name} must be distinct carriers from {-half} to {half - 1}, without 0 (DC)")
        if len(data) < 8:
            raise ValueError(f"occupied_carriers needs at least 8 data carriers; got {len(data)}")
        if len(pilots) < 2 or set(pilots) & set(data):
            raise ValueError("pilot_carriers needs at least 2 carriers, none of them a data carrier")
        self.data_carriers = np.array(data)                     # allocator order (payload order)
        self.pilot_carriers = np.array(pilots)
        self.active = np.array(sorted(data + pilots))
        self.n_data, self.n_active = len(data), len(self.active)
        self.sym_len = self.fft_len + self.cp_len
        self.data_idx = self.data_carriers + half               # positions in a shifted FFT symbol
        self.pilot_idx = self.pilot_carriers + half
        self.active_idx = self.active + half
        self.pos_data = np.searchsorted(self.active, self.data_carriers)     # within the active set
        self.pos_pilot = np.searchsorted(self.active, self.pilot_carriers)
        rng = np.random.default_rng(SYNC_SEED)
        self.sc_symbol = np.zeros(self.fft_len, np.complex64)    # shifted order
        odd = self.active[self.active % 2 != 0]
        self.sc_symbol[odd + half] = np.sqrt(2) * (1 - 2 * rng.integers(0, 2, len(odd)))
        self.lts = np.zeros(self.fft_len, np.complex64)
        self.lts[self.active_idx] = 1 - 2 * rng.integers(0, 2, self.n_active)
        self.lts_active = self.lts[self.active_idx].astype(np.complex128)
        self.lts_time = self.modulate(self.lts[None, :])[0]          # without CP, unit power
        prng = np.random.default_rng(PILOT_SCRAMBLE_SEED)
        self.pilot_polarity = 1 - 2 * prng.integers(0, 2, 127)        # one sign per OFDM symbol, cycling
        self.n_header_symbols = header.n_symbols(self.n_data)
        self.n_header_bits = self.n_header_symbols * (self.n_data // 2)
        self.n_preamble_symbols = 3

    def sync_words(self):
        """Sync words for ``ofdm_carrier_allocator_cvc`` (shifted order): S&C, LTS, LTS."""
        return [self.sc_symbol.tolist(), self.lts.tolist(), self.lts.tolist()]

    def pilot_symbols(self):
        """Pilot values per OFDM symbol after the preamble, as the allocator cycles them."""
        return [tuple(float(s) * np.ones(len(self.pilot_carriers))) for s in self.pilot_polarity]

    def pilots_for(self, n_symbols):
        """(n_symbols, n_pilots) pilot values of the symbols after the preamble."""
        signs = self.pilot_polarity[np.arange(n_symbols) % len(self.pilot_polarity)]
        return np.repeat(signs[:, None], len(self.pilot_carriers), axis=1).astype(np.float64)

    def payload_symbols(self, n):
        """OFDM symbols that carry n payload symbols."""
        return -(-int(n) // self.n_data)

    def frame_samples(self, n_payload):
        """Samples of a whole frame carrying n_payload JSCC symbols (cyclic prefixes included)."""
        return (self.n_preamble_symbols + self.n_header_symbols + self.payload_symbols(n_payload)) * self.sym_len

    def scale(self):
        """Time-domain scale after an unnormalised IFFT: 1/√n_active (unit-power samples)."""
        return 1.0 / np.sqrt(self.n_active)

    def modulate(self, symbols_shifted):
        """(S, fft_len) shifted-order carriers → (S, fft_len) time samples (no CP), as ``ofdm_tx`` scales them."""
        x = np.fft.ifft(np.fft.ifftshift(symbols_shifted, axes=-1), axis=-1) * self.fft_len
        return (x * self.scale()).astype(np.complex64)

    def demodulate(self, windows):
        """(S, fft_len) time windows → (S, fft_len) shifted carriers on the transmit scale (X, not X/√n)."""
        return np.fft.fftshift(np.fft.fft(windows, axis=-1), axes=-1) / (self.fft_len * self.scale())

    def noise_voltage_for_snr(self, snr_db):
        """σ of complex white noise on unit-power samples that gives in-band SNR ``snr_db`` (flat unit channel)."""
        return float(np.sqrt(self.fft_len / self.n_active / 10.0 ** (snr_db / 10.0)))
