"""The MLLM server's engine side: per-task bounded queues in front of one thread that runs the model in batches.

Transport-agnostic: ``server`` puts it behind a ZeroMQ ROUTER socket, and a
later scale-out can put the same object behind another serving framework.
Nothing here knows about sockets or the wire format.

    batcher = Batcher(MLLM(...), max_batch=32, window_ms=5, max_queue=256)
    future = batcher.submit("vqa", {"image_tokens": c, "question_ids": q}, gen={"max_words": 4})
    result = future.result()        # Result(status="ok", ids=array([...]), text="yes", timing={...})
    batcher.stop()

* ``submit`` never blocks. It checks what can be checked before the model
  runs (task, arrays, generation settings, the prompt against the model's
  positions) and raises ``ValueError`` with a sentence for the client; a
  full queue of that task raises ``Busy`` (backpressure: the transport
  answers "busy" at once and memory stays bounded). Otherwise it returns a
  ``concurrent.futures.Future`` that always ends in a ``Result`` — never an
  exception — exactly once: ``ok``, ``error`` or ``timeout``.
* One worker thread takes the task whose oldest request has waited longest,
  waits at most ``window_ms`` after that request's arrival for more of the
  same task *and the same generation settings* (greedy text ignores
  temperature and seed; t2i groups by steps, sampler, temperature, eta, guidance,
  seed), and runs up to ``max_batch`` of them in one engine call. Under
  load, requests pile up while a batch runs, so batches fill without
  waiting.
* A request whose deadline has passed before its batch starts gets
  ``timeout`` without running. A batch that fails is re-run item by item,
  so one bad item never fails the others; t2i outputs that are not finite
  are an ``error`` for that item.
* ``stats()``: requests received, ok, error, timeout and busy per task,
  batches, the batch-size histogram, compute seconds, queue depths.

The engine is anything with ``MLLM``'s methods (``answer``, ``describe``,
``transcribe``, ``generate_image_tokens``) and attributes (``model_id``,
``max_len``, ``image_tokens``, ``token_dim``, ``diffusion_steps``); tests
wrap it to count or hold calls. With a ``seed`` (sampling), results are
reproducible for the same batch only: a batch shares one random stream.
"""
import collections
import concurrent.futures
import dataclasses
import threading
import time

import numpy as np

from ..data import vocab
from ..runtime.args import check_float, check_int
from . import schedule, schema

TEXT_TASKS = ("vqa", "dsc", "asr")
TASKS = TEXT_TASKS + ("t2i",)
#: task → (engine method, its array arguments in order)
METHODS = {"vqa": ("answer", ("image_tokens", "question_ids")), "dsc": ("describe", ("image_tokens",)),
           "asr": ("transcribe", ("audio_tokens",)), "t2i": ("generate_image_tokens", ("caption_ids",))}
#: default words generated per task (the engine's own defaults)
MAX_WORDS = {"vqa": 8, "dsc": 32, "asr": 48}
TEXT_GEN, T2I_GEN = schema.TEXT_GEN, schema.T2I_GEN
DEFAULT_STEPS = 50


class Busy(Exception):
    """The task's queue is full: answer "busy" and let the client retry later."""


@dataclasses.dataclass
class Result:
    """What a request ends in. ``status`` 'ok' (with ``ids`` + ``text``, or ``image_tokens`` for t2i),
    'error' (``error`` says why) or 'timeout'; ``timing``: queue_ms, compute_ms, batch (its size).
    ``trace``: for vqa on a model with traces, the objects it named before the answer (words)."""
    status: str
    ids: np.ndarray = None
    text: str = None
    trace: str = None
    image_tokens: np.ndarray = None
    error: str = None
    timing: dict = None


class _Request:
    __slots__ = ("task", "arrays", "gen", "key", "t0", "deadline", "future")

    def __init__(self, task, arrays, gen, t0, deadline):
        self.task, self.arrays, self.gen, self.t0, self.deadline = task, arrays, gen, t0, deadline
        self.key = tuple(sorted(gen.items(), key=lambda kv: kv[0]))
        self.future = concurrent.futures.Future()


