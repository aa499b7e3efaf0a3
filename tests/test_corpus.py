"""The CLEVR-style corpus: determinism, answers, captions, audio, vocabulary, splits."""
import hashlib
import pathlib
import re

import numpy as np
import pytest

from gnuradio.unitocom.data import captions, corpus, questions, render, scenes, speech, vocab
from gnuradio.unitocom.data.loaders import CorpusSplit

SIZES = dict(train=60, val=10, test=30)
SPEECH = dict(train=20, val=5, test=30)
needs_espeak = pytest.mark.skipif(not speech.espeak_available(), reason="espeak-ng not installed")


def build(out, seed=0):
    for split, n in SIZES.items():
        corpus.build_split(out, split, n, seed, 64, 3, SPEECH[split] if speech.espeak_available() else 0,
                           None, 2)
    return out


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    return build(tmp_path_factory.mktemp("corpus"))


def digest(folder):
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(pathlib.Path(folder).rglob("*")) if p.is_file()}


def test_same_seed_gives_byte_identical_files(built, tmp_path):
    again = build(tmp_path / "again")
    assert digest(built) == digest(again)
    other = tmp_path / "other"
    corpus.build_split(other, "val", SIZES["val"], 1, 64, 3, 0, None, 1)
    assert not np.array_equal(np.load(other / "val" / "images.npy"),
                              CorpusSplit(built, "val").images)


def test_an_item_is_a_pure_function_of_split_index_seed():
    a = corpus.make_item("train", 17, 3)
    b = corpus.make_item("train", 17, 3)
    assert np.array_equal(a["image"], b["image"]) and a["questions"] == b["questions"]
    assert not np.array_equal(a["image"], corpus.make_item("val", 17, 3)["image"])
    big = corpus.make_item("train", 17, 3, size=128)
    assert big["image"].shape == (128, 128, 3)


def test_splits_share_no_scene_seeds(built):
    seeds = {s: {row["scene_seed"] for row in CorpusSplit(built, s).scenes} for s in SIZES}
    assert all(len(seeds[s]) == SIZES[s] for s in SIZES)
    assert not (seeds["train"] & seeds["val"]) and not (seeds["train"] & seeds["test"]) \
        and not (seeds["val"] & seeds["test"])


# --- an independent reading of the questions -------------------------------------------
WORD_ATTR = {w: k for k, values in vocab.ATTRIBUTES.items() for w in values}
SINGULAR = {"cubes": "cube", "spheres": "sphere", "cylinders": "cylinder", "things": "thing"}


def parse_desc(words):
    filt = {}
    for w in words:
        w = SINGULAR.get(w, w)
        if w == "thing":
            continue
        assert w in WORD_ATTR, w
        filt[WORD_ATTR[w]] = w
    return filt


def select(objs, filt):
    return [o for o in objs if all(o[k] == v for k, v in filt.items())]


def screen_x(o):
    return o["x"] / (o["z"] + scenes.DEPTH0)


def rel(a, b, r):
    if r in ("left of", "right of"):
        d = screen_x(a) - screen_x(b)
        assert abs(d) > scenes.MARGIN, "scenes keep relations unambiguous"
        return d < 0 if r == "left of" else d > 0
    d = a["z"] - b["z"]
    assert abs(d) > scenes.DEPTH_MARGIN
    return d < 0 if r == "in front of" else d > 0


REL = "(left of|right of|in front of|behind)"


def recompute(text, objs):
    if m := re.fullmatch(r"are there any (.+)\?", text):
        return "yes" if select(objs, parse_desc(m[1].split())) else "no"
    if m := re.fullmatch(rf"how many things are {REL} the (.+)\?", text):
        (a,) = select(objs, parse_desc(m[2].split()))
        return str(sum(rel(o, a, m[1]) for o in objs if o is not a))
    if m := re.fullmatch(r"how many (.+) are there\?", text):
        return str(len(select(objs, parse_desc(m[1].split()))))
    if m := re.fullmatch(r"what (color|shape|size|material) is the (.+)\?", text):
        (a,) = select(objs, parse_desc(m[2].split()))
        return a[m[1]]
    if m := re.fullmatch(r"does the (.+) have the same (color|shape|size|material) as the (.+)\?", text):
        (a,), (b,) = select(objs, parse_desc(m[1].split())), select(objs, parse_desc(m[3].split()))
        return "yes" if a[m[2]] == b[m[2]] else "no"
    if m := re.fullmatch(rf"is the (.+?) {REL} the (.+)\?", text):
        (a,), (b,) = select(objs, parse_desc(m[1].split())), select(objs, parse_desc(m[3].split()))
        return "yes" if rel(a, b, m[2]) else "no"
    raise AssertionError(f"unknown question form: {text}")


