"""The wire format between GNU Radio clients and the MLLM server (ZeroMQ multipart; no pickle).

A message is a list of frames (``bytes``). A ROUTER socket adds the
client's identity frame in front (and the server's reply carries it back);
this module sees only the frames after it:

    frame 0      header: UTF-8 JSON object (≤ ``MAX_HEADER_BYTES``)
    frame 1 … n  one raw C-order array per entry of ``header["arrays"]``

Request header (schema version 1)::

    {"v": 1,                      # schema version; a server answers others with an error naming SERVED
     "id": "c3-000017",           # request id: a string of 1 … 64 printable ASCII characters, echoed back
     "session": 42,               # session id (uint32) from the tx/rx tags, echoed back
     "task": "vqa",               # one of TASKS
     "arrays": [{"name": "image_tokens", "dtype": "float32", "shape": [32, 16]},
                {"name": "question_ids", "dtype": "int64", "shape": [12]}],
     "snr_db": 9.7,               # optional: the link's SNR estimate as received (float or null)
     "csi": {...},                # optional: other link metadata as received (JSON object, ≤ 16 keys)
     "gen": {"max_words": 8, "top_p": null, "temperature": 1.0,   # optional generation settings
             "steps": 50, "sampler": "ddpm", "seed": 0, "guidance": 1.0},
     "deadline_ms": 5000}         # optional: give up (status "timeout") if not done this long after arrival

Arrays per task (one item per request; the server batches requests):

    vqa     image_tokens float32 (32, 16), question_ids int64 (N,)   → reply text + ids
    dsc     image_tokens float32 (32, 16)                             → reply text + ids
    asr     audio_tokens float32 (M, 16)                              → reply text + ids
    t2i     caption_ids int64 (N,)                                    → reply array image_tokens (32, 16)
    health  (no arrays)                                               → reply "health" object

Reply header::

    {"v": 1, "id": ..., "session": ..., "task": ...,
     "status": "ok" | "error" | "busy" | "timeout",
     "error": "what was wrong",                       # status != ok
     "text": "yes", "ids": [12],                      # vqa / dsc / asr
     "trace": "large red metal cube",                 # vqa, when the model says a trace (objects named)
     "arrays": [{"name": "image_tokens", ...}],       # t2i (frame 1)
     "health": {...},                                 # health
     "timing": {"queue_ms": 1.2, "compute_ms": 30.5, "batch": 8},
     "model": "mllm id"}

``encode_*`` build frames, ``decode_*`` parse them; every problem with a
message raises ``SchemaError`` whose text is fit to send back to the client
(``error_reply``). ``decode_request`` checks everything that does not need
the model: the version, the header's keys and types, the task, array names,
dtypes, shapes and byte counts, sizes against ``core.modalities`` limits,
NaN/inf tokens and word ids outside the vocabulary. The server may apply
further checks (the model's positions).
"""
import json
import math

import numpy as np

from ..core import modalities as mod
from . import layout

SCHEMA_VERSION = 1
SERVED = (1,)
DEFAULT_ADDRESS = "tcp://127.0.0.1:5555"         # where ``./unitocom serve`` listens and clients connect
TASKS = ("vqa", "t2i", "asr", "dsc", "health")
STATUSES = ("ok", "error", "busy", "timeout")
MAX_HEADER_BYTES = 65536
MAX_ID_CHARS = 64
MAX_WORDS = 256                                   # question / caption ids per request
MAX_AUDIO_TOKENS = mod.AUDIO_MAX_TOKENS
MAX_CSI_KEYS = 16
MAX_NDIM = 4                                      # array frames have at most this many dimensions
TEXT_GEN = ("max_words", "top_p", "temperature", "seed")        # settings vqa, dsc and asr take
T2I_GEN = ("steps", "temperature", "sampler", "eta", "seed", "guidance")      # settings t2i takes
GEN_KEYS = {"max_words": int, "top_p": float, "temperature": float, "steps": int, "sampler": str, "seed": int,
            "eta": float, "guidance": float}
