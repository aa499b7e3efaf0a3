"""The MLLM's packed sequences (Sec. IV, T⁰ = [discrete, continuous]): one definition for training and the runtime.

Every position of a sequence is one of three *kinds*: a discrete id
(``KIND_TEXT``, through the embedding), an image token or an audio token
(``KIND_IMAGE`` / ``KIND_AUDIO``: d = 16 floats through that modality's
linear projection). The discrete ids are the corpus vocabulary
(``data.vocab.TOKENS``, V = 64, the only ids the LM head predicts) followed
by eight learned control tokens that only ever appear as inputs:

    <boi> <eoi>   begin / end of image tokens     <vqa> <t2i> <asr> <dsc>   task
    <boa> <eoa>   begin / end of audio tokens

The four tasks (``|`` ends the prompt; what follows is generated):

    vqa  <vqa> <boi> c₁ … c₃₂ <eoi> question_ids <sep> | [trace <sep>] answer <eos>
    t2i  <t2i> caption_ids <boi>                     | c₁ … c₃₂
    asr  <asr> <boa> a₁ … a_M <eoa> <sep>            | transcript <eos>
    dsc  <dsc> <boi> c₁ … c₃₂ <eoi> <sep>             | description <eos>

A VQA answer may be preceded by a *trace* (models trained with
``train_mllm --vqa-trace``; their metadata says ``vqa_trace: yes``): the
objects the question refers to, each as size color material shape
(``data.questions.trace``), then ``<sep>``; ``vqa_answer`` and ``vqa_trace``
split generated words.

``dsc`` (describe the scene: the object count, then every object's size,
color, material and shape from left to right, ``data.captions.describe``)
is dense supervision of what the image tokens hold — one VQA answer is one
word per image — and a capability of its own.

Prediction is next-token throughout: the hidden state h_i at position i
predicts what stands at i + 1 — a word through the LM head (Eq. 15), or an
image token through the diffusion head (Eq. 17) — and the generated token is
fed back as input at i + 1. So ``<sep>`` predicts the first answer word,
``<boi>`` the first image token, c_j the token c_{j+1}.

``question_ids`` and ``caption_ids`` are ids as the text JSCC delivers them
(``vocab.encode(sentence)``, ``<bos> … <eos>``; at low SNR any id may be
wrong): they are copied unchecked apart from the range. Answers and
transcripts (the targets) are word ids without specials; ``<eos>`` is
appended here.

``pack`` makes a batch: right padding for training (positions 0, 1, … from
the first token; causal attention never sees a pad), left padding for
generation (all rows end together, so one decode step serves the batch; the
key mask hides the pads and positions still count from each row's first
real token). Arrays: ``ids`` (B, T) int64, ``cont`` (B, T, d) float32,
``kind`` (B, T) int64, ``pos`` (B, T) int64, ``mask`` (B, T) float32 (1 = a
real token), and for training ``lm_target`` (B, T) int64 (−1 = none) and
``diff_target`` (B, T, d) float32 with ``diff_mask`` (B, T) float32, and
``task`` (B,) int64 (the index of each row's task in ``TASKS``).
"""
import hashlib
from dataclasses import dataclass

import numpy as np

from ..data import vocab

LAYOUT_VERSION = "unitocom.mllm.layout/1"
VOCAB = len(vocab.TOKENS)                              # V: what the LM head predicts
CONTROLS = ("<boi>", "<eoi>", "<boa>", "<eoa>", "<vqa>", "<t2i>", "<asr>", "<dsc>")
BOI, EOI, BOA, EOA, TASK_VQA, TASK_T2I, TASK_ASR, TASK_DSC = range(VOCAB, VOCAB + len(CONTROLS))
N_IDS = VOCAB + len(CONTROLS)                          # rows of the input embedding
KIND_TEXT, KIND_IMAGE, KIND_AUDIO = 0, 1, 2
TASKS = ("vqa", "t2i", "asr", "dsc")
TOKEN_DIM = 16
IMAGE_TOKENS = 32
NO_TARGET = -1


def vocab_hash():
    """sha256[:16] of the input id table (corpus vocabulary, then controls) and the layout version.

    Exported models carry it; the runtime refuses a model whose hash differs."""
    text = "\n".join((LAYOUT_VERSION,) + tuple(vocab.TOKENS) + CONTROLS)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass
class Item:
    """One sequence: ``ids``/``kind`` (T,), ``cont`` (T, d); targets for position i (what stands at i + 1)."""
    ids: np.ndarray
    cont: np.ndarray
    kind: np.ndarray
    lm_target: np.ndarray
    diff_target: np.ndarray
    diff_mask: np.ndarray
    prompt_len: int
    task: str

    def __len__(self):
        return len(self.ids)


class _Builder:
    def __init__(self, token_dim):
        self.d = token_dim
        self.ids, self.kind, self.cont = [], [], []

    def text(self, ids):
        ids = [int(i) for i in ids]
        self.ids += ids
        self.kind += [KIND_TEXT] * len(ids)
        self.cont += [np.zeros(self.d, np.float32)] * len(ids)

    def tokens(self, tokens, kind):
        tokens = np.asarray(tokens, np.float32).reshape(-1, self.d)
        self.ids += [0] * len(tokens)
        self.kind += [kind] * len(tokens)
        self.cont += list(tokens)

    def item(self, task, prompt_len):
        n = len(self.ids)
        ids, kind = np.array(self.ids, np.int64), np.array(self.kind, np.int64)
        cont = np.stack(self.cont).astype(np.float32) if n else np.zeros((0, self.d), np.float32)
        lm_target = np.full(n, NO_TARGET, np.int64)
        diff_target = np.zeros((n, self.d), np.float32)
        diff_mask = np.zeros(n, np.float32)
        for i in range(prompt_len - 1, n - 1):             # generated positions: predicted from i
            if kind[i + 1] == KIND_TEXT:
                lm_target[i] = ids[i + 1]
            else:
                diff_target[i], diff_mask[i] = cont[i + 1], 1.0
        return Item(ids, cont, kind, lm_target, diff_target, diff_mask, prompt_len, task)


