#!/usr/bin/env python3
"""QA for mllm_client against a fake MLLM server (a ZeroMQ ROUTER thread speaking ``mllm.schema``).

The fake decodes each request with ``schema.decode_request`` and answers
with ``schema.encode_reply``: a made-up but deterministic answer
(``answer``), after a delay that may differ per request (so answers
overtake each other), 'busy' to the first ``busy`` requests, nothing at all
when ``silent``; ``stop()`` kills it (queued answers are lost) and
``start()`` brings it back on the same port. No trained model, no real
server: the block's grouping, ordering, retries and termination are what
is tested. The last tests run whole tx → channel → rx links into it.
"""
import os
import threading
import time

import numpy as np
import pmt
import zmq
from gnuradio import gr, gr_unittest

from unitocom_testing import message_collector, pdu, pdu_source, run_flowgraph

from gnuradio.unitocom import block_fading_channel, detokenizer, mllm_client, rx, tx  # noqa: E402
from gnuradio.unitocom.data import vocab  # noqa: E402
from gnuradio.unitocom.mllm import layout, schema  # noqa: E402
from gnuradio.unitocom.mllm.requests import SessionTable  # noqa: E402

FAST = dict(timeout_s=0.5, max_retries=3, backoff_s=0.02)          # keeps failing tests short


def answer(info, arrays):
    """The fake server's deterministic result: (text, ids) or image tokens (32, 16)."""
    task = info["task"]
    if task == "t2i":
        base = np.arange(layout.IMAGE_TOKENS * layout.TOKEN_DIM, dtype=np.float32).reshape(32, 16) / 512
        return base + np.float32(arrays["caption_ids"].sum() / 100)
    if task == "vqa":
        word = vocab.WORDS[int(arrays["question_ids"].sum() + round(float(arrays["image_tokens"][0, 0]) * 10))
                           % len(vocab.WORDS)]
    elif task == "dsc":
        word = vocab.WORDS[int(round(float(np.abs(arrays["image_tokens"]).sum()))) % len(vocab.WORDS)]
    else:
        word = vocab.NUMBERS[len(arrays["audio_tokens"]) % len(vocab.NUMBERS)]
    return word, [vocab.TOKEN_ID[word]]


TRACE = "small red metal cube"


class FakeServer:
    def __init__(self, delay=None, busy=0, silent=False, curve_secret=None, refuse=False):
        self.delay, self.busy, self.silent, self.curve_secret = delay or (lambda info: 0.0), busy, silent, curve_secret
        self.refuse = refuse
        self.port, self.requests, self.answered = None, [], 0
        self._lock, self._thread = threading.Lock(), None

    @property
    def address(self):
        return f"tcp://127.0.0.1:{self.port}"

    def start(self):
        self._stop, ready = threading.Event(), threading.Event()
        self._thread = threading.Thread(target=self._serve, args=(ready,), daemon=True)
        self._thread.start()
        assert ready.wait(10)
        return self

    def stop(self):
        self._stop.set()
        self._thread.join(10)
        return True                      # usable as a pdu_source gate

    def _serve(self, ready):
        sock = zmq.Context.instance().socket(zmq.ROUTER)
        sock.setsockopt(zmq.LINGER, 0)
        if self.curve_secret:
            sock.curve_server, sock.curve_secretkey = True, self.curve_secret
        sock.bind(f"tcp://127.0.0.1:{self.port or '*'}")
        self.port = int(sock.last_endpoint.decode().rsplit(":", 1)[1])
        ready.set()
        later = []                                         # (due, frames)
        while not self._stop.is_set():
            wait = min([0.02] + [due - time.monotonic() for due, _ in later])
            if sock.poll(max(0, int(wait * 1000))):
                frames = sock.recv_multipart()
                later += self._handle(frames[0], frames[1:])
            now = time.monotonic()
            for item in sorted((x for x in later if x[0] <= now), key=lambda x: x[0]):
                sock.send_multipart(item[1])
                later.remove(item)
        sock.close(0)

    def _handle(self, ident, body):
        try:
            info, arrays = schema.decode_request(body)
        except schema.SchemaError as exc:
            return [(0.0, [ident] + schema.error_reply(schema.peek_header(body), exc))]
        with self._lock:
            self.requests.append((info, arrays))
            busy = len(self.requests) <= self.busy
        if busy:
            return [(0.0, [ident] + schema.encode_reply(info, "busy", error="all queues are full"))]
        if self.silent:
            return []
        if self.refuse:
            return [(0.0, [ident] + schema.encode_reply(info, "error", error="a prompt too long for the model"))]
        result = answer(info, arrays)
        fields = {"image_tokens": result} if info["task"] == "t2i" else {"text": result[0], "ids": result[1]}
        if info["task"] == "vqa":                            # as a model with traces replies
            fields["trace"] = TRACE
        reply = schema.encode_reply(info, "ok", timing={"queue_ms": 1.0, "compute_ms": 2.0, "batch": 1},
                                    model="fake-mllm", **fields)
        self.answered += 1
        return [(time.monotonic() + self.delay(info), [ident] + reply)]


