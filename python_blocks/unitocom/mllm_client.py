"""mllm_client: received token PDUs → MLLM requests by session → answers, transcripts, generated image tokens."""
import threading
import time

import numpy as np
import pmt
import zmq
from gnuradio import gr

from .mllm import layout, schema
from .mllm.client import Client
from .mllm.requester import MAX_BACKOFF_S, Requester
from .mllm.requests import SessionTable
from .runtime import pdu_util
from .runtime.args import check_float, check_int
from .runtime.droplog import DropLog

_TOKENS, _RESULT, _ERRORS, _SYSTEM, _DONE = (pmt.intern(p) for p in ("tokens", "result", "errors", "system", "done"))


class mllm_client(gr.basic_block):
    """Token PDUs from ``rx`` blocks in; the receiver MLLM's results out. It never waits on the network.

    Message in ``tokens``: token PDUs from one or more ``rx`` blocks, grouped
    by ``session_id`` into requests by their ``task`` (``mllm.requests``):
    image + question (text) → vqa, image → dsc, caption → t2i, audio → asr.
    A worker thread (``mllm.requester``) sends them to the MLLM server
    (``mllm.server``) behind a bounded queue, retrying with exponential backoff.

    Message out ``result``, one PDU per request, in order per session:
    metadata ``status`` 'ok', ``session_id``, ``task``, ``request_id``,
    ``model``, ``latency_s`` (from the request's last PDU to its result),
    ``attempts``, ``snr_db`` (the lowest of its PDUs'), ``queue_ms`` and
    ``compute_ms`` (the server's), and the completing PDU's other metadata
    (``frame_id``, ``h``, …). vqa, dsc, asr: ``text`` and s32 word ids
    (``modality`` 'text', as a text ``detokenizer`` takes them), and for vqa
    on a model with traces ``trace`` (the objects it named); t2i: f32
    32·16 image tokens (``modality`` 'image', ``n_tokens`` 32, ``token_dim``
    16) for the ``detokenizer`` of the MLLM's image tokenizer.
    Message out ``errors``: an empty u8 PDU per failure, with the same
    metadata and ``status`` ('unreachable', 'timeout', 'busy', 'error',
    'refused': the queue was full, 'incomplete': a question that never got
    an image), ``error`` (why), ``attempt`` and ``final``: False when it is
    retried in ``retry_in_s`` s, True when given up (in order with the
    session's results). Failures are logged too; unusable token PDUs are
    logged and dropped.

    The block tells its downstream "done" once its ``sources`` upstream
    blocks are done and every request has its result or final error.

    Args:
        address: the MLLM server's ZeroMQ endpoint.
        server_key: '' (no CURVE), or the server's public key: the server.key
            file, the ``serve-keys`` folder, or 40 Z85 characters.
        client_key: '' (the folder's client key, else an ephemeral one) or a ``*.key_secret`` file.
        timeout_s: how long one attempt waits for its reply (> 0).
        max_retries: attempts after the first (0 … 100).
        backoff_s: wait before the first retry, doubled for each further one (0 … 30).
        queue_size: most requests held (waiting, in flight, or waiting for their turn) (>= 1).
        max_words, steps: generation settings (answer length, diffusion steps; 0 = the server's).
        sources: how many upstream blocks feed ``tokens`` (the block ends after all their "done"s).
    """

    def __init__(self, address=schema.DEFAULT_ADDRESS, server_key="", client_key="", timeout_s=10.0, max_retries=5,
                 backoff_s=0.5, queue_size=64, max_words=0, steps=0, sources=1):
        gr.basic_block.__init__(self, name="mllm_client", in_sig=None, out_sig=None)
        timeout_s = check_float("timeout_s", timeout_s, maximum=3600.0, above=0.0)
        self._retries = check_int("max_retries", max_retries, 0, 100)
        self._backoff = check_float("backoff_s", backoff_s, 0.0, MAX_BACKOFF_S)
        self._size = check_int("queue_size", queue_size, 1, 100000)
        gen = {"max_words": check_int("max_words", max_words, 0, schema.MAX_WORDS),
               "steps": check_int("steps", steps, 0, 10000)}
        self._gen = {k: v for k, v in gen.items() if v} or None
        self._sources = check_int("sources", sources, 1, 1000)
        if not isinstance(address, str) or not isinstance(server_key, str) or not isinstance(client_key, str):
            raise ValueError("address, server_key and client_key must be strings")
        self._client_args = dict(address=address, server_key=server_key or None, client_key=client_key or None,
                                 timeout_s=timeout_s, max_pending=self._size)
        try:
            Client(**self._client_args).close()          # the address and the keys, checked now
        except zmq.ZMQError as exc:
            raise ValueError(f"address must be a ZeroMQ endpoint such as {schema.DEFAULT_ADDRESS}; "
                             f"got {address!r} ({exc})") from None
        except OSError as exc:                            # a key file that is not there
            raise ValueError(f"unusable CURVE key: {exc}") from None
        self._log = DropLog(self.logger)
        self._lock = threading.Lock()
        self._requester = None
        self.message_port_register_in(_TOKENS)
        self.message_port_register_out(_RESULT)
        self.message_port_register_out(_ERRORS)
        self.set_msg_handler(_TOKENS, self._on_tokens)
        self.set_msg_handler(_SYSTEM, self._on_system)   # hold "done" back until every request is answered

    def start(self):
        self._table, self._dones, self._done_msg, self._finished = SessionTable(), 0, None, False
        self._requester = Requester(self._client_args, self._retries, self._backoff, self._size, self._gen,
                                    self._on_result, self._on_error, self._maybe_finish, self._log.warn)
        return True

    def stop(self):
        if self._requester is not None:
            self._requester.stop()
        return True

    def pending(self):
        """Requests held (waiting, in flight, or waiting for their turn)."""
        return self._requester.held() if self._requester is not None else 0

    def _on_tokens(self, msg):
        try:
            requests, orphans = self._table.add(msg)
        except Exception as exc:                          # ValueError: what is wrong with the PDU
            self._log.warn(f"dropped a token PDU: {exc}")
            return
        for request, why in orphans:
            self._on_error(request, "incomplete", why, 0, "", None)
        for request in requests:
            if not self._requester.put(request):
                self._on_error(request, "refused", f"{self._size} requests are held already (queue_size)", 0, "", None)

    def _on_system(self, msg):
        core = self.to_basic_block()
        if not (pmt.is_pair(msg) and pmt.eqv(pmt.car(msg), _DONE)):
            core.system_handler(msg)
            return
        while core.nmsgs(_TOKENS) > 0:                   # what came before the "done" comes first
            self._on_tokens(core.delete_head_nowait(_TOKENS))
        self._dones += 1
        if self._dones < self._sources:
            return
        for request, why in self._table.close():
            self._on_error(request, "incomplete", why, 0, "", None)
        with self._lock:
            self._done_msg = msg
        self._maybe_finish()

    def _maybe_finish(self):                              # the scheduler's thread or the requester's
        with self._lock:
            if self._done_msg is None or self._finished or not self._requester.idle():
                return
            self._finished = True
        self.to_basic_block().system_handler(self._done_msg)

    def _on_result(self, request, reply, attempts):
        header, timing = reply.header, reply.header.get("timing") or {}
        items = dict(status="ok", request_id=reply.id, model=str(header.get("model", "")), attempts=attempts,
                     latency_s=time.monotonic() - request.formed)
        items.update({k: float(timing[k]) for k in ("queue_ms", "compute_ms")
                      if isinstance(timing.get(k), (int, float)) and not isinstance(timing[k], bool)})
        if request.task == "t2i":
            vec = reply.arrays["image_tokens"].astype(np.float32).ravel()
            items.update(modality="image", n_tokens=layout.IMAGE_TOKENS, token_dim=layout.TOKEN_DIM)
        else:
            vec = np.asarray(header.get("ids", []), np.int32)
            items.update(modality="text", n_tokens=len(vec), token_dim=1, text=str(header.get("text", "")))
            if isinstance(header.get("trace"), str):
                items.update(trace=header["trace"])
        self.message_port_pub(_RESULT, pdu_util.make(pdu_util.with_items(request.meta, **items), vec))

    def _on_error(self, request, status, why, attempt, request_id, retry_in):
        final = retry_in is None
        self._log.warn(f"session {request.session} {request.task}: {status}: {why}"
                       + (" (given up)" if final else f" (attempt {attempt}; retried in {retry_in:.2f} s)"))
        items = dict(status=status, error=str(why), attempt=attempt, final=final, request_id=request_id,
                     latency_s=time.monotonic() - request.formed, **({} if final else {"retry_in_s": retry_in}))
        self.message_port_pub(_ERRORS, pdu_util.make(pdu_util.with_items(request.meta, **items), np.zeros(0, np.uint8)))
