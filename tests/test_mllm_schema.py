"""mllm.schema, the wire format between clients and the MLLM server: round trips of every task, and every
malformed class refused with a SchemaError whose text says what is wrong (never another exception)."""
import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import unitocom_testing  # noqa: F401  (makes gnuradio.unitocom importable)
from gnuradio.unitocom.mllm import schema  # noqa: E402
from gnuradio.unitocom.mllm.schema import SchemaError  # noqa: E402

RNG = np.random.default_rng(0)
IMAGE = RNG.normal(size=(32, 16)).astype(np.float32)
QUESTION = np.array([1, 10, 11, 2], np.int64)
ARRAYS = {"vqa": {"image_tokens": IMAGE, "question_ids": QUESTION}, "dsc": {"image_tokens": IMAGE},
          "asr": {"audio_tokens": RNG.normal(size=(37, 16)).astype(np.float32)},
          "t2i": {"caption_ids": QUESTION}, "health": {}}


@pytest.mark.parametrize("task", sorted(ARRAYS))
def test_request_round_trip(task):
    frames = schema.encode_request("c1-17", task, ARRAYS[task], session=42, snr_db=9.5, csi={"h": [0.3, -0.1]},
                                   gen={"max_words": 4} if task != "t2i" else {"steps": 5, "sampler": "ddim"},
                                   deadline_ms=1500)
    assert all(isinstance(f, bytes) for f in frames) and len(frames) == 1 + len(ARRAYS[task])
    info, arrays = schema.decode_request(frames)
    assert (info["id"], info["session"], info["task"], info["snr_db"], info["deadline_ms"]) == \
        ("c1-17", 42, task, 9.5, 1500)
    assert info["csi"] == {"h": [0.3, -0.1]}
    assert set(arrays) == set(ARRAYS[task])
    for name, arr in arrays.items():
        np.testing.assert_array_equal(arr, ARRAYS[task][name])
        assert arr.dtype == ARRAYS[task][name].dtype


def test_request_casts_without_loss_and_numpy_scalars_are_json():
    frames = schema.encode_request("a", "vqa", {"image_tokens": IMAGE.astype(np.float64),
                                                "question_ids": QUESTION.astype(np.int32)},
                                   session=np.uint32(5), snr_db=np.float32(3.0), gen={"max_words": np.int64(3)})
    info, arrays = schema.decode_request(frames)
    assert arrays["image_tokens"].dtype == np.float32 and arrays["question_ids"].dtype == np.int64
    assert info["session"] == 5 and info["snr_db"] == 3.0 and info["gen"] == {"max_words": 3}
    with pytest.raises(SchemaError, match="question_ids must be int64"):      # 1.5 → 1 would be a silent lie
        schema.encode_request("a", "vqa", {"image_tokens": IMAGE, "question_ids": np.array([1.5, 2.0])})
    with pytest.raises(SchemaError, match="JSON"):
        schema.encode_request("a", "dsc", {"image_tokens": IMAGE}, snr_db=float("nan"))


def test_reply_round_trip():
    req = {"id": "x-1", "session": 3, "task": "t2i"}
    tokens = RNG.normal(size=(32, 16)).astype(np.float32)
    header, arrays = schema.decode_reply(schema.encode_reply(req, "ok", image_tokens=tokens, model="m",
                                                             timing={"queue_ms": 1.0, "batch": np.int64(4)}))
    assert (header["id"], header["session"], header["status"], header["model"]) == ("x-1", 3, "ok", "m")
    assert header["timing"]["batch"] == 4
    np.testing.assert_array_equal(arrays["image_tokens"], tokens)
    header, arrays = schema.decode_reply(schema.encode_reply({**req, "task": "vqa"}, "ok", text="yes", ids=[12]))
    assert header["text"] == "yes" and header["ids"] == [12] and arrays == {}
    header, _ = schema.decode_reply(schema.error_reply({"id": "x-2", "session": True, "task": "nope"}, "bad"))
    assert (header["id"], header["session"], header["task"], header["status"]) == ("x-2", None, None, "error")
    with pytest.raises(ValueError):
        schema.encode_reply(req, "maybe")


def _header(base="dsc", **over):
    frames = schema.encode_request("r-1", base, ARRAYS[base])
    h = json.loads(frames[0])
    h.update(over)
    return h, frames[1:]


def _frames(h, arrays):
    return [json.dumps(h).encode()] + list(arrays)


def _bad(**over):
    h, arrays = _header(**over)
    return _frames(h, arrays)


def _spec(base, i, **over):
    h, arrays = _header(base)
    h["arrays"][i].update(over)
    return _frames(h, arrays)