def engine_device(engine):
    """The execution provider the engine's graphs run on ('CUDAExecutionProvider', 'CPUExecutionProvider',
    or 'unknown' for an engine without onnxruntime sessions)."""
    try:
        return engine.backend.sessions["prefill"].get_providers()[0]
    except (AttributeError, KeyError, IndexError, TypeError):
        return getattr(engine, "device", "unknown")


class Batcher:
    """Batched, bounded, deadline-aware access to one MLLM engine (see the module docstring).

    Args:
        engine: an ``engine.MLLM`` (or anything with its methods and attributes).
        max_batch: most requests in one engine call (1 … 1024).
        window_ms: longest wait after a request's arrival for more of its kind (0 … 1000).
        max_queue: most requests waiting per task; ``submit`` raises ``Busy`` beyond it.
        deadline_s: default per-request deadline (seconds after ``submit``) when none is given.
        max_steps: most t2i diffusion steps a request may ask for (default: the model's).
        guidance: t2i classifier-free guidance scale of requests that name none (0 … 20; 1 = none).
    """

    def __init__(self, engine, max_batch=32, window_ms=5.0, max_queue=256, deadline_s=60.0, max_steps=None,
                 guidance=schedule.DEFAULT_GUIDANCE):
        self.engine = engine
        self.max_batch = check_int("max_batch", max_batch, 1, 1024)
        self.window_s = check_float("window_ms", window_ms, 0.0, 1000.0) / 1000.0
        self.max_queue = check_int("max_queue", max_queue, 1, 1_000_000)
        self.deadline_s = check_float("deadline_s", deadline_s, above=0.0)
        self.max_steps = check_int("max_steps", max_steps if max_steps is not None else engine.diffusion_steps,
                                   1, engine.diffusion_steps)
        self.guidance = check_float("guidance", guidance, 0.0, 20.0)
        self.model_id = engine.model_id
        self.device = engine_device(engine)
        self._queues = {t: collections.deque() for t in TASKS}
        self._cond = threading.Condition()
        self._stopping = False
        self._count = {t: collections.Counter() for t in TASKS}
        self._stats_lock = threading.Lock()              # counters are written by two threads
        self.batches = 0
        self.batch_sizes = collections.Counter()
        self.compute_s = 0.0
        self.t_start = time.monotonic()
        self._thread = threading.Thread(target=self._loop, name="unitocom-mllm-batcher", daemon=True)
        self._thread.start()

    # --- the caller's side ------------------------------------------------------------------------
    def submit(self, task, arrays, gen=None, deadline_s=None):
        """Queue one request; returns a Future of its ``Result``. Raises ``ValueError`` (what is wrong,
        for the client) or ``Busy`` (the task's queue is full)."""
        if task not in TASKS:
            raise ValueError(f"unknown task {task!r}; the engine serves {', '.join(TASKS)}")
        self._counted(task, "received")
        try:
            gen = self._check(task, arrays, gen or {})
            deadline_s = self.deadline_s if deadline_s is None else check_float("deadline", deadline_s, above=0.0)
        except ValueError:
            self._counted(task, "error")
            raise
        now = time.monotonic()
        req = _Request(task, arrays, gen, now, now + deadline_s)
        with self._cond:
            if self._stopping:
                self._counted(task, "busy")
                raise Busy("the server is shutting down; retry later")
            if len(self._queues[task]) >= self.max_queue:
                self._counted(task, "busy")
                raise Busy(f"the {task} queue is full ({self.max_queue} requests); retry later")
            self._queues[task].append(req)
            self._cond.notify()
        return req.future

    def depths(self):
        """Requests waiting per task."""
        with self._cond:
            return {t: len(q) for t, q in self._queues.items()}

    def stats(self):
        """Counters for a health report (plain ints, floats and dicts)."""
        with self._stats_lock:
            per_task = {t: dict(c) for t, c in self._count.items()}
            hist = {str(k): v for k, v in sorted(self.batch_sizes.items())}
            batches, compute_s = self.batches, self.compute_s
        total = collections.Counter()
        for c in per_task.values():
            total.update(c)
        return {"received": total["received"], "ok": total["ok"], "error": total["error"],
                "timeout": total["timeout"], "busy": total["busy"], "per_task": per_task,
                "batches": batches, "batch_hist": hist, "compute_s": round(compute_s, 3), "queue": self.depths(),
                "queue_max": self.max_queue, "max_batch": self.max_batch, "window_ms": self.window_s * 1000.0}

    def _counted(self, task, key):
        with self._stats_lock:
            self._count[task][key] += 1

    def stop(self, timeout=10.0):
        """Stop taking requests, let the running batch finish, end every queued request with an error
        ("shutting down"). Returns the number of requests ended that way."""
        with self._cond:
            self._stopping = True
            left = [r for q in self._queues.values() for r in q]
            for q in self._queues.values():
                q.clear()
            self._cond.notify_all()
        for r in left:
            self._finish(r, Result("busy", error="the server is shutting down; retry later"))
        self._thread.join(timeout)
        return len(left)

    # --- checks before queueing -----------------------------------------------------------------------
    def _check(self, task, arrays, gen):
        names = METHODS[task][1]
        if not isinstance(arrays, dict) or set(arrays) != set(names):
            raise ValueError(f"task {task} needs arrays {list(names)}; got {sorted(arrays or ())}")
        if not isinstance(gen, dict):
            raise ValueError("gen must be a dict of generation settings")
        allowed = T2I_GEN if task == "t2i" else TEXT_GEN
        bad = [k for k, v in gen.items() if k not in allowed and v is not None]
        if bad:
            raise ValueError(f"generation setting(s) {', '.join(bad)} do not apply to task {task}; "
                             f"it takes {', '.join(allowed)}")
        e = self.engine
        seed = gen.get("seed")
        if seed is not None:
            seed = check_int("gen.seed", seed, 0, 2 ** 63 - 1)
        if task == "t2i":
            sampler = gen.get("sampler") or "ddpm"
            if sampler not in schedule.SAMPLERS:
                raise ValueError(f"gen.sampler must be one of {', '.join(schedule.SAMPLERS)}; got {sampler!r}")
            out = {"steps": check_int("gen.steps", _default(gen, "steps", min(DEFAULT_STEPS, self.max_steps)), 1,
                                      self.max_steps),
                   "temperature": check_float("gen.temperature", _default(gen, "temperature", 1.0), 0.0, 100.0),
                   "sampler": sampler, "seed": seed,
                   "eta": check_float("gen.eta", _default(gen, "eta", 0.0), 0.0, 1.0) if sampler == "ddim" else 0.0,
                   "guidance": check_float("gen.guidance", _default(gen, "guidance", self.guidance), 0.0, 20.0)}
            prompt = 2 + len(arrays["caption_ids"])
            new = e.image_tokens
        else:
            out = {"max_words": check_int("gen.max_words", _default(gen, "max_words", MAX_WORDS[task]), 1,
                                          e.max_len)}
            top_p = gen.get("top_p")
            if top_p is not None:                      # sampling; greedy ignores temperature and seed
                out["top_p"] = check_float("gen.top_p", top_p, maximum=1.0, above=0.0)
                out["temperature"] = check_float("gen.temperature", _default(gen, "temperature", 1.0), 0.0, 100.0)
                out["seed"] = seed
            if task == "asr":
                prompt = len(arrays["audio_tokens"]) + 4
            else:
                prompt = e.image_tokens + 4 + (len(arrays["question_ids"]) if task == "vqa" else 0)
            new = out["max_words"] + (e.trace_words if task == "vqa" else 0)
        if prompt + new - 1 > e.max_len:
            raise ValueError(f"a {task} prompt of {prompt} positions plus {new} generated is more than the "
                             f"model's {e.max_len} positions")
        return out

    # --- the worker thread ----------------------------------------------------------------------------
    def _take(self):
        """The next batch (a list of requests of one task and key), or None when stopping."""
        with self._cond:
            while True:
                if self._stopping:
                    return None
                heads = [(q[0].t0, t) for t, q in self._queues.items() if q]
                if not heads:
                    self._cond.wait()
                    continue
                task = min(heads)[1]
                q = self._queues[task]
                head = q[0]
                ready = head.t0 + self.window_s
                while not self._stopping and q and q[0] is head:
                    n = sum(1 for r in q if r.key == head.key)
                    wait = ready - time.monotonic()
                    if n >= self.max_batch or wait <= 0:
                        break
                    self._cond.wait(wait)
                if self._stopping:
                    return None
                if not q or q[0] is not head:       # only stop() empties queues; be safe anyway
                    continue
                batch, rest = [], collections.deque()
                while q:
                    r = q.popleft()
                    (batch if r.key == head.key and len(batch) < self.max_batch else rest).append(r)
                    if len(batch) == self.max_batch:
                        break
                rest.extend(q)
                q.clear()
                q.extend(rest)
                return batch

    def _loop(self):
        while True:
            batch = self._take()
            if batch is None:
                return
            now = time.monotonic()
            live = []
            for r in batch:
                if now > r.deadline:
                    self._finish(r, Result("timeout", error=f"the deadline passed after "
                                                            f"{(now - r.t0) * 1000:.0f} ms in the queue"))
                else:
                    live.append(r)
            if live:
                try:
                    self._run(live, now)
                except Exception as exc:            # noqa: BLE001 — the thread outlives everything
                    for r in live:
                        self._finish(r, Result("error", error=f"internal error: {type(exc).__name__}: {exc}"))

    def _run(self, batch, t_start):
        results, error = self._call(batch)
        if results is None:                          # the batch failed: each item alone
            results = []
            for r in batch:
                one, error_r = self._call([r]) if len(batch) > 1 else (None, error)
                results.append(one[0] if one else Result("error", error=error_r))
        dt = time.monotonic() - t_start
        with self._stats_lock:
            self.batches += 1
            self.batch_sizes[len(batch)] += 1
            self.compute_s += dt
        for r, res in zip(batch, results):
            res.timing = {"queue_ms": round((t_start - r.t0) * 1000, 3), "compute_ms": round(dt * 1000, 3),
                          "batch": len(batch)}
            self._finish(r, res)

    def _call(self, batch):
        """One engine call → (a list of Results, None), or (None, the reason) when the call raised."""
        task = batch[0].task
        method, names = METHODS[task]
        args = []
        for name in names:
            items = [r.arrays[name] for r in batch]
            args.append(np.stack(items) if name == "image_tokens" else items)
        try:
            traced = task == "vqa" and getattr(self.engine, "vqa_trace", False)
            out = getattr(self.engine, method)(*args, **batch[0].gen, **({"with_trace": True} if traced else {}))
            if len(out) != len(batch):
                raise ValueError(f"the engine returned {len(out)} results for {len(batch)} requests")
        except Exception as exc:                    # noqa: BLE001 — any engine failure is per request
            return None, f"the model could not process this request: {type(exc).__name__}: {exc}"
        results = []
        for item in out:
            if task == "t2i":
                item = np.asarray(item, np.float32)
                results.append(Result("ok", image_tokens=item) if np.isfinite(item).all()
                               else Result("error", error="the model gave NaN/inf image tokens"))
            else:
                trace, item = item if traced else (None, item)
                ids = np.asarray(item, np.int64)
                results.append(Result("ok", ids=ids, text=vocab.decode(ids.tolist()),
                                      trace=None if trace is None else vocab.decode(np.asarray(trace).tolist())))
        return results, None

    def _finish(self, r, result):
        self._counted(r.task, result.status)
        if not r.future.done():
            r.future.set_result(result)


def _default(gen, key, value):
    v = gen.get(key)
    return value if v is None else v