_RNG = np.random.default_rng(0)
IMAGES = [_RNG.standard_normal(512).astype(np.float32) for _ in range(4)]


def image_pdu(session, k=0, task=None, **meta):
    meta = dict(modality="image", session_id=session, n_tokens=32, token_dim=16, snr_db=12.0, frame_id=100 + k,
                model_id="image_tokenizer_s32-genib-e5deba52", **meta)
    return pdu(dict(meta, task=task) if task else meta, IMAGES[k])


def text_pdu(session, sentence, task=None, **meta):
    meta = dict(modality="text", session_id=session, n_tokens=len(vocab.encode(sentence)), snr_db=8.0, **meta)
    return pdu(dict(meta, task=task) if task else meta, np.asarray(vocab.encode(sentence), np.int32))


def audio_pdu(session, n_tokens, task=None, **meta):
    meta = dict(modality="audio", session_id=session, n_tokens=n_tokens, token_dim=16, **meta)
    return pdu(dict(meta, task=task) if task else meta, np.ones(n_tokens * 16, np.float32))


def run_client(client, messages, timeout=60.0):
    """pdu_source(messages) → client → collectors until the flowgraph ends by itself; (results, errors) PDUs."""
    tb = gr.top_block()
    src, results, errors = pdu_source(messages), message_collector(), message_collector()
    tb.msg_connect(src, "out", client, "tokens")
    tb.msg_connect(client, "result", results, "in")
    tb.msg_connect(client, "errors", errors, "in")
    run_flowgraph(tb, timeout)
    return results.pdus(), errors.pdus()


