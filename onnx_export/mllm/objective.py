"""The MLLM's training objective: Eq. (16)'s LM cross-entropy plus Eq. (19)'s diffusion loss, over mixed-task batches.

A batch is one or more packed dicts (``layout.pack(..., pad='right')``):
packing each task (or each length bucket) separately saves the padding an
ASR row (≈ 100 audio tokens) would force on VQA and t2i rows (≈ 50). One
Transformer pass per pack; then

* L_vqa, L_asr, L_dsc: token-mean cross-entropy of the answer / transcript /
  scene-description words (+ ``<eos>``) of that task's rows (Eq. 16,
  normalised per task so VQA's one or two target words per sample are not
  drowned by ASR's fifteen);
* L_t2i: Eq. (19) over every image token to generate, K noise draws each
  (``diffusion.loss``), in the standardised token space;

loss = Σ_task weight_task · L_task over the tasks present. ``parts`` reports
each L (and the counts of target words and tokens).
"""
import torch
import torch.nn.functional as F

from gnuradio.unitocom.mllm import layout

from . import diffusion

DEFAULT_WEIGHTS = {"vqa": 1.0, "asr": 1.0, "t2i": 1.0, "dsc": 1.0}
LM_TASKS = ("vqa", "asr", "dsc")


def tensors(batch):
    """A packed dict of numpy arrays → the same keys as torch tensors (no copy where possible)."""
    return {k: torch.as_tensor(v) for k, v in batch.items()}


def loss(model, packs, weights=None, generator=None):
    """(scalar loss, {part: float}) for ``packs`` (a packed dict or a list of them); see the module docstring."""
    weights = {**DEFAULT_WEIGHTS, **(weights or {})}
    packs = [packs] if isinstance(packs, dict) else list(packs)
    ce_sum = {t: [] for t in LM_TASKS}
    h_diff, c_diff = [], []
    for b in packs:
        if b["ids"].shape[1] > model.config.max_len:
            raise ValueError(f"a pack of {b['ids'].shape[1]} positions is longer than the model's "
                             f"{model.config.max_len} positions")
        t = tensors(b)
        h = model(t["ids"], t["cont"], t["kind"], t["pos"], t["mask"])
        sel = t["lm_target"] >= 0
        if bool(sel.any()):
            ce = F.cross_entropy(model.lm_head(h[sel]), t["lm_target"][sel], reduction="none")
            row_task = t["task"][:, None].expand_as(sel)[sel]
            for task in ce_sum:
                pick = row_task == layout.TASKS.index(task)
                if bool(pick.any()):
                    ce_sum[task].append(ce[pick])
        dsel = t["diff_mask"] > 0
        if bool(dsel.any()):
            h_diff.append(h[dsel])
            c_diff.append(model.standardise(t["diff_target"][dsel], "image"))
    total, parts = 0.0, {}
    for task, chunks in ce_sum.items():
        if chunks:
            ce = torch.cat(chunks)
            parts[f"lm_{task}"] = ce.mean()
            parts[f"n_{task}_words"] = float(ce.numel())
    if h_diff:
        omega = diffusion.omegas(model.schedule)
        parts["diff_t2i"] = diffusion.loss(model.head, torch.cat(h_diff), torch.cat(c_diff),
                                           model.config.noise_draws, omega, generator)
        parts["n_t2i_tokens"] = float(sum(len(c) for c in c_diff))
    for key, task in [(f"lm_{t}", t) for t in LM_TASKS] + [("diff_t2i", "t2i")]:
        if key in parts:
            total = total + weights[task] * parts[key]
    if not torch.is_tensor(total):
        raise ValueError("the batch has no target: no answer, transcript, description or image token to predict")
    return total, {k: float(v.detach()) if torch.is_tensor(v) else v for k, v in parts.items()}
