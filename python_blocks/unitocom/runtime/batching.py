"""Batching PDUs into one onnxruntime call inside a block's message handler.

GNU Radio calls a message handler once per message. ``MessageBatcher``
takes the message it is handed *and every message still queued on the same
port* (up to ``max_batch``), checks each (bad ones are logged and dropped),
runs the model once on the good ones and publishes one result per item, in
order. It all happens in the block's own scheduler thread, which suits a
local model: when a flowgraph finishes, GNU Radio hands a block its
upstream neighbours' "done" only after the messages they sent, so no PDU is
left in flight. Slow or remote calls (the MLLM server) go to a
``runtime.worker.Worker`` instead, which drains its queue on stop.

Nothing a message holds can raise out of ``handle``: every exception of
the check, the model call or the publishing is logged and the item dropped,
and an item that fails never takes the valid items of its batch with it
(``run_grouped`` retries a failed group item by item).
"""
import numpy as np
import pmt

from .args import check_int


class MessageBatcher:
    """``check(msg) → item`` (raise to drop, ValueError with a reason to say why),
    ``run(items) → results`` (None for an item that could not be processed),
    ``publish(item, result)``; ``log`` is a DropLog. Counters: ``processed``, ``dropped``."""

    def __init__(self, block, port, check, run, publish, log, max_batch=32):
        max_batch = check_int("max_batch", max_batch, 1, 4096)
        self._block, self._port = block, pmt.intern(port)
        self._check, self._run, self._publish, self._log = check, run, publish, log
        self._max = int(max_batch)
        self.processed = 0
        self.dropped = 0

    def _take_queued(self, first):
        msgs, core = [first], self._block.to_basic_block()
        while len(msgs) < self._max and core.nmsgs(self._port) > 0:
            msg = core.delete_head_nowait(self._port)
            if msg is None:
                break
            msgs.append(msg)
        return msgs

    def _drop(self, n, why):
        self.dropped += n
        self._log.warn(why)

    def handle(self, msg):
        items = []
        for m in self._take_queued(msg):
            try:
                items.append(self._check(m))
            except ValueError as exc:
                self._drop(1, f"dropped a PDU: {exc}")
            except Exception as exc:            # a malformed message must never kill the block
                self._drop(1, f"dropped a PDU: {type(exc).__name__}: {exc}")
        if not items:
            return
        try:
            results = self._run(items)
        except Exception as exc:
            self._drop(len(items), f"dropped a batch of {len(items)} PDUs: {type(exc).__name__}: {exc}")
            return
        for item, result in zip(items, results):
            if result is None:
                self._drop(1, "dropped a PDU: the model could not process it")
                continue
            try:
                self._publish(item, result)
                self.processed += 1
            except Exception as exc:
                self._drop(1, f"dropped a PDU: could not publish it: {type(exc).__name__}: {exc}")


def _shape_key(feed):
    return tuple((name, np.shape(value)) for name, value in sorted(feed.items()))


def run_grouped(session, feeds, on_error=None):
    """Run ``session`` on per-item feeds, one call per group of equal input shapes.

    ``feeds``: one dict per item, input name → unbatched array (stacked
    along a new first axis) or scalar. Returns ``outputs[0]`` per item, in
    order; images share one shape (one call), audio clips of different
    lengths are grouped by length, so batching never pads or changes a
    result. When a group's call fails (e.g. memory), each of its items is
    run alone, so one item cannot take the others with it; an item that
    fails alone, or whose output is not finite, gets None and
    ``on_error(index, exc)`` is called.
    """
    out = [None] * len(feeds)
    groups = {}
    for i, feed in enumerate(feeds):
        groups.setdefault(_shape_key(feed), []).append(i)

    def call(idx):
        batch = {name: np.stack([np.asarray(feeds[i][name]) for i in idx]) for name in feeds[idx[0]]}
        result = session.run(None, batch)[0]
        for j, i in enumerate(idx):
            if np.issubdtype(result.dtype, np.inexact) and not np.all(np.isfinite(result[j])):
                out[i] = None
                on_error and on_error(i, ValueError("the model gave NaN/Inf for this input"))
            else:
                out[i] = result[j]

    for idx in groups.values():
        try:
            call(idx)
        except Exception as exc:
            for i in idx if len(idx) > 1 else []:
                try:
                    call([i])
                except Exception as exc_i:
                    on_error and on_error(i, exc_i)
            if len(idx) == 1 and on_error:
                on_error(idx[0], exc)
    return out
