"""The MLLM at the receiver: four exported graphs in onnxruntime behind ``answer``, ``transcribe`` and
``generate_image_tokens`` (no torch, no GNU Radio; [7/10]'s server calls it).

    mllm = MLLM()                                      # mllm_{prefill,decode,lm_head,denoiser}-<variant>-*.onnx
    answers = mllm.answer(image_tokens, question_ids)  # (B, 32, 16) float, (B, N) int → [ids]
    texts = mllm.transcribe(audio_tokens)              # (B, M, 16) or [(M_i, 16)] → [ids]
    tokens = mllm.generate_image_tokens(caption_ids, steps=50, temperature=1.0)   # → (B, 32, 16) float32
    scenes = mllm.describe(image_tokens)               # (B, 32, 16) → [ids]: "3 small gray metal cube …"

Words come back as id arrays without specials (``vocab.decode`` makes text).
Inputs are checked before anything runs, and every problem is a
``ValueError`` naming the argument: not an array, wrong dtype (tokens must
be floating point, ids integers), wrong shape or token count, an empty or
too large batch, NaN or infinite tokens, ids outside the corpus vocabulary,
a sequence longer than the model's positions. Ids may be a 2-D integer
array right-padded with ``<pad>`` (0; trailing pads are dropped) or a list
of 1-D arrays; audio tokens may be a (B, M, 16) array or a list of (M_i, 16).

The four files must come from one export (same ``mllm_id``) with this
package's sequence layout and vocabulary (``vocab_hash``); otherwise the
constructor refuses them.
"""
import json
import pathlib

import numpy as np

from ..data import vocab
from ..runtime import model_store
from ..runtime.args import check_float, check_int
from ..runtime.onnx_session import make_session
from . import generate, layout, schedule

#: graph → (input names, output names); ``onnx_export.mllm.export`` writes exactly these.
GRAPHS = {
    "prefill": (("ids", "cont", "kind", "pos", "mask"), ("hidden", "kv")),
    "decode": (("ids", "cont", "kind", "pos", "mask", "past"), ("hidden", "kv")),
    "lm_head": (("h",), ("logits",)),
    "denoiser": (("x", "step", "h"), ("eps",)),
}
SHARED_KEYS = ("mllm_id", "mllm_config", "schedule", "layout", "vocab_hash", "token_stats", "variant")
MAX_BATCH = 1024
MAX_ANSWER_WORDS = 8
MAX_TRANSCRIPT_WORDS = 48
MAX_DESCRIPTION_WORDS = 32


class OnnxBackend:
    """The four sessions as a ``generate`` backend; checks the files belong together and to this layout."""

    def __init__(self, paths, threads=1, device="auto"):
        metas = {}
        for graph in GRAPHS:
            path = pathlib.Path(paths[graph])
            meta = model_store.read_metadata(path)
            if meta.get("role") != f"mllm_{graph}":
                raise ValueError(f"{path.name} is a {meta.get('role', 'model without a role')!r}, not mllm_{graph}")
            missing = [k for k in SHARED_KEYS if k not in meta]
            if missing:
                raise ValueError(f"{path.name} lacks the metadata {', '.join(missing)}; "
                                 "it was not exported by onnx_export.mllm.export")
            model_store.check_consistent(path, meta)
            io = model_store.io_names(meta)
            if (tuple(io["inputs"]), tuple(io["outputs"])) != GRAPHS[graph]:
                raise ValueError(f"{path.name}: io names {io} are not the {graph} graph's {GRAPHS[graph]}")
            metas[graph] = meta
        first = metas["prefill"]
        for graph, meta in metas.items():
            bad = [k for k in SHARED_KEYS if meta[k] != first[k]]
            if bad:
                raise ValueError(f"mllm_{graph} and mllm_prefill are not one exported model: "
                                 f"{', '.join(bad)} differ")
        if first["layout"] != layout.LAYOUT_VERSION or first["vocab_hash"] != layout.vocab_hash():
            raise ValueError(f"the MLLM was trained for sequence layout {first['layout']!r} / vocabulary "
                             f"{first['vocab_hash']}, this package has {layout.LAYOUT_VERSION!r} / "
                             f"{layout.vocab_hash()}")
        self.meta = first
        self.config = json.loads(first["mllm_config"])
        self.schedule = schedule.make(**json.loads(first["schedule"]))
        stats = json.loads(first["token_stats"])
        self.image_mean = np.asarray(stats["image"]["mean"], np.float32)
        self.image_std = np.asarray(stats["image"]["std"], np.float32)
        self.max_len = int(self.config["max_len"])
        self.paths = {g: pathlib.Path(paths[g]) for g in GRAPHS}
        self.sessions = {g: make_session(str(p), threads, device) for g, p in self.paths.items()}

    def _run(self, graph, *arrays):
        return self.sessions[graph].run(None, dict(zip(GRAPHS[graph][0], arrays)))

    def prefill(self, ids, cont, kind, pos, mask):
        return tuple(self._run("prefill", ids, cont, kind, pos, mask))

    def decode(self, ids, cont, kind, pos, mask, kv):
        return tuple(self._run("decode", ids, cont, kind, pos, mask, kv))

    def lm_head(self, h):
        return self._run("lm_head", np.ascontiguousarray(h, np.float32))[0]

    def denoise(self, x, step, h):
        return self._run("denoiser", np.ascontiguousarray(x, np.float32), np.asarray(step, np.int64),
                         np.ascontiguousarray(h, np.float32))[0]


