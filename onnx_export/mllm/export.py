"""ONNX export of the MLLM as the four graphs the runtime generates with (``gnuradio.unitocom.mllm.engine.GRAPHS``).

=============  ==========================================  ==========================================
graph          inputs                                      outputs
=============  ==========================================  ==========================================
``prefill``    ids, kind, pos (B, T) int64; cont (B, T, d)  hidden (B, T, D);
               float32; mask (B, T) float32                kv (B, L, 2, H, T, D/H)
``decode``     the same for T_new positions, mask over     hidden (B, T_new, D);
               T_p + T_new keys; past (B, L, 2, H, T_p, ·)  kv (B, L, 2, H, T_p + T_new, D/H)
``lm_head``    h (N, D)                                    logits (N, V)
``denoiser``   x (N, d) float32, step (N,) int64, h (N, D)  eps (N, d)
=============  ==========================================  ==========================================

Files ``mllm_<graph>-<variant>-<sha256[:8]>.onnx`` (``onnx_export.export``).
Each carries DESIGN.md §4's metadata (role ``mllm_<graph>``, modality
``image+audio+text``, token_len = image tokens per image, token_dim, …) and:
``mllm_id`` (a hash of the weights: the four files of one model share it),
``mllm_config``, ``schedule`` (``schedule.describe``), ``layout``,
``vocab_hash`` and ``vocab_size``, ``controls``, ``token_stats`` (the
standardisation of image/audio tokens), ``parameters``, and whatever the
trainer adds in ``extra`` (tokenizer and JSCC ids, the corpus).
"""
import hashlib

import numpy as np
import torch
from torch import nn

from gnuradio.unitocom.mllm import engine, layout, schedule

from .. import export as base_export


