"""The attribute classifier that judges text-to-image outputs: training, export and evaluation (torch side).

    ./unitocom python -m onnx_export.mllm.attributes train --corpus data/clevr64 --out runs/attr [--minutes 8]
    ./unitocom python -m onnx_export.mllm.attributes eval --corpus data/clevr64 [--model PATH] [--split test]

What it reads: a 64×64 render → per object its size, color, material,
shape, where it is on screen and its depth z, so that
``gnuradio.unitocom.mllm.image_checks`` (numpy + onnxruntime; the output
layout ``CHANNELS`` is defined there) can say whether an image shows a
caption. It is a small fully convolutional *centre detector* rather than a
fixed set of slots: a 16×16 grid (cells of 4×4 pixels) with per cell the
probability that an object's centre is in it, the centre's offset in the
cell, z and the attribute logits. A grid reads any number of objects, has
no slot-ordering to learn, and gives screen x directly (u − 0.5 =
``Obj.screen_x``), which the left/right relations need; objects never share
a cell in this corpus (no two centres in one cell among the 85 k object
pairs of the train split). Coordinate channels (u, v) are appended to the
input, since telling a small near object from a large far one needs the
object's height in the image as well as its apparent size.

Training data (``prepare``, cached under ``<out>/cache``): each split's
scene renders (``images.npy``, 3–6 objects, from ``scenes.jsonl``) and
caption renders (``caption_images.npy``, 1–3 objects). The corpus does not
store the objects of a caption render, so ``caption_objects`` re-runs the
corpus builder's draws for the item (scene, questions, caption,
``scene_from_caption``; a pure function of split, index and seed) and
checks that the caption text comes out the same. Every render also comes
through the shipped image tokenizer → de-tokenizer (genib s32), and a
training sample is the clean or the reconstructed version with equal
probability: the images to judge (generated tokens) reach pixels through
that de-tokenizer, with its blur.

Targets: a Gaussian centre heat map (σ = 0.8 cells, CenterNet's focal
loss), the offset at the centre cell (L1), and z/3 (L1) and the four
attributes (cross-entropy) at the centre cell (weight 1) and its 8
neighbours (weight 0.5; a cell near two centres belongs to the nearer).
AdamW, batch 64, a cosine learning rate over the time budget: ``--minutes``
of the process's CPU time (``time.process_time``; with ``--threads 1`` that is
minutes of one thread, whatever else the machine runs), data preparation not
counted.

Evaluation (val picks the centre threshold; test reported): per object
(ground truth matched to a detection within 1.5 cells) recall, precision,
attribute accuracy and z error; per image the exact object count and
"every object right"; and on caption renders ``image_checks``'s
``attribute_report`` with the caption text, on clean renders and on their
reconstructions. Export: ``attribute_classifier-clevr64-<sha256[:8]>.onnx``
via ``onnx_export.export`` (input ``image`` float (N, 3, 64, 64) in [0, 1],
output ``maps``), with role, channel layout, threshold and metrics in its
metadata, checked against torch with ``check_parity``.
"""
import argparse
import json
import pathlib
import sys
import time

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from gnuradio.unitocom.data import captions, corpus as corpus_mod, questions, render, scenes
from gnuradio.unitocom.data.loaders import CorpusSplit
from gnuradio.unitocom.mllm import image_checks as ic

KINDS = ("images", "caption_images")
SIGMA = 0.8                    # heat-map Gaussian, cells
NEIGHBOUR_WEIGHT = 0.5
MATCH_RADIUS = 1.5             # cells: a detection within this of a true centre is that object
THRESHOLDS = (0.3, 0.4, 0.5, 0.6, 0.7)
VARIANT = "clevr64"


def object_center(obj):
    """(u, v) image fractions of an object's centre: its middle height projected (u − 0.5 = screen x)."""
    h = obj.radius if obj.shape == "sphere" else 0.8 * obj.radius      # cubes/cylinders are 1.6 r tall
    return render.project(obj.x, h, obj.z)


def caption_objects(split, index, seed, size=64):
    """The objects of caption render ``index`` of ``split``: the corpus builder's draws replayed (``make_item``
    up to ``scene_from_caption``, without rendering the caption). Returns (caption dict, [Obj])."""
    rng = np.random.default_rng(scenes.scene_seed(split, index, seed))
    objs, _ = corpus_mod._scene(rng, size)
    for _ in range(3):                       # make_item's questions_per_scene default, drawn from the same rng
        questions.generate(rng, objs)
    caption = captions.caption_from_scene(rng, objs)
    return caption, captions.scene_from_caption(rng, caption["text"])


