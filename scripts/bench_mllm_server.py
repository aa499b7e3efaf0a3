#!/usr/bin/env python3
"""Requests/s and latency (p50/p99) of the MLLM server per task against the number of clients (1, 8, 32).

    ./unitocom python scripts/bench_mllm_server.py [--seconds 3] [--clients 1 8 32] [--threads 1]
                                                   [--model-dir DIR | --files F F F F] [--t2i-steps 10]

The server runs as a child process (``./unitocom serve``, CPU or CUDA as it
finds), the clients in this one: ``Client`` objects driven from one thread,
closed loop (each client has one request in flight and sends the next when
its reply comes). It prints, measured side by side in one run:

* per task and number of clients: requests/s, latency p50/p99, the mean
  batch the server ran;
* batched over single: vqa throughput at the most clients with
  ``--max-batch 32`` over the same with ``--max-batch 1``, and the engine
  alone (``MLLM.answer`` on 32 items at once over 32 calls of one item);
* the overhead of ZeroMQ + the schema: one client's vqa latency through
  the server (window 0) minus the engine's own latency for one item, and a
  ``health`` round trip (transport + schema, no model).

Without ``--model-dir``/``--files`` it uses the shipped
``mllm_*`` graphs, or, when none is shipped, exports random weights at the
trained model's size (``--random full``: ``onnx_export.mllm.model.Config``'s
defaults, the same compute per token; answers are noise) or the tiny test
model (``--random tiny``), with torch. A benchmark, not a test: the numbers depend
on the machine and its load.
"""
import argparse
import collections
import os
import socket
import sys
import tempfile
import time

import numpy as np
import zmq

from gnuradio.unitocom.mllm import engine, schema, server
from gnuradio.unitocom.mllm.batcher import engine_device
from gnuradio.unitocom.mllm.client import Client

TASKS = ("vqa", "dsc", "asr", "t2i")
QUESTION = np.array([1, 10, 11, 12, 2], np.int64)


def model_files(args, tmp):
    """{graph: path}: --files, --model-dir, the shipped model, or a tiny random export."""
    if args.files:
        return server.files_from_list(args.files), "given files"
    if args.model_dir:
        return server.files_in(args.model_dir, variant=args.variant), f"{args.model_dir}"
    try:
        return engine.find_files("mllm", args.variant), "shipped model"
    except ValueError:
        import dataclasses

        import torch
        from onnx_export.mllm import export
        from onnx_export.mllm.model import Config
        from onnx_export.mllm.testing import tiny_model
        torch.set_num_threads(1)
        sizes = dataclasses.asdict(Config()) if args.random == "full" else {}
        what = ("RANDOM weights at the trained model's size (Config defaults; none shipped)" if sizes
                else "TINY RANDOM model (none shipped)")
        return export.export_all(tiny_model(seed=3, **sizes), tmp, args.random), what


def free_address():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"tcp://127.0.0.1:{s.getsockname()[1]}"


def start_server(files, threads, *extra):
    address = free_address()
    argv = ["--files", *map(str, files.values()), "--threads", str(threads), "--quiet", *map(str, extra)]
    return server.spawn(argv, address, timeout_s=120), address


def stop_server(proc):
    proc.terminate()
    proc.wait(30)


def request(task, rng, t2i_steps):
    """(arrays, gen) of one request of ``task``."""
    if task == "vqa":
        return {"image_tokens": rng.standard_normal((32, 16), np.float32), "question_ids": QUESTION}, \
            {"max_words": 4}
    if task == "dsc":
        return {"image_tokens": rng.standard_normal((32, 16), np.float32)}, {"max_words": 8}
    if task == "asr":
        return {"audio_tokens": rng.standard_normal((50, 16), np.float32)}, {"max_words": 8}
    return {"caption_ids": QUESTION}, {"steps": t2i_steps}


def load(address, n_clients, make, seconds=None, total=None, depth=1, timeout_s=60.0):
    """Closed-loop load from ``n_clients`` clients (``depth`` requests in flight each) for ``seconds`` or
    ``total`` requests; ``make(k, i) → (task, arrays, gen)``. Returns (replies by id, latencies, seconds)."""
    clients = [Client(address, timeout_s=timeout_s, id_prefix=f"c{k}") for k in range(n_clients)]
    for c in clients:
        assert c.wait_connected(10), "no connection to the server"
    sent, replies, lat = {}, {}, {}
    count = [0] * n_clients
    n_sent = 0
    t0 = time.perf_counter()

    def more():
        if total is not None:
            return n_sent < total
        return time.perf_counter() - t0 < seconds

    def send(k):
        nonlocal n_sent
        task, arrays, gen = make(k, count[k])
        count[k] += 1
        n_sent += 1
        sent[clients[k].submit(task, arrays, gen=gen)] = time.perf_counter()

    for k in range(n_clients):
        for _ in range(depth):
            if more():
                send(k)
    poller = zmq.Poller()
    for c in clients:
        poller.register(c.sock, zmq.POLLIN)
    while len(replies) < len(sent):
        poller.poll(50)
        for k, c in enumerate(clients):
            for r in c.poll(0):
                now = time.perf_counter()
                if r.id in replies:
                    raise AssertionError(f"a second reply for {r.id}")
                replies[r.id] = r
                lat[r.id] = now - sent[r.id]
                if more():
                    send(k)
    dt = time.perf_counter() - t0
    for c in clients:
        c.close()
    return sent, replies, lat, dt


def health(address):
    with Client(address, timeout_s=5) as c:
        return c.health(5)


