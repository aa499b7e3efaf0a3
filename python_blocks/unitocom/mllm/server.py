"""The MLLM server: the receiver's MLLM (onnxruntime, on the GPU when one answers) behind a ZeroMQ ROUTER socket.

    ./unitocom serve [--bind tcp://127.0.0.1:5555] [--keys DIR] [--model-dir DIR | --files F F F F] ...
    ./unitocom serve-keys DIR          # a CURVE key pair for the server and one for a client
    python -m gnuradio.unitocom.mllm.server [serve|keys] ...     # the same without the wrapper

Many clients share one server (``client.Client``, a DEALER socket, or any
ZeroMQ REQ/DEALER speaking ``schema``). The transport is this module; the
batching and the model are ``batcher.Batcher`` — the same engine can go
behind another serving framework without this file.

What the transport guarantees:

* Every readable request gets exactly one reply with its id: ``ok``,
  ``error`` (the schema's or the model's sentence), ``busy`` (the task's
  queue is full: backpressure), or ``timeout`` (its deadline passed in the
  queue). A message that cannot be read at all (not JSON, a wrong version,
  a truncated multipart message, wrong dtypes/shapes/sizes, NaN) gets an
  error reply without an id, and the next request is served.
* A reply to a client that has gone is dropped and counted
  (``undeliverable``; ROUTER_MANDATORY, never a blocking send). Explicit
  high-water marks and ``max_message_bytes`` (ZeroMQ's MAXMSGSIZE: a larger
  frame closes that connection) bound memory.
* ``health`` answers at once (never queued): model id, device, queue depths,
  requests served and failed, batch-size histogram, uptime, RSS.
* With ``--keys DIR`` the socket is a CURVE server: a client must hold the
  server's public key (``DIR/server.key``) and, when
  ``DIR/authorized_clients/`` holds public keys (``serve-keys`` puts the
  client's there), one of those key pairs; others are refused at the
  handshake (counted in ``handshake_failures``). Use it for any bind beyond
  localhost.
* SIGINT/SIGTERM: stop reading, finish the running batch, answer what is
  queued with an error ("shutting down"), close.
"""
import argparse
import logging
import os
import pathlib
import re
import shutil
import signal
import subprocess
import sys
import threading
import time

import zmq
import zmq.auth
from zmq.utils.monitor import recv_monitor_message

from ..runtime.args import check_float, check_int
from . import schema
from .batcher import Batcher, Busy

log = logging.getLogger("unitocom.mllm.server")
GRAPHS = ("prefill", "decode", "lm_head", "denoiser")
_MONITOR_EVENTS = {zmq.EVENT_ACCEPTED: "connections", zmq.EVENT_DISCONNECTED: "disconnects",
                   zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL: "handshake_failures",
                   zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL: "handshake_failures",
                   zmq.EVENT_HANDSHAKE_FAILED_AUTH: "handshake_failures"}


def _rss_mb():
    try:
        with open("/proc/self/statm") as f:
            return round(int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2 ** 20, 1)
    except (OSError, ValueError, IndexError):
        return None


def is_local(address):
    """True for a bind address only this machine can reach (loopback TCP, ipc://, inproc://)."""
    if not address.startswith("tcp://"):
        return True
    host = address[len("tcp://"):].rsplit(":", 1)[0].strip("[]")
    return host in ("127.0.0.1", "localhost", "::1") or host.startswith("127.")


