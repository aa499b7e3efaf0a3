"""Find the project's ONNX models by name and read their metadata.

Models are ``<name>-<variant>-<sha256[:8]>.onnx`` files, looked up in
``$UNITOCOM_MODEL_DIR`` first, then in this package's ``models/`` folder.
Metadata (``metadata_props``) is read through onnxruntime, so the runtime
needs no ``onnx`` package.
"""
import json
import os
import pathlib

from .onnx_session import make_session, onnxruntime

PACKAGE_MODELS = pathlib.Path(__file__).resolve().parent / "models"
PAIR_KEYS = ("modality", "token_len", "token_dim", "variant")


def model_dirs():
    dirs = []
    if os.environ.get("UNITOCOM_MODEL_DIR"):
        dirs.append(pathlib.Path(os.environ["UNITOCOM_MODEL_DIR"]))
    dirs.append(PACKAGE_MODELS)
    return dirs


def available():
    """All model files found, first directory first."""
    return [p for d in model_dirs() if d.is_dir() for p in sorted(d.glob("*.onnx"))]


def find(name, variant=None):
    """Path of model ``name`` (a file path, a model id, or ``<name>`` [+ ``variant``])."""
    p = pathlib.Path(name)
    if p.suffix == ".onnx" and p.is_file():
        return p
    prefix = f"{name}-{variant}-" if variant else f"{name}-"
    for d in model_dirs():
        if (d / f"{name}.onnx").is_file():                 # a full model id: <name>-<variant>-<hash>
            return d / f"{name}.onnx"
        hits = sorted(d.glob(f"{prefix}*.onnx")) if d.is_dir() else []
        if len(hits) == 1:
            return hits[0]
        if len(hits) > 1:
            raise ValueError(f"model {name!r} is ambiguous in {d}: {[h.name for h in hits]}; give the variant or a path")
    names = sorted({q.name.rsplit("-", 1)[0] for q in available()})
    raise ValueError(f"no model {prefix}*.onnx in {[str(d) for d in model_dirs()]}; available: {names or 'none'}")


def read_metadata(path):
    """metadata_props of an ONNX model as a dict of strings."""
    ort = onnxruntime()
    options = ort.SessionOptions()
    options.log_severity_level = 3
    sess = ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])
    return dict(sess.get_modelmeta().custom_metadata_map)


def model_id(path):
    """The file's stem, ``<name>-<variant>-<hash>``: what token PDUs carry."""
    return pathlib.Path(path).stem


def check_pair(tokenizer_meta, detokenizer_meta):
    """Raise ValueError unless a tokenizer and de-tokenizer belong together."""
    bad = {k: (tokenizer_meta.get(k), detokenizer_meta.get(k)) for k in PAIR_KEYS
           if tokenizer_meta.get(k) != detokenizer_meta.get(k)}
    if bad:
        raise ValueError("tokenizer and de-tokenizer do not match: "
                         + ", ".join(f"{k} {a!r} vs {b!r}" for k, (a, b) in bad.items()))


def io_names(meta):
    return json.loads(meta.get("io_names", '{"inputs": [], "outputs": []}'))


def open_model(name, variant, role, modality, threads=1, device="auto"):
    """Find a model, check its role and modality, and open one session.

    Returns ``(path, metadata, session, input_name)``; raises ValueError for
    a model that is not the ``modality`` ``role`` asked for."""
    path = find(name, variant)
    meta = read_metadata(path)
    if meta.get("role") != role or meta.get("modality") != modality:
        raise ValueError(f"{path.name} is a {meta.get('modality')} {meta.get('role')}, not a {modality} {role}")
    session = make_session(str(path), threads, device)
    return path, meta, session, session.get_inputs()[0].name
