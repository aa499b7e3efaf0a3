"""Does a generated image show its caption? Objects, attributes and relations read by a small classifier
(numpy + onnxruntime, no torch).

    clf = AttributeClassifier()                        # attribute_classifier-clevr64-*.onnx, 1 thread
    objs = clf.detect(images)                          # uint8 (N, 64, 64, 3) → per image [Detection], left to right
    ok = caption_correct(images, captions, clf)        # bool (N,)
    rep = attribute_report(images, captions, clf)      # {'fully_right': …, 'attributes': {'color': …}, …}

The classifier (trained by ``onnx_export.mllm.attributes``; card
``docs/models/attribute_classifier.md``) is a small fully convolutional
detector: on a 16×16 grid (4×4-pixel cells) of a 64×64 render it gives per
cell an object-centre logit, the centre's offset in the cell, the object's
depth z and its size, color, material and shape logits (``CHANNELS``).
``decode`` keeps the cells whose centre probability is a 3×3 local maximum
above ``threshold``; each becomes a ``Detection`` with the screen x of
``data.scenes`` (``u − 0.5``), z and the arg-max attributes.

A caption (``data.captions`` grammar, 1–3 objects, relations between them)
is *fully right* on an image when some assignment of distinct detections
to the caption's objects has every object's size, color, material and
shape right and makes every relation hold: "left of"/"right of" by the
detections' screen x, "in front of"/"behind" by their z (``relation_holds``
of the corpus, without its margins; the corpus keeps objects apart by
them). Extra objects in the image do not make a caption wrong (it says what
is there, not that nothing else is); ``attribute_report`` counts them
separately (``count_exact``).

Model lookup (``find_classifier``): ``$UNITOCOM_MODEL_DIR``, then this
package's ``models/eval/`` (not ``models/`` itself: that folder holds the
link's models, each a tokenizer, de-tokenizer or JSCC half with a
token-model card, and the tests of shipped models hold it to that).
"""
import dataclasses
import itertools
import json
import os
import pathlib

import numpy as np

from ..data import captions as cap
from ..data.vocab import COLORS, MATERIALS, SHAPES, SIZES
from ..runtime.onnx_session import make_session

GRID = 16                      # cells per side; a cell is 64 / GRID pixels
ATTRIBUTE_VALUES = {"size": SIZES, "color": COLORS, "material": MATERIALS, "shape": SHAPES}
ATTRIBUTES = tuple(ATTRIBUTE_VALUES)
Z_SCALE = 3.0                  # the depth channel is z / Z_SCALE (scenes.Z_RANGE = ±3)


def _layout():
    chans, k = {"center": (0, 1), "offset": (1, 3), "z": (3, 4)}, 4
    for name, values in ATTRIBUTE_VALUES.items():
        chans[name] = (k, k + len(values))
        k += len(values)
    return chans, k


CHANNELS, N_CHANNELS = _layout()   # name → (first, end) channel of the (N, N_CHANNELS, GRID, GRID) output
DEFAULT_THRESHOLD = 0.5
MODEL_NAME = "attribute_classifier"
EVAL_MODELS = pathlib.Path(__file__).resolve().parent.parent / "models" / "eval"


@dataclasses.dataclass
class Detection:
    """One object found in an image: attributes, screen x (``u − 0.5``), depth z, image centre (u, v) as
    fractions of the image, and the centre probability ``score``."""
    size: str
    color: str
    material: str
    shape: str
    screen_x: float
    z: float
    u: float
    v: float
    score: float

    def attrs(self):
        """{'size', 'color', 'material', 'shape'} as in ``data.scenes.Obj.attrs``."""
        return {k: getattr(self, k) for k in ATTRIBUTES}


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def decode(maps, threshold=DEFAULT_THRESHOLD):
    """Classifier output (N, N_CHANNELS, GRID, GRID) → per image a list of ``Detection``, left to right."""
    maps = np.asarray(maps, np.float32)
    if maps.ndim != 4 or maps.shape[1:] != (N_CHANNELS, GRID, GRID):
        raise ValueError(f"maps must be (N, {N_CHANNELS}, {GRID}, {GRID}); got {maps.shape}")
    heat = _sigmoid(maps[:, 0])
    padded = np.pad(heat, ((0, 0), (1, 1), (1, 1)), constant_values=-1.0)
    local = np.max([padded[:, i:i + GRID, j:j + GRID] for i in range(3) for j in range(3)], axis=0)
    peaks = (heat >= local) & (heat > threshold)
    out = []
    for n in range(len(maps)):
        dets = []
        for i, j in zip(*np.nonzero(peaks[n])):
            cell = maps[n, :, i, j]
            du, dv = _sigmoid(cell[1:3])
            u, v = (j + du) / GRID, (i + dv) / GRID
            values = {name: vals[int(np.argmax(cell[slice(*CHANNELS[name])]))]
                      for name, vals in ATTRIBUTE_VALUES.items()}
            dets.append(Detection(**values, screen_x=float(u - 0.5), z=float(cell[3] * Z_SCALE), u=float(u),
                                  v=float(v), score=float(heat[n, i, j])))
        out.append(sorted(dets, key=lambda d: d.screen_x))
    return out


