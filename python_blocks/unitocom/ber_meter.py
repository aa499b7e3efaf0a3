"""ber_meter: count bit errors between a reference and a received bit stream."""
import threading

import numpy as np
from gnuradio import gr

from .runtime.args import check_int


class ber_meter(gr.sync_block):
    """Bit error counter (a sink).

    Inputs ``ref`` and ``rx``: uint8 streams of unpacked bits (one bit per
    byte, in the LSB; e.g. from ``blocks.unpack_k_bits_bb`` and
    ``digital.binary_slicer_fb``). Every item pair is compared;
    ``errors()``, ``bits()`` and ``ber()`` give the exact running counts
    (gr-fec's ``ber_bf`` only reports log10 of the rate), ``reset()``
    restarts them. When the flowgraph stops, one line is printed:
    ``<label>: BER <ber> (<errors> errors / <bits> bits)``.

    Any byte values and tags are fine: only bit 0 of each item counts.

    Args:
        label: text at the start of the printed line ('' prints nothing).
        skip: number of leading bits to ignore (e.g. a decoder's latency), >= 0.
    """

    def __init__(self, label="ber", skip=0):
        gr.sync_block.__init__(self, name="ber_meter", in_sig=[np.uint8, np.uint8], out_sig=None)
        self.set_label(label)
        self._skip = check_int("skip", skip, 0)
        self._lock = threading.Lock()
        self._errors = 0
        self._bits = 0

    def work(self, input_items, output_items):
        ref, rx = input_items
        n = len(ref)
        first = self.nitems_read(0)
        lo = max(0, self._skip - first)
        if lo < n:
            errs = int(np.count_nonzero((ref[lo:] ^ rx[lo:]) & 1))
            with self._lock:
                self._errors += errs
                self._bits += n - lo
        return n

    def errors(self):
        with self._lock:
            return self._errors

    def bits(self):
        with self._lock:
            return self._bits

    def ber(self):
        with self._lock:
            return self._errors / self._bits if self._bits else float("nan")

    def set_label(self, label):
        """Text of the line printed at stop ('' prints nothing)."""
        if not isinstance(label, str):
            raise ValueError(f"label must be a text ('' prints nothing); got {label!r}")
        self._label = label

    def reset(self):
        with self._lock:
            self._errors = self._bits = 0

    def stop(self):
        if self._label:
            print(f"{self._label}: BER {self.ber():.4e} ({self.errors()} errors / {self.bits()} bits)", flush=True)
        return True