#: task → ((array name, dtype, fixed shape or None for (N,) / (M, 16)), ...)
ARRAYS = {
    "vqa": (("image_tokens", "float32", (layout.IMAGE_TOKENS, layout.TOKEN_DIM)), ("question_ids", "int64", None)),
    "dsc": (("image_tokens", "float32", (layout.IMAGE_TOKENS, layout.TOKEN_DIM)),),
    "asr": (("audio_tokens", "float32", None),),
    "t2i": (("caption_ids", "int64", None),),
    "health": (),
}


class SchemaError(ValueError):
    """A message that does not follow the schema; the text says what is wrong."""


def _id_ok(value):
    return isinstance(value, str) and 0 < len(value) <= MAX_ID_CHARS and value.isascii() and value.isprintable()


def _array_spec(name, arr):
    return {"name": name, "dtype": str(arr.dtype), "shape": [int(n) for n in arr.shape]}


def _json_default(value):
    if isinstance(value, np.generic):            # numpy scalars in settings or health counters
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _frames(header, arrays):
    try:
        text = json.dumps(header, separators=(",", ":"), allow_nan=False, default=_json_default).encode()
    except (TypeError, ValueError) as e:         # NaN/inf, objects JSON cannot carry
        raise SchemaError(f"the header cannot be sent as JSON: {e}") from None
    if len(text) > MAX_HEADER_BYTES:
        raise SchemaError(f"the header is {len(text)} bytes; at most {MAX_HEADER_BYTES} are allowed")
    return [text] + [np.ascontiguousarray(a).tobytes() for a in arrays]


def _parse_header(frames):
    if not isinstance(frames, (list, tuple)) or not frames:
        raise SchemaError("an empty message: a header frame is needed")
    raw = frames[0]
    if not isinstance(raw, (bytes, bytearray, memoryview)):
        raise SchemaError("frames must be bytes")
    raw = bytes(raw)
    if len(raw) > MAX_HEADER_BYTES:
        raise SchemaError(f"the header is {len(raw)} bytes; at most {MAX_HEADER_BYTES} are allowed")
    try:
        header = json.loads(raw.decode("utf-8"), parse_constant=_no_constant)
    except (UnicodeDecodeError, ValueError) as e:
        raise SchemaError(f"the header is not UTF-8 JSON: {e}") from None
    except RecursionError:                       # e.g. 60,000 nested '['
        raise SchemaError("the header is nested too deeply") from None
    if not isinstance(header, dict):
        raise SchemaError("the header must be a JSON object")
    v = header.get("v")
    if type(v) is not int or v not in SERVED:
        raise SchemaError(f"schema version {v!r} is not served; this server speaks version(s) "
                          f"{', '.join(map(str, SERVED))}")
    return header


def _no_constant(name):
    raise ValueError(f"{name} is not allowed")


def _arrays(header, frames, expected):
    """Frames 1… as arrays, checked against the header's specs and the ``expected`` (name, dtype, shape) list."""
    specs = header.get("arrays", [])
    if not isinstance(specs, list):
        raise SchemaError("'arrays' must be a list")
    if len(frames) - 1 != len(specs):
        raise SchemaError(f"the header announces {len(specs)} array frame(s) but {len(frames) - 1} came "
                          "(a truncated message?)")
    names = [name for name, _, _ in expected]
    got = [s.get("name") if isinstance(s, dict) else None for s in specs]
    if got != names:
        raise SchemaError(f"task {header.get('task')!r} needs arrays {names}; got {got}")
    out = {}
    for (name, dtype, shape), spec, frame in zip(expected, specs, frames[1:]):
        if spec.get("dtype") != dtype:
            raise SchemaError(f"{name} must be {dtype}; got {str(spec.get('dtype'))[:40]!r}")
        dims = spec.get("shape")
        if not (isinstance(dims, list) and len(dims) <= MAX_NDIM
                and all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in dims)):
            raise SchemaError(f"{name}: shape must be a list of at most {MAX_NDIM} non-negative integers; "
                              f"got {str(dims)[:80]}")
        if shape is not None and tuple(dims) != shape:
            raise SchemaError(f"{name} must have shape {list(shape)}; got {dims}")
        count = math.prod(dims)
        frame = bytes(frame) if isinstance(frame, (bytearray, memoryview)) else frame
        if not isinstance(frame, bytes) or len(frame) != count * np.dtype(dtype).itemsize:
            size = len(frame) if isinstance(frame, bytes) else "?"
            raise SchemaError(f"{name}: {dims} {dtype} is {count * np.dtype(dtype).itemsize} bytes; the frame "
                              f"has {size}")
        out[name] = np.frombuffer(frame, dtype=dtype).reshape(dims)
    return out


