"""The torch MLLM as a generation backend of ``gnuradio.unitocom.mllm.generate``.

The runtime's numpy loops (greedy/top-p text, DDPM/DDIM image tokens, with or
without the kv cache) run unchanged over ``TorchBackend(model)`` and over the
onnxruntime sessions, so parity tests compare the models, not two copies of
the loops. Training-time evaluation uses it too (no export needed).
"""
import numpy as np
import torch

from gnuradio.unitocom.mllm import generate


class TorchBackend:
    """``model`` (an ``MLLM``, put in eval mode) behind the backend interface of ``mllm.generate``."""

    def __init__(self, model):
        self.model = model.eval()
        self.device = model.image_mean.device          # a model on a GPU runs there; arrays come back to numpy
        self.schedule = model.schedule
        self.image_mean = model.image_mean.cpu().numpy().copy()
        self.image_std = model.image_std.cpu().numpy().copy()
        self.max_len = model.config.max_len

    def _t(self, a):
        return torch.from_numpy(np.ascontiguousarray(a)).to(self.device)

    @torch.no_grad()
    def prefill(self, ids, cont, kind, pos, mask):
        """Whole sequences → (hidden (B, T, D), kv) as numpy."""
        h, kv = self.model(*(self._t(a) for a in (ids, cont, kind, pos, mask)), cache=True)
        return h.cpu().numpy(), kv.cpu().numpy()

    @torch.no_grad()
    def decode(self, ids, cont, kind, pos, mask, kv):
        """New positions + cache → (hidden (B, T_new, D), kv) as numpy."""
        args = (self._t(a) for a in (ids, cont, kind, pos, mask))
        h, kv = self.model(*args, past=self._t(kv), cache=True)
        return h.cpu().numpy(), kv.cpu().numpy()

    @torch.no_grad()
    def lm_head(self, h):
        """(N, D) → logits (N, V)."""
        return self.model.lm_head(self._t(h)).cpu().numpy()

    @torch.no_grad()
    def denoise(self, x, step, h):
        """ε̂ = ε_ψ(x, step, h) on numpy arrays."""
        return self.model.head(self._t(x), self._t(np.asarray(step)), self._t(h)).cpu().numpy()


def text(model, items, max_new, **kw):
    """``mllm.generate.text`` on the torch model."""
    return generate.text(TorchBackend(model), items, max_new, **kw)


def image_tokens(model, items, n_tokens, n_steps, **kw):
    """``mllm.generate.image_tokens`` on the torch model."""
    return generate.image_tokens(TorchBackend(model), items, n_tokens, n_steps, **kw)