def test_every_answer_recomputed_from_the_scene_graph(built):
    for split in SIZES:
        data = CorpusSplit(built, split)
        for q in data.questions:
            objs = data.scenes[q["scene"]]["objects"]
            assert recompute(q["text"], objs) == q["answer"], q


def referred(text, objs):
    """The objects a question names, read independently of ``questions.trace``: sets left to right."""
    by_x = lambda found: sorted(found, key=screen_x)         # noqa: E731
    if m := re.fullmatch(r"are there any (.+)\?", text):
        return by_x(select(objs, parse_desc(m[1].split())))
    if m := re.fullmatch(rf"how many things are {REL} the (.+)\?", text):
        (a,) = select(objs, parse_desc(m[2].split()))
        return [a] + by_x([o for o in objs if o is not a and rel(o, a, m[1])])
    if m := re.fullmatch(r"how many (.+) are there\?", text):
        return by_x(select(objs, parse_desc(m[1].split())))
    if m := re.fullmatch(r"what (color|shape|size|material) is the (.+)\?", text):
        return select(objs, parse_desc(m[2].split()))
    if m := re.fullmatch(r"does the (.+) have the same (color|shape|size|material) as the (.+)\?", text):
        return select(objs, parse_desc(m[1].split())) + select(objs, parse_desc(m[3].split()))
    if m := re.fullmatch(rf"is the (.+?) {REL} the (.+)\?", text):
        return select(objs, parse_desc(m[1].split())) + select(objs, parse_desc(m[3].split()))
    raise AssertionError(f"unknown question form: {text}")


def test_traces_name_the_objects_each_question_refers_to(built):
    data = CorpusSplit(built, "train")
    seen = set()
    for q in data.questions:
        objs = data.scenes[q["scene"]]["objects"]
        words = questions.trace(q["program"], data.objects(q["scene"])).split()
        want = [w for o in referred(q["text"], objs) for w in (o["size"], o["color"], o["material"], o["shape"])]
        assert words == want, q
        assert all(w in vocab.TOKEN_ID for w in words)
        n = len(words) // 4
        if q["template"] in ("count", "exist"):
            assert q["answer"] == (str(n) if q["template"] == "count" else "yes" if n else "no")
        elif q["template"] == "count_relate":
            assert q["answer"] == str(n - 1)
        elif q["template"].startswith("query_"):
            assert n == 1 and q["answer"] == words[("size", "color", "material", "shape").index(q["program"]["attr"])]
        seen.add(q["template"])
    assert len(seen) >= 10, seen
    with pytest.raises(ValueError, match="unknown template"):
        questions.trace({"template": "recount"}, data.objects(0))


def test_answers_are_balanced_enough_that_question_only_guessing_is_weak(tmp_path):
    from gnuradio.unitocom.data.questions import question_only_accuracy
    corpus.build_split(tmp_path, "train", 300, 0, 64, 3, 0, None, 2)
    corpus.build_split(tmp_path, "test", 150, 0, 64, 3, 0, None, 2)
    acc = question_only_accuracy(CorpusSplit(tmp_path, "train").questions, CorpusSplit(tmp_path, "test").questions)
    assert acc < 0.55, acc      # yes/no templates alone would give 0.5 on them


# --- captions -----------------------------------------------------------------------------
def caption_holds(text, objs):
    phrase = r"a (\w+) (\w+) (\w+) (\w+)"
    m = re.fullmatch(rf"{phrase}(?: {REL} {phrase}(?: and {phrase} {REL} it)?)?", text)
    assert m, text
    groups = m.groups()
    specs = [dict(zip(("size", "color", "material", "shape"), groups[i:i + 4])) for i in (0, 5, 9)]
    specs = [s for s in specs if s["size"] is not None]
    found = [select(objs, s) for s in specs]
    if any(len(f) != 1 for f in found):
        return False
    ok = True
    if groups[4]:
        ok &= rel(found[0][0], found[1][0], groups[4])
    if groups[13]:
        ok &= rel(found[2][0], found[1][0], groups[13])
    return ok


