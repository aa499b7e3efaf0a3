"""The sending side of ``mllm_client``: requests out through a ``client.Client``, retries, results in order.

``Requester`` owns one thread and, in it, one ``Client`` (ZeroMQ sockets
are not thread-safe). The caller, a block's message handler, hands it
``requests.Request`` objects with ``put``, which never waits: a request is
refused (False) when ``queue_size`` are held already — waiting, in flight,
or done and waiting for an earlier request of their session. The thread

* submits each request at once (the server batches what arrives together)
  with the generation settings and ``timeout_s`` (also its server-side
  deadline);
* retries every attempt that may succeed later — no connection to the
  server ('unreachable': the client sends nothing to a server that is not
  there), no reply within ``timeout_s`` ('timeout'), a 'busy' reply (a full
  queue, or a server shutting down) or a 'timeout' reply — after ``backoff_s``·2^(k−1) seconds (at
  most ``MAX_BACKOFF_S``), at most ``max_retries`` times, and reports each
  such failure at once: ``on_error(request, status, why, attempt,
  request_id, retry_in_s)``;
* gives up at once on a request the client refuses to send
  (``schema.SchemaError``), an 'error' reply (the server refused the
  request itself: sending it again gives the same answer), an ok reply that
  does not hold the task's result; and after the last retry;
* hands back the outcomes in order per session — ``on_result(request,
  reply, attempts)`` or ``on_error(..., retry_in_s=None)`` — a request
  waiting for the earlier ones of its session (sessions do not wait for
  each other);
* calls ``on_idle()`` each time nothing is held any more.

A restarted server is reconnected by ZeroMQ (``client``): requests in
flight then time out and are sent again.
"""
import collections
import math
import os
import threading
import time

import numpy as np
import zmq

from . import layout, schema
from .client import Client, Reply

MAX_BACKOFF_S = 30.0
MAX_WAIT_S = 1.0                                  # the thread looks around at least this often
LOST_S = 1.0                                      # a reply the client still owes this long after its timeout: lost


def gen_for(task, gen):
    """The generation settings of ``gen`` that apply to ``task`` (the server refuses the others): steps,
    sampler and eta only for t2i, max_words and top_p only for the text tasks; None when none is left."""
    allowed = schema.T2I_GEN if task == "t2i" else schema.TEXT_GEN
    kept = {k: v for k, v in (gen or {}).items() if k in allowed}
    return kept or None


class _Job:
    __slots__ = ("request", "attempt", "due", "rid", "deadline", "outcome")

    def __init__(self, request, now):
        self.request, self.attempt, self.due, self.rid, self.deadline, self.outcome = request, 0, now, None, 0.0, None


def check_result(task, reply):
    """None when an ok reply holds the task's result, else what is wrong."""
    if task == "t2i":
        tokens = reply.arrays.get("image_tokens")
        if tokens is None or tokens.shape != (layout.IMAGE_TOKENS, layout.TOKEN_DIM) or not np.all(np.isfinite(tokens)):
            return f"the reply holds no finite image_tokens ({layout.IMAGE_TOKENS}, {layout.TOKEN_DIM})"
        return None
    ids = reply.header.get("ids")
    if not isinstance(ids, list) or not all(isinstance(i, int) and 0 <= i < layout.VOCAB for i in ids):
        return "the reply holds no word ids in the vocabulary"
    if not isinstance(reply.header.get("text", ""), str):
        return "the reply's text is not a string"
    return None