class Prefill(nn.Module):
    """The prefill graph: whole (left-padded) sequences → hidden states and kv cache."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, ids, cont, kind, pos, mask):
        """(ids, cont, kind, pos, mask) → (hidden, kv)."""
        return self.model(ids, cont, kind, pos, mask, cache=True)


class Decode(Prefill):
    """The decode graph: new positions + the cache of the earlier ones → hidden states and the grown cache."""

    def forward(self, ids, cont, kind, pos, mask, past):
        """(ids, cont, kind, pos, mask, past) → (hidden, kv)."""
        return self.model(ids, cont, kind, pos, mask, past=past, cache=True)


class LMHead(Prefill):
    """The LM head: hidden states (N, D) → logits (N, V)."""

    def forward(self, h):
        """h (N, D) → logits (N, V)."""
        return self.model.lm_head(h)


class Denoiser(Prefill):
    """The diffusion head ε_ψ: (x (N, d), step (N,), h (N, D)) → ε̂ (N, d)."""

    def forward(self, x, step, h):
        """(x, step, h) → ε̂ (N, d)."""
        return self.model.head(x, step, h)


WRAPPERS = {"prefill": Prefill, "decode": Decode, "lm_head": LMHead, "denoiser": Denoiser}
DYNAMIC = {
    "prefill": {"ids": {1: "seq"}, "cont": {1: "seq"}, "kind": {1: "seq"}, "pos": {1: "seq"}, "mask": {1: "seq"},
                "hidden": {1: "seq"}, "kv": {4: "seq"}},
    "decode": {"ids": {1: "new"}, "cont": {1: "new"}, "kind": {1: "new"}, "pos": {1: "new"}, "mask": {1: "keys"},
               "past": {4: "past"}, "hidden": {1: "new"}, "kv": {4: "keys"}},
    "lm_head": {}, "denoiser": {},
}


def model_id(model):
    """sha256[:16] of the weights and buffers (names and bytes, in state_dict order)."""
    digest = hashlib.sha256()
    for name, value in model.state_dict().items():
        digest.update(name.encode())
        digest.update(value.detach().cpu().numpy().tobytes())
    return digest.hexdigest()[:16]


def examples(model, batch=2, seed=0, lengths=(3, 6), new=1):
    """Example inputs per graph (torch tensors): a left-padded t2i-style batch of captions of ``lengths``,
    its cache, ``new`` more image tokens for decode, and hidden states / noisy tokens for the heads."""
    cfg = model.config
    rng = np.random.default_rng(seed)
    items = [layout.t2i(rng.integers(layout.vocab.SEP + 1, layout.VOCAB, size=lengths[i % len(lengths)]),
                        image_tokens=rng.normal(size=(2, cfg.token_dim)), token_dim=cfg.token_dim)
             for i in range(batch)]
    b = layout.pack(items, pad="left")
    pre = tuple(torch.from_numpy(b[k]) for k in ("ids", "cont", "kind", "pos", "mask"))
    with torch.no_grad():
        _, kv = model.eval()(*pre, cache=True)
    ids = torch.zeros((batch, new), dtype=torch.int64)
    cont = torch.from_numpy(rng.normal(size=(batch, new, cfg.token_dim)).astype(np.float32))
    kind = torch.full((batch, new), layout.KIND_IMAGE, dtype=torch.int64)
    pos = pre[3][:, -1:] + 1 + torch.arange(new)[None]
    mask = torch.cat([pre[4], torch.ones((batch, new))], 1)
    h = torch.from_numpy(rng.normal(size=(batch + 1, cfg.dim)).astype(np.float32))
    x = torch.from_numpy(rng.normal(size=(batch + 1, cfg.token_dim)).astype(np.float32))
    step = torch.from_numpy(rng.integers(1, cfg.diffusion_steps + 1, size=batch + 1))
    return {"prefill": pre, "decode": (ids, cont, kind, pos, mask, kv), "lm_head": (h,), "denoiser": (x, step, h)}


def metadata(model, graph, variant, train_data="", train_metrics=None, extra=None):
    """The metadata_props of one graph (DESIGN.md §4 plus the MLLM's own keys)."""
    cfg = model.config
    stats = {m: {"mean": getattr(model, f"{m}_mean").tolist(), "std": getattr(model, f"{m}_std").tolist()}
             for m in ("image", "audio")}
    meta = {"role": f"mllm_{graph}", "modality": "image+audio+text", "token_len": str(cfg.image_tokens),
            "token_dim": str(cfg.token_dim), "n_symbols": "n/a (receiver model)", "variant": variant,
            "train_data": train_data or "untrained", "train_metrics": train_metrics or {},
            "mllm_id": model_id(model), "mllm_config": cfg.to_json(),
            "schedule": schedule.describe(model.schedule), "layout": layout.LAYOUT_VERSION,
            "vocab_hash": layout.vocab_hash(), "vocab_size": str(layout.VOCAB),
            "controls": dict(zip(layout.CONTROLS, range(layout.VOCAB, layout.N_IDS))),
            "token_stats": stats, "parameters": model.parameter_counts()}
    meta.update(extra or {})
    return meta


def export_all(model, out_dir, variant, train_data="", train_metrics=None, extra=None):
    """Export the four graphs of ``model`` to ``out_dir``; returns {graph: path}."""
    model = model.eval()
    ex = examples(model)
    paths = {}
    for graph, (inputs, outputs) in engine.GRAPHS.items():
        meta = metadata(model, graph, variant, train_data, train_metrics, extra)
        paths[graph] = base_export.export(WRAPPERS[graph](model), ex[graph], list(inputs), list(outputs), meta,
                                          out_dir, f"mllm_{graph}", variant, dynamic_dims=DYNAMIC[graph])
    return paths


def check_all(model, paths, rtol=1e-3, atol=1e-5):
    """Parity of every graph with torch (names, shapes, values) on inputs of other sizes than the export's.

    Returns True or raises AssertionError (``onnx_export.export.check_parity``)."""
    ex = examples(model, batch=3, seed=1, lengths=(5, 2, 8), new=2)
    for graph, path in paths.items():
        base_export.check_parity(WRAPPERS[graph](model), path, ex[graph], rtol=rtol, atol=atol)
    return True
