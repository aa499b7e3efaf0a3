"""The MLLM server (mllm.batcher + mllm.server + mllm.client) on a tiny random model.

Every bad request class gets its error reply and the next request is served; 8 concurrent clients get every
answer exactly once, matched to their ids; concurrent requests take fewer engine calls than requests; a full
queue answers "busy"; deadlines; one bad item never fails its batch; the server killed and restarted
mid-stream → the client reports errors/timeouts, then recovers; CURVE refuses a client without the keys."""
import json
import os
import signal
import socket
import threading
import time

import numpy as np
import pytest
import zmq

torch = pytest.importorskip("torch")

import unitocom_testing  # noqa: F401,E402  (makes gnuradio.unitocom importable)
from gnuradio.unitocom.mllm import batcher as batching  # noqa: E402
from gnuradio.unitocom.data import vocab  # noqa: E402
from gnuradio.unitocom.mllm import engine, schema, server  # noqa: E402
from gnuradio.unitocom.mllm.client import Client, server_answers  # noqa: E402
from onnx_export.mllm import export  # noqa: E402
from onnx_export.mllm.testing import tiny_model  # noqa: E402

RNG = np.random.default_rng(1)
QUESTION = np.array([1, 10, 11, 2], np.int64)
POISON = 7.0                      # Probe raises for an item whose first token value is this


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    torch.set_num_threads(1)
    return export.export_all(tiny_model(seed=3), tmp_path_factory.mktemp("mllm"), "test")


@pytest.fixture(scope="module")
def mllm(files):
    return engine.MLLM(files=files, threads=1, device="cpu")


class Probe:
    """The MLLM with its batch calls counted, held on ``gate``, and failing on a poisoned item."""

    def __init__(self, mllm):
        self.mllm, self.calls, self.settings, self.gate = mllm, [], [], threading.Event()
        self.gate.set()

    def __getattr__(self, name):
        return getattr(self.mllm, name)

    def _call(self, method, first, *args, **kw):
        self.calls.append((method, len(first)))
        self.settings.append(kw)
        self.gate.wait(10)
        if any(np.asarray(x).ravel()[0] == POISON for x in first):
            raise RuntimeError("poisoned item")
        return getattr(self.mllm, method)(first, *args, **kw)

    def answer(self, *a, **kw):
        return self._call("answer", *a, **kw)

    def describe(self, *a, **kw):
        return self._call("describe", *a, **kw)

    def transcribe(self, *a, **kw):
        return self._call("transcribe", *a, **kw)

    def generate_image_tokens(self, *a, **kw):
        return self._call("generate_image_tokens", *a, **kw)


@pytest.fixture
def serve(mllm):
    """serve(**batcher_kw) → (Server on a free port in a thread, Probe); stopped after the test."""
    started = []

    def start(keys=None, **kw):
        probe = Probe(mllm)
        s = server.Server(batching.Batcher(probe, **kw), bind="tcp://127.0.0.1:*", keys=keys).start()
        started.append(s)
        return s, probe

    yield start
    for s in started:
        s.batcher.engine.gate.set()
        s.stop()


def image(value=None):
    return np.full((32, 16), value, np.float32) if value is not None else RNG.normal(size=(32, 16)).astype(np.float32)


def vqa(img=None):
    return {"image_tokens": image() if img is None else img, "question_ids": QUESTION}


def raw_dealer(address):
    sock = zmq.Context.instance().socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(address)
    return sock


def raw_call(sock, frames, timeout_ms=5000):
    sock.send_multipart(frames)
    assert sock.poll(timeout_ms), "no reply"
    return schema.decode_reply(sock.recv_multipart())


def ask_ok(address):
    with Client(address, timeout_s=10) as c:
        reply = c.call("vqa", vqa())
    assert reply.ok, reply.header
    return reply


def good_header(base="dsc", **over):
    arrays = {"dsc": {"image_tokens": image()}, "vqa": vqa(), "t2i": {"caption_ids": QUESTION}}[base]
    frames = schema.encode_request("raw-1", base, arrays)
    h = json.loads(frames[0])
    h.update(over)
    return [json.dumps(h).encode()] + frames[1:]


def with_spec(i, frames=None, **over):
    frames = frames or good_header()
    h = json.loads(frames[0])
    h["arrays"][i].update(over)
    return [json.dumps(h).encode()] + frames[1:]


