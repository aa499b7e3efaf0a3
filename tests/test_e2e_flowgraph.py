"""flowgraphs/sim/unitocom_e2e.grc end to end against an MLLM server (a tiny random model served in this
process): every request gets its result, and at 20 dB AWGN the VQA answers, transcripts and scene
inputs that reach the server give the same words as calling the runtime class directly on the very
token PDUs the rx blocks delivered. Also ``./unitocom demo``'s report on the same server."""
import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from gnuradio.unitocom.apps import flowgraph_runner, system_demo  # noqa: E402
from gnuradio.unitocom.data import speech, vocab  # noqa: E402
from gnuradio.unitocom.mllm import batcher as batching, engine, server  # noqa: E402
from onnx_export.mllm import export  # noqa: E402
from onnx_export.mllm.testing import tiny_model  # noqa: E402

N = 2


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    torch.set_num_threads(1)
    return export.export_all(tiny_model(seed=5), tmp_path_factory.mktemp("mllm"), "test")


@pytest.fixture(scope="module")
def served(files):
    mllm = engine.MLLM(files=files, threads=1, device="cpu")
    s = server.Server(batching.Batcher(mllm, window_ms=2.0), bind="tcp://127.0.0.1:*").start()
    yield s, mllm
    s.stop()


@pytest.fixture(scope="module")
def run(served, tmp_path_factory):
    s, mllm = served
    py = flowgraph_runner.compile_flowgraph(flowgraph_runner.flowgraph_path("sim/unitocom_e2e.grc"),
                                            tmp_path_factory.mktemp("build"))
    tb = flowgraph_runner.load_flowgraph_class(py)(snr_db=20.0, channel_type="awgn", n_samples=N, first=0, rate=8,
                                                   address=s.address, steps=3, out_dir="", seed=1)
    taps = {name: system_demo.Collector(name) for name in ("image", "text", "audio", "results", "errors")}
    for m in ("image", "text", "audio"):
        tb.msg_connect(getattr(tb, f"rx_{m}"), "tokens", taps[m], "in")
    tb.msg_connect(tb.client, "result", taps["results"], "in")
    tb.msg_connect(tb.client, "errors", taps["errors"], "in")
    tb.run()
    return {k: v.items for k, v in taps.items()}, mllm


def test_every_request_gets_its_result(run):
    taps, _ = run
    tasks = sorted((m["session_id"], m["task"]) for m, _ in taps["results"])
    want = [(3 * i + k, t) for i in range(N) for k, t in ((0, "vqa"), (1, "t2i"), (2, "asr"))
            if t != "asr" or speech.espeak_available()]
    assert tasks == sorted(want) and taps["errors"] == []
    assert all(m["status"] == "ok" and m["latency_s"] > 0 for m, _ in taps["results"])


def test_answers_are_those_of_the_runtime_class_on_the_received_tokens(run):
    taps, mllm = run
    results = {(m["session_id"], m["task"]): (m, v) for m, v in taps["results"]}
    images = {m["session_id"]: v for m, v in taps["image"]}
    questions = {m["session_id"]: v for m, v in taps["text"] if m.get("task") == "vqa"}
    for i in range(N):
        s = 3 * i
        trace, direct = mllm.answer(np.asarray(images[s], np.float32).reshape(1, 32, 16),
                                    [np.asarray(questions[s], np.int64)], with_trace=True)[0]
        meta, ids = results[(s, "vqa")]
        assert list(np.asarray(ids, np.int64)) == list(direct) and meta["text"]
        assert meta.get("trace") == (vocab.decode(trace.tolist()) if mllm.vqa_trace else None)
    for m, v in taps["audio"]:
        direct = mllm.transcribe([np.asarray(v, np.float32).reshape(-1, 16)])[0]
        assert list(np.asarray(results[(m["session_id"], "asr")][1], np.int64)) == list(direct)
    for i in range(N):
        meta, tokens = results[(3 * i + 1, "t2i")]
        assert meta["modality"] == "image" and np.asarray(tokens).size == 32 * 16


def test_the_demo_report(served, tmp_path, capsys):
    s, _ = served
    system_demo.main(["--address", s.address, "--n", "1", "--steps", "3", "--snr-db", "20", "--channel", "awgn",
                      "--out", str(tmp_path / "demo"), "--build", str(tmp_path / "build")])
    out = capsys.readouterr().out
    assert "Q: " in out and "caption: " in out and "[demo] VQA" in out
    m = json.loads((tmp_path / "demo" / "metrics.json").read_text())
    assert m["samples"] == 1 and m["vqa_questions"] == 1 and m["final_errors"] == 0 and m["reconstruction_psnr_db"] > 15
    for name in ("images.png", "constellation.png", "results.jsonl"):
        assert (tmp_path / "demo" / name).is_file()
