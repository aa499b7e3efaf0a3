"""Find the project's ONNX models by name, check them and open them.

Models are ``<name>-<variant>-<sha256[:8]>.onnx`` files, looked up in
``$UNITOCOM_MODEL_DIR`` first, then in this package's ``models/`` folder;
``core.zoo`` says which name each block uses by default. Metadata
(``metadata_props``) is read through onnxruntime, so the runtime needs no
``onnx`` package.

Every way a model file can be unusable ends in a ``ValueError`` sentence
at a block's construction: a path that is not a file, a file that is not
ONNX (truncated, random bytes), missing metadata keys, a role or modality
other than the one asked for, and a file inconsistent with its name (the
content's sha256 differs from the hash in the name, or the name says
``_s32`` / ``-genib`` while the metadata says otherwise).
"""
import hashlib
import json
import os
import pathlib
import re

from ..core import zoo
from .onnx_session import make_session, onnxruntime

PACKAGE_MODELS = pathlib.Path(__file__).resolve().parent.parent / "models"
PAIR_KEYS = ("modality", "token_len", "token_dim", "variant")
REQUIRED_KEYS = ("role", "modality", "token_len", "token_dim", "variant")
JSCC_KEYS = ("k_max", "rates", "tokenizer")
_FILE_NAME = re.compile(r"^(?P<name>.+)-(?P<variant>[A-Za-z0-9]+)-(?P<hash>[0-9a-f]{8})$")


def model_dirs():
    """Folders searched for models, in order."""
    dirs = []
    if os.environ.get("UNITOCOM_MODEL_DIR"):
        dirs.append(pathlib.Path(os.environ["UNITOCOM_MODEL_DIR"]))
    dirs.append(PACKAGE_MODELS)
    return dirs


def available():
    """All model files found, first directory first."""
    return [p for d in model_dirs() if d.is_dir() for p in sorted(d.glob("*.onnx"))]


def _looks_like_path(name):
    return name.endswith(".onnx") or os.sep in name or (os.altsep and os.altsep in name)


def find(name, variant=None):
    """Path of model ``name`` (a file path, a model id, or ``<name>`` [+ ``variant``])."""
    name = str(name)
    if not name:
        raise ValueError("a model name or .onnx path is needed; got ''")
    if _looks_like_path(name):
        p = pathlib.Path(name)
        if p.is_file():
            return p
        what = "a directory, not a model file" if p.is_dir() else "no such file"
        raise ValueError(f"model path {name!r}: {what}")
    prefix = f"{name}-{variant}-" if variant else f"{name}-"
    for d in model_dirs():
        if (d / f"{name}.onnx").is_file():                 # a full model id: <name>-<variant>-<hash>
            return d / f"{name}.onnx"
        hits = sorted(d.glob(f"{glob_escape(prefix)}*.onnx")) if d.is_dir() else []
        if len(hits) == 1:
            return hits[0]
        if len(hits) > 1:
            raise ValueError(f"model {name!r} is ambiguous in {d}: {[h.name for h in hits]}; give the variant or a path")
    names = sorted({q.name.rsplit("-", 1)[0] for q in available()})
    raise ValueError(f"no model {prefix}*.onnx in {[str(d) for d in model_dirs()]}; available: {names or 'none'}")


def glob_escape(text):
    """``text`` with glob's special characters made literal."""
    return re.sub(r"([*?\[\]])", r"[\1]", text)


def read_metadata(path):
    """metadata_props of an ONNX model as a dict of strings; ValueError if the file is not a usable model."""
    ort = onnxruntime()
    options = ort.SessionOptions()
    options.log_severity_level = 3
    try:
        sess = ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])
    except Exception as exc:             # InvalidProtobuf, NoSuchFile, Fail, …: all mean "not a model"
        raise ValueError(f"{pathlib.Path(path).name} is not a usable ONNX model ({type(exc).__name__}: "
                         f"{str(exc).splitlines()[0][:200] if str(exc) else 'no detail'})") from None
    return dict(sess.get_modelmeta().custom_metadata_map)


def model_id(path):
    """The file's stem, ``<name>-<variant>-<hash>``: what token PDUs carry."""
    return pathlib.Path(path).stem