def batches(h):
    return sum(h["batch_hist"].values()), sum(int(k) * v for k, v in h["batch_hist"].items())


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=3.0, help="per (task, clients) point")
    p.add_argument("--clients", type=int, nargs="+", default=[1, 8, 32])
    p.add_argument("--tasks", nargs="+", default=list(TASKS), choices=TASKS)
    p.add_argument("--threads", type=int, default=1, help="the server's onnxruntime threads")
    p.add_argument("--t2i-steps", type=int, default=10)
    p.add_argument("--model-dir")
    p.add_argument("--files", nargs=4)
    p.add_argument("--variant", default="")
    p.add_argument("--random", choices=("full", "tiny"), default="full",
                   help="when no model is shipped or given: random weights at the trained size, or the tiny test model")
    args = p.parse_args(argv)
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        files, what = model_files(args, tmp)
        mllm = engine.MLLM(files=files, threads=args.threads, device="auto")
        device = engine_device(mllm)
        print(f"# MLLM server benchmark: {what} {mllm.model_id}, {device}, {args.threads} onnxruntime thread(s), "
              f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}")
        proc, address = start_server(files, args.threads)
        try:
            print(f"{'task':5} {'clients':>7} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'mean batch':>10}")
            for task in args.tasks:
                for n in args.clients:
                    h0 = health(address)
                    sent, replies, lat, dt = load(address, n, lambda k, i: (task, *request(task, rng, args.t2i_steps)),
                                                  seconds=args.seconds)
                    h1 = health(address)
                    lat = np.array(list(lat.values()))
                    bad = collections.Counter(r.status for r in replies.values() if not r.ok)
                    nb = [a - b for a, b in zip(batches(h1), batches(h0))]
                    print(f"{task:5} {n:7d} {len(replies) / dt:9.1f} {np.percentile(lat, 50) * 1e3:8.2f} "
                          f"{np.percentile(lat, 99) * 1e3:8.2f} {nb[1] / max(nb[0], 1):10.2f}"
                          + (f"  not ok: {dict(bad)}" if bad else ""), flush=True)
        finally:
            stop_server(proc)
        n = max(args.clients)
        vqa = lambda k, i: ("vqa", *request("vqa", rng, 0))        # noqa: E731
        rates = {}
        for max_batch in (32, 1):
            proc, address = start_server(files, args.threads, "--max-batch", max_batch)
            try:
                load(address, n, vqa, seconds=0.5)                    # warm up
                _, replies, _, dt = load(address, n, vqa, seconds=args.seconds)
                rates[max_batch] = len(replies) / dt
            finally:
                stop_server(proc)
        # the engine alone, and the overhead of the transport
        items = [request("vqa", rng, 0)[0] for _ in range(32)]
        images = np.stack([a["image_tokens"] for a in items])
        questions = [a["question_ids"] for a in items]
        mllm.answer(images, questions, max_words=4)
        t = time.perf_counter()
        reps = 0
        while time.perf_counter() - t < args.seconds:
            mllm.answer(images, questions, max_words=4)
            reps += 1
        batched = 32 * reps / (time.perf_counter() - t)
        single_lat = []
        t = time.perf_counter()
        while time.perf_counter() - t < args.seconds:
            a = items[len(single_lat) % 32]
            t1 = time.perf_counter()
            mllm.answer(a["image_tokens"][None], [a["question_ids"]], max_words=4)
            single_lat.append(time.perf_counter() - t1)
        single = len(single_lat) / (time.perf_counter() - t)
        proc, address = start_server(files, args.threads, "--window-ms", 0)
        try:
            _, replies1, lat1, _ = load(address, 1, vqa, seconds=args.seconds)
            _, _, lat_h, _ = load(address, 1, lambda k, i: ("health", None, None), seconds=1.0)
        finally:
            stop_server(proc)
        # what the request spent outside the model: the client's latency minus the server's queue + compute
        outside = np.array([lat1[i] * 1e3 - r.header["timing"]["queue_ms"] - r.header["timing"]["compute_ms"]
                            for i, r in replies1.items()])
        lat1, lat_h = np.array(list(lat1.values())), np.array(list(lat_h.values()))
        e50 = np.percentile(single_lat, 50) * 1e3
        # the schema alone: encode + decode of one vqa request and its reply, in this process
        arrays = items[0]
        t, reps = time.perf_counter(), 0
        while time.perf_counter() - t < 1.0:
            info, got = schema.decode_request(schema.encode_request("bench-1", "vqa", arrays, session=1,
                                                                    snr_db=5.0, gen={"max_words": 4}))
            schema.decode_reply(schema.encode_reply(info, "ok", text="yes", ids=[12],
                                                    timing={"queue_ms": 1.0, "compute_ms": 2.0, "batch": 1}))
            reps += 1
        schema_us = (time.perf_counter() - t) / reps * 1e6
        print(f"\nschema alone, vqa request + reply, encode + decode: {schema_us:.0f} us")
        print(f"batched over single, vqa, {n} clients: server max-batch 32 {rates[32]:.1f} req/s / max-batch 1 "
              f"{rates[1]:.1f} req/s = {rates[32] / rates[1]:.2f}x")
        print(f"batched over single, vqa, engine alone: 32 at once {batched:.1f} items/s / one at a time "
              f"{single:.1f} items/s = {batched / single:.2f}x")
        print(f"overhead of ZeroMQ + schema, vqa, 1 client, window 0: outside the model (client latency - server "
              f"queue - compute) p50 {np.percentile(outside, 50):.2f} ms, p99 {np.percentile(outside, 99):.2f} ms; "
              f"server p50 {np.percentile(lat1, 50) * 1e3:.2f} ms vs engine alone p50 {e50:.2f} ms "
              f"(other processes' load included); health round trip p50 {np.percentile(lat_h, 50) * 1e3:.2f} ms, "
              f"p99 {np.percentile(lat_h, 99) * 1e3:.2f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