class Requester:
    """Sends requests from its own thread (module docstring); ``client_args`` are ``Client``'s."""

    def __init__(self, client_args, max_retries, backoff_s, queue_size, gen, on_result, on_error, on_idle, log,
                 name="mllm-requester"):
        self._client_args, self._timeout = dict(client_args), float(client_args["timeout_s"])
        self._retries, self._backoff, self._size, self._gen = int(max_retries), float(backoff_s), int(queue_size), gen
        self._on_result, self._on_error, self._on_idle, self._log = on_result, on_error, on_idle, log
        self._lock = threading.Lock()
        self._new, self._held, self._stopping = collections.deque(), 0, False
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def put(self, request):
        """Queue ``request`` without waiting; False when ``queue_size`` are held or the requester stopped."""
        with self._lock:
            if self._stopping or self._held >= self._size:
                return False
            self._held += 1
            self._new.append(request)
        self._wake()
        return True

    def held(self):
        with self._lock:
            return self._held

    def idle(self):
        return self.held() == 0

    def stop(self, timeout=5.0):
        """Stop the thread; requests still held are dropped without a word (the flowgraph is stopping)."""
        with self._lock:
            self._stopping = True
        self._wake()
        self._thread.join(timeout)
        if not self._thread.is_alive():
            os.close(self._wake_r)
            os.close(self._wake_w)

    def _wake(self):
        try:
            os.write(self._wake_w, b"!")
        except OSError:                         # the pipe is full (a wake-up is pending anyway) or closed
            pass

    def _call(self, fn, *args):
        try:
            fn(*args)
        except Exception as exc:                # a callback never takes the thread with it
            self._log(f"the MLLM requester's callback failed: {type(exc).__name__}: {exc}")

    def _run(self):
        sessions, by_id, client = {}, {}, None
        while True:
            try:
                if client is None:
                    client = Client(**self._client_args)
                    poller = zmq.Poller()
                    poller.register(client.sock, zmq.POLLIN)
                    poller.register(self._wake_r, zmq.POLLIN)
                with self._lock:
                    if self._stopping:
                        break
                    new, self._new = list(self._new), collections.deque()
                now = time.monotonic()
                for request in new:
                    sessions.setdefault(request.session, collections.deque()).append(_Job(request, now))
                self._submit_due(client, sessions, by_id, now)
                for reply in client.poll(0) + self._lost(by_id, time.monotonic()):
                    self._on_reply(reply, by_id, time.monotonic())
                self._release(sessions)
                if dict(poller.poll(self._wait_ms(sessions, time.monotonic()))).get(self._wake_r):
                    os.read(self._wake_r, 4096)
            except Exception as exc:            # never a dead thread: log, start over with a fresh socket
                self._log(f"the MLLM requester recovers from {type(exc).__name__}: {exc}")
                if client is not None:
                    client.close()
                client = None
                for job in by_id.values():       # their replies would come to the old socket
                    job.rid, job.due = None, time.monotonic() + self._backoff
                by_id.clear()
                time.sleep(0.1)
        if client is not None:
            client.close()

    def _submit_due(self, client, sessions, by_id, now):
        for queue in sessions.values():
            for job in queue:
                if job.outcome is not None or job.rid is not None or job.due > now:
                    continue
                job.attempt += 1
                r = job.request
                try:
                    job.rid = client.submit(r.task, r.arrays, session=r.session, snr_db=r.snr_db, csi=r.csi,
                                            gen=gen_for(r.task, self._gen), timeout_s=self._timeout)
                except Exception as exc:        # SchemaError, or csi that JSON cannot hold
                    job.outcome = ("error", "error", f"not sent: {exc}", None)
                    continue
                job.deadline = now + self._timeout
                by_id[job.rid] = job

    def _on_reply(self, reply, by_id, now):
        job = by_id.pop(reply.id, None)
        if job is None:
            return
        rid, job.rid = job.rid, None
        if reply.ok:
            why = check_result(job.request.task, reply)
            job.outcome = ("ok", reply) if why is None else ("error", "error", why, rid)
            return
        status = "unreachable" if reply.local and reply.status == "error" else reply.status
        why = str(reply.error or status)
        if status == "error":                   # the server refused this request: the same again would fail
            job.outcome = ("error", status, why, rid)
            return
        if job.attempt > self._retries:
            job.outcome = ("error", status, f"{why} (gave up after {job.attempt} attempts)", rid)
            return
        delay = min(self._backoff * 2 ** (job.attempt - 1), MAX_BACKOFF_S)
        job.due = now + delay
        self._call(self._on_error, job.request, status, why, job.attempt, rid, delay)

    def _lost(self, by_id, now):
        """Timeouts for ids the client should have answered long ago (it promises one reply per id; this
        keeps a broken promise from holding a request, and the end of the flowgraph, forever)."""
        return [Reply({"id": rid, "status": "timeout", "error": "no reply (lost)", "local": True}, {})
                for rid, job in by_id.items() if now > job.deadline + LOST_S]

    def _release(self, sessions):
        for session in list(sessions):
            queue = sessions[session]
            while queue and queue[0].outcome is not None:
                job = queue.popleft()
                if job.outcome[0] == "ok":
                    self._call(self._on_result, job.request, job.outcome[1], job.attempt)
                else:
                    _, status, why, rid = job.outcome
                    self._call(self._on_error, job.request, status, why, job.attempt, rid, None)
                with self._lock:
                    self._held -= 1
                    idle = self._held == 0 and not self._new
                if idle:
                    self._call(self._on_idle)
            if not queue:
                del sessions[session]

    def _wait_ms(self, sessions, now):
        """Until the next retry is due or the next reply is overdue (the client then reports a timeout)."""
        times = [job.due if job.rid is None else job.deadline + 0.002
                 for queue in sessions.values() for job in queue if job.outcome is None]
        wait = min([MAX_WAIT_S] + [t - now for t in times])
        return max(5, math.ceil(wait * 1000))              # an overdue reply: the client reports it soon
