"""ONNX export of every shipped model (tokenizers, de-tokenizers, JSCC) with the metadata DESIGN.md §4 asks for.

File name ``<name>-<variant>-<sha256[:8]>.onnx``; ``metadata_props`` carry
``unitocom.schema``, ``role``, ``modality``, ``token_len``, ``token_dim``,
``n_symbols``, ``version``, ``train_data``, ``train_metrics``, ``io_names``
(and anything else passed in ``meta``). ``check_parity`` compares torch and
onnxruntime outputs: names, then shapes, then values.
"""
import hashlib
import io
import json
import pathlib
import warnings

import numpy as np
import onnx
import torch

SCHEMA = "unitocom.model/1"
VERSION = "0.1.0"


def export(module, example, input_name, output_names, meta, out_dir, name, variant, dynamic_dims=None):
    """Export ``module`` (put in eval mode) to ``<out_dir>/<name>-<variant>-<sha256[:8]>.onnx``; returns that path.

    ``input_name``/``example``: one name and tensor, or lists of them for a
    module with several inputs; ``output_names``: the graph's output names;
    ``meta``: metadata_props to add (strings, or values written as JSON).
    Batch is always dynamic; ``dynamic_dims`` adds more, e.g.
    ``{"mel": {2: "frames"}, "tokens": {1: "tokens"}}`` for audio."""
    module = module.eval()
    buf = io.BytesIO()
    input_names = [input_name] if isinstance(input_name, str) else list(input_name)
    examples = (example,) if isinstance(example, torch.Tensor) else tuple(example)
    dyn = {**{n: {0: "batch"} for n in input_names}, **{n: {0: "batch"} for n in output_names}}
    for key, dims in (dynamic_dims or {}).items():
        dyn[key] = {**dyn.get(key, {}), **dims}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")          # the legacy exporter's deprecation notice
        torch.onnx.export(module, examples, buf, input_names=input_names, output_names=list(output_names),
                          dynamic_axes=dyn, opset_version=17, dynamo=False)
    model = onnx.load_from_string(buf.getvalue())
    props = {"unitocom.schema": SCHEMA, "version": VERSION,
             "io_names": json.dumps({"inputs": input_names, "outputs": list(output_names)}), **meta}
    for key, value in props.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    onnx.checker.check_model(model)
    data = model.SerializeToString()
    out = pathlib.Path(out_dir) / f"{name}-{variant}-{hashlib.sha256(data).hexdigest()[:8]}.onnx"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(data)
    return out


def metadata(path):
    """ONNX file ``path`` → its metadata_props as a dict of strings."""
    return {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}


def check_parity(module, path, example, rtol=1e-3, atol=1e-5):
    """torch ``module`` vs the ONNX file ``path`` in onnxruntime on ``example`` (a tensor or a tuple of them).

    Compares the io names with the file's ``io_names`` metadata, then output
    shapes, then values (``rtol``, ``atol``); returns True, raises
    AssertionError on the first mismatch."""
    from gnuradio.unitocom.runtime.onnx_session import make_session
    sess = make_session(str(path), intra_op_threads=1, device="cpu")
    io_names = json.loads(metadata(path)["io_names"])
    got_in = [i.name for i in sess.get_inputs()]
    got_out = [o.name for o in sess.get_outputs()]
    if got_in != io_names["inputs"] or got_out != io_names["outputs"]:
        raise AssertionError(f"io names {got_in} → {got_out} differ from {io_names}")
    examples = (example,) if isinstance(example, torch.Tensor) else tuple(example)
    with torch.no_grad():
        ref = module.eval()(*examples)
    ref = [r.numpy() for r in (ref if isinstance(ref, tuple) else (ref,))]
    out = sess.run(None, {name: x.numpy() for name, x in zip(got_in, examples)})
    for name, r, o in zip(got_out, ref, out):
        if r.shape != o.shape:
            raise AssertionError(f"{name}: shape {o.shape} vs torch {r.shape}")
        np.testing.assert_allclose(o, r, rtol=rtol, atol=atol, err_msg=name)
    return True
