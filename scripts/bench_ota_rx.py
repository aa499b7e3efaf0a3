#!/usr/bin/env python3
"""Receive-chain throughput over the air, in Msample/s of baseband, side by side in one run.

    ./unitocom python scripts/bench_ota_rx.py [--frames 400] [--repeats 2] [--threads 1] [--gaps 0 2000 5000 …]

The same recorded baseband (N image bursts, 15 dB, CFO 0.1 carrier spacing,
3-tap multipath, ≈ 1,450 samples per frame back to back) goes through three
chains, each with the receiver's levers off ("before": one ``h`` tag per
symbol, float32 de-tokenizer, de-tokenizer batches of 32) and on ("after",
the defaults now):

* ``ofdm_rx``: S&C sync, LTS timing, CFO, header, channel/noise estimation, CSI tags → null sink;
* ``+ JSCC decoder``: ofdm_rx → jscc_decoder → token PDUs;
* ``+ de-tokenizer``: ofdm_rx → jscc_decoder → session_defaults → detokenizer → image PDUs
  (the blocks of ``rx``, built here so that each lever can be set).

Levers: the CSI as one vector ``h`` tag per frame instead of one per symbol
(``ofdm_rx(csi_tags=…)``); the int8 de-tokenizer (``image_detokenizer_int8_s32``,
made by scripts/quantize_rx_models.py); de-tokenizer calls of at most 8 images
(``rx.DETOKENIZER_BATCH``) instead of 32. ``--levers`` also runs the full
chain with all levers on but one, to show what each is worth.

Every chain is a flowgraph run as fast as it can: Msample/s = samples / wall
seconds (a B210 at 1 MS/s needs 1.0), frames/s likewise, and CPU ms per frame =
the process's CPU time (all threads) / frames, which is what load from other
programs changes least. Each figure is the best of ``--repeats`` runs.
``vs ofdm_rx`` compares with the chain without the JSCC decoder.

``--gaps`` then runs the traffic of an OTA flowgraph pair with ``ofdm_tx``'s
``gap`` zero samples after each burst, and reports whether its receive chain
keeps up with 1 MS/s (MS/s >= 1; the margin above 1 is what is left for UHD,
the OS and other programs): ``--traffic vqa`` = ota_image_tx → ota_image_rx
(an image and its question per sample; ofdm_rx → rx image → image_sink PNGs,
rx text), ``asr`` = ota_speech_tx → ota_speech_rx (a spoken question per
sample; rx audio with its Griffin–Lim vocoder), ``image`` = image frames
alone through the full chain above. The flowgraphs' default ``gap`` comes
from this (the README, "Throughput"). A benchmark, not a test: the numbers
depend on the machine and its load.
"""
import argparse
import dataclasses
import shutil
import tempfile
import time

import numpy as np
import pmt
from gnuradio import blocks, gr

from gnuradio.unitocom.apps import ota_loopback as ol
from gnuradio.unitocom.detokenizer import detokenizer
from gnuradio.unitocom.image_sink import image_sink
from gnuradio.unitocom.jscc_decoder import jscc_decoder
from gnuradio.unitocom.ofdm_rx import ofdm_rx
from gnuradio.unitocom.ofdm_tx import ofdm_tx
from gnuradio.unitocom.runtime import model_store
from gnuradio.unitocom.runtime.sessions import session_defaults
from gnuradio.unitocom.rx import DETOKENIZER_BATCH, rx
from gnuradio.unitocom.sample_source import sample_source
from gnuradio.unitocom.tx import tx

INT8_DETOKENIZER = "image_detokenizer_int8_s32"
CHAINS = ("ofdm_rx", "+ JSCC decoder", "+ de-tokenizer")


@dataclasses.dataclass(frozen=True)
class Levers:
    csi_tags: str = "frame"              # 'symbol': one h tag per symbol (before)
    detokenizer: str = INT8_DETOKENIZER  # '': the float32 default (before)
    batch: int = DETOKENIZER_BATCH       # 32: the detokenizer block's default (before)
    threads: int = 1                     # onnxruntime intra-op threads of decoder and de-tokenizer


def build(chain, lv):
    """(top block, ofdm_rx, message sink or None) of one chain with levers ``lv``, without its source."""
    tb = gr.top_block()
    o = ofdm_rx(csi_tags=lv.csi_tags)
    if chain == "ofdm_rx":
        tb.connect(o, blocks.null_sink(gr.sizeof_gr_complex))
        return tb, o, None, []
    dec = jscc_decoder("image", device="cpu", threads=lv.threads)
    sink = blocks.message_debug()
    tb.connect(o, dec)
    keep = [dec]                                            # Python blocks must outlive the run
    if chain == "+ JSCC decoder":
        tb.msg_connect(dec, "tokens", sink, "store")
        return tb, o, sink, keep
    ses = session_defaults()
    det = detokenizer("image", lv.detokenizer, "", dec.meta["tokenizer"], "cpu", lv.threads, lv.batch)
    tb.msg_connect(dec, "tokens", ses, "in")
    tb.msg_connect(ses, "out", det, "tokens")
    tb.msg_connect(det, "pdu", sink, "store")
    return tb, o, sink, keep + [ses, det]


