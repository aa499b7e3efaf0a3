"""Load the weights of a shipped ONNX model back into its torch module.

What ships is ONNX; the torch checkpoints stay in the (local) run folders.
To fine-tune a shipped model (Algorithm 1 through the JSCC) its weights are
read back: initializers named like a parameter are copied; the rest (Linear
weights the exporter stored transposed under ``onnx::MatMul_*`` names) are
matched by exporting a copy of the module the same way and finding,
for each anonymous initializer, the parameter whose values it holds. The
result is then checked against onnxruntime on random inputs
(``export.check_parity``), so a wrong match cannot pass silently.
"""
import copy
import io
import warnings

import numpy as np
import onnx
import torch
from onnx import numpy_helper

from . import export


def _initializers(model):
    return [(i.name, numpy_helper.to_array(i)) for i in model.graph.initializer]


def _fresh_export(module, example, input_names, output_names):
    buf = io.BytesIO()
    dyn = {n: {0: "batch"} for n in list(input_names) + list(output_names)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module.eval(), tuple(example), buf, input_names=list(input_names),
                          output_names=list(output_names), dynamic_axes=dyn, opset_version=17, dynamo=False)
    return onnx.load_from_string(buf.getvalue())


def load(module, path, example, input_names, output_names, check=True):
    """Copy the weights of ONNX ``path`` into ``module`` (in place) and return it.

    ``example``: a tuple of input tensors (as the module's forward takes them), used for
    the matching export and for the parity check."""
    shipped = _initializers(onnx.load(str(path)))
    state = module.state_dict()
    named = {name: value for name, value in shipped if name in state}
    anonymous = [(name, value) for name, value in shipped if name not in state]
    # the probe: the module with every parameter made distinct (the exporter merges equal
    # initializers, e.g. the ones/zeros of untouched LayerNorms), exported the same way
    probe = copy.deepcopy(module)
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in probe.parameters():
            p.add_(torch.randn(p.shape, generator=gen) * 0.01)
    probe_state = probe.state_dict()
    fresh = [(name, value) for name, value in _initializers(_fresh_export(probe, example, input_names, output_names))
             if name not in state]
    if len(fresh) != len(anonymous):
        raise ValueError(f"{path}: {len(anonymous)} anonymous initializers, a fresh export has {len(fresh)}: "
                         "the module's shape does not match the file")
    new = {k: v.clone() for k, v in state.items()}
    for key, value in named.items():
        if tuple(new[key].shape) != value.shape:
            raise ValueError(f"{path}: {key} has shape {value.shape}, the module {tuple(new[key].shape)}")
        new[key] = torch.from_numpy(value.copy())
    params = {k: v.detach().numpy() for k, v in probe_state.items() if v.dim() == 2}
    used = set()
    for (_, f_value), (s_name, s_value) in zip(fresh, anonymous):
        if f_value.shape != s_value.shape:
            raise ValueError(f"{path}: initializer {s_name} has shape {s_value.shape}, a fresh export {f_value.shape}")
        hit = None
        for key, p in params.items():
            if key in used:
                continue
            if p.shape == f_value.shape and np.array_equal(p, f_value):
                hit = (key, False)
            elif p.T.shape == f_value.shape and np.array_equal(p.T, f_value):
                hit = (key, True)
            if hit:
                break
        if hit is None:
            raise ValueError(f"{path}: no parameter of the module matches initializer {s_name}")
        key, transposed = hit
        used.add(key)
        new[key] = torch.from_numpy((s_value.T if transposed else s_value).copy())
    module.load_state_dict(new)
    missing = [k for k in state if k not in named and k not in used]
    if missing:
        raise ValueError(f"{path}: no weights found for {', '.join(missing)}")
    if check:
        export.check_parity(module.eval(), path, example if len(example) > 1 else example[0])
    return module
