"""power_normalizer: scale each frame of a tagged stream to average power P."""
import numpy as np
from gnuradio import gr

from .core import tags as tagkeys
from .runtime.args import check_float, check_int, check_name
from .runtime.droplog import DropLog
from .runtime.frame_buffer import FrameAssembler, FrameWriter

MIN_POWER, MAX_POWER = 1e-20, 1e20      # P: the scaled samples stay well inside float32
MAX_FRAME_LEN = 1 << 26                 # 512 MiB of complex64: the most max_frame_len may say


class power_normalizer(gr.basic_block):
    """Scale every frame so that (1/N)·‖z‖² = P (the power constraint of Eq. 1).

    Input ``in``: complex64 tagged stream; each frame starts with a length tag
    (``len_tag_key``, an integer N). Output ``out``: the same frames, each
    multiplied by √(P / ((1/N)Σ|z_i|²)); the length tag and every other tag
    of the frame are kept at their offsets.

    Bad input is logged and dropped, never raised: samples outside a frame
    (no length tag), frames cut short by the next length tag, length tags
    that are not a count > 0, frames with NaN/Inf samples, all-zero frames
    (no power to scale) and frames longer than ``max_frame_len``.
    ``dropped_frames()`` and ``dropped_samples()`` count them. Frames of
    tiny or huge power are measured and scaled in float64. The block stops taking input while
    ``max_frame_len`` samples wait for output space, so memory stays bounded.

    Args:
        power: target average power P per complex sample (1e-20…1e20).
        len_tag_key: name of the length tag that marks frame starts.
        max_frame_len: longest frame accepted (bounds memory), 1…2^26.
    """

    def __init__(self, power=1.0, len_tag_key=tagkeys.DEFAULT_LEN_TAG_KEY, max_frame_len=1 << 20):
        gr.basic_block.__init__(self, name="power_normalizer",
                                in_sig=[np.complex64], out_sig=[np.complex64])
        check_name("len_tag_key", len_tag_key)
        max_frame_len = check_int("max_frame_len", max_frame_len, 1, MAX_FRAME_LEN)
        self.set_power(power)
        self.set_tag_propagation_policy(gr.TPP_DONT)
        # Long work() calls for the channel block after it: GNU Radio's Python
        # gateway costs a roughly fixed time per call (see the benchmark).
        self.set_min_output_buffer(1 << 16)
        self._frames = FrameAssembler(len_tag_key, max_frame_len)
        self._backlog = max(max_frame_len, 1 << 16)
        self._writer = FrameWriter(len_tag_key)
        self._log = DropLog(self.logger)
        self._bad_frames = 0

    def set_power(self, power):
        """Change P at run time (applies from the next finished frame)."""
        self._power = check_float("power", power, MIN_POWER, MAX_POWER)

    def power(self):
        return self._power

    def dropped_frames(self):
        return self._frames.dropped_frames + self._bad_frames

    def dropped_samples(self):
        return self._frames.dropped_samples

    def forecast(self, noutput_items, ninputs):
        # Queued output must be flushed even when no more input will come.
        return [0 if self._writer.pending else 1] * ninputs

    def general_work(self, input_items, output_items):
        inp = input_items[0]
        n = len(inp) if self._writer.pending < self._backlog else 0     # back-pressure: a bounded queue
        if n:
            for frame in self._frames.push(inp, self.get_tags_in_window(0, 0, n), self.nitems_read(0)):
                self._scale_or_drop(frame)
            self.consume(0, n)
            self._log.drain(self._frames.problems)
        return self._writer.write(self, 0, output_items[0])

    def stop(self):
        partial = self._frames.partial_samples()
        if partial:
            self._log.warn(f"stream ended inside a frame: dropped its {partial} samples")
        return True

    def _scale_or_drop(self, frame):
        z = frame.samples
        mean_power = float(np.vdot(z, z).real) / len(z)
        if not 1e-30 < mean_power < np.inf:            # float32 under/overflow: measure again in float64
            z = z.astype(np.complex128)
            mean_power = float(np.vdot(z, z).real) / len(z)
        if not np.isfinite(mean_power) or mean_power <= 0.0:
            self._bad_frames += 1
            what = "NaN/Inf samples" if not np.isfinite(mean_power) else "zero power"
            self._log.warn(f"dropped a frame of {len(z)} samples: {what}")
            return
        scale = np.sqrt(self._power / mean_power)
        frame.samples = (z * (np.float32(scale) if z.dtype == np.complex64 else scale)).astype(np.complex64)
        self._writer.append(frame)