def _check_ids(name, ids):
    if ids.ndim != 1 or not 0 < ids.size <= MAX_WORDS:
        raise SchemaError(f"{name} must be a 1-D array of 1 to {MAX_WORDS} ids; got shape {list(ids.shape)}")
    bad = (ids < 0) | (ids >= layout.VOCAB)
    if bad.any():
        raise SchemaError(f"{name} has id {int(ids[bad][0])} outside the vocabulary (0 … {layout.VOCAB - 1})")


def _check_tokens(name, tokens):
    if tokens.ndim != 2 or tokens.shape[1] != layout.TOKEN_DIM or not 0 < tokens.shape[0] <= MAX_AUDIO_TOKENS:
        raise SchemaError(f"{name} must have shape [1 … {MAX_AUDIO_TOKENS}, {layout.TOKEN_DIM}]; "
                          f"got {list(tokens.shape)}")
    if not np.isfinite(tokens).all():
        raise SchemaError(f"{name} contains NaN or infinite values")


def _check_gen(gen):
    if gen is None:
        return {}
    if not isinstance(gen, dict):
        raise SchemaError("'gen' must be a JSON object")
    out = {}
    for key, value in gen.items():
        kind = GEN_KEYS.get(key)
        if kind is None:
            raise SchemaError(f"unknown generation setting {key!r}; known: {', '.join(GEN_KEYS)}")
        if value is None:
            continue
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, kind) or isinstance(value, bool):
            raise SchemaError(f"gen.{key} must be {kind.__name__}; got {value!r}")
        out[key] = value
    return out


def check_request_header(header):
    """The header's own fields (not the arrays) → a normalised dict, or SchemaError."""
    if not _id_ok(header.get("id")):
        raise SchemaError(f"'id' must be a string of 1 to {MAX_ID_CHARS} printable ASCII characters; "
                          f"got {header.get('id')!r}")
    session = header.get("session", 0)
    if not isinstance(session, int) or isinstance(session, bool) or not 0 <= session < 2 ** 32:
        raise SchemaError(f"'session' must be an integer in 0 … 2**32 - 1; got {session!r}")
    task = header.get("task")
    if task not in TASKS:
        raise SchemaError(f"unknown task {task!r}; tasks are {', '.join(TASKS)}")
    snr = header.get("snr_db")
    if snr is not None and (isinstance(snr, bool) or not isinstance(snr, (int, float)) or not math.isfinite(snr)):
        raise SchemaError(f"'snr_db' must be a finite number or null; got {snr!r}")
    csi = header.get("csi")
    if csi is not None and (not isinstance(csi, dict) or len(csi) > MAX_CSI_KEYS):
        raise SchemaError(f"'csi' must be a JSON object of at most {MAX_CSI_KEYS} keys")
    deadline = header.get("deadline_ms")
    if deadline is not None and (isinstance(deadline, bool) or not isinstance(deadline, (int, float))
                                 or not 0 < deadline <= 3_600_000):
        raise SchemaError(f"'deadline_ms' must be a number in (0, 3600000]; got {deadline!r}")
    return {"id": header["id"], "session": session, "task": task, "snr_db": snr, "csi": csi,
            "gen": _check_gen(header.get("gen")), "deadline_ms": deadline}