def test_captions_are_true_of_their_scene_and_of_the_scene_rendered_from_them(built):
    data = CorpusSplit(built, "train")
    rng = np.random.default_rng(0)
    for i, cap in enumerate(data.captions):
        assert caption_holds(cap["text"], data.scenes[i]["objects"]), cap
        objs = captions.scene_from_caption(rng, cap["text"])
        assert len(objs) == len(cap["objects"])
        assert caption_holds(cap["text"], [o.to_dict() for o in objs]), cap
        _, visible = render.render(objs, 64, with_visibility=True)
        assert min(visible) > 0.2
    assert data.caption_images.shape == data.images.shape


# --- rendering shows the attributes ---------------------------------------------------------
def one(**kw):
    base = dict(shape="sphere", color="red", size="large", material="rubber", x=0.0, z=0.0)
    base.update(kw)
    return [scenes.Obj(**base)]


def foreground(img, background):
    return np.any(np.abs(img.astype(int) - background.astype(int)) > 12, axis=2)


def test_renders_show_color_size_material_and_position():
    empty = render.render([], 64)
    chromatic = {c: np.array(rgb, float) for c, rgb in render.COLOR_RGB.items() if c != "gray"}
    for color, want in chromatic.items():
        img = render.render(one(color=color), 64).astype(float)
        pixels = img[foreground(img, empty) & (np.ptp(img, axis=2) > 25)]   # the object, not its shadow
        mean = pixels.mean(axis=0)
        dist = {c: np.linalg.norm(mean / mean.sum() - rgb / rgb.sum()) for c, rgb in chromatic.items()}
        assert min(dist, key=dist.get) == color, (color, mean, want)
    gray = render.render(one(color="gray"), 64).astype(float)
    assert np.ptp(gray[foreground(gray, empty)], axis=1).max() < 25       # gray stays gray
    small = foreground(render.render(one(size="small"), 64), empty).sum()
    large = foreground(render.render(one(size="large"), 64), empty).sum()
    assert large > 2.5 * small
    for color in ("blue", "red", "green"):     # metal: a near-white specular highlight on spheres
        rubber = render.render(one(material="rubber", color=color), 128).min(axis=2)
        metal = render.render(one(material="metal", color=color), 128).min(axis=2)
        assert (metal > 200).sum() >= 4 and (rubber > 200).sum() == 0, color
    for shape in vocab.SHAPES:                 # … and a darker, glossier body on every shape
        rub, met = (render.render(one(shape=shape, material=m, color="yellow"), 64).astype(float)
                    for m in ("rubber", "metal"))
        body = lambda img: img[foreground(img, empty) & (np.ptp(img, axis=2) > 25)].mean()  # noqa: E731
        assert body(met) < 0.85 * body(rub), shape
    near, far = (foreground(render.render(one(z=z), 64), empty) for z in (-2.0, 2.0))
    assert np.argwhere(near)[:, 0].mean() > np.argwhere(far)[:, 0].mean()   # nearer is lower
    left, right = (foreground(render.render(one(x=x), 64), empty) for x in (-2.0, 2.0))
    assert np.argwhere(left)[:, 1].mean() < np.argwhere(right)[:, 1].mean()
    for angle in (0.0, 0.4, 0.8):              # shapes differ in outline and shading
        imgs = {s: render.render(one(shape=s, angle=angle), 64).astype(int) for s in vocab.SHAPES}
        for a in imgs:
            for b in imgs:
                if a < b:
                    union = foreground(imgs[a], empty) | foreground(imgs[b], empty)
                    assert np.abs(imgs[a] - imgs[b])[union].mean() > 12, (a, b, angle)