def find_files(model="mllm", variant=""):
    """{graph: path} of the model ``model`` (``<model>_<graph>-<variant>-<hash>.onnx``) in the model folders."""
    return {g: model_store.find(f"{model}_{g}", variant or None) for g in GRAPHS}


def _batch_size(name, n):
    if n == 0:
        raise ValueError(f"{name}: the batch is empty")
    if n > MAX_BATCH:
        raise ValueError(f"{name}: a batch of {n} is more than the {MAX_BATCH} allowed")


def _rows(name, rows, what):
    _batch_size(name, len(rows))
    out = []
    for i, row in enumerate(rows):
        try:
            arr = np.asarray(row)
        except ValueError:
            arr = None
        if arr is None or arr.dtype == object:
            raise ValueError(f"{name}[{i}] must be an array of {what}; got {type(row).__name__}")
        out.append(arr)
    return out


def check_tokens(name, tokens, token_dim, count=None, max_count=None):
    """Continuous tokens → a list of (N_i, d) float32 arrays, or ValueError (see the module docstring)."""
    if isinstance(tokens, (list, tuple)):
        out = []
        for i, row in enumerate(_rows(name, tokens, f"(tokens, {token_dim}) floats")):
            if row.ndim != 2:
                raise ValueError(f"{name}[{i}] must have shape (tokens, {token_dim}); got {row.shape}")
            out += check_tokens(f"{name}[{i}]", row[None], token_dim, count, max_count)
        return out
    if not isinstance(tokens, np.ndarray):
        raise ValueError(f"{name} must be a numpy array of shape (batch, tokens, {token_dim}) or a list of "
                         f"(tokens, {token_dim}) arrays; got {type(tokens).__name__}")
    if not np.issubdtype(tokens.dtype, np.floating):
        raise ValueError(f"{name} must be floating point (float32); got dtype {tokens.dtype}")
    if tokens.ndim != 3 or tokens.shape[2] != token_dim:
        raise ValueError(f"{name} must have shape (batch, tokens, {token_dim}); got {tokens.shape}")
    _batch_size(name, tokens.shape[0])
    n = tokens.shape[1]
    if count is not None and n != count:
        raise ValueError(f"{name} must have {count} tokens per item; got {n}")
    if n == 0 or (max_count is not None and n > max_count):
        raise ValueError(f"{name} must have 1 to {max_count} tokens per item; got {n}")
    bad = ~np.isfinite(tokens).all(axis=(1, 2))
    if bad.any():
        raise ValueError(f"{name} contains NaN or infinite values (item {int(np.flatnonzero(bad)[0])})")
    return list(tokens.astype(np.float32))


