"""Token PDUs → MLLM requests, grouped by session (what ``mllm_client`` sends).

A token PDU, as ``rx`` delivers it on ``tokens``, carries its ``modality``,
a ``session_id`` (uint32; 0 when absent) and maybe a ``task`` (``core.tags``,
``runtime.sessions``). Its vector becomes one array of a request:

=========  ==================  ============================================
modality   PDU vector          request array (``schema.ARRAYS``)
=========  ==================  ============================================
image      f32, 32·16 values   ``image_tokens`` (32, 16)
audio      f32, M·16 values    ``audio_tokens`` (M, 16), 1 ≤ M ≤ 1501
text       s32 word ids        ``question_ids`` / ``caption_ids``, as the
                               text JSCC delivers them (``<bos> … <eos>``)
=========  ==================  ============================================

Per session, the PDU's task decides (a ``token_dim``/``n_tokens`` in the
metadata must agree with the vector):

* ``vqa``: an image becomes the session's image; a question (text) asks it:
  one vqa request per question, with the session's latest image. Questions
  that come before any image wait for it (``max_waiting`` per session).
* ``dsc``: an image → a dsc request at once (and the session's image).
* ``t2i``: a caption (text) → a t2i request at once.
* ``asr``: audio → an asr request at once.
* no task: audio → asr; an image becomes the session's image (no request);
  text → vqa when the session has an image, else t2i.

A PDU that fits none of this (wrong modality for its task, wrong sizes,
NaN, ids outside the vocabulary, an unusable session_id or task) raises
ValueError. The request's ``meta`` is the metadata of the PDU that completed
it without the keys that described the input tokens (``TOKEN_KEYS``), with
``session_id``, ``task`` and the lowest ``snr_db`` of its PDUs (a vqa
request also names its image's frame as ``image_frame_id``).
"""
import collections
import math
import time
from dataclasses import dataclass, field

import numpy as np
import pmt

from ..core import tags as tagkeys
from ..runtime import pdu_util, sessions
from . import layout, schema

TOKEN_KEYS = ("modality", "n_tokens", "token_dim", "model_id", "tokenizer_id", "jscc_model_id", "n_samples",
              "n_symbols", "packet_len")
MODALITY_TASKS = {"image": ("vqa", "dsc"), "text": ("vqa", "t2i"), "audio": ("asr",)}


@dataclass(eq=False)
class Request:
    """One MLLM request: ``arrays`` by ``schema.ARRAYS`` name; ``formed``: time.monotonic() when complete."""
    session: int
    task: str
    arrays: dict
    meta: object                                  # pmt dict: the base of the result's metadata
    snr_db: float = None
    csi: dict = field(default_factory=dict)
    formed: float = 0.0


@dataclass
class _Part:
    """One PDU's contribution: its array, metadata and link facts."""
    array: np.ndarray
    meta: object
    snr_db: float
    csi: dict


def _link_facts(meta):
    snr = pdu_util.get(meta, tagkeys.KEY_SNR_DB)
    snr = float(snr) if isinstance(snr, (int, float)) and not isinstance(snr, bool) and math.isfinite(snr) else None
    csi = {}
    h = pdu_util.get(meta, tagkeys.KEY_H)
    if isinstance(h, (complex, float, int)) and not isinstance(h, bool) and math.isfinite(abs(complex(h))):
        csi["h"] = [complex(h).real, complex(h).imag]
    for key in ("rate", "frame_id"):
        value = pdu_util.get_int(meta, key)
        if value is not None:
            csi[key] = value
    model = pdu_util.get_str(meta, "model_id")
    if model:
        csi["model_id"] = model[:200]
    if snr is not None:
        csi["snr_db"] = snr
    return snr, csi


