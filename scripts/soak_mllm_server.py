#!/usr/bin/env python3
"""Soak the MLLM server: 10⁵ requests from 8 clients, 1 % malformed — nothing lost, nothing duplicated, memory flat.

    ./unitocom python scripts/soak_mllm_server.py [--requests 100000] [--clients 8] [--malformed 0.01]
                                                  [--vanish 0.001] [--model-dir DIR | --files F F F F]

The server runs as a child process (``./unitocom serve``); the clients are
``Client`` objects in this process, driven from one thread, each keeping
``--depth`` requests in flight (vqa, dsc, asr, t2i in turn). A fraction
``--malformed`` of the requests are sent instead on a raw DEALER socket
beside each client, drawn from the malformed classes (wrong dtype, wrong
shape, byte count, NaN tokens, unknown task, unknown version, truncated
multipart, unknown setting, not JSON); a fraction ``--vanish`` is sent from
a socket closed right away (a client that vanishes mid-request). It checks
that every good request got exactly one reply, ``ok``, matched to its id;
every malformed one exactly one ``error`` (by id when it had one); and
reports the server's RSS (its health report) after the warm-up, every 10 %,
and at the end. Exit status 1 when anything was lost or duplicated, or RSS
grew by more than ``--rss-growth-mb``.

Without ``--model-dir``/``--files``: the shipped model, else the tiny random
test model (``--random tiny``, the default here: the soak is about the
server, not the model).
"""
import argparse
import collections
import json
import pathlib
import sys
import tempfile
import time

import numpy as np
import zmq

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from bench_mllm_server import health, model_files, request, start_server, stop_server  # noqa: E402

from gnuradio.unitocom.mllm import schema  # noqa: E402
from gnuradio.unitocom.mllm.client import Client  # noqa: E402

TASKS = ("vqa", "dsc", "asr", "t2i")


def malformed(kind, rid, rng):
    """Frames of a malformed request of class ``kind`` with id ``rid`` (None: the server cannot read an id)."""
    good = schema.encode_request(rid, "dsc", {"image_tokens": rng.standard_normal((32, 16), np.float32)})
    h = json.loads(good[0])
    if kind == "dtype":
        h["arrays"][0]["dtype"] = "float64"
    elif kind == "shape":
        h["arrays"][0]["shape"] = [16, 32]
    elif kind == "bytes":
        return [json.dumps(h).encode(), good[1][:-4]]
    elif kind == "nan":
        return [good[0], np.full((32, 16), np.nan, np.float32).tobytes()]
    elif kind == "task":
        h["task"] = "translate"
    elif kind == "version":
        h["v"] = 9
    elif kind == "truncated":
        return good[:1]
    elif kind == "setting":
        h["gen"] = {"beam_width": 3}
    elif kind == "json":
        return [b"{not json", good[1]]
    return [json.dumps(h).encode()] + good[1:]


KINDS = ("dtype", "shape", "bytes", "nan", "task", "version", "truncated", "setting", "json")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--requests", type=int, default=100_000)
    p.add_argument("--clients", type=int, default=8)
    p.add_argument("--depth", type=int, default=4, help="requests in flight per client")
    p.add_argument("--malformed", type=float, default=0.01)
    p.add_argument("--vanish", type=float, default=0.001)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--t2i-steps", type=int, default=2)
    p.add_argument("--rss-growth-mb", type=float, default=30.0)
    p.add_argument("--model-dir")
    p.add_argument("--files", nargs=4)
    p.add_argument("--variant", default="")
    p.add_argument("--random", choices=("full", "tiny"), default="tiny")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    ctx = zmq.Context.instance()
    with tempfile.TemporaryDirectory() as tmp:
        files, what = model_files(args, tmp)
        proc, address = start_server(files, args.threads)
        try:
            return soak(args, rng, ctx, address, what)
        finally:
            stop_server(proc)