def find_classifier(name=MODEL_NAME):
    """Path of the attribute classifier: ``$UNITOCOM_MODEL_DIR`` first, then ``models/eval/`` of this package.
    ``name`` may also be a path to an .onnx file. ValueError when none (or more than one in a folder) is
    found."""
    name = str(name)
    if name.endswith(".onnx") or os.sep in name:
        path = pathlib.Path(name)
        if not path.is_file():
            raise ValueError(f"attribute classifier {name!r}: no such file")
        return path
    dirs = ([pathlib.Path(os.environ["UNITOCOM_MODEL_DIR"])] if os.environ.get("UNITOCOM_MODEL_DIR") else [])
    for d in dirs + [EVAL_MODELS]:
        hits = sorted(d.glob(f"{name}-*.onnx")) if d.is_dir() else []
        if len(hits) == 1:
            return hits[0]
        if len(hits) > 1:
            raise ValueError(f"attribute classifier {name!r} is ambiguous in {d}: {[h.name for h in hits]}")
    raise ValueError(f"no {name}-*.onnx in {[str(d) for d in dirs + [EVAL_MODELS]]}; train one with "
                     "python -m onnx_export.mllm.attributes train")


class AttributeClassifier:
    """The exported attribute classifier in onnxruntime (``threads`` intra-op threads, ``device``).

    ``maps(images)`` → raw (N, N_CHANNELS, GRID, GRID); ``detect(images)`` → per image [Detection] left to
    right. Images: uint8 (N, 64, 64, 3) (or one (64, 64, 3)); ``batch`` per onnxruntime call."""

    def __init__(self, path=MODEL_NAME, threads=1, device="cpu", threshold=None, batch=256):
        self.path = find_classifier(path)
        self.session = make_session(str(self.path), threads, device)
        self.meta = dict(self.session.get_modelmeta().custom_metadata_map)
        if self.meta.get("role") != "attribute_classifier" or json.loads(self.meta.get("channels", "{}")) != \
                {k: list(v) for k, v in CHANNELS.items()}:
            raise ValueError(f"{self.path.name} is not an attribute classifier with this module's channel layout")
        self.threshold = float(self.meta.get("threshold", DEFAULT_THRESHOLD)) if threshold is None else threshold
        self.batch = int(batch)

    @staticmethod
    def _images(images):
        images = np.asarray(images)
        if images.ndim == 3:
            images = images[None]
        if images.dtype != np.uint8 or images.ndim != 4 or images.shape[1:] != (64, 64, 3):
            raise ValueError(f"images must be uint8 (N, 64, 64, 3); got {images.dtype} {images.shape}")
        return images

    def maps(self, images):
        """uint8 (N, 64, 64, 3) → float32 (N, N_CHANNELS, GRID, GRID) raw outputs."""
        images = self._images(images)
        out = []
        for i in range(0, len(images), self.batch):
            x = images[i:i + self.batch].astype(np.float32).transpose(0, 3, 1, 2) / 255.0
            out.append(self.session.run(None, {"image": np.ascontiguousarray(x)})[0])
        return np.concatenate(out) if out else np.zeros((0, N_CHANNELS, GRID, GRID), np.float32)

    def detect(self, images):
        """uint8 (N, 64, 64, 3) → per image a list of ``Detection``, left to right."""
        return decode(self.maps(images), self.threshold)


def relation_holds(a, b, relation):
    """True when detection ``a`` is ``relation`` detection ``b`` (screen x for left/right, z for depth)."""
    if relation == "left of":
        return a.screen_x < b.screen_x
    if relation == "right of":
        return a.screen_x > b.screen_x
    if relation == "in front of":
        return a.z < b.z
    if relation == "behind":
        return a.z > b.z
    raise ValueError(f"unknown relation {relation!r}")