def run(samples, chain, lv):
    """{msps, fps, cpu_ms, frames, out} of one run."""
    tb, o, sink, keep = build(chain, lv)
    src = blocks.vector_source_c(samples)
    tb.connect(src, o)
    c0, t0 = time.process_time(), time.perf_counter()
    tb.run()
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    frames = o.stats()["frames"]
    out = sink.num_messages() if sink is not None else frames
    del keep
    return dict(msps=len(samples) / wall / 1e6, fps=frames / wall, cpu_ms=cpu / max(frames, 1) * 1e3,
                frames=frames, out=out)


def best(samples, chain, lv, repeats):
    runs = [run(samples, chain, lv) for _ in range(repeats)]
    return dict(msps=max(r["msps"] for r in runs), fps=max(r["fps"] for r in runs),
                cpu_ms=min(r["cpu_ms"] for r in runs), frames=runs[0]["frames"], out=min(r["out"] for r in runs))


def fmt(r):
    return f"{r['msps']:6.3f} MS/s {r['fps']:5.0f} fr/s {r['cpu_ms']:5.2f} ms CPU/fr"


def received(bursts, n_frames, gap, seed=0):
    """Baseband of n_frames bursts with ``gap`` zero samples after each, through the loopback's channel (15 dB)."""
    z = np.zeros(gap, np.complex64)
    seq = [np.concatenate([bursts[i % len(bursts)], z]) for i in range(n_frames)]
    x, _ = ol.impair(seq, ol.Impairments(snr_db=15.0, max_gap=0, sro_ppm=0.0, seed=seed))
    return x


TRAFFIC = {"vqa": (("image", "text"), "vqa"), "asr": (("audio",), "asr")}


def traffic_bursts(traffic, n, gap):
    """The baseband an OTA TX flowgraph sends for n samples: ``sample_source`` → tx per modality → ofdm_tx(gap),
    one burst per modality and sample, interleaved (image, question, image, …), then the loopback's channel.

    One ofdm_tx per modality: with two inputs, ofdm_tx's framer stops when its first input ends (a
    message block ends on its first upstream "done"), so frames still in the slower image tx are lost."""
    mods, task = TRAFFIC[traffic]
    per_mod = []
    for m in mods:
        tb = gr.top_block()
        src = sample_source("test", 0, n, 0, task)
        t = tx(m, rate=8, snr_db=15.0, device="cpu", session_id=1, task=task)
        o, snk = ofdm_tx(gap=gap), blocks.vector_sink_c()
        tb.msg_connect(src, m, t, "pdu")
        tb.connect(t, o, snk)
        tb.run()
        y = np.array(snk.data(), np.complex64)
        starts = sorted(tg.offset for tg in snk.tags() if pmt.symbol_to_string(tg.key) == ol.LEN_KEY)
        bursts = [y[a:b] for a, b in zip(starts, starts[1:] + [len(y)])]
        short = int(np.median([len(q) for q in bursts])) - len(bursts[-1])   # a headless run ends in the last gap
        bursts[-1] = np.concatenate([bursts[-1], np.zeros(max(short, 0), np.complex64)])
        per_mod.append(bursts)
    seq = [b for group in zip(*per_mod) for b in group]
    x, _ = ol.impair([np.concatenate(seq)], ol.Impairments(snr_db=15.0, max_gap=0, sro_ppm=0.0))
    return x