BAD_REQUESTS = {
    "not JSON": ([b"\x00garbage"], "not UTF-8 JSON"),
    "unknown version": (good_header(v=99), "version 99 is not served; this server speaks version"),
    "unknown task": (good_header(task="translate"), "unknown task"),
    "wrong dtype": (with_spec(0, dtype="float64"), "must be float32"),
    "wrong shape": (with_spec(0, shape=[16, 32]), "must have shape"),
    "byte count": (good_header()[:1] + [b"\0" * 100], "the frame has 100"),
    "truncated multipart": (good_header()[:1], "announces 1 array frame"),
    "NaN tokens": (good_header()[:1] + [np.full((32, 16), np.nan, np.float32).tobytes()], "NaN"),
    "audio beyond the limit": (schema._frames({"v": 1, "id": "raw-1", "task": "asr", "arrays": [
        {"name": "audio_tokens", "dtype": "float32", "shape": [4000, 16]}]}, [np.zeros((4000, 16), np.float32)]),
        "audio_tokens must have shape"),
    "ids out of vocabulary": (schema._frames({"v": 1, "id": "raw-1", "task": "t2i", "arrays": [
        {"name": "caption_ids", "dtype": "int64", "shape": [2]}]}, [np.array([1, 500], np.int64)]), "vocabulary"),
    "a setting of another task": (good_header(gen={"steps": 4}), "do not apply to task dsc"),
    "steps beyond the model": (good_header("t2i", gen={"steps": 5000}), "gen.steps"),
    "guidance beyond the range": (good_header("t2i", gen={"guidance": 50.0}), "gen.guidance"),
    "prompt beyond the positions": (schema._frames({"v": 1, "id": "raw-1", "task": "vqa", "arrays": [
        {"name": "image_tokens", "dtype": "float32", "shape": [32, 16]},
        {"name": "question_ids", "dtype": "int64", "shape": [200]}]},
        [np.zeros((32, 16), np.float32), np.ones(200, np.int64)]), "positions"),
}


def test_every_bad_request_gets_its_error_and_the_server_goes_on(serve):
    s, probe = serve(window_ms=1)
    sock = raw_dealer(s.address)
    for case, (frames, match) in BAD_REQUESTS.items():
        header, _ = raw_call(sock, frames)
        assert header["status"] == "error", case
        assert __import__("re").search(match, header["error"]), (case, header["error"])
        if case not in ("not JSON", "truncated multipart") and not case.startswith(("audio", "ids", "prompt")):
            assert header["id"] == "raw-1", case              # the id is echoed whenever it could be read
        header, _ = raw_call(sock, good_header())              # … and the next request is served
        assert header["status"] == "ok", (case, header)
    # a REQ socket (an empty delimiter frame) is served too
    req = zmq.Context.instance().socket(zmq.REQ)
    req.setsockopt(zmq.LINGER, 0)
    req.connect(s.address)
    req.send_multipart(good_header())
    assert req.poll(5000) and schema.decode_reply(req.recv_multipart())[0]["status"] == "ok"
    req.close()
    # a frame over the transport limit closes that connection only
    big = raw_dealer(s.address)
    big.send_multipart(good_header()[:1] + [b"\0" * (5 << 20)])
    time.sleep(0.3)
    big.close()
    header, _ = raw_call(sock, good_header())
    assert header["status"] == "ok"
    h = Client(s.address).health()
    assert h["malformed"] == 10 and h["failed"] == len(BAD_REQUESTS) and h["served"] == len(BAD_REQUESTS) + 2
    sock.close()


def test_a_client_that_vanishes_mid_request_is_counted_and_the_next_is_served(serve):
    s, probe = serve(window_ms=1)
    probe.gate.clear()                                          # hold the engine
    gone = raw_dealer(s.address)
    gone.send_multipart(good_header())
    t_end = time.time() + 5
    while not probe.calls and time.time() < t_end:
        time.sleep(0.01)
    gone.close()                                                # leaves while its request runs
    time.sleep(0.2)
    probe.gate.set()
    t_end = time.time() + 5
    while s.health()["undeliverable"] < 1 and time.time() < t_end:
        time.sleep(0.02)
    assert s.health()["undeliverable"] == 1
    ask_ok(s.address)