def match(detections, caption):
    """Best assignment of distinct detections to the caption's objects.

    Returns dict(correct: bool (every attribute and relation right), objects: per caption object a dict
    attribute → right? (all False when there are fewer detections than objects), relations: [bool],
    assignment: detection indices or None). "Best": most attributes + relations right, then the most
    confident detections."""
    specs, rels = cap.parse(caption) if isinstance(caption, str) else caption
    k, best, best_key = len(specs), None, None
    for perm in itertools.permutations(range(len(detections)), k):
        objs = [detections[p] for p in perm]
        right = [{a: objs[i].attrs()[a] == specs[i][a] for a in ATTRIBUTES} for i in range(k)]
        held = [relation_holds(objs[a], objs[b], r) for a, r, b in rels]
        key = (sum(sum(r.values()) for r in right) + sum(held), sum(o.score for o in objs))
        if best_key is None or key > best_key:
            best_key, best = key, (perm, right, held)
    if best is None:
        return {"correct": False, "objects": [{a: False for a in ATTRIBUTES} for _ in specs],
                "relations": [False] * len(rels), "assignment": None}
    perm, right, held = best
    correct = all(all(r.values()) for r in right) and all(held)
    return {"correct": bool(correct), "objects": right, "relations": held, "assignment": list(perm)}


def _classifier(classifier):
    return classifier if classifier is not None else AttributeClassifier()


def caption_correct(images, caption_texts, classifier=None):
    """uint8 (N, 64, 64, 3) images and N caption texts → bool (N,): each caption fully right on its image.

    One image (64, 64, 3) with one caption string → a bool. ``classifier``: an ``AttributeClassifier``
    (default: a new one on 1 thread; pass one to reuse it)."""
    single = isinstance(caption_texts, str)
    texts = [caption_texts] if single else list(caption_texts)
    dets = _classifier(classifier).detect(images)
    if len(dets) != len(texts):
        raise ValueError(f"{len(dets)} images but {len(texts)} captions")
    ok = np.array([match(d, t)["correct"] for d, t in zip(dets, texts)], bool)
    return bool(ok[0]) if single else ok


def attribute_report(images, caption_texts, classifier=None, detections=None):
    """How well N images (uint8 (N, 64, 64, 3)) show their N captions; a dict of fractions in [0, 1]:

    * ``fully_right``: captions with every object, attribute and relation right (the t2i goal: ≥ 0.8);
    * ``attributes``: {size, color, material, shape}: caption objects whose matched detection has it right;
    * ``objects_right``: caption objects with all four right; ``relations``: relations that hold;
    * ``count_exact``: images with exactly the caption's number of objects detected;
    * ``fully_right_by_objects``: {'1', '2', '3'}: ``fully_right`` per caption length;
    * ``n``: captions; ``correct``: the per-caption booleans (a list).

    ``detections`` (lists from ``AttributeClassifier.detect``) skips running the classifier."""
    texts = list(caption_texts)
    dets = detections if detections is not None else _classifier(classifier).detect(images)
    if len(dets) != len(texts):
        raise ValueError(f"{len(dets)} images but {len(texts)} captions")
    results = [match(d, t) for d, t in zip(dets, texts)]
    objs = [o for r in results for o in r["objects"]]
    rels = [h for r in results for h in r["relations"]]
    sizes = [len(r["objects"]) for r in results]
    correct = [r["correct"] for r in results]
    frac = (lambda xs: float(np.mean(xs)) if len(xs) else float("nan"))   # noqa: E731
    return {"n": len(texts), "fully_right": frac(correct),
            "attributes": {a: frac([o[a] for o in objs]) for a in ATTRIBUTES},
            "objects_right": frac([all(o.values()) for o in objs]), "relations": frac(rels),
            "count_exact": frac([len(d) == s for d, s in zip(dets, sizes)]),
            "fully_right_by_objects": {str(k): frac([c for c, s in zip(correct, sizes) if s == k])
                                       for k in sorted(set(sizes))},
            "correct": correct}


def format_report(rep):
    """One line of an ``attribute_report``: fully right, per attribute, relations, exact counts."""
    attrs = " ".join(f"{a} {100 * v:.1f}%" for a, v in rep["attributes"].items())
    by = " ".join(f"{k}-obj {100 * v:.1f}%" for k, v in rep["fully_right_by_objects"].items())
    return (f"fully right {100 * rep['fully_right']:.1f}% of {rep['n']} ({by}); {attrs}; objects "
            f"{100 * rep['objects_right']:.1f}%; relations {100 * rep['relations']:.1f}%; exact count "
            f"{100 * rep['count_exact']:.1f}%")