class qa_mllm_client(gr_unittest.TestCase):

    def test_arguments(self):
        mllm_client()
        bad = [{"timeout_s": 0}, {"timeout_s": float("nan")}, {"max_retries": -1}, {"max_retries": 1.5},
               {"backoff_s": -1}, {"backoff_s": 31}, {"queue_size": 0}, {"max_words": 257}, {"steps": -1},
               {"sources": 0}, {"address": "nonsense"}, {"address": 5555}, {"server_key": "abc"},
               {"client_key": "/nonexistent.key_secret", "server_key": "x" * 40}]
        for kwargs in bad:
            with self.assertRaises(ValueError, msg=str(kwargs)):
                mllm_client(**kwargs)

    def test_requests_are_formed_per_session(self):
        table = SessionTable(max_sessions=3, max_waiting=2)
        q = "is there a red cube?"
        reqs, orphans = table.add(text_pdu(1, q, "vqa", q=0))          # a question waits for its image
        self.assertEqual((reqs, orphans), ([], []))
        reqs, _ = table.add(image_pdu(1, 0, "vqa"))
        self.assertEqual([(r.session, r.task) for r in reqs], [(1, "vqa")])
        np.testing.assert_array_equal(reqs[0].arrays["question_ids"], vocab.encode(q))
        self.assertEqual(reqs[0].arrays["question_ids"].dtype, np.int64)
        np.testing.assert_array_equal(reqs[0].arrays["image_tokens"], IMAGES[0].reshape(32, 16))
        meta = pmt.to_python(reqs[0].meta)
        self.assertEqual((meta["session_id"], meta["task"], meta["q"], meta["snr_db"], meta["image_frame_id"]),
                         (1, "vqa", 0, 8.0, 100))                      # the lower SNR of the two PDUs
        self.assertFalse({"modality", "n_tokens", "model_id"} & set(meta))
        self.assertEqual(reqs[0].csi["image"]["model_id"], "image_tokenizer_s32-genib-e5deba52")
        reqs, _ = table.add(text_pdu(1, "what color is it?"))          # no task, the session has an image: vqa
        self.assertEqual([r.task for r in reqs], ["vqa"])
        for msg, task, names in [(image_pdu(2, 1, "dsc"), "dsc", ["image_tokens"]),
                                 (text_pdu(3, "a small cube", "t2i"), "t2i", ["caption_ids"]),
                                 (text_pdu(4, "a large sphere"), "t2i", ["caption_ids"]),     # no image: t2i
                                 (audio_pdu(5, 7), "asr", ["audio_tokens"])]:
            reqs, _ = table.add(msg)
            self.assertEqual([(r.task, sorted(r.arrays)) for r in reqs], [(task, names)])
        self.assertEqual(table.add(image_pdu(6, 2))[0], [])              # an image without task: kept, no request
        table.add(text_pdu(7, q, "vqa", q=1))
        table.add(text_pdu(7, q, "vqa", q=2))
        reqs, orphans = table.add(text_pdu(7, q, "vqa", q=3))         # a third waiting question: the first goes
        self.assertEqual([(pmt.to_python(r.meta)["q"], "questions waited" in why) for r, why in orphans], [(1, True)])
        reqs, orphans = table.add(audio_pdu(8, 1))                      # a fourth session: the oldest is forgotten
        self.assertEqual(len(reqs), 1)
        self.assertEqual([pmt.to_python(r.meta)["q"] for r, _ in table.close()], [2, 3])

        bad = [pdu({"modality": "image", "session_id": 1}, np.zeros(511, np.float32)),
               pdu({"modality": "image", "token_dim": 4}, np.zeros(512, np.float32)),
               pdu({"modality": "image", "session_id": -1}, np.zeros(512, np.float32)),
               pdu({"modality": "image", "session_id": 1, "task": "t2i"}, np.zeros(512, np.float32)),
               pdu({"modality": "image", "task": "sing"}, np.zeros(512, np.float32)),
               pdu({"modality": "image"}, np.full(512, np.nan, np.float32)),
               pdu({"modality": "text"}, np.array([1, 64], np.int32)),
               pdu({"modality": "text"}, np.zeros(0, np.int32)),
               pdu({"modality": "text", "task": "asr"}, np.array([1, 2], np.int32)),
               pdu({"modality": "audio"}, np.zeros(17, np.float32)),
               pdu({"modality": "audio"}, np.zeros(1502 * 16, np.float32)),
               pdu({"modality": "video"}, np.zeros(512, np.float32)),
               pdu({}, np.zeros(512, np.float32)), pmt.intern("x"), pmt.cons(pmt.PMT_T, pmt.PMT_T)]
        for msg in bad:
            with self.assertRaises(ValueError, msg=pmt.write_string(msg)[:80]):
                SessionTable().add(msg)

    def test_results_of_every_task(self):
        server = FakeServer().start()
        client = mllm_client(server.address, max_words=6, steps=20, **FAST)
        garbage = [pmt.intern("x"), pdu({"modality": "image"}, np.zeros(5, np.float32)), pmt.PMT_NIL]
        msgs = [text_pdu(1, "is there a red cube?", "vqa", q=0), garbage[0], image_pdu(1, 0, "vqa"),
                image_pdu(2, 1, "dsc", q=1), garbage[1], text_pdu(3, "a small red cube", "t2i", q=2),
                audio_pdu(4, 9, q=3), text_pdu(1, "how many spheres are there?", q=4), garbage[2]]
        results, errors = run_client(client, msgs)
        server.stop()
        self.assertEqual(errors, [])
        self.assertEqual(len(server.requests), 5)
        got = {meta["q"]: (meta, vec) for meta, vec in results}
        self.assertEqual(sorted(got), [0, 1, 2, 3, 4])
        for (info, arrays) in server.requests:         # each task gets the settings it takes (server rule)
            self.assertEqual(info["gen"], {"steps": 20} if info["task"] == "t2i" else {"max_words": 6})
            self.assertEqual(info["deadline_ms"], 500.0)
        for q, task in enumerate(["vqa", "dsc", "t2i", "asr", "vqa"]):
            meta, vec = got[q]
            self.assertEqual((meta["task"], meta["status"], meta["model"], meta["attempts"]), (task, "ok", "fake-mllm", 1))
            self.assertEqual((meta["queue_ms"], meta["compute_ms"]), (1.0, 2.0))
            self.assertTrue(0 <= meta["latency_s"] < 30 and meta["request_id"])
            info, arrays = next((i, a) for i, a in server.requests if i["id"] == meta["request_id"])
            self.assertEqual((info["session"], meta["session_id"]), ({0: 1, 1: 2, 2: 3, 3: 4, 4: 1}[q],) * 2)
            if task == "t2i":
                self.assertEqual((vec.dtype, vec.shape, meta["modality"], meta["n_tokens"], meta["token_dim"]),
                                 (np.float32, (512,), "image", 32, 16))
                np.testing.assert_array_equal(vec, answer(info, arrays).ravel())
            else:
                text, ids = answer(info, arrays)
                self.assertEqual((meta["text"], meta["modality"], vec.dtype, vec.tolist()), (text, "text", np.int32, ids))
                self.assertEqual(meta.get("trace"), TRACE if task == "vqa" else None)
        self.assertEqual(got[0][0]["snr_db"], 8.0)
        self.assertEqual(got[1][0]["frame_id"], 101)

    def test_results_come_back_in_order_per_session(self):
        # session 1's first request is answered last; its later ones wait for it, session 2 does not
        server = FakeServer(delay=lambda info: 0.6 if info["session"] == 1 and info["task"] == "dsc" else 0.0).start()
        client = mllm_client(server.address, timeout_s=5.0)
        msgs = [image_pdu(1, 0, "dsc", q=0)] + [text_pdu(1, "a cube", "t2i", q=k) for k in (1, 2, 3)] \
            + [text_pdu(2, "a sphere", "t2i", q=k) for k in (10, 11)]
        results, errors = run_client(client, msgs)
        server.stop()
        order = [meta["q"] for meta, _ in results]
        self.assertEqual((errors, [q for q in order if q < 10], [q for q in order if q >= 10]), ([], [0, 1, 2, 3], [10, 11]))
        self.assertLess(order.index(11), order.index(0))          # session 2 did not wait for session 1

    def test_busy_server_gives_error_pdus_and_retries_with_backoff(self):
        server = FakeServer(busy=2).start()
        client = mllm_client(server.address, timeout_s=2.0, max_retries=3, backoff_s=0.05)
        results, errors = run_client(client, [text_pdu(1, "a cube", "t2i", q=0)])
        server.stop()
        self.assertEqual([(m["status"], m["attempt"], m["final"], m["retry_in_s"], m["session_id"], m["q"])
                          for m, _ in errors], [("busy", 1, False, 0.05, 1, 0), ("busy", 2, False, 0.1, 1, 0)])
        self.assertTrue(all(v.dtype == np.uint8 and len(v) == 0 and m["task"] == "t2i" for m, v in errors))
        self.assertEqual([(m["status"], m["attempts"]) for m, _ in results], [("ok", 3)])

    def test_a_refused_request_is_not_sent_again(self):
        server = FakeServer(refuse=True).start()
        client = mllm_client(server.address, timeout_s=2.0, max_retries=3, backoff_s=0.01)
        results, errors = run_client(client, [text_pdu(1, "a cube", "t2i", q=0)])
        server.stop()
        self.assertEqual(results, [])
        self.assertEqual([(m["status"], m["attempt"], m["final"]) for m, _ in errors], [("error", 1, True)])
        self.assertIn("too long", errors[0][0]["error"])
        self.assertEqual(len(server.requests), 1)

    def test_gives_up_after_max_retries_in_order(self):
        server = FakeServer(silent=True).start()
        client = mllm_client(server.address, timeout_s=0.2, max_retries=1, backoff_s=0.01)
        t0 = time.monotonic()
        results, errors = run_client(client, [text_pdu(1, "a cube", "t2i", q=k) for k in range(3)])
        server.stop()
        self.assertLess(time.monotonic() - t0, 30)
        self.assertEqual(results, [])
        final = [(m["q"], m["status"], m["attempt"]) for m, _ in errors if m["final"]]
        self.assertEqual(final, [(0, "timeout", 2), (1, "timeout", 2), (2, "timeout", 2)])
        self.assertEqual(sum(not m["final"] for m, _ in errors), 3)
        self.assertEqual(len(server.requests), 6)

    def test_full_queue_refuses_at_once(self):
        server = FakeServer(delay=lambda info: 0.3).start()
        client = mllm_client(server.address, timeout_s=5.0, queue_size=2)
        results, errors = run_client(client, [text_pdu(k, "a cube", "t2i", q=k) for k in range(5)])
        server.stop()
        self.assertEqual(sorted(m["q"] for m, _ in results), [0, 1])
        self.assertEqual(sorted((m["q"], m["status"], m["final"]) for m, _ in errors),
                         [(k, "refused", True) for k in (2, 3, 4)])

    def test_server_down_at_start_then_up(self):
        server = FakeServer()
        server.port = _free_port()
        client = mllm_client(server.address, timeout_s=0.3, max_retries=50, backoff_s=0.05)
        tb = gr.top_block()
        errors, results = message_collector(), message_collector()
        src = pdu_source([text_pdu(1, "a cube", "t2i", q=k) for k in range(3)]
                         + [lambda: errors.wait(2, 10) and bool(server.start())])   # up after two error PDUs
        tb.msg_connect(src, "out", client, "tokens")
        tb.msg_connect(client, "result", results, "in")
        tb.msg_connect(client, "errors", errors, "in")
        run_flowgraph(tb, 60)
        server.stop()
        self.assertEqual([m["q"] for m, _ in results.pdus()], [0, 1, 2])
        self.assertTrue(all(m["status"] in ("unreachable", "timeout") and not m["final"] for m, _ in errors.pdus()))

    def test_server_killed_and_restarted_mid_stream(self):
        server = FakeServer(delay=lambda info: 0.05).start()
        client = mllm_client(server.address, timeout_s=0.3, max_retries=50, backoff_s=0.05)
        tb = gr.top_block()
        errors, results = message_collector(), message_collector()
        first = [text_pdu(k % 2, "a cube", "t2i", q=k) for k in range(2)]
        middle = [text_pdu(k % 2, "a cube", "t2i", q=k) for k in range(2, 5)]
        last = [text_pdu(k % 2, "a cube", "t2i", q=k) for k in range(5, 8)]
        src = pdu_source(first + [lambda: results.wait(2, 10) and server.stop()] + middle
                         + [lambda: errors.wait(3, 10) and bool(server.start())] + last)
        tb.msg_connect(src, "out", client, "tokens")
        tb.msg_connect(client, "result", results, "in")
        tb.msg_connect(client, "errors", errors, "in")
        run_flowgraph(tb, 60)
        server.stop()
        self.assertEqual(src.gate_timeouts, [])
        order = [m["q"] for m, _ in results.pdus()]
        self.assertEqual(sorted(order), list(range(8)))                    # every request answered once
        for session in (0, 1):                                              # in order per session
            self.assertEqual([q for q in order if q % 2 == session], list(range(session, 8, 2)))
        self.assertTrue(errors.pdus() and all(not m["final"] and m["status"] in ("unreachable", "timeout")
                                              for m, _ in errors.pdus()))

    def test_curve(self):
        public, secret = zmq.curve_keypair()
        server = FakeServer(curve_secret=secret).start()
        results, errors = run_client(mllm_client(server.address, public.decode(), **FAST), [audio_pdu(3, 4, q=0)])
        self.assertEqual(([m["q"] for m, _ in results], errors), ([0], []))
        other, _ = zmq.curve_keypair()                                      # the wrong server key: never served
        results, errors = run_client(mllm_client(server.address, other.decode(), timeout_s=0.2, max_retries=1,
                                                 backoff_s=0.01), [audio_pdu(3, 4, q=0)])
        server.stop()
        self.assertEqual((results, [m["final"] for m, _ in errors]), ([], [False, True]))
        self.assertTrue(all(m["status"] in ("unreachable", "timeout") for m, _ in errors))

    def test_waits_for_all_its_sources(self):
        server = FakeServer().start()
        client = mllm_client(server.address, sources=2, **FAST)
        tb = gr.top_block()
        images = pdu_source([image_pdu(s, s, "vqa") for s in range(3)])
        gate = threading.Event()
        questions = pdu_source([gate.wait] + [text_pdu(s, "is it red?", "vqa", q=s) for s in range(3)]
                               + [text_pdu(9, "is it red?", "vqa", q=9)])      # never gets an image
        results, errors = message_collector(), message_collector()
        tb.msg_connect(images, "out", client, "tokens")
        tb.msg_connect(questions, "out", client, "tokens")
        tb.msg_connect(client, "result", results, "in")
        tb.msg_connect(client, "errors", errors, "in")
        threading.Timer(0.3, gate.set).start()                  # the questions come after the images' "done"
        run_flowgraph(tb, 60)
        server.stop()
        self.assertEqual(sorted(m["q"] for m, _ in results.pdus()), [0, 1, 2])
        self.assertEqual([(m["q"], m["status"], m["final"]) for m, _ in errors.pdus()], [(9, "incomplete", True)])

    def test_links_from_tx_to_results(self):
        # an image and a question of session 4 cross their own tx → channel → rx links, tx tagging the
        # session and task; the question goes to the server as the text JSCC delivered it
        question = "is there a red cube?"
        image = np.random.default_rng(3).integers(0, 256, 12288).astype(np.uint8)
        server = FakeServer().start()
        client = mllm_client(server.address, sources=2, **FAST)
        tb = gr.top_block()
        results, tokens = message_collector(), {}          # a collector per rx: each ends at its first "done"
        links = []
        for modality, msg in (("image", pdu({"frame_id": 7}, image)),
                              ("text", pdu({}, np.frombuffer(question.encode(), np.uint8)))):
            src = pdu_source([msg])
            transmitter = tx(modality, rate=8, snr_db=20.0, device="cpu", session_id=4, task="vqa")
            channel = block_fading_channel("awgn", 20.0, 0, 0.0, 1.0, 1, "packet_len")
            receiver = rx(modality, snr_db=20.0, device="cpu")
            tb.msg_connect(src, "out", transmitter, "pdu")
            tb.connect(transmitter, channel, receiver)
            tb.msg_connect(receiver, "tokens", client, "tokens")
            tokens[modality] = message_collector()
            tb.msg_connect(receiver, "tokens", tokens[modality], "in")
            links += [src, transmitter, channel, receiver]               # Python blocks: keep references
        tb.msg_connect(client, "result", results, "in")
        run_flowgraph(tb, 120)
        server.stop()
        (info, arrays), = server.requests
        self.assertEqual((info["session"], info["task"]), (4, "vqa"))
        received = {modality: c.pdus()[0][1] for modality, c in tokens.items()}
        np.testing.assert_array_equal(arrays["question_ids"], received["text"])      # <bos> … <eos>, as received
        self.assertEqual((received["text"][0], received["text"][-1], len(received["text"])),
                         (vocab.BOS, vocab.EOS, len(vocab.encode(question))))
        np.testing.assert_array_equal(arrays["image_tokens"], received["image"].reshape(32, 16))
        (meta, ids), = results.pdus()
        self.assertEqual((meta["session_id"], meta["task"], meta["text"], ids.tolist(), meta["image_frame_id"]),
                         (4, "vqa", answer(info, arrays)[0], answer(info, arrays)[1], 7))

    def test_generated_image_tokens_become_pixels(self):
        caption = "a small red metal cube"
        server = FakeServer().start()
        client = mllm_client(server.address, **FAST)
        tb = gr.top_block()
        src = pdu_source([pdu({}, np.frombuffer(caption.encode(), np.uint8))])
        transmitter = tx("text", rate=8, snr_db=20.0, device="cpu", session_id=11, task="t2i")
        channel = block_fading_channel("awgn", 20.0, 0, 0.0, 1.0, 1, "packet_len")
        receiver, pixels, images = rx("text", snr_db=20.0, device="cpu"), detokenizer("image", device="cpu"), \
            message_collector()
        tb.msg_connect(src, "out", transmitter, "pdu")
        tb.connect(transmitter, channel, receiver)
        tb.msg_connect(receiver, "tokens", client, "tokens")
        tb.msg_connect(client, "result", pixels, "tokens")
        tb.msg_connect(pixels, "pdu", images, "in")
        run_flowgraph(tb, 120)
        server.stop()
        (meta, img), = images.pdus()
        self.assertEqual((meta["session_id"], meta["task"], meta["width"], img.dtype, img.shape),
                         (11, "t2i", 64, np.uint8, (12288,)))


def _free_port():
    sock = zmq.Context.instance().socket(zmq.ROUTER)
    sock.bind("tcp://127.0.0.1:*")
    port = int(sock.last_endpoint.decode().rsplit(":", 1)[1])
    sock.close(0)
    return port


if __name__ == "__main__":
    gr_unittest.run(qa_mllm_client)
