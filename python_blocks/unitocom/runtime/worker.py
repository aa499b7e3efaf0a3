"""A worker thread behind a bounded queue, for slow or remote calls.

A block's message handler or ``work()`` must never wait on the network
(DESIGN.md §1): it hands the item to ``Worker.put`` and returns at once.
One thread takes items in order and calls ``handle(item)``; an exception
goes to ``on_error(item, exc)`` and the thread goes on. ``put`` refuses an
item when the queue is full (the caller logs and drops, or retries later),
so a stalled server cannot grow memory without bound.

``stop()`` is what a block calls from its own ``stop()``: by default it
first lets the thread finish every item already queued, so the last item
of a finishing flowgraph is not lost; ``stop(drain=False)`` discards the
queue (the count of discarded items is returned).
"""
import queue
import threading

from .args import check_int

_STOP = object()


class Worker:
    """``handle(item)`` for each queued item, in order, in one daemon thread.

    Args:
        handle: called with each item in the worker thread.
        on_error: ``on_error(item, exc)`` for an exception from ``handle``
            (default: ignore); never raises into the thread.
        max_queue: most items waiting (>= 1); ``put`` returns False beyond it.
        name: thread name (shows in debuggers and logs).
    Counters: ``done`` (handled without error), ``failed``, ``refused``.
    """

    def __init__(self, handle, on_error=None, max_queue=64, name="unitocom-worker"):
        max_queue = check_int("max_queue", max_queue, 1)
        self._handle, self._on_error = handle, on_error or (lambda item, exc: None)
        self._queue = queue.Queue(maxsize=int(max_queue))
        self._lock = threading.Lock()
        self._stopping = False
        self.done = self.failed = self.refused = 0
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    def put(self, item):
        """Queue ``item`` without blocking; False when the queue is full or the worker stopped."""
        with self._lock:
            if self._stopping:
                self.refused += 1
                return False
            try:
                self._queue.put_nowait(item)
                return True
            except queue.Full:
                self.refused += 1
                return False

    def pending(self):
        """Items queued and not yet taken by the thread."""
        return self._queue.qsize()

    def alive(self):
        return self._thread.is_alive()

    def _loop(self):
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            try:
                self._handle(item)
                self.done += 1
            except Exception as exc:            # the thread outlives every bad item
                self.failed += 1
                try:
                    self._on_error(item, exc)
                except Exception:
                    pass

    def stop(self, drain=True, timeout=10.0):
        """Stop the thread; with ``drain`` every item queued so far is handled first.

        Returns the number of items discarded (0 when drained in time)."""
        with self._lock:
            if self._stopping:
                return 0
            self._stopping = True
        discarded = 0
        if not drain:
            while True:
                try:
                    self._queue.get_nowait()
                    discarded += 1
                except queue.Empty:
                    break
        try:                                    # after every queued item: the thread handles them first
            self._queue.put(_STOP, timeout=timeout)
        except queue.Full:                      # handle() hung with a full queue
            return discarded + self._queue.qsize()
        self._thread.join(timeout)
        if self._thread.is_alive():            # handle() hung: report what is left
            discarded += self._queue.qsize()
        return discarded
