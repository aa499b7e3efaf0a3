"""LDPC codes of gr-fec: its encoder and alist files, with a sum-product decoder.

The codes are the parity-check matrices GNU Radio ships under
``share/gnuradio/fec/ldpc`` (``*.alist``); encoding goes through gr-fec's
``fec.ldpc_encoder_make`` run by its ``fec.encoder`` block. Decoding uses
:func:`LdpcCode.decode`, a flooding log-domain sum-product decoder over the
same H, because the belief-propagation decoder of GNU Radio 3.10.5
(``fec.ldpc_decoder``, Debian 12's version) gives almost no coding gain:
measured on the (1800, 902) code at Es/N0 = 0 dB it leaves a BER of 0.059
where uncoded hard decisions have 0.075; upstream rewrote it after 3.10.5
(gnuradio PR #6748). ``tests/test_baselines.py`` checks this decoder against
the encoder and against uncoded transmission.

Soft values follow the project's convention (``soft_demapper.llrs``):
log P(b=1|y) − log P(b=0|y), positive means 1.
"""
import functools
import os

import numpy as np
import scipy.sparse

ALIST_DIRS = ("/usr/share/gnuradio/fec/ldpc", "/usr/local/share/gnuradio/fec/ldpc")


def alist_path(name):
    """Full path of a gr-fec alist file given its name (``n_0300_k_0152_gap_03``)."""
    name = name if name.endswith(".alist") else name + ".alist"
    if os.path.isfile(name):
        return name
    for d in ALIST_DIRS:
        p = os.path.join(d, name)
        if os.path.isfile(p):
            return p
    raise FileNotFoundError(f"LDPC alist {name!r} not found in {', '.join(ALIST_DIRS)} (gnuradio's gr-fec installs them)")


def read_alist(path):
    """Parity-check matrix H (m × n, uint8) of an alist file (MacKay's format, 1-based indices)."""
    with open(path) as f:
        nums = [int(t) for t in f.read().split()]
    n, m = nums[0], nums[1]
    pos = 4
    col_deg = nums[pos:pos + n]
    pos += n + m
    h = np.zeros((m, n), np.uint8)
    for j in range(n):
        rows = nums[pos:pos + col_deg[j]]
        # columns are padded with zeros to the maximum degree in some files
        pos += col_deg[j]
        while pos < len(nums) and nums[pos] == 0 and len(rows) < nums[2]:
            pos += 1
            rows.append(0)
        for r in rows:
            if r > 0:
                h[r - 1, j] = 1
    return h


