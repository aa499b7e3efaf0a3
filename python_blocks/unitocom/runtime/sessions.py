"""Sessions: which user a frame belongs to, and what the receiver's MLLM should do with it.

``tx`` puts a ``session_id`` (uint32) and a ``task`` ('vqa', 't2i', 'asr',
'dsc', or none) into every frame's tags; ``rx`` hands them on in its token
PDUs; ``mllm_client`` groups token PDUs by session into MLLM requests
(``core.tags`` lists the keys, ``mllm.requests`` the grouping). Here: the
argument checks, reading the two keys from PDU metadata, and
``session_defaults``, the message block inside ``tx`` and ``rx`` that fills
them in. A value the PDU carries wins over the block's argument.
"""
import pmt
from gnuradio import gr

from ..core import tags as tagkeys
from ..mllm.layout import TASKS
from . import pdu_util
from .args import check_int
from .droplog import DropLog

SESSION_ID_MAX = (1 << 32) - 1
_SESSION, _TASK = pmt.intern(tagkeys.KEY_SESSION_ID), pmt.intern(tagkeys.KEY_TASK)


def check_session_id(value):
    """A session id argument: an integer 0 … 2³²−1, or ValueError."""
    return check_int("session_id", value, 0, SESSION_ID_MAX)


def check_task(value):
    """A task argument: '' (none) or one of ``mllm.layout.TASKS``, or ValueError."""
    if not isinstance(value, str) or value not in ("",) + TASKS:
        raise ValueError(f"task must be '' (none) or one of {', '.join(TASKS)}; got {value!r}")
    return value


def read(meta):
    """(session_id, task) of a metadata dict pmt; None for a key that is absent.

    Raises ValueError for a key that holds something else than a uint32 /
    one of the tasks ('' reads as None). Never raises anything else."""
    try:
        has_session, has_task = pmt.dict_has_key(meta, _SESSION), pmt.dict_has_key(meta, _TASK)
    except Exception:                       # not a dict: nothing to read
        return None, None
    session = pdu_util.get_int(meta, tagkeys.KEY_SESSION_ID, None, 0, SESSION_ID_MAX) if has_session else None
    if has_session and session is None:
        raise ValueError(f"session_id {pmt.write_string(pmt.dict_ref(meta, _SESSION, pmt.PMT_NIL))[:40]} "
                         f"is not an integer 0 … {SESSION_ID_MAX}")
    task = pdu_util.get_str(meta, tagkeys.KEY_TASK, None) if has_task else None
    if has_task and task not in (("",) + TASKS):
        raise ValueError(f"task {pmt.write_string(pmt.dict_ref(meta, _TASK, pmt.PMT_NIL))[:40]} is not one of "
                         f"{', '.join(TASKS)}")
    return session, (task or None)


class session_defaults(gr.basic_block):
    """PDUs in on ``in``, out on ``out`` with ``session_id`` and ``task`` filled in (inside ``tx`` and ``rx``).

    A PDU without a ``session_id`` gets the block's; one without a ``task``
    gets the block's task unless that is ''. A value of the wrong type (not
    a uint32, not a task) is logged and replaced the same way. Messages
    that are not PDUs pass unchanged: the next block checks and drops them.
    """

    def __init__(self, session_id=0, task=""):
        gr.basic_block.__init__(self, name="session_defaults", in_sig=None, out_sig=None)
        self.set_session_id(session_id)
        self.set_task(task)
        self._log = DropLog(self.logger)
        self.message_port_register_in(pmt.intern("in"))
        self.message_port_register_out(pmt.intern("out"))
        self.set_msg_handler(pmt.intern("in"), self._on_pdu)

    def set_session_id(self, session_id):
        self._session = check_session_id(session_id)

    def set_task(self, task):
        self._task = check_task(task)

    def _on_pdu(self, msg):
        try:
            msg = self._fill(msg)
        except Exception as exc:            # never a dead block: the message goes on as it came
            self._log.warn(f"passed a message on unchanged: {type(exc).__name__}: {exc}")
        self.message_port_pub(pmt.intern("out"), msg)

    def _fill(self, msg):
        if not pmt.is_pair(msg) or not (pmt.is_dict(pmt.car(msg)) or pmt.is_null(pmt.car(msg))):
            return msg
        meta = pmt.car(msg) if pmt.is_dict(pmt.car(msg)) else pmt.make_dict()
        has_session, has_task = pmt.dict_has_key(meta, _SESSION), pmt.dict_has_key(meta, _TASK)
        session = pdu_util.get_int(meta, tagkeys.KEY_SESSION_ID, None, 0, SESSION_ID_MAX)
        task = pdu_util.get_str(meta, tagkeys.KEY_TASK, None)
        if has_session and session is None:
            self._log.warn(f"replaced an unusable session_id with {self._session}")
        if has_task and task not in ("",) + TASKS:
            self._log.warn(f"replaced an unusable task with {self._task!r}")
            meta, task = pmt.dict_delete(meta, _TASK), None
        if session is None:
            meta = pdu_util.with_items(meta, session_id=self._session)
        if task is None and self._task:
            meta = pdu_util.with_items(meta, task=self._task)
        return pmt.cons(meta, pmt.cdr(msg))