class Server:
    """A ROUTER socket bound to ``bind`` in front of ``batcher`` (see the module docstring).

    Args:
        batcher: a ``batcher.Batcher`` (it owns the engine; ``stop`` stops it too).
        bind: ZeroMQ endpoint; ``tcp://127.0.0.1:*`` picks a free port (see ``address``).
        keys: a folder made by ``make_keys`` to require CURVE, or None.
        hwm: send / receive high-water marks (messages per client pipe).
        max_message_bytes: the largest frame accepted (a larger one closes that connection).
        context: a ``zmq.Context`` (default: a new one, terminated by ``stop``).
    ``start()`` serves in a thread; ``serve_forever()`` in the calling one until ``stop()``.
    """

    def __init__(self, batcher, bind=schema.DEFAULT_ADDRESS, keys=None, hwm=1000, max_message_bytes=4 << 20,
                 context=None):
        self.batcher = batcher
        self._own_context = context is None
        self.ctx = context or zmq.Context()
        self.sock = self.ctx.socket(zmq.ROUTER)
        self.sock.setsockopt(zmq.ROUTER_MANDATORY, 1)
        self.sock.setsockopt(zmq.SNDHWM, check_int("hwm", hwm, 1))
        self.sock.setsockopt(zmq.RCVHWM, hwm)
        self.sock.setsockopt(zmq.MAXMSGSIZE, check_int("max_message_bytes", max_message_bytes, 1 << 16))
        self.sock.setsockopt(zmq.LINGER, 500)
        self.auth, self.curve, self.authorized = None, False, 0
        if keys is not None:
            self._setup_curve(pathlib.Path(keys))
        self.sock.bind(bind)
        self.address = self.sock.getsockopt_string(zmq.LAST_ENDPOINT)
        self.monitor = self.sock.get_monitor_socket(sum(set(_MONITOR_EVENTS)))
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self._outbox = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = None
        self._closed = False
        self.t_start = time.monotonic()
        self.counts = {k: 0 for k in ("messages", "malformed", "replies", "ok", "error", "busy", "timeout",
                                      "undeliverable", "health", "health_replies", "connections", "disconnects",
                                      "handshake_failures", "internal_errors")}

    def _setup_curve(self, keys):
        secret = keys / "server.key_secret"
        if not secret.is_file():
            raise ValueError(f"{secret} does not exist; make the keys with ./unitocom serve-keys {keys}")
        public, secret_key = zmq.auth.load_certificate(str(secret))
        if not secret_key:
            raise ValueError(f"{secret} holds no secret key")
        clients = keys / "authorized_clients"
        self.authorized = len(list(clients.glob("*.key"))) if clients.is_dir() else 0
        if self.authorized:
            from zmq.auth.thread import ThreadAuthenticator
            self.auth = ThreadAuthenticator(self.ctx, log=logging.getLogger("unitocom.mllm.server.auth"))
            self.auth.start()
            self.auth.configure_curve(domain="*", location=str(clients))
        self.sock.curve_secretkey = secret_key
        self.sock.curve_publickey = public
        self.sock.curve_server = True
        self.curve = True

    # --- running ------------------------------------------------------------------------------------
    def start(self):
        """Serve in a daemon thread; returns self."""
        self._thread = threading.Thread(target=self.serve_forever, name="unitocom-mllm-server", daemon=True)
        self._thread.start()
        return self

    def request_stop(self):
        """Ask the loop to end (safe from a signal handler or another thread)."""
        self._stop.set()
        self._wake()

    def stop(self, timeout=10.0):
        """End the loop, answer what is queued ("shutting down"), close the socket and the batcher."""
        self.request_stop()
        if self._thread is not None:
            self._thread.join(timeout)

    def serve_forever(self):
        poller = zmq.Poller()
        poller.register(self.sock, zmq.POLLIN)
        poller.register(self.monitor, zmq.POLLIN)
        poller.register(self._wake_r, zmq.POLLIN)
        try:
            while not self._stop.is_set():
                events = dict(poller.poll(250))
                if self.sock in events:
                    for _ in range(1000):              # drain, but let replies out now and then
                        try:
                            frames = self.sock.recv_multipart(zmq.NOBLOCK)
                        except zmq.Again:
                            break
                        self._guarded(self._on_message, frames)
                if self.monitor in events:
                    self._guarded(self._on_monitor)
                if self._wake_r in events:
                    self._drain_wake()
                self._guarded(self._send_done)
        finally:
            self.batcher.stop()
            self._send_done()
            self._close()

    def _close(self):
        if self._closed:
            return
        self._closed = True
        try:
            self.sock.disable_monitor()
        except zmq.ZMQError:
            pass
        self.monitor.close(0)
        self.sock.close()
        if self.auth is not None:
            self.auth.stop()
        for fd in (self._wake_r, self._wake_w):
            os.close(fd)
        if self._own_context:
            self.ctx.term()

    def _guarded(self, handler, *args):
        """Call ``handler``; a bug it hits is logged and counted, never the end of the server."""
        try:
            handler(*args)
        except Exception:                                # noqa: BLE001
            self.counts["internal_errors"] += 1
            log.exception("internal error (the server goes on)")

    # --- messages -------------------------------------------------------------------------------------
    def _on_message(self, frames):
        self.counts["messages"] += 1
        envelope, body = frames[:1], frames[1:]
        if len(body) > 1 and body[0] == b"":          # a REQ socket's empty delimiter: keep it for the reply
            envelope, body = frames[:2], frames[2:]
        try:
            info, arrays = schema.decode_request(body)
        except schema.SchemaError as exc:
            self.counts["malformed"] += 1
            self._send(envelope, schema.error_reply(schema.peek_header(body), exc), "error")
            return
        except Exception as exc:                     # noqa: BLE001 — a schema bug must not end the server
            self.counts["malformed"] += 1
            self._send(envelope, schema.error_reply({}, f"unreadable request: {type(exc).__name__}"), "error")
            return
        if info["task"] == "health":
            self.counts["health"] += 1
            self._reply(envelope, info, "ok", count="health_replies", health=self.health())
            return
        deadline = info["deadline_ms"] / 1000.0 if info["deadline_ms"] is not None else None
        try:
            future = self.batcher.submit(info["task"], arrays, gen=info["gen"], deadline_s=deadline)
        except Busy as exc:
            self._reply(envelope, info, "busy", error=str(exc))
            return
        except ValueError as exc:
            self._reply(envelope, info, "error", error=str(exc))
            return
        except Exception as exc:                         # noqa: BLE001 — a bug must not cost the reply
            self.counts["internal_errors"] += 1
            self._reply(envelope, info, "error", error=f"internal error: {type(exc).__name__}: {exc}")
            return
        future.add_done_callback(lambda f, env=envelope, inf=info: self._done(env, inf, f))

    def _done(self, envelope, info, future):           # in the batcher's thread
        with self._lock:
            self._outbox.append((envelope, info, future.result()))
        self._wake()

    def _wake(self):
        if self._closed:
            return
        try:
            os.write(self._wake_w, b"\0")
        except (BlockingIOError, OSError):              # full (the loop will look anyway) or closed
            pass

    def _drain_wake(self):
        try:
            while os.read(self._wake_r, 4096):
                pass
        except (BlockingIOError, OSError):
            pass

    def _send_done(self):
        with self._lock:
            done, self._outbox = self._outbox, []
        for envelope, info, r in done:
            self._reply(envelope, info, r.status, error=r.error, text=r.text, ids=r.ids, trace=r.trace,
                        image_tokens=r.image_tokens, timing=r.timing)

    def _reply(self, envelope, info, status, count=None, **fields):
        try:
            frames = schema.encode_reply(info, status, model=self.batcher.model_id, **fields)
        except (schema.SchemaError, ValueError, TypeError) as exc:
            status, count = "error", None
            frames = schema.error_reply(info, f"the reply could not be encoded: {exc}")
        self._send(envelope, frames, count or status)

    def _send(self, envelope, frames, count):
        """Send without blocking; ``count`` names the counter (a status, or health_replies)."""
        self.counts["replies"] += 1                     # counted first: the client may ask for health at once
        self.counts[count] += 1
        try:
            self.sock.send_multipart(envelope + frames, zmq.NOBLOCK)
        except zmq.ZMQError:                            # EHOSTUNREACH: the client left; EAGAIN: its pipe is full
            self.counts["replies"] -= 1
            self.counts[count] -= 1
            self.counts["undeliverable"] += 1

    def _on_monitor(self):
        while True:
            try:
                event = recv_monitor_message(self.monitor, zmq.NOBLOCK)
            except zmq.Again:
                return
            except zmq.ZMQError:
                return
            name = _MONITOR_EVENTS.get(event.get("event"))
            if name:
                self.counts[name] += 1

    def health(self):
        """The health report (a JSON-able dict)."""
        b = self.batcher.stats()
        c = self.counts
        return {"model": self.batcher.model_id, "device": self.batcher.device,
                "uptime_s": round(time.monotonic() - self.t_start, 3), "schema": list(schema.SERVED),
                "queue": b["queue"], "queue_max": b["queue_max"], "max_batch": b["max_batch"],
                "window_ms": b["window_ms"],
                "served": c["ok"], "failed": c["error"], "busy": c["busy"], "timeouts": c["timeout"],
                "malformed": c["malformed"], "undeliverable": c["undeliverable"], "messages": c["messages"],
                "health_requests": c["health"], "batches": b["batches"], "batch_hist": b["batch_hist"],
                "compute_s": b["compute_s"], "per_task": b["per_task"], "connections": c["connections"],
                "disconnects": c["disconnects"], "handshake_failures": c["handshake_failures"],
                "internal_errors": c["internal_errors"],
                "curve": self.curve, "rss_mb": _rss_mb(), "pid": os.getpid()}


