"""A client of the MLLM server (a ZeroMQ DEALER socket): submit requests, poll for replies, never get stuck.

    from gnuradio.unitocom.mllm.client import Client

    with Client("tcp://127.0.0.1:5555", timeout_s=10.0) as client:
        rid = client.submit("vqa", {"image_tokens": tokens, "question_ids": ids}, session=7, snr_db=9.5,
                            gen={"max_words": 4})
        for reply in client.poll(timeout_ms=100):     # Reply(header, arrays), in arrival order
            print(reply.id, reply.status, reply.text)  # == rid, "ok", "yes"
        reply = client.call("t2i", {"caption_ids": caption})   # blocking: submit, then wait for this id
        image_tokens = reply.arrays["image_tokens"]            # (32, 16) float32
        print(client.health()["device"])                       # the server's health report

The contract (the ``mllm_client`` block relies on it; keep it stable):

* ``submit(task, arrays, session=0, snr_db=None, csi=None, gen=None, deadline_ms=None, timeout_s=None,
  request_id=None, wait_s=0.0) -> request id`` (a str). It never blocks unless ``wait_s`` > 0 (then it
  waits up to that long for the connection). Arrays are the task's (``schema.ARRAYS``): vqa
  ``image_tokens`` (32, 16) float32 + ``question_ids`` (N,) int64; dsc ``image_tokens``; asr
  ``audio_tokens`` (M, 16); t2i ``caption_ids`` (N,). A request the server would refuse raises
  ``schema.SchemaError`` (a ValueError) and nothing is sent.
* ``poll(timeout_ms=0) -> [Reply, ...]``: the replies there are, waiting up to ``timeout_ms`` for the
  first. **Every id that ``submit`` returned comes back exactly once** from ``poll`` (or ``call``):
  the server's reply (status ``ok``, ``error``, ``busy`` or ``timeout``), or one made here, marked
  ``reply.local``: status ``error`` when the request was not sent (no connection: the server is down,
  or refused the CURVE handshake; too many requests in flight) or when the connection was lost while
  it was in flight, status ``timeout`` when no reply came within ``timeout_s``. A reply that arrives
  after its local timeout is dropped and counted (``counts["late"]``).
* ``call(task, arrays=None, timeout_s=None, **submit_args) -> Reply``: blocking convenience (it waits
  for the connection too); replies to other ids that arrive meanwhile are kept for the next ``poll``.
* ``health(timeout_s=2.0) -> dict`` (raises ``TimeoutError`` / ``RuntimeError``), ``connected``,
  ``wait_connected(timeout_s) -> bool``, ``reconnect()``, ``close()``; ``pending`` (ids not yet
  returned); ``counts`` (sent, received, local_errors, timeouts, late, malformed, disconnects, refused).
* Connection state comes from a ZeroMQ socket monitor. A fresh client queues its first requests until
  the connection is up (ZeroMQ connects in the background), for at most ``timeout_s``; after that, and
  whenever a connection that was up is lost, ``submit`` fails at once (local error) instead of queueing
  work for a server that is not there. When the connection drops (the server stopped, was killed, or a
  silent peer missed 3 s of heartbeats), the replies already received are kept, every request still in
  flight ends with a local error, and ZeroMQ reconnects the same socket (every 0.1 … 1 s); the first
  request after the server is back is served. (A request that was still queued in ZeroMQ at that moment
  may reach the restarted server; its reply then comes late and is dropped.)
* ``sock``, the DEALER socket, may go into the caller's own ``zmq.Poller`` (POLLIN: replies may be
  waiting, call ``poll(0)``); it stays the same object unless ``reconnect()`` is called. Call ``poll``
  at least every second or so anyway: connection losses and local timeouts are noticed there.
* CURVE (a server started with ``--keys DIR``): ``server_key`` is the server's public key — the
  ``server.key`` file, the folder made by ``serve-keys`` (then ``client_key`` defaults to that folder's
  ``client.key_secret``), or the Z85 text; ``client_key`` is this client's ``*.key_secret`` file
  (without one an ephemeral pair is used, which a server with ``authorized_clients/`` refuses). A
  refused client gets local errors/timeouts, never a reply.
* A Client is used from one thread at a time (ZeroMQ sockets are not thread-safe).

Reply: ``reply.header`` (the schema's reply header: id, session, task, status, error, text, ids,
timing, model, health) and ``reply.arrays`` ({"image_tokens": (32, 16)} for t2i); shortcuts
``id``, ``status``, ``ok``, ``text``, ``ids``, ``error``, ``local``.
"""
import collections
import pathlib
import secrets
import time
from typing import NamedTuple

