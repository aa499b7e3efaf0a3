"""Batching PDUs into one onnxruntime call inside a block's message handler.

GNU Radio calls a message handler once per message. ``MessageBatcher``
takes the message it is handed *and every message still queued on the same
port* (up to ``max_batch``), checks each (bad ones are logged and dropped),
runs the model once on the good ones and publishes one result per item, in
order. All of it happens in the block's own scheduler thread: when a
flowgraph finishes, GNU Radio hands a block its upstream neighbours' "done"
only after the messages they sent, so no PDU is left in flight (a worker
thread behind a queue would lose the last batch at shutdown).
"""
import numpy as np
import pmt


class MessageBatcher:
    """``check(msg) → item`` (raise ValueError to drop), ``run(items) → results``,
    ``publish(item, result)``; ``log`` is a DropLog. Counters: ``processed``, ``dropped``."""

    def __init__(self, block, port, check, run, publish, log, max_batch=32):
        if int(max_batch) < 1:
            raise ValueError(f"max_batch must be at least 1; got {max_batch}")
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

    def handle(self, msg):
        items = []
        for m in self._take_queued(msg):
            try:
                items.append(self._check(m))
            except ValueError as exc:
                self.dropped += 1
                self._log.warn(f"dropped a PDU: {exc}")
        if not items:
            return
        try:
            results = self._run(items)
        except Exception as exc:            # a bad batch must never take the flowgraph down
            self.dropped += len(items)
            self._log.warn(f"dropped a batch of {len(items)} PDUs: {exc}")
            return
        for item, result in zip(items, results):
            self._publish(item, result)
            self.processed += 1


def run_grouped(session, input_name, arrays):
    """One onnxruntime call per distinct shape in ``arrays``; outputs[0] per item, in order.

    Images all share one shape (one call); audio clips of different lengths
    are grouped by length, so batching never pads or changes a result."""
    out = [None] * len(arrays)
    groups = {}
    for i, a in enumerate(arrays):
        groups.setdefault(a.shape, []).append(i)
    for idx in groups.values():
        result = session.run(None, {input_name: np.stack([arrays[i] for i in idx]).astype(np.float32)})[0]
        for j, i in enumerate(idx):
            out[i] = result[j]
    return out