# --- keys -------------------------------------------------------------------------------------------------
def make_keys(folder, client="client"):
    """CURVE key pairs in ``folder``: ``server.key`` / ``server.key_secret`` (made once, never overwritten)
    and ``<client>.key`` / ``<client>.key_secret``, whose public half goes to ``authorized_clients/``.

    Give a client ``server.key`` and its own ``<client>.key_secret``; keep ``server.key_secret`` on the
    server. Returns {name: path}."""
    folder = pathlib.Path(folder)
    if not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", client) or client == "server":
        raise ValueError(f"client name {client!r}: use 1-64 letters, digits, '_', '.', '-' (not 'server')")
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o700)
    out = {}
    for name in ("server", client):
        public, secret = folder / f"{name}.key", folder / f"{name}.key_secret"
        if not secret.exists():
            zmq.auth.create_certificates(str(folder), name)
            secret.chmod(0o600)
        out[name], out[name + "_secret"] = public, secret
    authorized = folder / "authorized_clients"
    authorized.mkdir(exist_ok=True)
    shutil.copy(out[client], authorized / f"{client}.key")
    return out


# --- model files ----------------------------------------------------------------------------------------
def files_in(folder, model="mllm", variant=""):
    """{graph: path} of the newest ``<model>_<graph>-<variant>*-<hash>.onnx`` in ``folder``."""
    folder = pathlib.Path(folder)
    if not folder.is_dir():
        raise ValueError(f"--model-dir {folder}: no such folder")
    out = {}
    for g in GRAPHS:
        found = sorted(folder.glob(f"{model}_{g}-{variant}*.onnx"), key=lambda p: p.stat().st_mtime)
        if not found:
            raise ValueError(f"no {model}_{g}-{variant}*.onnx in {folder}")
        out[g] = found[-1]
    return out