# --- vocabulary and speech ------------------------------------------------------------------
def test_vocabulary_covers_every_sentence_and_round_trips(built):
    for split in SIZES:
        data = CorpusSplit(built, split)
        sentences = [q["text"] for q in data.questions] + [c["text"] for c in data.captions] \
            + [u["text"] for u in data.utterances] + [q["answer"] for q in data.questions]
        for s in sentences:
            ids = vocab.encode(s)
            assert vocab.UNK not in ids and vocab.decode(ids) == s
    assert set(vocab.ANSWERS) <= set(vocab.TOKENS)
    with pytest.raises(ValueError):
        vocab.encode("is the dog red?")


@needs_espeak
def test_audio_is_16khz_finite_non_silent_and_plausibly_long(built):
    for split in SIZES:
        data = CorpusSplit(built, split)
        assert len(data.utterances) == SPEECH[split]
        for k, u in enumerate(data.utterances):
            a = data.audio(k).astype(np.float64)
            seconds = len(a) / speech.SAMPLE_RATE
            words = len(u["text"].split())
            assert a.dtype == np.float64 and np.all(np.isfinite(a))
            assert np.sqrt(np.mean(a ** 2)) > 300, u           # not silent (int16 scale)
            assert 0.15 * words < seconds < 1.0 * words + 1.0, (seconds, u)
    assert speech.SAMPLE_RATE == 16000


@needs_espeak
def test_test_split_has_speakers_that_train_never_uses(built):
    assert set(speech.speakers("test")) - set(speech.speakers("train"))
    assert set(speech.speakers("val")) <= set(speech.speakers("train"))
    train = {u["speaker"] for u in CorpusSplit(built, "train").utterances}
    test = {u["speaker"] for u in CorpusSplit(built, "test").utterances}
    assert train <= set(speech.speakers("train"))
    assert test - set(speech.speakers("train")), "the built test split uses unseen speakers"


@needs_espeak
def test_noise_at_a_set_snr():
    rng = np.random.default_rng(0)
    clean = speech.synthesize("how many red cubes are there?", "en-us+m3", 160, 50)
    noisy = speech.add_noise(clean, 10.0, rng)
    snr = 10 * np.log10(np.mean(clean.astype(float) ** 2) / np.mean((noisy.astype(float) - clean) ** 2))
    assert abs(snr - 10.0) < 0.3


def test_numpy_loader_and_torch_datasets(built):
    torch = pytest.importorskip("torch")
    from onnx_export import datasets
    images = datasets.ImageDataset(built, "val")
    x = images[0]
    assert x.shape == (3, 64, 64) and x.dtype == torch.float32 and 0 <= x.min() and x.max() <= 1
    img, q, a = datasets.VQADataset(built, "val")[0]
    assert q[0] == vocab.BOS and q[-1] == vocab.EOS and vocab.TOKENS[a] in vocab.ANSWERS
    ids, cap_img = datasets.CaptionDataset(built, "val")[1]
    assert cap_img.shape == (3, 64, 64) and vocab.decode(ids.tolist()).startswith("a ")
    if speech.espeak_available():
        wave, ids = datasets.SpeechDataset(built, "test")[0]
        assert wave.dtype == torch.float32 and wave.abs().max() <= 1 and len(ids) > 3
    split = CorpusSplit(built, "val")
    assert len(split) == SIZES["val"] and split.objects(0)[0].shape in vocab.SHAPES
    with pytest.raises(FileNotFoundError):
        CorpusSplit(built, "nosuchsplit")


def test_cli_builds_and_reports(tmp_path):
    import subprocess
    import sys
    speech_n = "2" if speech.espeak_available() else "0"
    out = subprocess.run([sys.executable, "-m", "gnuradio.unitocom.data.corpus", "build", "--out", str(tmp_path),
                          "--train", "8", "--val", "2", "--test", "4", "--train-speech", speech_n,
                          "--val-speech", "0", "--test-speech", speech_n, "--workers", "1"],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "train: 8 scenes (64x64), 24 questions" in out.stdout
    assert "question-only baseline" in out.stdout and "generated in" in out.stdout
    assert "train [" in out.stderr                                  # the progress bar
    again = subprocess.run([sys.executable, "-m", "gnuradio.unitocom.data.corpus", "report", "--out", str(tmp_path)],
                           capture_output=True, text=True, timeout=300)
    assert again.returncode == 0 and "answer distribution per template" in again.stdout
