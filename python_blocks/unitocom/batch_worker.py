"""A worker thread that batches PDUs for one onnxruntime call.

Message handlers must not block: they validate a PDU and ``submit`` it to a
bounded queue; the worker drains up to ``max_batch`` queued items, runs the
model once on all of them and publishes one result per item. A full queue
drops the new item with a logged warning (never blocks the scheduler).
"""
import queue
import threading

import numpy as np

_STOP = object()


class BatchWorker:
    def __init__(self, run_batch, publish, log, max_batch=32, queue_size=256, name="unitocom-batch"):
        self._run, self._publish, self._log = run_batch, publish, log
        self._max = int(max_batch)
        self._q = queue.Queue(maxsize=int(queue_size))
        self._thread = None
        self._name = name
        self.processed = 0
        self.dropped = 0

    def start(self):
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._loop, name=self._name, daemon=True)
            self._thread.start()

    def submit(self, item):
        try:
            self._q.put_nowait(item)
        except queue.Full:
            self.dropped += 1
            self._log.warn(f"queue full ({self._q.maxsize} items): dropped one PDU")

    def stop(self):
        if self._thread is not None and self._thread.is_alive():
            self._q.put(_STOP)
            self._thread.join(timeout=10)
        self._thread = None

    def _loop(self):
        while True:
            first = self._q.get()
            if first is _STOP:
                return
            items = [first]
            while len(items) < self._max:
                try:
                    nxt = self._q.get_nowait()
                except queue.Empty:
                    break
                if nxt is _STOP:
                    self._finish(items)
                    return
                items.append(nxt)
            self._finish(items)

    def _finish(self, items):
        try:
            results = self._run(items)
        except Exception as exc:          # a bad batch must not kill the thread
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