def check_ids(name, ids, max_count):
    """Word ids → a list of 1-D int64 arrays (trailing ``<pad>`` dropped), or ValueError."""
    if isinstance(ids, (list, tuple)):
        out = []
        for i, row in enumerate(_rows(name, ids, "integer ids")):
            if row.ndim != 1:
                raise ValueError(f"{name}[{i}] must be a 1-D array of ids; got shape {row.shape}")
            out += check_ids(f"{name}[{i}]", row[None], max_count)
        return out
    if not isinstance(ids, np.ndarray):
        raise ValueError(f"{name} must be a 2-D integer numpy array (batch, words) or a list of 1-D arrays; "
                         f"got {type(ids).__name__}")
    if ids.dtype == bool or not np.issubdtype(ids.dtype, np.integer):
        raise ValueError(f"{name} must be integer word ids; got dtype {ids.dtype}")
    if ids.ndim != 2:
        raise ValueError(f"{name} must have shape (batch, words); got {ids.shape}")
    _batch_size(name, ids.shape[0])
    out = []
    for i, row in enumerate(ids):
        bad = (row < 0) | (row >= layout.VOCAB)
        if bad.any():
            raise ValueError(f"{name}[{i}] has id {int(row[bad][0])} outside the vocabulary of {layout.VOCAB} "
                             f"(0 … {layout.VOCAB - 1})")
        keep = np.flatnonzero(row != vocab.PAD)
        row = row[:keep[-1] + 1] if keep.size else row[:0]
        if row.size == 0 or row.size > max_count:
            raise ValueError(f"{name}[{i}] must have 1 to {max_count} ids after dropping trailing <pad>; "
                             f"got {row.size}")
        out.append(row.astype(np.int64))
    return out