def test_eight_concurrent_clients_get_every_answer_exactly_once(serve, mllm):
    s, probe = serve(window_ms=5, max_batch=16)
    n_each, results, errors = 25, {}, []
    tasks = ["vqa", "dsc", "asr", "t2i"]

    def run(k):
        try:
            with Client(s.address, timeout_s=30, id_prefix=f"c{k}") as c:
                assert c.wait_connected(5)
                sent = {}
                for i in range(n_each):
                    task = tasks[(i + k) % 4]
                    arrays = {"vqa": vqa(), "dsc": {"image_tokens": image()},
                              "asr": {"audio_tokens": RNG.normal(size=(5 + i % 7, 16)).astype(np.float32)},
                              "t2i": {"caption_ids": QUESTION}}[task]
                    gen = {"steps": 2} if task == "t2i" else {"max_words": 3}
                    session = k * 1000 + i
                    sent[c.submit(task, arrays, session=session, gen=gen)] = (task, session, arrays)
                got = []
                while len(got) < n_each:
                    batch = c.poll(5000)
                    assert batch, "no reply within 5 s"
                    got += batch
                results[k] = (sent, got)
        except Exception as exc:                                # noqa: BLE001 — reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    for k, (sent, got) in results.items():
        ids = [r.id for r in got]
        assert sorted(ids) == sorted(sent) and len(set(ids)) == n_each        # each exactly once
        for r in got:
            task, session, arrays = sent[r.id]
            assert r.ok and not r.local, r.header
            assert (r.header["task"], r.header["session"]) == (task, session)
            if task == "vqa":                                   # the answer is this request's, not another's
                want = mllm.answer(arrays["image_tokens"][None], [arrays["question_ids"]], max_words=3)[0]
                np.testing.assert_array_equal(r.ids, want)
            if task == "t2i":
                assert r.arrays["image_tokens"].shape == (32, 16)
    assert sum(n for _, n in probe.calls) == 8 * n_each
    assert len(probe.calls) < 8 * n_each                        # batched
    with Client(s.address) as c:
        assert c.call("health").header["health"]["served"] == 8 * n_each
        assert c.counts["late"] == 0


def test_t2i_guidance_default_and_per_request(serve):
    s, probe = serve(window_ms=1, guidance=2.5)
    with Client(s.address, timeout_s=20) as c:
        assert c.call("t2i", {"caption_ids": QUESTION}, gen={"steps": 2}).ok
        assert c.call("t2i", {"caption_ids": QUESTION}, gen={"steps": 2, "guidance": 0.0}).ok
    assert [kw["guidance"] for kw in probe.settings] == [2.5, 0.0]
    with pytest.raises(ValueError, match="guidance"):
        batching.Batcher(probe, guidance=-1.0)


def test_concurrent_requests_take_fewer_engine_calls_than_requests(serve):
    s, probe = serve(window_ms=20, max_batch=32)
    probe.gate.clear()
    with Client(s.address, timeout_s=20) as c:
        assert c.wait_connected(5)
        ids = [c.submit("vqa", vqa(), gen={"max_words": 2}) for _ in range(40)]
        time.sleep(0.3)
        probe.gate.set()
        got = []
        while len(got) < 40:
            got += c.poll(5000)
    assert sorted(r.id for r in got) == sorted(ids) and all(r.ok for r in got)
    sizes = [n for _, n in probe.calls]
    assert sum(sizes) == 40 and len(sizes) <= 3, sizes         # e.g. [1, 32, 7] or [32, 8]
    hist = s.health()["batch_hist"]
    assert sum(int(k) * v for k, v in hist.items()) == 40 and s.health()["batches"] == len(sizes)
    # each reply names the batch it ran in; how 40 split depends on arrival timing (a loaded CI machine)
    assert {r.header["timing"]["batch"] for r in got} == set(sizes) and max(sizes) >= 20


def test_a_model_with_traces_replies_its_trace(tmp_path):
    """A model exported with ``vqa_trace: yes``: the reply's text is the answer after the trace, and
    ``trace`` holds the objects it named (the engine's ``with_trace`` pair, decoded)."""
    files = export.export_all(tiny_model(seed=3), tmp_path, "test", extra={"vqa_trace": "yes"})
    traced = engine.MLLM(files=files, threads=1, device="cpu")
    s = server.Server(batching.Batcher(traced), bind="tcp://127.0.0.1:*").start()
    try:
        images = [image() for _ in range(4)]
        with Client(s.address, timeout_s=30) as c:
            replies = [c.call("vqa", vqa(img), gen={"max_words": 2}) for img in images]
        for img, reply in zip(images, replies):
            assert reply.ok, reply.header
            ((trace, answer),) = traced.answer(img[None], [QUESTION], max_words=2, with_trace=True)
            assert reply.trace == vocab.decode(trace.tolist()) and list(reply.ids) == list(answer)
        with Client(s.address, timeout_s=30) as c:                 # a task without traces has none
            assert c.call("dsc", {"image_tokens": images[0]}).trace is None
    finally:
        s.stop()