def read_part(msg):
    """(modality, session, task or None, _Part) of a token PDU; ValueError when it cannot serve a request."""
    meta, vec, kind = pdu_util.unpack(msg, ("f32", "s32"))
    modality = pdu_util.get_str(meta, "modality")
    if modality not in MODALITY_TASKS:
        raise ValueError(f"a token PDU needs modality image, audio or text; got {modality!r}")
    session, task = sessions.read(meta)
    if task is not None and task not in MODALITY_TASKS[modality]:
        raise ValueError(f"{modality} tokens cannot serve task {task!r}")
    if modality == "text":
        if kind != "s32" or not 0 < len(vec) <= schema.MAX_WORDS or np.any((vec < 0) | (vec >= layout.VOCAB)):
            raise ValueError(f"text tokens must be 1 to {schema.MAX_WORDS} s32 ids in 0 … {layout.VOCAB - 1}")
        array = vec.astype(np.int64)
    else:
        d = layout.TOKEN_DIM
        n = len(vec) // d
        limit = layout.IMAGE_TOKENS if modality == "image" else schema.MAX_AUDIO_TOKENS
        if kind != "f32" or len(vec) % d or not (n == limit if modality == "image" else 0 < n <= limit):
            raise ValueError(f"{modality} tokens must be f32, {'exactly' if modality == 'image' else '1 to'} "
                             f"{limit} tokens of {d}; got {len(vec)} {kind} values")
        if pdu_util.get(meta, "token_dim", d) != d or pdu_util.get(meta, "n_tokens", n) != n:
            raise ValueError(f"the metadata's token_dim / n_tokens do not match {n} tokens of {d} (the MLLM's)")
        if not np.all(np.isfinite(vec)):
            raise ValueError(f"{modality} tokens contain NaN or infinite values")
        array = vec.reshape(n, d)
    return modality, (0 if session is None else session), task, _Part(array, meta, *_link_facts(meta))


class SessionTable:
    """The state per session (its latest image, questions waiting for one), at most ``max_sessions`` (the least
    recently used one goes, its waiting questions with it)."""

    def __init__(self, max_sessions=1024, max_waiting=16):
        self._sessions = collections.OrderedDict()
        self._max_sessions, self._max_waiting = int(max_sessions), int(max_waiting)

    def add(self, msg):
        """A token PDU → (requests it completes, [(orphan request, reason)]): orphans are questions that will
        never get an image (the session's queue overflowed or the session was forgotten). ValueError: dropped."""
        modality, session, task, part = read_part(msg)
        state = self._sessions.pop(session, None) or {"image": None, "waiting": collections.deque()}
        self._sessions[session] = state
        orphans = []
        while len(self._sessions) > self._max_sessions:
            old, gone = self._sessions.popitem(last=False)
            orphans += [(self._request(old, "vqa", q, None), "the session was forgotten (too many sessions)")
                        for q in gone["waiting"]]
        if modality == "audio":
            return [self._request(session, "asr", part)], orphans
        if modality == "image":
            state["image"] = part
            waiting, state["waiting"] = state["waiting"], collections.deque()
            done = [self._request(session, "vqa", q, part) for q in waiting]
            return done + ([self._request(session, "dsc", part)] if task == "dsc" else []), orphans
        if task == "t2i" or (task is None and state["image"] is None):
            return [self._request(session, "t2i", part)], orphans
        if state["image"] is not None:
            return [self._request(session, "vqa", part, state["image"])], orphans
        state["waiting"].append(part)
        if len(state["waiting"]) > self._max_waiting:
            orphans.append((self._request(session, "vqa", state["waiting"].popleft(), None),
                            f"more than {self._max_waiting} questions waited for the session's image"))
        return [], orphans

    def close(self):
        """[(orphan request, reason)] for every question still waiting; forgets every session."""
        orphans = [(self._request(s, "vqa", q, None), "the session never received an image")
                   for s, state in self._sessions.items() for q in state["waiting"]]
        self._sessions.clear()
        return orphans

    @staticmethod
    def _request(session, task, part, image=None):
        parts = [p for p in (image, part) if p is not None]
        arrays = {"vqa": lambda: {"image_tokens": image.array, "question_ids": part.array} if image is not None else {},
                  "dsc": lambda: {"image_tokens": part.array}, "t2i": lambda: {"caption_ids": part.array},
                  "asr": lambda: {"audio_tokens": part.array}}[task]()
        meta = part.meta
        for key in TOKEN_KEYS:
            meta = pmt.dict_delete(meta, pmt.intern(key))
        snrs = [p.snr_db for p in parts if p.snr_db is not None]
        meta = pdu_util.with_items(meta, session_id=session, task=task, **({"snr_db": min(snrs)} if snrs else {}))
        csi = {"text" if task in ("vqa", "t2i") else "audio" if task == "asr" else "image": part.csi}
        if image is not None and task == "vqa":
            csi["image"] = image.csi
            if "frame_id" in image.csi:
                meta = pdu_util.with_items(meta, image_frame_id=image.csi["frame_id"])
        return Request(session, task, arrays, meta, min(snrs) if snrs else None, csi, time.monotonic())