def files_from_list(paths):
    """Four paths → {graph: path} by the ``_<graph>-`` in each file name."""
    out = {}
    for p in map(pathlib.Path, paths):
        m = re.search(r"_(prefill|decode|lm_head|denoiser)-", p.name)
        if not m or m.group(1) in out:
            raise ValueError(f"--files: cannot tell which graph {p.name} is (or it is given twice); "
                             "give the four mllm_{prefill,decode,lm_head,denoiser}-*.onnx files")
        out[m.group(1)] = p
    if set(out) != set(GRAPHS):
        raise ValueError(f"--files needs the four graphs {', '.join(GRAPHS)}; got {', '.join(out)}")
    return out


# --- command line -----------------------------------------------------------------------------------------
def _parser():
    p = argparse.ArgumentParser(prog="unitocom serve", description="The MLLM server (ZeroMQ ROUTER, schema v"
                                f"{schema.SCHEMA_VERSION}); see python -m gnuradio.unitocom.mllm.server keys -h.")
    p.add_argument("--bind", default=schema.DEFAULT_ADDRESS, help="ZeroMQ endpoint (default %(default)s)")
    p.add_argument("--keys", metavar="DIR", help="require CURVE with the keys made by ./unitocom serve-keys DIR")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--model-dir", metavar="DIR", help="load mllm_*-<variant>*.onnx from DIR (newest of each)")
    g.add_argument("--files", nargs=4, metavar="ONNX", help="the four graphs mllm_{prefill,decode,lm_head,denoiser}")
    p.add_argument("--model", default="mllm", help="model name prefix (default %(default)s)")
    p.add_argument("--variant", default="", help="model variant (e.g. genib)")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    p.add_argument("--threads", type=int, default=min(8, os.cpu_count() or 1), help="onnxruntime intra-op threads")
    p.add_argument("--max-batch", type=int, default=32)
    p.add_argument("--window-ms", type=float, default=5.0, help="batch gathering window")
    p.add_argument("--queue", type=int, default=256, help="most requests waiting per task (then 'busy')")
    p.add_argument("--deadline-ms", type=float, default=60000.0, help="default per-request deadline")
    p.add_argument("--max-steps", type=int, default=None, help="most t2i diffusion steps a request may ask")
    p.add_argument("--guidance", type=float, default=None,
                   help="t2i classifier-free guidance scale when a request names none (default: the package's, "
                        "schedule.DEFAULT_GUIDANCE)")
    p.add_argument("--hwm", type=int, default=1000, help="ZeroMQ high-water marks")
    p.add_argument("--quiet", action="store_true", help="log warnings only")
    return p