def test_different_settings_are_not_batched_together(serve):
    s, probe = serve(window_ms=300)                  # all six arrive within the window, even on a loaded machine
    probe.gate.clear()
    with Client(s.address) as c:
        assert c.wait_connected(5)
        for w in (1, 2, 1, 2, 1):
            c.submit("vqa", vqa(), gen={"max_words": w})
        c.submit("vqa", vqa(), gen={"max_words": 1, "temperature": 0.3, "seed": 5})   # greedy: same group
        time.sleep(0.2)
        probe.gate.set()
        got = []
        while len(got) < 6:
            got += c.poll(5000)
    assert sorted(n for _, n in probe.calls) == [2, 4]
    assert all(len(r.ids) <= 2 for r in got)


def test_a_full_queue_answers_busy_and_recovers(serve):
    s, probe = serve(window_ms=0, max_batch=1, max_queue=3)
    probe.gate.clear()
    with Client(s.address, timeout_s=20) as c:
        assert c.wait_connected(5)
        first = c.submit("dsc", {"image_tokens": image()})
        t_end = time.time() + 5
        while not probe.calls and time.time() < t_end:       # the first is in the engine, the queue is empty
            time.sleep(0.01)
        ids = [c.submit("dsc", {"image_tokens": image()}) for _ in range(8)]
        busy = []
        while len(busy) < 5:
            busy += c.poll(5000)
        assert [r.status for r in busy] == ["busy"] * 5 and {r.id for r in busy} == set(ids[3:])
        assert "queue is full" in busy[0].error
        assert s.health()["queue"]["dsc"] == 3
        probe.gate.set()
        done = []
        while len(done) < 4:
            done += c.poll(5000)
        assert {r.id for r in done} == {first, *ids[:3]} and all(r.ok for r in done)
        assert c.call("dsc", {"image_tokens": image()}).ok
    assert s.health()["busy"] == 5


def test_deadlines_and_shutdown(serve):
    s, probe = serve(window_ms=0, max_batch=1)
    probe.gate.clear()
    with Client(s.address, timeout_s=20) as c:
        assert c.wait_connected(5)
        c.submit("dsc", {"image_tokens": image()})                       # holds the engine
        late = c.submit("dsc", {"image_tokens": image()}, deadline_ms=50)
        time.sleep(0.3)
        probe.gate.set()
        got = {}
        while len(got) < 2:
            got.update({r.id: r for r in c.poll(5000)})
        assert got[late].status == "timeout" and "deadline" in got[late].error
        assert s.health()["timeouts"] == 1, s.health()
        # stopping the server answers what is still queued
        probe.gate.clear()
        ids = [c.submit("dsc", {"image_tokens": image()}) for _ in range(3)]
        time.sleep(0.2)
        threading.Timer(0.3, probe.gate.set).start()
        s.stop()
        got = []
        while len(got) < 3:
            got += c.poll(5000)
        assert {r.id for r in got} == set(ids)
        assert sorted(r.status for r in got) == ["busy", "busy", "ok"]      # busy: a client retries
        assert all("shutting down" in r.error for r in got if not r.ok)


def test_one_bad_item_never_fails_its_batch(serve):
    s, probe = serve(window_ms=300)
    probe.gate.clear()
    with Client(s.address) as c:
        assert c.wait_connected(5)
        ids = [c.submit("vqa", vqa(image(POISON) if i == 2 else None), gen={"max_words": 2}) for i in range(6)]
        time.sleep(0.1)
        probe.gate.set()
        got = {}
        while len(got) < 6:
            got.update({r.id: r for r in c.poll(5000)})
    assert [got[i].status for i in ids] == ["ok", "ok", "error", "ok", "ok", "ok"]
    assert "poisoned item" in got[ids[2]].error
    assert [n for _, n in probe.calls] == [6, 1, 1, 1, 1, 1, 1]     # the batch, then each alone


def test_health_reports_what_the_issue_lists(serve):
    s, _ = serve()
    ask_ok(s.address)
    h = server_answers(s.address, timeout_s=2)
    for key in ("model", "device", "queue", "served", "failed", "batch_hist", "uptime_s", "rss_mb"):
        assert key in h, key
    assert h["device"] == "CPUExecutionProvider" and h["served"] == 1 and h["queue"]["vqa"] == 0
    assert server_answers("tcp://127.0.0.1:1", timeout_s=0.3) is None


def _free_port():
    with socket.socket() as sk:
        sk.bind(("127.0.0.1", 0))
        return sk.getsockname()[1]