class LdpcCode:
    """One gr-fec LDPC code: ``encode`` (gr-fec) and ``decode`` (sum-product).

    Args:
        name: alist file name under GNU Radio's ``fec/ldpc`` folder, e.g.
            ``n_0300_k_0152_gap_03`` (n = 300 coded bits, k = 152 info bits).
        max_iterations: sum-product iterations (stops early once every parity check holds).
    """

    def __init__(self, name="n_0300_k_0152_gap_03", max_iterations=50):
        from gnuradio import fec
        self.name = name
        self.path = alist_path(name)
        self.max_iterations = int(max_iterations)
        self._enc = fec.ldpc_encoder_make(self.path)
        self.k = int(self._enc.get_input_size())
        self.n = int(self._enc.get_output_size())
        self.h = read_alist(self.path)
        if self.h.shape[1] != self.n:
            raise ValueError(f"{name}: alist has {self.h.shape[1]} columns, the encoder {self.n} coded bits")
        self.rows, self.cols = np.nonzero(self.h)
        edges = np.arange(self.rows.size)
        ones = np.ones(self.rows.size)
        # edge → check and edge → bit incidence, to sum messages with sparse products
        self._e2r = scipy.sparse.csr_matrix((ones, (edges, self.rows)), shape=(edges.size, self.h.shape[0]))
        self._e2c = scipy.sparse.csr_matrix((ones, (edges, self.cols)), shape=(edges.size, self.n))
        self.info_positions = self._find_info_positions()

    @property
    def rate(self):
        return self.k / self.n

    def encode(self, bits):
        """Info bits (0/1, a multiple of k) → codewords (0/1, the same number of n-bit blocks)."""
        from gnuradio import blocks, fec, gr
        bits = np.asarray(bits, np.uint8).ravel()
        if bits.size % self.k:
            raise ValueError(f"{self.name}: {bits.size} bits is not a multiple of k = {self.k}")
        if bits.size == 0:
            return np.zeros(0, np.uint8)
        tb = gr.top_block()
        src = blocks.vector_source_b(bits.tolist())
        enc = fec.encoder(self._enc, gr.sizeof_char, gr.sizeof_char)
        sink = blocks.vector_sink_b()
        tb.connect(src, enc, sink)
        tb.run()
        out = np.array(sink.data(), np.uint8)
        if out.size != bits.size // self.k * self.n:
            raise RuntimeError(f"{self.name}: gr-fec returned {out.size} coded bits for {bits.size // self.k} blocks")
        return out

    def _find_info_positions(self):
        """Where gr-fec's encoder puts each info bit in the codeword (it is systematic)."""
        rng = np.random.default_rng(0)
        blocks_ = 64
        info = rng.integers(0, 2, (blocks_, self.k)).astype(np.uint8)
        cw = self.encode(info.ravel()).reshape(blocks_, self.n)
        if np.any((self.h.astype(np.int64) @ cw.T) % 2):
            raise RuntimeError(f"{self.name}: gr-fec codewords fail the alist's parity checks")
        positions = np.empty(self.k, np.int64)
        for i in range(self.k):
            match = np.nonzero(np.all(cw == info[:, i:i + 1], axis=0))[0]
            if match.size != 1:
                raise RuntimeError(f"{self.name}: cannot locate info bit {i} in the codeword")
            positions[i] = match[0]
        return positions

    def decode(self, llr):
        """Soft values (positive means 1; a multiple of n) → (info bits, per-block parity-OK flags).

        Flooding sum-product in the log domain (tanh rule, messages clipped at ±30).
        """
        llr = np.asarray(llr, np.float64).reshape(-1, self.n)
        prior = np.clip(-llr, -30, 30)             # internal: positive means 0
        rows, cols = self.rows, self.cols
        v2c = prior[:, cols]                        # (blocks, edges)
        total = prior
        ok = np.zeros(len(llr), bool)
        for _ in range(self.max_iterations):
            t = np.tanh(np.clip(v2c, -30, 30) / 2)
            t = np.where(np.abs(t) < 1e-12, 1e-12, t)
            # product of tanh over each check, excluding the edge itself (in the log-magnitude domain)
            logmag = np.log(np.abs(t))
            neg = (t < 0).astype(np.int64)
            row_log = (self._e2r.T @ logmag.T).T
            row_neg = np.rint((self._e2r.T @ neg.T).T).astype(np.int64)
            ext_mag = np.exp(row_log[:, rows] - logmag)
            ext_sign = 1 - 2 * ((row_neg[:, rows] - neg) % 2)
            c2v = 2 * np.arctanh(np.clip(ext_sign * ext_mag, -1 + 1e-12, 1 - 1e-12))
            total = prior + (self._e2c.T @ c2v.T).T
            v2c = total[:, cols] - c2v
            hard = (total < 0).astype(np.int64)
            ok = ~np.any((hard @ self.h.T.astype(np.int64)) % 2, axis=1)
            if ok.all():
                break
        hard = (total < 0).astype(np.uint8)
        return hard[:, self.info_positions].ravel(), ok


@functools.lru_cache(maxsize=None)
def code(name="n_0300_k_0152_gap_03", max_iterations=50):
    """A cached :class:`LdpcCode` (building one encodes 64 blocks to find the info positions)."""
    return LdpcCode(name, max_iterations)


GR_FEC_CODES = ("n_0100_k_0042_gap_02", "n_0300_k_0152_gap_03", "n_0500_k_0202_gap_11",
                "n_0700_k_0282_gap_16", "n_1100_k_0442_gap_24", "n_1300_k_0522_gap_30",
                "n_1800_k_0902_gap_28")
"""The rate ≈ 0.4–0.5 codes of gr-fec's ``fec/ldpc`` folder (n, k in the name)."""


def best_fit(coded_bits):
    """The gr-fec code that carries the most info bits in ``coded_bits`` (whole codewords): (name, blocks)."""
    best = None
    for name in GR_FEC_CODES:
        n, k = int(name[2:6]), int(name[9:13])
        blocks_ = coded_bits // n
        if best is None or blocks_ * k > best[2]:
            best = (name, blocks_, blocks_ * k)
    return best[0], best[1]