def object_lists(corpus, split, kind, cache=None, limit=None, progress=True):
    """[[Obj], ...] of the renders of ``kind`` ('images' or 'caption_images') of a corpus split.

    Caption renders' objects are replayed (``caption_objects``), checked against the stored caption
    texts, and cached as JSON in ``cache`` (a folder) when given."""
    data = CorpusSplit(corpus, split)
    n = len(data) if limit is None else min(limit, len(data))
    if kind == "images":
        return [data.objects(i) for i in range(n)]
    path = pathlib.Path(cache) / f"{split}_caption_objects.json" if cache else None
    rows = json.loads(path.read_text()) if path and path.is_file() else []
    if len(rows) < n:
        seed, t0 = data.meta["seed"], time.time()
        for i in range(len(rows), n):
            cap, objs = caption_objects(split, i, seed, data.meta["size"])
            if cap["text"] != data.captions[i]["text"]:
                raise ValueError(f"{split} caption {i}: replaying the corpus draws gives {cap['text']!r}, the corpus "
                                 f"has {data.captions[i]['text']!r} (built with other settings?)")
            rows.append([o.to_dict() for o in objs])
            if progress and (i % 500 == 0 or i == n - 1):
                sys.stderr.write(f"\r[attr] {split} caption objects {i + 1}/{n} ({time.time() - t0:.0f} s)")
                sys.stderr.flush()
        if progress:
            sys.stderr.write("\n")
        if path:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(rows))
    return [[scenes.Obj(**o) for o in row] for row in rows[:n]]


def reconstructions(images, cache_path=None, threads=1):
    """uint8 images through the shipped image tokenizer → de-tokenizer (``fid.reconstruct``), cached as .npy."""
    from .fid import reconstruct
    path = pathlib.Path(cache_path) if cache_path else None
    if path and path.is_file():
        out = np.load(path)
        if len(out) == len(images):
            return out
    out = reconstruct(np.asarray(images), threads)
    if path:
        path.parent.mkdir(parents=True, exist_ok=True)
        np.save(path, out)
    return out


def targets(obj_lists, grid=ic.GRID):
    """Training targets of object lists: dict of arrays over N images —
    ``heat`` (N, G, G) float32, ``offset`` (N, 2, G, G) float32 and ``center`` (N, G, G) bool (centre cells),
    ``z`` (N, G, G) float32 (z / Z_SCALE), ``labels`` (N, 4, G, G) int64 (size, color, material, shape indices;
    −1 = none) and ``weight`` (N, G, G) float32 (1 centre, ``NEIGHBOUR_WEIGHT`` neighbours, 0 elsewhere)."""
    n = len(obj_lists)
    out = {"heat": np.zeros((n, grid, grid), np.float32), "offset": np.zeros((n, 2, grid, grid), np.float32),
           "center": np.zeros((n, grid, grid), bool), "z": np.zeros((n, grid, grid), np.float32),
           "labels": np.full((n, 4, grid, grid), -1, np.int64), "weight": np.zeros((n, grid, grid), np.float32)}
    ii, jj = np.meshgrid(np.arange(grid) + 0.5, np.arange(grid) + 0.5, indexing="ij")
    for k, objs in enumerate(obj_lists):
        if not objs:
            continue
        cu = np.array([object_center(o)[0] for o in objs]) * grid
        cv = np.array([object_center(o)[1] for o in objs]) * grid
        d2 = (ii[None] - cv[:, None, None]) ** 2 + (jj[None] - cu[:, None, None]) ** 2
        out["heat"][k] = np.exp(-d2 / (2 * SIGMA ** 2)).max(axis=0)
        owner = d2.argmin(axis=0)
        ci, cj = np.clip(cv.astype(int), 0, grid - 1), np.clip(cu.astype(int), 0, grid - 1)
        for m, o in enumerate(objs):
            near = (np.abs(np.arange(grid)[:, None] - ci[m]) <= 1) & (np.abs(np.arange(grid)[None] - cj[m]) <= 1)
            cells = near & (owner == m)
            labels = [ic.ATTRIBUTE_VALUES[a].index(o.attrs()[a]) for a in ic.ATTRIBUTES]
            out["labels"][k][:, cells] = np.array(labels)[:, None]
            out["z"][k][cells] = o.z / ic.Z_SCALE
            out["weight"][k][cells] = NEIGHBOUR_WEIGHT
        out["heat"][k][ci, cj] = 1.0
        out["center"][k][ci, cj] = True
        out["weight"][k][ci, cj] = 1.0
        out["labels"][k][:, ci, cj] = np.array([[ic.ATTRIBUTE_VALUES[a].index(o.attrs()[a]) for o in objs]
                                                for a in ic.ATTRIBUTES])
        out["z"][k][ci, cj] = np.array([o.z for o in objs]) / ic.Z_SCALE
        out["offset"][k][0, ci, cj] = cu - cj
        out["offset"][k][1, ci, cj] = cv - ci
    return out