def encode_request(request_id, task, arrays=None, session=0, snr_db=None, csi=None, gen=None, deadline_ms=None):
    """Frames of a request; ``arrays`` maps the task's array names to numpy arrays (cast to the schema's
    dtypes). Raises SchemaError for what ``decode_request`` would refuse."""
    arrays = arrays or {}
    expected = ARRAYS.get(task)
    if expected is None:
        raise SchemaError(f"unknown task {task!r}; tasks are {', '.join(TASKS)}")
    if set(arrays) != {name for name, _, _ in expected}:
        raise SchemaError(f"task {task!r} needs arrays {[n for n, _, _ in expected]}; got {sorted(arrays)}")
    cast = []
    for name, dtype, _ in expected:
        arr = np.asarray(arrays[name])
        if arr.dtype == object or not np.can_cast(arr.dtype, dtype, "same_kind"):
            raise SchemaError(f"{name} must be {dtype} (or cast to it without loss of kind); got {arr.dtype}")
        cast.append(np.ascontiguousarray(arr.astype(dtype, copy=False)))
    if isinstance(session, bool) or not isinstance(session, (int, np.integer)):
        raise SchemaError(f"'session' must be an integer in 0 … 2**32 - 1; got {session!r}")
    snr_db = float(snr_db) if isinstance(snr_db, (np.floating, np.integer)) else snr_db
    header = {"v": SCHEMA_VERSION, "id": request_id, "session": int(session), "task": task,
              "arrays": [_array_spec(name, a) for (name, _, _), a in zip(expected, cast)]}
    for key, value in (("snr_db", snr_db), ("csi", csi), ("gen", gen), ("deadline_ms", deadline_ms)):
        if value is not None:
            header[key] = value
    frames = _frames(header, cast)
    decode_request(frames)                       # the same checks as the server: fail at the sender
    return frames


def decode_request(frames):
    """Frames (without the ROUTER identity) → (header dict, {name: array}); SchemaError when malformed."""
    header = _parse_header(frames)
    info = check_request_header(header)
    arrays = _arrays(header, frames, ARRAYS[info["task"]])
    for name, arr in arrays.items():
        if name.endswith("_ids"):
            _check_ids(name, arr)
        else:
            _check_tokens(name, arr)
    return info, arrays


def encode_reply(request, status, error=None, text=None, ids=None, image_tokens=None, health=None, timing=None,
                 model=None, trace=None):
    """Frames of a reply to ``request`` (a dict with at least what ``check_request_header`` returns; id,
    session and task may be None when the request could not be read)."""
    if status not in STATUSES:
        raise ValueError(f"status must be one of {STATUSES}; got {status!r}")
    request = request or {}
    header = {"v": SCHEMA_VERSION, "id": request.get("id"), "session": request.get("session"),
              "task": request.get("task"), "status": status}
    arrays = []
    if error is not None:
        header["error"] = str(error)[:2000]
    if text is not None:
        header["text"] = text
    if ids is not None:
        header["ids"] = [int(i) for i in ids]
    if trace is not None:
        header["trace"] = str(trace)
    if image_tokens is not None:
        arrays = [np.ascontiguousarray(image_tokens, np.float32)]
        header["arrays"] = [_array_spec("image_tokens", arrays[0])]
    if health is not None:
        header["health"] = health
    if timing is not None:
        header["timing"] = timing
    if model is not None:
        header["model"] = model
    return _frames(header, arrays)


def error_reply(request, error, status="error"):
    """Frames of an error reply; ``request`` may be a partly read header (its id is echoed when valid)."""
    request = request if isinstance(request, dict) else {}
    session = request.get("session")
    safe = {"id": request.get("id") if _id_ok(request.get("id")) else None,
            "session": session if type(session) is int and 0 <= session < 2 ** 32 else None,
            "task": request.get("task") if request.get("task") in TASKS else None}
    return encode_reply(safe, status, error=error)


def peek_header(frames):
    """The header of a message as far as it can be read (a dict, maybe empty): for error replies."""
    try:
        header = json.loads(bytes(frames[0]).decode("utf-8"))
        return header if isinstance(header, dict) else {}
    except Exception:       # noqa: BLE001 — any unreadable header gives an empty one
        return {}


def decode_reply(frames):
    """Frames of a reply → (header dict, {name: array}); SchemaError when malformed."""
    header = _parse_header(frames)
    if header.get("status") not in STATUSES:
        raise SchemaError(f"reply status must be one of {STATUSES}; got {header.get('status')!r}")
    specs = header.get("arrays", [])
    if not isinstance(specs, list):
        raise SchemaError("'arrays' must be a list")
    expected = [(s.get("name"), s.get("dtype"), None) for s in specs if isinstance(s, dict)]
    if expected and expected[0][0] != "image_tokens":
        raise SchemaError(f"unexpected reply arrays {[e[0] for e in expected]}")
    arrays = _arrays(header, frames, [("image_tokens", "float32", None)] if expected else [])
    return header, arrays
