"""Whole-frame handling for Python blocks on tagged streams.

GNU Radio's C++ tagged-stream blocks need a whole frame inside one buffer,
which dead-locks on frames longer than the upstream buffer. Here a block
instead *collects* frames across ``work()`` calls (``FrameAssembler``) and
*writes* finished frames out across calls (``FrameWriter``), so frames of any
length up to ``max_frame_len`` pass without touching buffer sizes.

Malformed input never raises: samples outside a frame (no length tag),
frames cut short by the next length tag, bad length values and frames
longer than ``max_frame_len`` are dropped and counted; the owner logs.
"""
from dataclasses import dataclass, field

import numpy as np
import pmt

from ..core import tags as tagkeys


@dataclass
class Frame:
    """One frame: its samples and its tags (offset relative to frame start)."""
    samples: np.ndarray
    tags: list = field(default_factory=list)  # [(rel_offset, key_str, pmt_value)]


class FrameAssembler:
    """Cuts a tagged stream into ``Frame`` objects.

    ``push(samples, tags, first_offset)`` takes one work() buffer and its
    tags (``gr.tag_t`` with absolute offsets) and returns the frames that
    finished in it. Counters: ``dropped_samples``, ``dropped_frames``.
    """

    def __init__(self, len_tag_key=tagkeys.DEFAULT_LEN_TAG_KEY, max_frame_len=1 << 20):
        self.len_tag_key = len_tag_key
        self.max_frame_len = int(max_frame_len)
        self.dropped_samples = 0
        self.dropped_frames = 0
        self.problems = []          # messages for the owner to log, drained by it
        self._parts = []
        self._tags = []
        self._have = 0
        self._want = 0              # length of the frame being collected
        self._skip = 0              # samples of an over-long frame still to skip

    def partial_samples(self):
        """Samples held of a frame that has not finished yet."""
        return self._have

    def _drop_partial(self, why):
        if self._want:
            self.dropped_frames += 1
            self.dropped_samples += self._have
            self.problems.append(f"dropped a frame: {why}")
        self._parts, self._tags, self._have, self._want = [], [], 0, 0

    def push(self, samples, stream_tags, first_offset):
        n = len(samples)
        starts, other = {}, []
        for t in stream_tags:
            rel = t.offset - first_offset
            if pmt.symbol_to_string(t.key) == self.len_tag_key:
                starts[rel] = t.value
            else:
                other.append((rel, pmt.symbol_to_string(t.key), t.value))
        start_pos = sorted(starts)
        done, pos = [], 0
        while pos < n:
            if pos in starts:
                if self._want:
                    self._drop_partial(f"only {self._have} of {self._want} samples before the next length tag")
                if self._skip:
                    self._skip = 0
                self._begin(starts[pos])
            nxt = next((s for s in start_pos if s > pos), n)
            if self._skip:
                k = min(self._skip, nxt - pos)
                self._skip -= k
                self.dropped_samples += k
                pos += k
                continue
            if not self._want:                       # outside any frame
                self.dropped_samples += nxt - pos
                self.problems.append(
                    f"dropped {nxt - pos} samples without a '{self.len_tag_key}' length tag")
                pos = nxt
                continue
            k = min(self._want - self._have, nxt - pos)
            self._parts.append(np.array(samples[pos:pos + k]))
            base = self._have - pos
            self._tags.extend((rel + base, key, val) for rel, key, val in other if pos <= rel < pos + k)
            self._have += k
            pos += k
            if self._have == self._want:
                done.append(Frame(np.concatenate(self._parts), self._tags))
                self._parts, self._tags, self._have, self._want = [], [], 0, 0
        return done

    def _begin(self, value):
        length = tagkeys.to_python(value)
        if not tagkeys.is_length(length):
            self.dropped_frames += 1
            self.problems.append(f"dropped a frame: length tag value {value} is not a count > 0")
            return
        if length > self.max_frame_len:
            self.dropped_frames += 1
            self._skip = length
            self.problems.append(
                f"dropped a frame of {length} samples: longer than max_frame_len={self.max_frame_len}")
            return
        self._want = int(length)


class FrameWriter:
    """Queues frames and writes them out across work() calls.

    Each frame gets its length tag at its first sample and keeps its other
    tags at their relative offsets. ``pending`` is the number of queued
    samples; a block must keep being scheduled while it is > 0.
    """

    def __init__(self, len_tag_key=tagkeys.DEFAULT_LEN_TAG_KEY):
        self.len_tag_key = pmt.intern(len_tag_key)
        self._queue = []       # [Frame, next index to write]
        self.pending = 0

    def append(self, frame):
        self._queue.append([frame, 0])
        self.pending += len(frame.samples)

    def write(self, block, port, out):
        """Copy queued samples into ``out``; add tags; return items written."""
        written, base = 0, block.nitems_written(port)
        while self._queue and written < len(out):
            frame, idx = self._queue[0]
            k = min(len(frame.samples) - idx, len(out) - written)
            out[written:written + k] = frame.samples[idx:idx + k]
            if idx == 0:
                block.add_item_tag(port, base + written, self.len_tag_key,
                                   pmt.from_long(len(frame.samples)))
            for rel, key, value in frame.tags:
                if idx <= rel < idx + k:
                    block.add_item_tag(port, base + written + rel - idx, pmt.intern(key), value)
            written += k
            self.pending -= k
            if idx + k == len(frame.samples):
                self._queue.pop(0)
            else:
                self._queue[0][1] = idx + k
        return written
