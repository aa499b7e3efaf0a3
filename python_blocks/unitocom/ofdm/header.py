"""The OFDM frame header: fields, bit layout, CRC-32 and frequency diversity.

21 bytes, big-endian, whitened with a fixed pseudo-random sequence and sent
as BPSK (bit b → 1 − 2b) on the data carriers of the header symbols. Each
header OFDM symbol carries ⌊n_data/2⌋ bits *twice*, on data carriers half
the band apart (``layout``): the receiver adds both (maximum-ratio), so a
notch of a multipath channel does not take header bits with it (without
this, 9 of 24 headers failed at 15 dB over the 3-tap test channel). The
rest of the last header symbol is filled with whitened zero bits. A header
that fails the CRC is tried again with one or two of its least reliable
bits flipped (``decode``; 55 CRC checks, so a wrong header passes with
probability ≈ 55·2⁻³²).

=====  ======  ==============================================================
byte   bits    field
=====  ======  ==============================================================
0      4 | 4   version (``VERSION``) | modality (0 image, 1 audio, 2 text)
1      8       task: index in ``TASK_CODES`` (0 none, 1 vqa, 2 t2i, 3 asr, 4 dsc)
2      8       rate: complex symbols per token (1…255)
3–4    16      n_tokens (1…65535); the payload is n_tokens·rate symbols
5–8    32      frame_id mod 2³²
9–12   32      session_id (uint32)
13–16  32      model hash: the 8 hex digits that end the JSCC encoder's model id
17–20  32      CRC-32 (zlib) of bytes 0–16
=====  ======  ==============================================================
"""
import struct
import zlib
from dataclasses import dataclass

import numpy as np

from ..core.modalities import MODALITIES

VERSION = 1
HEADER_BYTES = 21
HEADER_BITS = 8 * HEADER_BYTES
TASK_CODES = ("", "vqa", "t2i", "asr", "dsc")       # the task names of ``runtime.sessions``, numbered


def task_code(task):
    """Header code of a task tag value: a name of ``TASK_CODES`` or its code; 0 for anything else."""
    if isinstance(task, str):
        return TASK_CODES.index(task) if task in TASK_CODES else 0
    return int(task) if isinstance(task, int) and not isinstance(task, bool) and 0 <= task < len(TASK_CODES) else 0
_FMT = ">BBBHIII"
CHASE_BITS = 10           # least reliable bits tried (1 and 2 at a time: 55 CRC checks at most)
_WHITEN = np.random.default_rng(0x0FD3).integers(0, 2, 4096).astype(np.uint8)


@dataclass
class FrameHeader:
    modality: str
    rate: int
    n_tokens: int
    frame_id: int = 0
    session_id: int = 0
    task: int = 0
    model_hash: int = 0

    @property
    def n_symbols(self):
        return self.n_tokens * self.rate


def model_hash(model_id):
    """32-bit hash a model id ``<name>-<variant>-<hex8>`` ends with (0 when it has none)."""
    tail = str(model_id).rsplit("-", 1)[-1]
    try:
        return int(tail, 16) if len(tail) == 8 else 0
    except ValueError:
        return 0


def check(h):
    """ValueError unless every field of ``h`` fits the header."""
    if h.modality not in MODALITIES:
        raise ValueError(f"modality {h.modality!r} cannot be sent")
    for name, value, hi in (("rate", h.rate, 255), ("n_tokens", h.n_tokens, 65535), ("task", h.task, 255),
                            ("session_id", h.session_id, 2 ** 32 - 1), ("model_hash", h.model_hash, 2 ** 32 - 1)):
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or not (0 <= value <= hi):
            raise ValueError(f"{name}={value!r} does not fit the header (0…{hi})")
    if h.rate < 1 or h.n_tokens < 1:
        raise ValueError("rate and n_tokens must be >= 1")


def to_bits(h, n_bits):
    """The whitened header as ``n_bits`` (>= HEADER_BITS) bits (uint8 0/1)."""
    check(h)
    body = struct.pack(_FMT, (VERSION << 4) | MODALITIES.index(h.modality), h.task, h.rate, h.n_tokens,
                       h.frame_id % 2 ** 32, h.session_id, h.model_hash)
    raw = body + struct.pack(">I", zlib.crc32(body))
    bits = np.zeros(n_bits, np.uint8)
    bits[:HEADER_BITS] = np.unpackbits(np.frombuffer(raw, np.uint8))
    return bits ^ _WHITEN[:n_bits]


def n_symbols(n_data):
    """Header OFDM symbols for ``n_data`` data carriers."""
    return -(-HEADER_BITS // (n_data // 2))


def layout(bits, n_data):
    """(n_symbols, n_data) BPSK values of the header ``bits`` (n_symbols·⌊n_data/2⌋ of them), each bit twice."""
    half = n_data // 2
    b = (1.0 - 2.0 * np.asarray(bits, np.float64)).reshape(-1, half)
    out = np.ones((len(b), n_data))
    out[:, :half], out[:, half:2 * half] = b, b
    return out


def combine(soft, n_data):
    """Soft bits (> 0: bit 0) from (n_symbols, n_data) values Re(y·ĥ*) by adding each bit's two copies."""
    half = n_data // 2
    return (soft[:, :half] + soft[:, half:2 * half]).ravel()


def decode(soft, flips=CHASE_BITS):
    """(FrameHeader or None, hard bits) from soft bits: the hard decision, else the same with one or two
    of the ``flips`` least reliable header bits flipped (Chase decoding; the CRC picks)."""
    bits = (np.asarray(soft) < 0).astype(np.uint8)
    head = from_bits(bits)
    if head is not None or not flips:
        return head, bits
    weak = np.argsort(np.abs(soft[:HEADER_BITS]))[:flips]
    for i, j in [(i, None) for i in weak] + [(weak[a], weak[b]) for a in range(flips) for b in range(a + 1, flips)]:
        trial = bits.copy()
        trial[i] ^= 1
        if j is not None:
            trial[j] ^= 1
        head = from_bits(trial)
        if head is not None:
            return head, trial
    return None, bits


def from_bits(bits):
    """FrameHeader from received hard bits, or None when the CRC, the version or a field is wrong."""
    bits = (np.asarray(bits[:HEADER_BITS], np.uint8) ^ _WHITEN[:HEADER_BITS])
    raw = np.packbits(bits).tobytes()
    if zlib.crc32(raw[:17]) != struct.unpack(">I", raw[17:])[0]:
        return None
    vm, task, rate, n_tokens, frame_id, session_id, mhash = struct.unpack(_FMT, raw[:17])
    if vm >> 4 != VERSION or (vm & 15) >= len(MODALITIES) or rate == 0 or n_tokens == 0:
        return None
    return FrameHeader(MODALITIES[vm & 15], rate, n_tokens, frame_id, session_id, task, mhash)