def check_consistent(path, meta):
    """Raise ValueError when a model file's name and its content disagree.

    Checks the sha256 prefix when the name has one, and the variant, role
    and ``_s<N>`` token count that the name states against the metadata."""
    path = pathlib.Path(path)
    m = _FILE_NAME.match(path.stem)
    if not m:
        return
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:8]
    if digest != m["hash"]:
        raise ValueError(f"{path.name}: its content has sha256 {digest}…, not the {m['hash']} of its name "
                         "(a renamed or damaged file)")
    if meta.get("variant") != m["variant"]:
        raise ValueError(f"{path.name}: the name says variant {m['variant']!r}, the metadata {meta.get('variant')!r}")
    size = re.search(r"_s(\d+)$", m["name"])
    if size and meta.get("token_len") != size[1]:
        raise ValueError(f"{path.name}: the name says {size[1]} tokens, the metadata {meta.get('token_len')!r}")


def check_metadata(path, meta, role, modality):
    """Raise ValueError unless ``meta`` describes a usable ``modality`` ``role``."""
    name = pathlib.Path(path).name
    need = REQUIRED_KEYS + (JSCC_KEYS if role.startswith("jscc_") else ())
    missing = [k for k in need if k not in meta]
    if missing:
        raise ValueError(f"{name} lacks the metadata {', '.join(missing)}; it was not exported by onnx_export")
    if meta["role"] != role or meta["modality"] != modality:
        raise ValueError(f"{name} is a {meta['modality']} {meta['role']}, not a {modality} {role}")
    if not meta["token_dim"].isdigit() or int(meta["token_dim"]) < 1:
        raise ValueError(f"{name}: token_dim {meta['token_dim']!r} is not a count")
    if role.startswith("jscc_"):
        try:
            rates, k_max = json.loads(meta["rates"]), int(meta["k_max"])
            ok = (isinstance(rates, list) and rates and all(isinstance(r, int) and 1 <= r <= k_max for r in rates))
        except (ValueError, TypeError):
            ok = False
        if not ok:
            raise ValueError(f"{name}: rates {meta['rates']!r} / k_max {meta['k_max']!r} are not usable")
    check_consistent(path, meta)


def check_pair(tokenizer_meta, detokenizer_meta):
    """Raise ValueError unless a tokenizer and de-tokenizer belong together."""
    bad = {k: (tokenizer_meta.get(k), detokenizer_meta.get(k)) for k in PAIR_KEYS
           if tokenizer_meta.get(k) != detokenizer_meta.get(k)}
    if bad:
        raise ValueError("tokenizer and de-tokenizer do not match: "
                         + ", ".join(f"{k} {a!r} vs {b!r}" for k, (a, b) in bad.items()))


def check_jscc_pair(encoder_path, encoder_meta, decoder_meta):
    """Raise ValueError unless a JSCC encoder and decoder were trained together."""
    bad = {k: (encoder_meta.get(k), decoder_meta.get(k)) for k in PAIR_KEYS + JSCC_KEYS
           if encoder_meta.get(k) != decoder_meta.get(k)}
    if bad or encoder_meta.get("role") != "jscc_encoder":
        raise ValueError(f"{pathlib.Path(encoder_path).name} is not this decoder's encoder: "
                         + (", ".join(f"{k} {a!r} vs {b!r}" for k, (a, b) in bad.items()) or "not an encoder"))


def io_names(meta):
    """The ``io_names`` metadata: {'inputs': [...], 'outputs': [...]}."""
    return json.loads(meta.get("io_names", '{"inputs": [], "outputs": []}'))


def open_model(name, variant, role, modality, threads=1, device="auto"):
    """Find a model (``name`` '' = the zoo's default), check it and open one session.

    Returns ``(path, metadata, session, input_name)``; raises ValueError for
    a model that is unusable or not the ``modality`` ``role`` asked for."""
    name, variant = zoo.resolve(role, modality, name, variant)
    path = find(name, variant)
    meta = read_metadata(path)
    check_metadata(path, meta, role, modality)
    try:
        session = make_session(str(path), threads, device)
    except ValueError:
        raise
    except Exception as exc:
        raise ValueError(f"{path.name} could not be opened: {type(exc).__name__}: {exc}") from None
    return path, meta, session, session.get_inputs()[0].name


def open_jscc(modality, model, variant, role, threads=1, device="auto"):
    """``open_model`` for a JSCC ``role`` ('encoder' or 'decoder'): (path, metadata, session, rates)."""
    path, meta, session, _ = open_model(model, variant, f"jscc_{role}", modality, threads, device)
    return path, meta, session, json.loads(meta["rates"])