class MLLM:
    """The receiver's MLLM over onnxruntime (see the module docstring).

    Args:
        model, variant: the model name prefix and variant searched in the model folders
            (``$UNITOCOM_MODEL_DIR``, then the package's ``models/``); ignored with ``files``.
        files: {graph: path} of the four graphs (``prefill``, ``decode``, ``lm_head``, ``denoiser``).
        threads, device: onnxruntime intra-op threads and device ('auto', 'cpu', 'cuda').
        use_cache: generate with the kv cache (True) or re-run prefill every step (a slow reference).
    """

    def __init__(self, model="mllm", variant="", files=None, threads=1, device="auto", use_cache=True):
        files = files if files is not None else find_files(model, variant)
        if not isinstance(files, dict) or set(files) != set(GRAPHS):
            raise ValueError(f"files must map each of {', '.join(GRAPHS)} to a model file; got {files!r}")
        self.backend = OnnxBackend(files, check_int("threads", threads, 1, 256), device)
        self.use_cache = bool(use_cache)
        cfg = self.backend.config
        self.token_dim, self.image_tokens, self.max_len = cfg["token_dim"], cfg["image_tokens"], cfg["max_len"]
        self.diffusion_steps = self.backend.schedule["steps"]
        self.model_id = self.backend.meta["mllm_id"]
        #: the model says the objects a question refers to before its answer (``layout.vqa_answer``)
        self.vqa_trace = self.backend.meta.get("vqa_trace") == "yes"
        #: words generated for a VQA answer on top of ``max_words``: the trace and its ``<sep>``
        self.trace_words = layout.VQA_TRACE_MAX - 1 if self.vqa_trace else 0

    # --- argument checks ----------------------------------------------------------------------------
    def _fits(self, name, items, new):
        longest = max(len(it) for it in items)
        if longest + new - 1 > self.max_len:
            raise ValueError(f"{name}: a prompt of {longest} positions plus {new} generated is more than the "
                             f"model's {self.max_len} positions")

    @staticmethod
    def _rng(seed):
        if seed is None:
            return np.random.default_rng()
        return np.random.default_rng(check_int("seed", seed, 0))

    @staticmethod
    def _top_p(top_p, temperature):
        if top_p is not None:
            check_float("top_p", top_p, maximum=1.0, above=0.0)
        return check_float("temperature", temperature, 0.0, 100.0)

    # --- tasks ----------------------------------------------------------------------------------------
    def answer(self, image_tokens, question_ids, max_words=MAX_ANSWER_WORDS, top_p=None, temperature=1.0,
               seed=None, with_trace=False):
        """Answers to questions about images: (B, 32, 16) tokens and (B, N) question ids → B id arrays.

        Greedy by default; ``top_p`` in (0, 1] samples (nucleus, at ``temperature``, with ``seed``).
        ``max_words`` bounds the answer; a model with traces (``vqa_trace``) first says the objects the
        question refers to, in up to ``trace_words`` more words. ``with_trace``: B (trace ids, answer ids)
        pairs instead (the trace is empty for a model without traces)."""
        images = check_tokens("image_tokens", image_tokens, self.token_dim, count=self.image_tokens)
        questions = check_ids("question_ids", question_ids, self.max_len)
        if len(images) != len(questions):
            raise ValueError(f"image_tokens has {len(images)} items but question_ids {len(questions)}")
        max_words = check_int("max_words", max_words, 1, self.max_len)
        temperature = self._top_p(top_p, temperature)
        items = [layout.vqa(c, q, token_dim=self.token_dim) for c, q in zip(images, questions)]
        new = max_words + self.trace_words
        self._fits("answer", items, new)
        said = generate.text(self.backend, items, new, top_p, temperature, self._rng(seed), self.use_cache)
        answers = [layout.vqa_answer(s, self.vqa_trace)[:max_words] for s in said]
        if with_trace:
            return [(layout.vqa_trace(s) if self.vqa_trace else s[:0], a) for s, a in zip(said, answers)]
        return answers

    def transcribe(self, audio_tokens, max_words=MAX_TRANSCRIPT_WORDS, top_p=None, temperature=1.0, seed=None):
        """Transcripts of speech: (B, M, 16) tokens (or a list of (M_i, 16)) → B id arrays."""
        clips = check_tokens("audio_tokens", audio_tokens, self.token_dim, max_count=self.max_len)
        max_words = check_int("max_words", max_words, 1, self.max_len)
        temperature = self._top_p(top_p, temperature)
        items = [layout.asr(a, token_dim=self.token_dim) for a in clips]
        self._fits("transcribe", items, max_words)
        return generate.text(self.backend, items, max_words, top_p, temperature, self._rng(seed), self.use_cache)

    def describe(self, image_tokens, max_words=MAX_DESCRIPTION_WORDS, top_p=None, temperature=1.0, seed=None):
        """Scene descriptions (the object count, then each object's size color material shape, left to
        right): (B, 32, 16) image tokens → B id arrays."""
        images = check_tokens("image_tokens", image_tokens, self.token_dim, count=self.image_tokens)
        max_words = check_int("max_words", max_words, 1, self.max_len)
        temperature = self._top_p(top_p, temperature)
        items = [layout.describe(c, token_dim=self.token_dim) for c in images]
        self._fits("describe", items, max_words)
        return generate.text(self.backend, items, max_words, top_p, temperature, self._rng(seed), self.use_cache)

    def generate_image_tokens(self, caption_ids, steps=50, temperature=1.0, sampler="ddpm", eta=0.0, seed=None,
                              guidance=schedule.DEFAULT_GUIDANCE):
        """Image tokens for captions by next-token diffusion: (B, N) caption ids → (B, 32, 16) float32.

        ``steps`` of the reverse chain (respaced, 1 … R), ``sampler`` 'ddpm' or
        'ddim' (``eta`` ∈ [0, 1]), ``temperature`` ≥ 0 scales every noise draw,
        ``guidance`` ∈ [0, 20] is the classifier-free guidance scale (1: none;
        above 1 costs twice the compute, ``generate.image_tokens``)."""
        captions = check_ids("caption_ids", caption_ids, self.max_len)
        steps = check_int("steps", steps, 1, self.diffusion_steps)
        temperature = check_float("temperature", temperature, 0.0, 100.0)
        if sampler not in schedule.SAMPLERS:
            raise ValueError(f"sampler must be one of {', '.join(schedule.SAMPLERS)}; got {sampler!r}")
        eta = check_float("eta", eta, 0.0, 1.0)
        guidance = check_float("guidance", guidance, 0.0, 20.0)
        items = [layout.t2i(c, token_dim=self.token_dim) for c in captions]
        self._fits("generate_image_tokens", items, self.image_tokens)
        rng = self._rng(seed)
        return generate.image_tokens(self.backend, items, self.image_tokens, steps, sampler, temperature, eta,
                                     lambda shape: rng.standard_normal(shape, dtype=np.float32), self.use_cache,
                                     guidance)