def _words(target):
    ids = [int(i) for i in target if int(i) not in (vocab.PAD, vocab.BOS)]
    return ids if ids and ids[-1] == vocab.EOS else ids + [vocab.EOS]


def vqa(image_tokens, question_ids, answer_ids=None, token_dim=TOKEN_DIM):
    """``<vqa> <boi> c… <eoi> question <sep>`` (+ ``answer <eos>`` when ``answer_ids`` is given)."""
    b = _Builder(token_dim)
    b.text([TASK_VQA, BOI])
    b.tokens(image_tokens, KIND_IMAGE)
    b.text([EOI])
    b.text(question_ids)
    b.text([vocab.SEP])
    prompt = len(b.ids)
    if answer_ids is not None:
        b.text(_words(answer_ids))
    return b.item("vqa", prompt)


VQA_TRACE_MAX = 4 * 7 + 2     # words a traced answer may take: up to 7 objects × 4 words, <sep>, the answer


def vqa_answer(words, traced=False):
    """The answer in generated VQA words (no ``<eos>``); int64 array.

    A model trained with traces (``traced``) says ``trace <sep> answer``: the answer is what follows the last
    ``<sep>``, and empty when no ``<sep>`` came (the words ran out inside the trace). Without traces the
    words are the answer as they are."""
    words = np.asarray(words, np.int64)
    if not traced:
        return words
    seps = np.flatnonzero(words == vocab.SEP)
    return words[seps[-1] + 1:] if len(seps) else words[:0]


def vqa_trace(words):
    """The trace in generated VQA words: what comes before the last ``<sep>`` (empty without one)."""
    words = np.asarray(words, np.int64)
    seps = np.flatnonzero(words == vocab.SEP)
    return words[:seps[-1]] if len(seps) else words[:0]


def t2i(caption_ids, image_tokens=None, token_dim=TOKEN_DIM):
    """``<t2i> caption <boi>`` (+ the image tokens ``c₁ … c_S`` when given)."""
    b = _Builder(token_dim)
    b.text([TASK_T2I])
    b.text(caption_ids)
    b.text([BOI])
    prompt = len(b.ids)
    if image_tokens is not None:
        b.tokens(image_tokens, KIND_IMAGE)
    return b.item("t2i", prompt)


def asr(audio_tokens, transcript_ids=None, token_dim=TOKEN_DIM):
    """``<asr> <boa> a… <eoa> <sep>`` (+ ``transcript <eos>`` when ``transcript_ids`` is given)."""
    b = _Builder(token_dim)
    b.text([TASK_ASR, BOA])
    b.tokens(audio_tokens, KIND_AUDIO)
    b.text([EOA, vocab.SEP])
    prompt = len(b.ids)
    if transcript_ids is not None:
        b.text(_words(transcript_ids))
    return b.item("asr", prompt)


def describe(image_tokens, description_ids=None, token_dim=TOKEN_DIM):
    """``<dsc> <boi> c… <eoi> <sep>`` (+ ``description <eos>`` when ``description_ids`` is given)."""
    b = _Builder(token_dim)
    b.text([TASK_DSC, BOI])
    b.tokens(image_tokens, KIND_IMAGE)
    b.text([EOI, vocab.SEP])
    prompt = len(b.ids)
    if description_ids is not None:
        b.text(_words(description_ids))
    return b.item("dsc", prompt)


def pack(items, pad="right", length=None):
    """Items → a dict of batch arrays (see the module docstring); ``pad`` 'right' (training) or 'left' (generation).

    ``length`` pads to at least that many positions (default: the longest item)."""
    if pad not in ("left", "right"):
        raise ValueError(f"pad must be 'left' or 'right'; got {pad!r}")
    if not items:
        raise ValueError("pack needs at least one item")
    d = items[0].cont.shape[1]
    t = max([len(it) for it in items] + [length or 0])
    b = len(items)
    out = {"ids": np.full((b, t), vocab.PAD, np.int64), "cont": np.zeros((b, t, d), np.float32),
           "kind": np.full((b, t), KIND_TEXT, np.int64), "pos": np.zeros((b, t), np.int64),
           "mask": np.zeros((b, t), np.float32), "lm_target": np.full((b, t), NO_TARGET, np.int64),
           "diff_target": np.zeros((b, t, d), np.float32), "diff_mask": np.zeros((b, t), np.float32),
           "task": np.array([TASKS.index(it.task) for it in items], np.int64)}
    for row, it in enumerate(items):
        n = len(it)
        sl = slice(0, n) if pad == "right" else slice(t - n, t)
        out["ids"][row, sl], out["cont"][row, sl], out["kind"][row, sl] = it.ids, it.cont, it.kind
        out["pos"][row, sl], out["mask"][row, sl] = np.arange(n), 1.0
        out["lm_target"][row, sl], out["diff_target"][row, sl] = it.lm_target, it.diff_target
        out["diff_mask"][row, sl] = it.diff_mask
    return out