import numpy as np
import zmq
import zmq.auth
from zmq.utils.monitor import recv_monitor_message

from ..runtime.args import check_float, check_int
from . import schema

__all__ = ["Client", "Reply", "server_answers"]


class Reply(NamedTuple):
    """One reply: the header dict and {name: array}."""
    header: dict
    arrays: dict

    @property
    def id(self):
        return self.header.get("id")

    @property
    def status(self):
        return self.header.get("status")

    @property
    def ok(self):
        return self.header.get("status") == "ok"

    @property
    def text(self):
        return self.header.get("text")

    @property
    def trace(self):
        """vqa on a model with traces: the objects the model named before its answer (text), else None."""
        return self.header.get("trace")

    @property
    def ids(self):
        ids = self.header.get("ids")
        return None if ids is None else np.asarray(ids, np.int64)

    @property
    def error(self):
        return self.header.get("error")

    @property
    def local(self):
        return bool(self.header.get("local"))


def _load_keys(server_key, client_key):
    """(server public, client public, client secret) as Z85 bytes."""
    client_default = None
    if isinstance(server_key, (str, pathlib.Path)) and pathlib.Path(server_key).is_dir():
        folder = pathlib.Path(server_key)
        server_key = folder / "server.key"
        client_default = folder / "client.key_secret"
    if isinstance(server_key, (str, pathlib.Path)) and pathlib.Path(server_key).is_file():
        server_public, _ = zmq.auth.load_certificate(str(server_key))
    elif isinstance(server_key, (str, bytes)) and len(server_key) == 40:
        server_public = server_key.encode() if isinstance(server_key, str) else server_key
    else:
        raise ValueError(f"server_key must be the server.key file, the serve-keys folder or 40 Z85 "
                         f"characters; got {server_key!r}")
    if client_key is None and client_default is not None and client_default.is_file():
        client_key = client_default
    if client_key is None:
        public, secret = zmq.curve_keypair()
    else:
        public, secret = zmq.auth.load_certificate(str(client_key))
        if not secret:
            raise ValueError(f"client_key {client_key} holds no secret key (give the .key_secret file)")
    return server_public, public, secret