def test_server_killed_and_restarted_mid_stream(files):
    address = f"tcp://127.0.0.1:{_free_port()}"
    argv = ["--files", *map(str, files.values()), "--threads", "1", "--window-ms", "2", "--quiet"]
    env = {**os.environ, "UNITOCOM_DEVICE": "cpu"}
    proc = server.spawn(argv, address, timeout_s=60, env=env)
    statuses = []
    try:
        with Client(address, timeout_s=2) as c:
            assert c.call("dsc", {"image_tokens": image()}).ok
            for i in range(5):                              # a stream: the server dies in the middle of it
                c.submit("dsc", {"image_tokens": image()})
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
            for i in range(5):
                c.submit("dsc", {"image_tokens": image()})
                time.sleep(0.05)
            while c.pending:
                statuses += [(r.status, r.local) for r in c.poll(3000)]
            failed = [st for st in statuses if st != ("ok", False)]
            assert failed and all(st in (("error", True), ("timeout", True)) for st in failed), statuses
            proc = server.spawn(argv, address, timeout_s=60, env=env)
            t_end, reply = time.time() + 20, None
            while time.time() < t_end:                      # the same client recovers by itself
                reply = c.call("dsc", {"image_tokens": image()}, timeout_s=2)
                if reply.ok:
                    break
            assert reply is not None and reply.ok, reply
    finally:
        proc.send_signal(signal.SIGTERM)                     # a clean stop on SIGTERM
        assert proc.wait(20) == 0


def test_curve_refuses_a_client_without_the_keys(serve, tmp_path):
    keys = server.make_keys(tmp_path / "keys")
    assert oct(keys["server_secret"].stat().st_mode & 0o777) == "0o600"
    s, _ = serve(keys=tmp_path / "keys")
    with Client(s.address, server_key=tmp_path / "keys", timeout_s=5) as good:          # server.key + client pair
        assert good.call("vqa", vqa()).ok
    with Client(s.address, server_key=keys["server"], client_key=keys["client_secret"], timeout_s=5) as good:
        assert good.call("dsc", {"image_tokens": image()}).ok
    with Client(s.address, timeout_s=1) as plain:                                       # no keys at all
        r = plain.call("vqa", vqa())
        assert not r.ok and r.local
    with Client(s.address, server_key=keys["server"], timeout_s=1) as stranger:        # an unlisted client key
        r = stranger.call("vqa", vqa())
        assert not r.ok and r.local
    assert s.health()["served"] == 2
    time.sleep(0.2)
    assert s.health()["handshake_failures"] >= 1
    # the keys command refuses to overwrite the server's pair and adds clients
    before = keys["server_secret"].read_bytes()
    server.main(["keys", str(tmp_path / "keys"), "--client", "gnb2"])
    assert keys["server_secret"].read_bytes() == before
    assert (tmp_path / "keys" / "authorized_clients" / "gnb2.key").is_file()


def test_serve_without_a_model_says_what_to_do(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("UNITOCOM_MODEL_DIR", str(tmp_path))
    code = server.main(["serve", "--model", "no_such_mllm", "--bind", "tcp://127.0.0.1:*"])
    assert code == 2
    assert "--model-dir" in capsys.readouterr().err
    assert server.is_local("tcp://127.0.0.1:5555") and not server.is_local("tcp://0.0.0.0:5555")


def test_soak_and_benchmark_scripts_run(files):
    """Smoke runs of the scripts (they assert nothing about speed; the soak checks loss and duplicates)."""
    import subprocess
    import sys
    scripts = unitocom_testing.ROOT / "scripts"
    model = ["--files", *map(str, files.values())]
    out = subprocess.run([sys.executable, str(scripts / "soak_mllm_server.py"), "--requests", "400",
                          "--malformed", "0.05", "--vanish", "0.01", *model],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and "PASS" in out.stdout and "lost 0, duplicated 0" in out.stdout, \
        out.stdout + out.stderr
    out = subprocess.run([sys.executable, str(scripts / "bench_mllm_server.py"), "--seconds", "0.2",
                          "--clients", "1", "4", "--tasks", "vqa", "t2i", "--t2i-steps", "2", *model],
                         capture_output=True, text=True, timeout=180)
    assert out.returncode == 0, out.stdout + out.stderr
    assert len([ln for ln in out.stdout.splitlines() if ln.startswith(("vqa ", "t2i "))]) == 4, out.stdout
    assert "batched over single" in out.stdout and "overhead of ZeroMQ + schema" in out.stdout