def _block(cin, cout, stride=1, dilation=1):
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, padding=dilation, dilation=dilation, bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class AttributeNet(nn.Module):
    """(N, 3, 64, 64) float in [0, 1] → (N, N_CHANNELS, 16, 16) raw maps (``image_checks.CHANNELS``).

    Input plus (u, v) coordinate channels → conv 4×4 stride 2 (32×32) → conv 3×3 → stride 2 (16×16) → three
    convs 3×3, two dilated (receptive field ≈ 60 pixels) → 1×1 head. ``width`` scales the channels."""

    def __init__(self, width=64):
        super().__init__()
        w = width
        c = (torch.arange(64, dtype=torch.float32) + 0.5) / 32 - 1
        self.register_buffer("coords", torch.stack(torch.meshgrid(c, c, indexing="xy"))[None], persistent=False)
        stem = nn.Sequential(nn.Conv2d(5, w // 2, 4, 2, padding=1, bias=False), nn.BatchNorm2d(w // 2),
                             nn.ReLU(inplace=True))      # 4×4 stride 2: every pixel reaches the 32×32 map
        self.body = nn.Sequential(stem, _block(w // 2, w // 2), _block(w // 2, w * 3 // 4, 2),
                                  _block(w * 3 // 4, w), _block(w, w, 1, 2), _block(w, w, 1, 4))
        self.head = nn.Sequential(nn.Conv2d(w, w, 1), nn.ReLU(inplace=True), nn.Conv2d(w, ic.N_CHANNELS, 1))
        with torch.no_grad():
            self.head[-1].bias[0] = -4.0          # centre logits start rare (focal-loss practice)

    def forward(self, image):
        """Raw maps of a batch of images."""
        x = torch.cat([image * 2 - 1, self.coords.expand(image.shape[0], -1, -1, -1)], dim=1)
        return self.head(self.body(x))


def loss_terms(maps, tgt):
    """Loss terms (dict of scalars) of raw ``maps`` against a batch of ``targets`` (torch tensors)."""
    p = torch.sigmoid(maps[:, 0]).clamp(1e-4, 1 - 1e-4)
    pos = tgt["center"].float()
    n_pos = pos.sum().clamp(min=1)
    focal = -(pos * (1 - p) ** 2 * torch.log(p)
              + (1 - pos) * (1 - tgt["heat"]) ** 4 * p ** 2 * torch.log(1 - p)).sum() / n_pos
    off = (F.l1_loss(torch.sigmoid(maps[:, 1:3]), tgt["offset"], reduction="none").sum(1) * pos).sum() / n_pos
    w = tgt["weight"]
    zl = (F.l1_loss(maps[:, 3], tgt["z"], reduction="none") * w).sum() / w.sum().clamp(min=1)
    terms = {"heat": focal, "offset": off, "z": zl}
    for k, name in enumerate(ic.ATTRIBUTES):
        lo, hi = ic.CHANNELS[name]
        ce = F.cross_entropy(maps[:, lo:hi], tgt["labels"][:, k], ignore_index=-1, reduction="none")
        terms[name] = (ce * w).sum() / w.sum().clamp(min=1)
    return terms


def _to_torch(tgt, idx):
    return {k: torch.from_numpy(np.ascontiguousarray(v[idx])) for k, v in tgt.items()}


def _images_to_torch(images):
    return torch.from_numpy(np.asarray(images, np.float32).transpose(0, 3, 1, 2) / 255.0)


@torch.no_grad()
def predict_maps(model, images, batch=256):
    """Raw maps (N, C, G, G) float32 of uint8 images (N, 64, 64, 3) through a torch ``model`` (eval mode)."""
    model.eval()
    out = [model(_images_to_torch(images[i:i + batch])).numpy() for i in range(0, len(images), batch)]
    return np.concatenate(out)


def object_metrics(detections, obj_lists):
    """Detections vs true objects: dict(recall, precision, attribute accuracies of matched objects, objects
    with all four right, z mean absolute error, screen-x error in pixels, count_exact and all_right per image).

    A true object is matched to the nearest unused detection whose centre is within ``MATCH_RADIUS`` cells."""
    n_true = n_det = n_match = 0
    attr_right = {a: 0 for a in ic.ATTRIBUTES}
    all4, z_err, x_err, exact, image_right = 0, [], [], 0, 0
    for dets, objs in zip(detections, obj_lists):
        n_true, n_det = n_true + len(objs), n_det + len(dets)
        used, ok_img = set(), len(dets) == len(objs)
        exact += len(dets) == len(objs)
        for o in objs:
            u, v = object_center(o)
            cands = [(np.hypot(d.u - u, d.v - v) * ic.GRID, j) for j, d in enumerate(dets) if j not in used]
            cands = [c for c in cands if c[0] <= MATCH_RADIUS]
            if not cands:
                ok_img = False
                continue
            _, j = min(cands)
            used.add(j)
            n_match += 1
            right = {a: dets[j].attrs()[a] == o.attrs()[a] for a in ic.ATTRIBUTES}
            for a in ic.ATTRIBUTES:
                attr_right[a] += right[a]
            all4 += all(right.values())
            ok_img &= all(right.values())
            z_err.append(abs(dets[j].z - o.z))
            x_err.append(abs(dets[j].screen_x - o.screen_x) * 64)
        image_right += ok_img
    m = max(n_match, 1)
    return {"recall": n_match / max(n_true, 1), "precision": n_match / max(n_det, 1),
            "attributes": {a: attr_right[a] / m for a in ic.ATTRIBUTES}, "objects_right": all4 / m,
            "z_mae": float(np.mean(z_err)) if z_err else float("nan"),
            "screen_x_err_px": float(np.mean(x_err)) if x_err else float("nan"),
            "count_exact": exact / max(len(obj_lists), 1), "all_right": image_right / max(len(obj_lists), 1),
            "objects": n_true, "images": len(obj_lists)}


def _round(d, nd=4):
    if isinstance(d, dict):
        return {k: _round(v, nd) for k, v in d.items()}
    if isinstance(d, float):
        return round(d, nd)
    return d


def evaluate_maps(maps, objs, caption_texts, threshold):
    """Metrics of raw maps of one image set: ``object_metrics`` and, when ``caption_texts`` are given (caption
    renders), ``image_checks.attribute_report`` (without its per-caption list)."""
    dets = ic.decode(maps, threshold)
    out = {"objects": object_metrics(dets, objs)}
    if caption_texts is not None:
        rep = ic.attribute_report(None, caption_texts, detections=dets)
        rep.pop("correct")
        out["captions"] = rep
    return out


class SplitData:
    """One corpus split for the classifier: clean and reconstructed renders of both kinds, object lists,
    targets, caption texts (``prepare``)."""

    def __init__(self, corpus, split, cache, limit=None, threads=1, recon=True):
        data = CorpusSplit(corpus, split)
        n = len(data) if limit is None else min(limit, len(data))
        self.split, self.kinds = split, {}
        for kind in KINDS:
            clean = np.asarray(getattr(data, kind)[:n])
            objs = object_lists(corpus, split, kind, cache, n)
            rec = reconstructions(clean, pathlib.Path(cache) / f"{split}_{kind}_recon_{n}.npy", threads) \
                if recon else None
            texts = [c["text"] for c in data.captions[:n]] if kind == "caption_images" else None
            self.kinds[kind] = {"clean": clean, "recon": rec, "objects": objs, "texts": texts}

    def training_arrays(self):
        """(clean (M, 64, 64, 3), recon or None, targets) over both kinds."""
        clean = np.concatenate([k["clean"] for k in self.kinds.values()])
        recs = [k["recon"] for k in self.kinds.values()]
        recon = None if any(r is None for r in recs) else np.concatenate(recs)
        return clean, recon, targets([o for k in self.kinds.values() for o in k["objects"]])

    def evaluate(self, maps_fn, threshold):
        """{kind/version: metrics} with ``maps_fn(images) → raw maps``."""
        out = {}
        for kind, d in self.kinds.items():
            for version in ("clean", "recon"):
                if d[version] is not None:
                    out[f"{kind}/{version}"] = evaluate_maps(maps_fn(d[version]), d["objects"], d["texts"], threshold)
        return out


def _score(metrics):
    """Threshold choice: mean over the evaluated sets of the per-image 'all right' fraction."""
    return float(np.mean([m["objects"]["all_right"] for m in metrics.values()]))


def pick_threshold(val, maps_fn):
    """The centre threshold of ``THRESHOLDS`` that maximises ``_score`` on ``val`` (maps computed once)."""
    cached = {}

    def fn(images):
        key = id(images)
        if key not in cached:
            cached[key] = maps_fn(images)
        return cached[key]
    scores = {t: _score(val.evaluate(fn, t)) for t in THRESHOLDS}
    return max(scores, key=scores.get), scores


def train(corpus, out, minutes=8.0, threads=1, seed=0, limit=None, recon=True, width=64, batch=64, lr=3e-3,
          log=print):
    """Train the classifier for ``minutes`` of this process's CPU time; returns (model, threshold, metrics dict)."""
    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    cache = pathlib.Path(out) / "cache"
    t_prep = time.time()
    tr = SplitData(corpus, "train", cache, limit, threads, recon)
    val = SplitData(corpus, "val", cache, None if limit is None else max(limit // 10, 50), threads, recon)
    clean, rec, tgt = tr.training_arrays()
    log(f"[attr] data: {len(clean)} train renders (+ reconstructions: {rec is not None}), prepared in "
        f"{time.time() - t_prep:.0f} s")
    model = AttributeNet(width)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    budget, t0, cpu0, step, seen = minutes * 60.0, time.time(), time.process_time(), 0, 0
    running = None
    while True:
        frac = (time.process_time() - cpu0) / budget
        if frac >= 1:
            break
        for g in opt.param_groups:
            g["lr"] = lr * min(1.0, frac / 0.03) * 0.5 * (1 + np.cos(np.pi * min(frac, 1.0)))
        idx = rng.integers(0, len(clean), batch)
        imgs = clean[idx]
        if rec is not None:
            use = rng.random(batch) < 0.5
            imgs = np.where(use[:, None, None, None], rec[idx], imgs)
        model.train()
        terms = loss_terms(model(_images_to_torch(imgs)), _to_torch(tgt, idx))
        loss = sum(terms.values())
        opt.zero_grad()
        loss.backward()
        opt.step()
        step, seen = step + 1, seen + batch
        vals = {k: v.item() for k, v in terms.items()}
        running = vals if running is None else {k: 0.98 * running[k] + 0.02 * vals[k] for k in vals}
        if step % 200 == 0:
            cpu = time.process_time() - cpu0
            log(f"[attr] step {step} ({cpu:.0f} CPU s, {time.time() - t0:.0f} s wall, {seen / cpu:.0f} img per CPU s) "
                + " ".join(f"{k} {v:.3f}" for k, v in running.items()))
    train_s, cpu_s = time.time() - t0, time.process_time() - cpu0
    model.eval()
    maps_fn = lambda images: predict_maps(model, images)          # noqa: E731
    threshold, scores = pick_threshold(val, maps_fn)
    metrics = {"train_cpu_seconds": round(cpu_s, 1), "train_wall_seconds": round(train_s, 1), "steps": step, "images_seen": seen, "threads": threads,
               "threshold": threshold, "val_threshold_scores": _round(scores),
               "val": _round(val.evaluate(maps_fn, threshold))}
    log(f"[attr] trained {step} steps ({seen} images) in {cpu_s:.0f} CPU s ({train_s:.0f} s wall); threshold {threshold} "
        f"(val 'all right' per threshold: {_round(scores, 3)})")
    return model, threshold, metrics


def export_model(model, out_dir, threshold, metrics, train_data):
    """``attribute_classifier-clevr64-<hash>.onnx`` in ``out_dir`` with its metadata; parity-checked. → path."""
    from ..export import check_parity, export
    example = torch.rand(2, 3, 64, 64)
    meta = {"role": "attribute_classifier", "modality": "image", "variant": VARIANT, "grid": str(ic.GRID),
            "channels": json.dumps({k: list(v) for k, v in ic.CHANNELS.items()}), "threshold": str(threshold),
            "z_scale": str(ic.Z_SCALE), "attribute_values": json.dumps(ic.ATTRIBUTE_VALUES),
            "train_data": train_data, "train_metrics": json.dumps(metrics, sort_keys=True)}
    path = export(model, example, "image", ["maps"], meta, out_dir, ic.MODEL_NAME, VARIANT)
    check_parity(model, path, example, rtol=1e-3, atol=1e-4)
    return path


def evaluate_onnx(corpus, model_path, split="test", out=None, threads=1, limit=None):
    """Metrics of an exported classifier on a split (clean and reconstructed scene and caption renders)."""
    clf = ic.AttributeClassifier(model_path, threads=threads)
    cache = pathlib.Path(out or "runs/attr") / "cache"
    data = SplitData(corpus, split, cache, limit, threads, True)
    return _round(data.evaluate(clf.maps, clf.threshold)), clf


def format_metrics(metrics):
    """Readable lines of ``SplitData.evaluate`` output."""
    lines = []
    for key, m in metrics.items():
        o = m["objects"]
        lines.append(f"  {key:22s} objects: recall {100 * o['recall']:.1f}% precision {100 * o['precision']:.1f}% "
                     + " ".join(f"{a} {100 * v:.1f}%" for a, v in o["attributes"].items())
                     + f" all-4 {100 * o['objects_right']:.1f}% | z MAE {o['z_mae']:.3f} | x err "
                       f"{o['screen_x_err_px']:.2f} px | images: count exact {100 * o['count_exact']:.1f}%, "
                       f"all right {100 * o['all_right']:.1f}%")
        if "captions" in m:
            lines.append(f"  {'':22s} captions: {ic.format_report(m['captions'])}")
    return "\n".join(lines)


def main(argv=None):
    """Command line: ``train`` (prepare, train, export, evaluate val and test) or ``eval`` (an exported model)."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("train", help="train, export to <out>/onnx and evaluate")
    e = sub.add_parser("eval", help="evaluate an exported classifier on a split")
    for q in (t, e):
        q.add_argument("--corpus", default="data/clevr64")
        q.add_argument("--out", default="runs/attr", help="run folder (cache of replayed objects, reconstructions)")
        q.add_argument("--threads", type=int, default=1)
        q.add_argument("--limit", type=int, default=None, help="only the first N items of each split")
    t.add_argument("--minutes", type=float, default=8.0,
                   help="training budget in CPU minutes of this process (data preparation not counted)")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--width", type=int, default=64)
    t.add_argument("--no-recon", action="store_true", help="train on clean renders only")
    e.add_argument("--model", default=ic.MODEL_NAME, help="path, or looked up as image_checks.find_classifier")
    e.add_argument("--split", default="test")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.cmd == "train":
        model, threshold, metrics = train(args.corpus, args.out, args.minutes, args.threads, args.seed, args.limit,
                                          not args.no_recon, args.width)
        print("val (torch):\n" + format_metrics(metrics["val"]), flush=True)
        cache = pathlib.Path(args.out) / "cache"
        test = SplitData(args.corpus, "test", cache, args.limit, args.threads, not args.no_recon)
        metrics["test"] = _round(test.evaluate(lambda im: predict_maps(model, im), threshold))
        metrics["parameters"] = sum(q.numel() for q in model.parameters())
        n = "all" if args.limit is None else f"first {args.limit}"
        train_data = (f"{args.corpus} train ({n}): scene renders and caption renders (objects replayed), clean and "
                      "through the shipped image tokenizer/de-tokenizer (genib s32)")
        path = export_model(model, pathlib.Path(args.out) / "onnx", threshold, metrics, train_data)
        print(f"exported {path} ({path.stat().st_size / 1024:.0f} KiB, {metrics['parameters']} parameters)")
        onnx_metrics, _ = evaluate_onnx(args.corpus, path, "test", args.out, args.threads, args.limit)
        print("test (onnxruntime):\n" + format_metrics(onnx_metrics), flush=True)
        (pathlib.Path(args.out) / "metrics.json").write_text(json.dumps({**metrics, "test_onnx": onnx_metrics,
                                                                         "model": path.name}, indent=1) + "\n")
    else:
        metrics, clf = evaluate_onnx(args.corpus, args.model, args.split, args.out, args.threads, args.limit)
        print(f"{clf.path.name} on {args.split} (threshold {clf.threshold}):\n" + format_metrics(metrics))


if __name__ == "__main__":
    main()