class Client:
    """A DEALER socket to the MLLM server with its own request ids, timeouts and matching (module docstring).

    Args:
        address: the server's endpoint (default ``schema.DEFAULT_ADDRESS``).
        server_key, client_key: CURVE keys (see the module docstring); None for a plain connection.
        timeout_s: how long a request waits for its reply before ``poll`` reports it as a timeout
            (also sent as its server-side ``deadline_ms`` unless one is given).
        max_pending: most requests in flight; beyond it ``submit`` reports a local error.
        hwm: ZeroMQ high-water marks.
        context: a ``zmq.Context`` (default: the process's shared one).
        id_prefix: request ids are ``<prefix>-<n>`` (default: random, so ids differ between clients).
    """

    def __init__(self, address=schema.DEFAULT_ADDRESS, server_key=None, client_key=None, timeout_s=10.0,
                 max_pending=10000, hwm=1000, context=None, id_prefix=None):
        self.address = str(address)
        self.timeout_s = check_float("timeout_s", timeout_s, above=0.0)
        self.max_pending = check_int("max_pending", max_pending, 1)
        self.hwm = check_int("hwm", hwm, 1)
        self._keys = _load_keys(server_key, client_key or None) if server_key else None      # '' = None
        self.ctx = context or zmq.Context.instance()
        self.prefix = id_prefix or secrets.token_hex(4)
        if not schema._id_ok(f"{self.prefix}-0") or len(self.prefix) > 40:
            raise ValueError(f"id_prefix must be up to 40 printable ASCII characters; got {id_prefix!r}")
        self._n = 0
        self._pending = {}                     # id → (local deadline, {"id", "session", "task"})
        self._ready = collections.deque()
        self.counts = collections.Counter()
        self.sock = None
        self._was_up = self._refused = False
        self._connect()

    # --- socket and connection state ---------------------------------------------------------------
    def _connect(self):
        sock = self.ctx.socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        # IMMEDIATE stays 0: with 1, replies not yet read are dropped when the connection closes (a
        # server's last replies before it stops). Requests are not queued for an absent server because
        # submit() refuses to send while the monitor says the connection is down.
        sock.setsockopt(zmq.SNDHWM, self.hwm)
        sock.setsockopt(zmq.RCVHWM, self.hwm)
        sock.setsockopt(zmq.RECONNECT_IVL, 100)
        sock.setsockopt(zmq.RECONNECT_IVL_MAX, 1000)
        sock.setsockopt(zmq.HEARTBEAT_IVL, 1000)            # notice a silent peer (a dead host)
        sock.setsockopt(zmq.HEARTBEAT_TIMEOUT, 3000)
        if self._keys is not None:
            sock.curve_serverkey, sock.curve_publickey, sock.curve_secretkey = self._keys
        self.monitor = sock.get_monitor_socket(zmq.EVENT_HANDSHAKE_SUCCEEDED | zmq.EVENT_DISCONNECTED
                                               | zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL
                                               | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL
                                               | zmq.EVENT_HANDSHAKE_FAILED_AUTH)
        try:
            sock.connect(self.address)                     # ZMQError for an address that is not an endpoint
        except zmq.ZMQError:
            sock.disable_monitor()
            self.monitor.close(0)
            sock.close(0)
            raise
        self.sock = sock
        self._up = self._sock_was_up = False
        self._t_socket = time.monotonic()
        self._poller = zmq.Poller()
        self._poller.register(sock, zmq.POLLIN)
        self._poller.register(self.monitor, zmq.POLLIN)

    def _close_socket(self):
        if self.sock is not None:
            try:
                self.sock.disable_monitor()
            except zmq.ZMQError:
                pass
            self.monitor.close(0)
            self.sock.close(0)
            self.sock = None

    def _service(self):
        """Read connection events; on a lost connection: take the replies already here and end every request
        still in flight with a local error (ZeroMQ reconnects the same socket by itself)."""
        lost = refused = False
        while True:
            try:
                event = recv_monitor_message(self.monitor, zmq.NOBLOCK)["event"]
            except (zmq.Again, zmq.ZMQError):
                break
            if event == zmq.EVENT_HANDSHAKE_SUCCEEDED:
                self._up = self._sock_was_up = self._was_up = True
                self._refused = False
            elif event == zmq.EVENT_DISCONNECTED:
                lost = lost or self._sock_was_up
                self._up = False
            else:                                            # a handshake failed: CURVE keys, protocol
                refused = True
                self._up = False
        if refused and not self._refused:
            self._refused = True
            self.counts["refused"] += 1
            self._fail_pending("the server refused the connection (CURVE keys missing or not authorized?)")
        if lost:
            self.counts["disconnects"] += 1
            self._receive()
            self._fail_pending(f"the connection to {self.address} was lost")

    def _fail_pending(self, why):
        for rid in list(self._pending):
            _, info = self._pending.pop(rid)
            self._local(info, "error", why)

    @property
    def connected(self):
        """True while the connection (and any CURVE handshake) is up."""
        self._service()
        return self._up

    def reconnect(self):
        """A fresh socket (replies to requests sent on the old one are lost; those requests time out)."""
        self._close_socket()
        self._connect()

    def wait_connected(self, timeout_s=5.0):
        """True once the connection (and any CURVE handshake) is up; waits at most ``timeout_s``."""
        t_end = time.monotonic() + timeout_s
        while not self.connected:
            left = t_end - time.monotonic()
            if left <= 0 or self._refused:
                return False
            self.monitor.poll(max(1, int(left * 1000)))
        return True

    def close(self):
        self._close_socket()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    @property
    def pending(self):
        """Ids submitted whose reply has not been returned yet."""
        return len(self._pending) + len(self._ready)

    # --- requests -----------------------------------------------------------------------------------
    def submit(self, task, arrays=None, session=0, snr_db=None, csi=None, gen=None, deadline_ms=None,
               timeout_s=None, request_id=None, wait_s=0.0):
        """Send one request; returns its id. Raises ``schema.SchemaError`` for a malformed request."""
        timeout = self.timeout_s if timeout_s is None else check_float("timeout_s", timeout_s, above=0.0)
        if request_id is None:
            self._n += 1
            request_id = f"{self.prefix}-{self._n}"
        elif request_id in self._pending:
            raise ValueError(f"request id {request_id!r} is already in flight")
        if deadline_ms is None:
            deadline_ms = min(timeout * 1000.0, 3_600_000.0)
        frames = schema.encode_request(request_id, task, arrays, session=session, snr_db=snr_db, csi=csi,
                                       gen=gen, deadline_ms=deadline_ms)
        info = {"id": request_id, "session": int(session), "task": task}
        if len(self._pending) >= self.max_pending:
            self._local(info, "error", f"more than {self.max_pending} requests in flight; not sent")
            return request_id
        if not self.connected and wait_s > 0:
            self.wait_connected(wait_s)
        if not self._up and (self._was_up or self._refused or time.monotonic() - self._t_socket > self.timeout_s):
            self._local(info, "error", f"not sent: no connection to {self.address} (is the server running? "
                                       "with --keys, are the CURVE keys right?)")
            return request_id
        self._pending[request_id] = (time.monotonic() + timeout, info)
        try:
            self.sock.send_multipart(frames, zmq.NOBLOCK)
            self.counts["sent"] += 1
        except zmq.Again:                                   # the high-water mark: the server does not read
            del self._pending[request_id]
            self._local(info, "error", f"not sent: the queue to {self.address} is full")
        return request_id

    def _local(self, info, status, error):
        self.counts["local_errors" if status == "error" else "timeouts"] += 1
        header = {"v": schema.SCHEMA_VERSION, **info, "status": status, "error": error, "local": True}
        self._ready.append(Reply(header, {}))

    def _receive(self):
        while True:
            try:
                frames = self.sock.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            self.counts["received"] += 1
            try:
                header, arrays = schema.decode_reply(frames)
            except schema.SchemaError:
                self.counts["malformed"] += 1
                continue
            if header.get("id") in self._pending:
                del self._pending[header["id"]]
                self._ready.append(Reply(header, arrays))
            else:
                self.counts["late"] += 1               # timed out here already, or not ours

    def _expire(self):
        now = time.monotonic()
        for rid in [rid for rid, (t, _) in self._pending.items() if t <= now]:
            _, info = self._pending.pop(rid)
            self._local(info, "timeout", f"no reply from {self.address} in time")

    def poll(self, timeout_ms=0):
        """The replies there are (a list of ``Reply``), waiting up to ``timeout_ms`` for the first one."""
        t_end = time.monotonic() + max(0.0, timeout_ms) / 1000.0
        while True:
            self._service()
            self._receive()
            self._expire()
            if self._ready:
                out = list(self._ready)
                self._ready.clear()
                return out
            now = time.monotonic()
            if now >= t_end:
                return []
            wait = t_end - now
            if self._pending:
                wait = min(wait, max(0.0, min(t for t, _ in self._pending.values()) - now))
            self._poller.poll(max(1, int(wait * 1000) + 1))

    def call(self, task, arrays=None, timeout_s=None, **submit_args):
        """Submit and wait for this request's reply (a ``Reply``; status 'timeout' when none came)."""
        timeout = self.timeout_s if timeout_s is None else check_float("timeout_s", timeout_s, above=0.0)
        submit_args.setdefault("wait_s", min(timeout, 5.0))
        t_end = time.monotonic() + timeout
        rid = self.submit(task, arrays, timeout_s=timeout, **submit_args)
        kept = []
        try:
            while True:
                for reply in self.poll(max(0.0, t_end - time.monotonic()) * 1000 + 5):
                    if reply.id == rid:
                        return reply
                    kept.append(reply)
        finally:
            self._ready.extendleft(reversed(kept))

    def health(self, timeout_s=2.0):
        """The server's health report (a dict); TimeoutError / RuntimeError when there is none."""
        reply = self.call("health", timeout_s=timeout_s)
        if reply.status == "timeout" or reply.local:
            raise TimeoutError(f"no health reply from {self.address}: {reply.error}")
        if not reply.ok:
            raise RuntimeError(f"health request failed: {reply.error}")
        return reply.header["health"]


def server_answers(address=schema.DEFAULT_ADDRESS, timeout_s=0.5, server_key=None, client_key=None):
    """The server's health report if one answers at ``address`` within ``timeout_s``, else None."""
    try:
        with Client(address, server_key=server_key, client_key=client_key, timeout_s=timeout_s) as c:
            return c.health(timeout_s)
    except (TimeoutError, RuntimeError, zmq.ZMQError):
        return None