BAD = {
    "empty message": ([], "empty message"),
    "not JSON": ([b"\xff\xfe{"], "not UTF-8 JSON"),
    "JSON but not an object": ([b"[1, 2]"], "JSON object"),
    "NaN literal in the header": ([b'{"v": 1, "snr_db": NaN}'], "not UTF-8 JSON"),
    "nested too deep": ([b"[" * 30000 + b"]" * 30000], "nested too deeply"),
    "header too large": ([b'{"v":1,"x":"' + b"a" * 70000 + b'"}'], "at most 65536"),
    "unknown version": (_bad(v=2), "version 2 is not served; this server speaks version"),
    "version as text": (_bad(v="1"), "version '1' is not served"),
    "version as bool": (_bad(v=True), "not served"),
    "no version": ([b'{"id": "a", "task": "dsc"}'], "version None"),
    "missing id": (_bad(id=None), "'id' must be"),
    "id too long": (_bad(id="x" * 65), "'id' must be"),
    "id not printable": (_bad(id="a\nb"), "'id' must be"),
    "session negative": (_bad(session=-1), "'session'"),
    "session too big": (_bad(session=2 ** 32), "'session'"),
    "session bool": (_bad(session=True), "'session'"),
    "unknown task": (_bad(task="translate"), "unknown task 'translate'"),
    "snr inf": ([b'{"v":1,"id":"a","task":"health","snr_db":1e400}'], "'snr_db' must be a finite number"),
    "snr Infinity literal": (_bad(snr_db=float("inf")), "Infinity is not allowed"),
    "snr text": (_bad(snr_db="9"), "'snr_db'"),
    "csi not an object": (_bad(csi=[1]), "'csi'"),
    "csi too many keys": (_bad(csi={str(i): i for i in range(17)}), "'csi'"),
    "deadline zero": (_bad(deadline_ms=0), "'deadline_ms'"),
    "unknown gen key": (_bad(gen={"beam": 4}), "unknown generation setting 'beam'"),
    "gen wrong type": (_bad(gen={"max_words": 2.5}), "gen.max_words must be int"),
    "gen not an object": (_bad(gen=[1]), "'gen' must be"),
    "truncated multipart": (_frames(*_header())[:1], "announces 1 array frame"),
    "extra frame": (_frames(*_header()) + [b"\0" * 8], "announces 1 array frame"),
    "arrays not a list": (_bad(arrays={"a": 1}), "'arrays' must be a list"),
    "wrong array name": (_spec("dsc", 0, name="audio_tokens"), "needs arrays"),
    "wrong dtype": (_spec("dsc", 0, dtype="float64"), "image_tokens must be float32"),
    "wrong shape": (_spec("dsc", 0, shape=[16, 32]), r"must have shape \[32, 16\]"),
    "negative dim": (_spec("asr", 0, shape=[-37, -16]), "non-negative"),
    "too many dims": (_spec("asr", 0, shape=[1] * 40), "at most 4"),
    "byte count": (_spec("asr", 0, shape=[36, 16]), "the frame has"),
    "audio beyond the limit": (schema._frames(
        {"v": 1, "id": "a", "task": "asr", "arrays": [{"name": "audio_tokens", "dtype": "float32",
                                                       "shape": [5000, 16]}]}, [np.zeros((5000, 16), np.float32)]),
        "audio_tokens must have shape"),
    "empty ids": (schema._frames(
        {"v": 1, "id": "a", "task": "t2i", "arrays": [{"name": "caption_ids", "dtype": "int64", "shape": [0]}]},
        [np.zeros(0, np.int64)]), "1-D array of 1 to"),
    "too many ids": (schema._frames(
        {"v": 1, "id": "a", "task": "t2i", "arrays": [{"name": "caption_ids", "dtype": "int64", "shape": [300]}]},
        [np.ones(300, np.int64)]), "1-D array of 1 to 256"),
    "id out of vocabulary": (schema._frames(
        {"v": 1, "id": "a", "task": "t2i", "arrays": [{"name": "caption_ids", "dtype": "int64", "shape": [2]}]},
        [np.array([1, 99], np.int64)]), "id 99 outside the vocabulary"),
    "NaN tokens": (schema._frames(
        {"v": 1, "id": "a", "task": "dsc", "arrays": [{"name": "image_tokens", "dtype": "float32",
                                                       "shape": [32, 16]}]},
        [np.full((32, 16), np.nan, np.float32)]), "NaN or infinite"),
    "frame not bytes": ([b'{"v":1,"id":"a","task":"health"}', 5], "announces 0 array frame"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_every_malformed_class_is_a_schema_error(case):
    frames, match = BAD[case]
    with pytest.raises(SchemaError, match=match):
        schema.decode_request(frames)
    reply = schema.error_reply(schema.peek_header(frames), "x")      # an error reply can always be made
    assert schema.decode_reply(reply)[0]["status"] == "error"


def test_unknown_version_reply_names_the_served_versions():
    with pytest.raises(SchemaError) as e:
        schema.decode_request(_bad(v=7))
    header, _ = schema.decode_reply(schema.error_reply(schema.peek_header(_bad(v=7)), e.value))
    assert header["id"] == "r-1" and "speaks version(s) 1" in header["error"]


@pytest.mark.parametrize("frames", [[b'{"v":1,"status":"ok","arrays":5}'], [b'{"v":1,"status":"weird"}'],
                                    [b'{"v":1,"status":"ok","arrays":[{"name":"x","dtype":"int8","shape":[1]}]}',
                                     b"\0"]])
def test_malformed_replies_are_schema_errors(frames):
    with pytest.raises(SchemaError):
        schema.decode_reply(frames)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=200), max_size=4))
def test_random_frames_only_ever_raise_schema_error(frames):
    for decode in (schema.decode_request, schema.decode_reply):
        try:
            decode(frames)
        except SchemaError:
            pass


JSONS = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
                     lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                                  max_size=3), max_leaves=8)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(["v", "id", "session", "task", "arrays", "snr_db", "csi", "gen",
                                        "deadline_ms"]), JSONS), st.lists(st.binary(max_size=64), max_size=3))
def test_random_headers_only_ever_raise_schema_error(fields, arrays):
    header = {"v": 1, "id": "f-1", "task": "dsc", **fields}
    try:
        frames = [json.dumps(header).encode()] + arrays
    except ValueError:
        return
    try:
        schema.decode_request(frames)
    except SchemaError:
        pass