def load_engine(args):
    """The ``engine.MLLM`` the arguments ask for."""
    from . import engine
    if args.files:
        files = files_from_list(args.files)
    elif args.model_dir:
        files = files_in(args.model_dir, args.model, args.variant)
    else:
        try:
            files = engine.find_files(args.model, args.variant)
        except ValueError as exc:
            why = str(exc).split("; available")[0]
            raise ValueError(f"no MLLM model is shipped or found ({why}); train and export one, then pass "
                             "--model-dir DIR or --files PREFILL DECODE LM_HEAD DENOISER") from None
    return engine.MLLM(files=files, threads=args.threads, device=args.device), files


def serve(argv=None):
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO,
                        format="%(asctime)s unitocom-serve %(levelname)s %(message)s", stream=sys.stderr)
    try:
        check_float("--window-ms", args.window_ms, 0.0, 1000.0)
        mllm, files = load_engine(args)
        batcher = Batcher(mllm, max_batch=args.max_batch, window_ms=args.window_ms, max_queue=args.queue,
                          deadline_s=args.deadline_ms / 1000.0, max_steps=args.max_steps,
                          **({} if args.guidance is None else {"guidance": args.guidance}))
        server = Server(batcher, bind=args.bind, keys=args.keys, hwm=args.hwm)
    except (ValueError, zmq.ZMQError, OSError) as exc:
        print(f"unitocom serve: error: {exc}", file=sys.stderr)
        return 2
    cuda = batcher.device.startswith("CUDA")
    log.info("model %s (%s) on %s (%s%s)", mllm.model_id, ", ".join(pathlib.Path(f).name for f in files.values()),
             "the GPU" if cuda else "the CPU", batcher.device, "" if cuda else f", {args.threads} thread(s)")
    log.info("listening on %s, schema v%s, CURVE %s; max batch %d, window %.1f ms, queue %d per task",
             server.address, schema.SCHEMA_VERSION,
             f"on ({server.authorized} authorized client key(s))" if server.authorized else
             ("on (any client holding server.key)" if server.curve else "off"),
             args.max_batch, args.window_ms, args.queue)
    if not server.curve and not is_local(server.address):
        log.warning("%s is reachable from other machines and CURVE is off: anyone who can reach it can use "
                    "this server; use --keys DIR (./unitocom serve-keys DIR)", server.address)
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: server.request_stop())
    server.serve_forever()
    h = server.health()
    log.info("stopped after %.0f s: %d served, %d failed, %d busy, %d timeouts, %d batches",
             h["uptime_s"], h["served"], h["failed"], h["busy"], h["timeouts"], h["batches"])
    return 0


def keys(argv=None):
    p = argparse.ArgumentParser(prog="unitocom serve-keys",
                                description="Make CURVE key pairs for the MLLM server and a client.")
    p.add_argument("dir", help="folder for server.key(_secret), <client>.key(_secret), authorized_clients/")
    p.add_argument("--client", default="client", help="the client key pair's name (default %(default)s)")
    args = p.parse_args(argv)
    try:
        out = make_keys(args.dir, args.client)
    except (ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"server:  {out['server_secret']} (keep here), {out['server']} (give to clients)\n"
          f"client:  {out[args.client + '_secret']} (give to the client machine with server.key)\n"
          f"serve:   ./unitocom serve --keys {args.dir} --bind tcp://0.0.0.0:5555\n"
          f"connect: Client(address, server_key='{out['server']}', client_key='{out[args.client + '_secret']}')")
    return 0


def spawn(argv=(), address=schema.DEFAULT_ADDRESS, timeout_s=60.0, server_key=None, client_key=None, **popen):
    """Start ``serve --bind address *argv`` as a child process and wait until it answers ``health``.

    Returns the ``subprocess.Popen``; raises RuntimeError (and ends the child) when it does not answer
    within ``timeout_s``. For ``./unitocom demo`` (a server on localhost when none answers) and tests."""
    from .client import server_answers
    cmd = [sys.executable, "-m", "gnuradio.unitocom.mllm.server", "serve", "--bind", address, *map(str, argv)]
    proc = subprocess.Popen(cmd, **popen)
    t_end = time.monotonic() + timeout_s
    while time.monotonic() < t_end:
        if proc.poll() is not None:
            raise RuntimeError(f"the MLLM server exited with status {proc.returncode} ({' '.join(cmd)})")
        if server_answers(address, timeout_s=0.5, server_key=server_key, client_key=client_key):
            return proc
    proc.kill()
    proc.wait()
    raise RuntimeError(f"the MLLM server did not answer on {address} within {timeout_s:.0f} s")


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "keys":
        return keys(argv[1:])
    if argv and argv[0] == "serve":
        argv = argv[1:]
    return serve(argv)


if __name__ == "__main__":
    sys.exit(main())