def run_traffic(samples, traffic, lv, out_dir):
    """{msps, fps, cpu_ms, frames, out} of an OTA RX flowgraph's chain (no UHD) on ``samples``."""
    mods, _ = TRAFFIC[traffic]
    tb = gr.top_block()
    o = ofdm_rx(outputs=list(mods), csi_tags=lv.csi_tags)
    tb.connect(blocks.vector_source_c(samples), o)
    sinks, keep = [], []                                   # one sink each: a message block ends on its first upstream "done"
    for i, m in enumerate(mods):
        r = rx(m, "", lv.detokenizer if m == "image" else "", device="cpu", threads=lv.threads)
        tb.connect((o, i), r)
        if m == "image":                                   # as ota_image_rx: PNGs with PSNR
            snk = image_sink(out_dir, "bench")
            tb.msg_connect(r, "pdu", snk, "pdu")
            keep.append(snk)
        sinks.append(blocks.message_debug())
        tb.msg_connect(r, "pdu", sinks[-1], "store")
        keep.append(r)
    c0, t0 = time.process_time(), time.perf_counter()
    tb.run()
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    frames = o.stats()["frames"]
    return dict(msps=len(samples) / wall / 1e6, fps=frames / wall, cpu_ms=cpu / max(frames, 1) * 1e3,
                frames=frames, out=sum(k.num_messages() for k in sinks))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=400)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1, help="onnxruntime intra-op threads (decoder, de-tokenizer)")
    ap.add_argument("--levers", action="store_true", help="also the full chain with each lever alone turned off")
    ap.add_argument("--gaps", type=int, nargs="*", default=[], help="noise samples after each frame, for the 1 MS/s check")
    ap.add_argument("--gap-frames", type=int, default=150, help="samples (frames, or frame pairs) per --gaps run")
    ap.add_argument("--traffic", choices=("image", "vqa", "asr"), default="image", help="what --gaps sends")
    args = ap.parse_args()
    try:
        model_store.find(INT8_DETOKENIZER, "genib")
        int8 = INT8_DETOKENIZER
    except ValueError:
        int8 = ""
        print(f"({INT8_DETOKENIZER} not found: 'after' uses the float32 de-tokenizer)")
    before = Levers("symbol", "", 32, args.threads)
    after = Levers("frame", int8, DETOKENIZER_BATCH, args.threads)
    bursts = ol.transmit(ol.scenes(50))
    x = received(bursts, args.frames, 0)
    print(f"{len(x)} samples, {args.frames} image frames back to back ({len(x) / args.frames:.0f} samples/frame), "
          f"onnxruntime threads {args.threads}, best of {args.repeats}")
    res = {}
    for chain in CHAINS:
        for name, lv in (("before", before), ("after", after)):
            res[chain, name] = best(x, chain, lv, args.repeats)
    print(f"\n{'chain':16s} | {'before (levers off)':38s} | {'after (levers on)':38s} | after/before | "
          "MS/s vs ofdm_rx (before, after)")
    for chain in CHAINS:
        b, a = res[chain, "before"], res[chain, "after"]
        lost = "" if a["out"] == args.frames and b["out"] == args.frames else f"  (out: {b['out']}, {a['out']})"
        print(f"{chain:16s} | {fmt(b)} | {fmt(a)} | ×{a['msps'] / b['msps']:5.2f} MS/s, CPU ×{a['cpu_ms'] / b['cpu_ms']:.2f}"
              f" | {b['msps'] / res['ofdm_rx', 'before']['msps']:.2f}, {a['msps'] / res['ofdm_rx', 'after']['msps']:.2f}"
              + lost)
    if args.levers:
        print("\nfull chain, all levers on but one:")
        full = res["+ de-tokenizer", "after"]
        for label, lv in (("per-symbol h tags (csi_tags='symbol')", dataclasses.replace(after, csi_tags="symbol")),
                          ("float32 de-tokenizer", dataclasses.replace(after, detokenizer="")),
                          ("de-tokenizer batches of 32", dataclasses.replace(after, batch=32)),
                          ("1 onnxruntime thread" if args.threads > 1 else "2 onnxruntime threads",
                           dataclasses.replace(after, threads=1 if args.threads > 1 else 2))):
            r = best(x, "+ de-tokenizer", lv, args.repeats)
            print(f"  {label:40s} {fmt(r)} | all levers ×{full['msps'] / r['msps']:.2f} MS/s, "
                  f"CPU ×{full['cpu_ms'] / r['cpu_ms']:.2f}")
    if args.gaps:
        print(f"\n{args.traffic} traffic, {args.gap_frames} samples, 'gap' zeros after each burst, levers on; "
              "sustains 1 MS/s when MS/s >= 1:")
        out_dir = tempfile.mkdtemp(prefix="bench-ota-rx-")
        for gap in args.gaps:
            if args.traffic == "image":
                xg = received(bursts, args.gap_frames, gap)
                r = best(xg, "+ de-tokenizer", after, args.repeats)
            else:
                xg = traffic_bursts(args.traffic, args.gap_frames, gap)
                runs = [run_traffic(xg, args.traffic, after, out_dir) for _ in range(args.repeats)]
                r = dict(max(runs, key=lambda q: q["msps"]), cpu_ms=min(q["cpu_ms"] for q in runs))
            per = len(xg) / max(r["frames"], 1)
            print(f"  gap {gap:7d}: {r['frames']} frames, {per:7.0f} samples/frame = {1e6 / per:6.1f} frames/s at 1 MS/s | "
                  f"{fmt(r)} | {'sustains' if r['msps'] >= 1.0 else 'FALLS BEHIND'} 1 MS/s (×{r['msps']:.2f})"
                  + ("" if r["out"] == r["frames"] else f" [{r['out']} of {r['frames']} frames came out]"), flush=True)
        shutil.rmtree(out_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