def soak(args, rng, ctx, address, what):
    clients = [Client(address, timeout_s=120, id_prefix=f"s{k}") for k in range(args.clients)]
    raws = []
    for c in clients:
        assert c.wait_connected(10)
        raw = ctx.socket(zmq.DEALER)
        raw.setsockopt(zmq.LINGER, 0)
        raw.connect(address)
        raws.append(raw)
    poller = zmq.Poller()
    for c, raw in zip(clients, raws):
        poller.register(c.sock, zmq.POLLIN)
        poller.register(raw, zmq.POLLIN)
    good, bad = {}, {}                 # id → task / kind
    got_good, got_bad = collections.Counter(), collections.Counter()
    statuses, bad_statuses = collections.Counter(), collections.Counter()
    anonymous = {"sent": 0, "replies": 0}
    in_flight = [0] * args.clients
    n = vanished = 0
    rss = []
    warm = min(1000, args.requests // 10)
    t0 = time.perf_counter()

    def send(k):
        nonlocal n, vanished
        i = n
        n += 1
        u = rng.random()
        if u < args.malformed:
            kind = KINDS[i % len(KINDS)]
            rid = f"m{k}-{i}"
            raws[k].send_multipart(malformed(kind, rid, rng))
            if kind in ("json",):
                anonymous["sent"] += 1
            else:
                bad[rid] = kind
            in_flight[k] += 1
            return
        if u < args.malformed + args.vanish:          # a client that vanishes mid-request (not counted)
            gone = ctx.socket(zmq.DEALER)
            gone.setsockopt(zmq.LINGER, 0)
            gone.connect(address)
            gone.send_multipart(schema.encode_request(f"v-{i}", "dsc",
                                                      {"image_tokens": rng.standard_normal((32, 16), np.float32)}))
            time.sleep(0.001)
            gone.close(0)
            vanished += 1
        task = TASKS[i % len(TASKS)]
        arrays, gen = request(task, rng, args.t2i_steps)
        good[clients[k].submit(task, arrays, gen=gen)] = task
        in_flight[k] += 1

    for k in range(args.clients):
        for _ in range(args.depth):
            send(k)
    next_report = warm
    while sum(in_flight):
        poller.poll(100)
        for k, (c, raw) in enumerate(zip(clients, raws)):
            replies = c.poll(0)
            for r in replies:
                got_good[r.id] += 1
                statuses[r.status] += 1
            while True:
                try:
                    header, _ = schema.decode_reply(raw.recv_multipart(zmq.NOBLOCK))
                except zmq.Again:
                    break
                replies.append(None)
                bad_statuses[header["status"]] += 1
                if header.get("id") is None:
                    anonymous["replies"] += 1
                else:
                    got_bad[header["id"]] += 1
            for _ in replies:
                in_flight[k] -= 1
                if n < args.requests:
                    send(k)
        done = sum(got_good.values()) + sum(got_bad.values()) + anonymous["replies"]
        if done >= next_report:
            h = health(address)
            rss.append((done, h["rss_mb"]))
            print(f"{done:7d} answered, {done / (time.perf_counter() - t0):7.1f} req/s, server RSS "
                  f"{h['rss_mb']} MB, batches {sum(h['batch_hist'].values())}", flush=True)
            next_report = warm if done < warm else next_report + args.requests // 10
    dt = time.perf_counter() - t0
    h = health(address)
    rss.append((n, h["rss_mb"]))
    lost = [i for i in good if got_good[i] == 0] + [i for i in bad if got_bad[i] == 0]
    dup = [i for i, c in list(got_good.items()) + list(got_bad.items()) if c > 1]
    unknown = [i for i in got_good if i not in good] + [i for i in got_bad if i not in bad]
    late = sum(c.counts["late"] for c in clients)
    growth = rss[-1][1] - rss[0][1]
    print(f"\n# soak: {what}; {args.clients} clients x {args.depth} in flight, {dt:.0f} s, {n / dt:.0f} req/s")
    print(f"requests {n}: good {len(good)} ({dict(statuses)}), malformed {len(bad) + anonymous['sent']} "
          f"(replies {dict(bad_statuses)}), vanished clients {vanished} (server undeliverable "
          f"{h['undeliverable']})")
    print(f"lost {len(lost)}, duplicated {len(dup)}, unknown ids {len(unknown)}, late {late}, "
          f"anonymous errors {anonymous['replies']}/{anonymous['sent']}")
    print(f"server RSS after warm-up {rss[0][1]} MB at {rss[0][0]} requests, at the end {rss[-1][1]} MB "
          f"(growth {growth:+.1f} MB); samples {[m for _, m in rss]}")
    print(f"server: served {h['served']}, failed {h['failed']}, malformed {h['malformed']}, busy {h['busy']}, "
          f"timeouts {h['timeouts']}, batches {sum(h['batch_hist'].values())}, batch sizes {h['batch_hist']}")
    ok = (not lost and not dup and not unknown and late == 0 and statuses.get("ok", 0) == len(good)
          and anonymous["replies"] == anonymous["sent"] and set(bad_statuses) <= {"error"}
          and growth <= args.rss_growth_mb)
    print("PASS" if ok else "FAIL")
    for c in clients:
        c.close()
    for raw in raws:
        raw.close(0)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
