"""The whole UniToCom system: ``flowgraphs/sim/unitocom_e2e.grc`` against the MLLM server, with a report.

    ./unitocom demo [--snr-db 10] [--channel rayleigh] [--n 4] [--out demo_out] [--address tcp://127.0.0.1:5555]

Test-split samples (``sample_source``: an image with its question, a
caption, the question spoken) go through ``tx`` per modality →
``block_fading_channel`` → ``rx`` → ``mllm_client`` → the MLLM server,
exactly as the committed flowgraph wires them (compiled with grcc and
loaded; the demo only adds message taps to read what flows). When no
server answers at ``--address`` on this machine, one is started for the
demo (``python -m gnuradio.unitocom.mllm.server serve``) and stopped after.

Printed per sample: question, true and predicted answer; the spoken
sentence and its transcript; the caption. Written to ``--out``:
``images.png`` (per sample: the original scene, its reconstruction after
the link, the caption's corpus render and the image the MLLM generated
from the received caption), ``constellation.png`` (received image-link
symbols, equalised with the channel's CSI tags, next to the transmitted
ones), ``results.jsonl`` (every result PDU's metadata) and
``metrics.json`` (VQA accuracy, ASR word error rate, reconstruction PSNR,
request latencies, the server's model id and device).
"""
import argparse
import json
import pathlib
import threading
import time

import numpy as np
import pmt
from gnuradio import blocks, gr

from ..core import metrics
from ..data import corpus
from ..mllm import schema
from ..mllm.client import server_answers
from ..mllm.server import spawn
from . import flowgraph_runner

FLOWGRAPH = "sim/unitocom_e2e.grc"


class Collector(gr.basic_block):
    """Message sink that keeps every PDU as (metadata dict, numpy vector), thread-safe."""

    def __init__(self, name="collector"):
        gr.basic_block.__init__(self, name=name, in_sig=None, out_sig=None)
        self.items = []
        self._lock = threading.Lock()
        self.message_port_register_in(pmt.intern("in"))
        self.set_msg_handler(pmt.intern("in"), self.handle)

    def handle(self, msg):
        try:
            meta = pmt.to_python(pmt.car(msg)) or {}
            vec = pmt.cdr(msg)
            data = np.asarray(pmt.to_python(vec)) if pmt.is_uniform_vector(vec) else np.zeros(0)
        except Exception:                                  # noqa: BLE001 — a tap must never stop the graph
            return
        with self._lock:
            self.items.append((meta, data))


def _local(address):
    return address.startswith(("tcp://127.0.0.1:", "tcp://localhost:", "ipc://"))


def run(args):
    """Run the flowgraph with taps; returns a dict of what was collected."""
    py = flowgraph_runner.compile_flowgraph(flowgraph_runner.flowgraph_path(FLOWGRAPH),
                                            pathlib.Path(args.build) / "flowgraphs")
    cls = flowgraph_runner.load_flowgraph_class(py)
    tb = cls(snr_db=args.snr_db, channel_type=args.channel, n_samples=args.n, first=args.first, rate=args.rate,
             address=args.address, steps=args.steps, out_dir="", seed=args.seed)
    names = ("source_image", "source_text", "source_audio", "reconstructed", "results", "errors", "generated")
    taps = {name: Collector(name) for name in names}
    for port in ("image", "text", "audio"):           # one tap per port: GR 3.10.5 keeps one hier port per input
        tb.msg_connect(tb.source, port, taps[f"source_{port}"], "in")
    tb.msg_disconnect(tb.only_text, "pdus", tb.results, "print")      # the report below replaces the prints
    tb.msg_disconnect(tb.client, "errors", tb.errors, "print")
    tb.msg_connect(tb.rx_image, "pdu", taps["reconstructed"], "in")
    tb.msg_connect(tb.client, "result", taps["results"], "in")
    tb.msg_connect(tb.client, "errors", taps["errors"], "in")
    tb.msg_connect(tb.generated_pixels, "pdu", taps["generated"], "in")
    tx_symbols = blocks.vector_sink_c()
    rx_symbols = blocks.vector_sink_c()
    tb.connect(tb.tx_image, tx_symbols)
    tb.connect(tb.channel_image, rx_symbols)
    t0 = time.time()
    tb.run()
    seconds = time.time() - t0
    return {"taps": {k: v.items for k, v in taps.items()}, "tx": np.asarray(tx_symbols.data()),
            "rx": np.asarray(rx_symbols.data()), "rx_tags": rx_symbols.tags(), "seconds": seconds}


def _equalised(rx, tags):
    """Received symbols divided by the channel gain of their block (the ``h`` tags), and the gains."""
    h = np.ones(len(rx), np.complex64)
    marks = sorted((t.offset, complex(pmt.to_python(t.value))) for t in tags if pmt.symbol_to_string(t.key) == "h")
    for k, (offset, value) in enumerate(marks):
        end = marks[k + 1][0] if k + 1 < len(marks) else len(rx)
        h[offset:end] = value
    return rx / np.where(np.abs(h) > 1e-9, h, 1), h


def _image(vec):
    return np.asarray(vec, np.uint8).reshape(64, 64, 3) if np.asarray(vec).size == 64 * 64 * 3 else None


def report(collected, args, health):
    """Print the per-sample lines; write the figures, results.jsonl and metrics.json; return the metrics."""
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    taps = collected["taps"]
    sources = {}
    for meta, vec in taps["source_image"] + taps["source_text"] + taps["source_audio"]:
        sources.setdefault(meta.get("sample"), {})[(meta.get("task"), meta.get("modality"))] = (meta, vec)
    results = {(m.get("session_id"), m.get("task")): m for m, _ in taps["results"]}
    generated = {m.get("session_id"): _image(v) for m, v in taps["generated"]}
    recon = {m.get("scene_index"): _image(v) for m, v in taps["reconstructed"]}
    final_errors = [m for m, _ in taps["errors"] if m.get("final")]
    hits, refs, hyps, psnrs = [], [], [], []
    lat = {"vqa": [], "t2i": [], "asr": []}
    grid = []
    for i in sorted(k for k in sources if k is not None):
        s = sources[i]
        vq = s.get(("vqa", "image"))
        if vq:
            meta = vq[0]
            r = results.get((3 * i, "vqa"), {})
            pred = r.get("text", f"<{r.get('status', 'no result')}>")
            hits.append(pred == meta["answer"])
            saw = f"   (saw: {r['trace'] or 'nothing'})" if isinstance(r.get("trace"), str) else ""
            print(f"[{i}] Q: {meta['question']}\n    true answer: {meta['answer']:8s} MLLM: {pred}{saw}")
            if r:
                lat["vqa"].append(r.get("latency_s"))
        asr = s.get(("asr", "audio"))
        if asr:
            meta = asr[0]
            r = results.get((3 * i + 2, "asr"), {})
            hyp = r.get("text", "")
            refs.append(meta["transcript"].rstrip("?")), hyps.append(hyp.rstrip("?"))
            print(f"    spoken ({meta['speaker']}): {meta['transcript']}\n    transcript: {hyp or '<' + r.get('status', 'no result') + '>'}")
            if r:
                lat["asr"].append(r.get("latency_s"))
        t2i = s.get(("t2i", "text"))
        if t2i:
            meta = t2i[0]
            r = results.get((3 * i + 1, "t2i"), {})
            print(f"    caption: {meta['caption']}  -> image generated: {'yes' if generated.get(3 * i + 1) is not None else 'no'}")
            if r:
                lat["t2i"].append(r.get("latency_s"))
        scene = (vq or t2i or asr)[0]["scene_index"]
        original = _image(vq[1]) if vq else corpus.scene_image("test", scene, 0)
        item = corpus.make_item("test", scene, 0)
        rec = recon.get(scene)
        if rec is not None:
            psnrs.append(float(metrics.psnr(rec[None], original[None])[0]))
        blank = np.full((64, 64, 3), 255, np.uint8)
        grid.append([original, rec if rec is not None else blank, item["caption_image"],
                     generated.get(3 * i + 1) if generated.get(3 * i + 1) is not None else blank])
    wer = metrics.word_error_rate(refs, hyps) if refs else None
    summary = {"snr_db": args.snr_db, "channel": args.channel, "samples": len(grid), "rate": args.rate,
               "diffusion_steps": args.steps, "model": health.get("model"), "device": health.get("device"),
               "vqa_accuracy": round(float(np.mean(hits)), 4) if hits else None, "vqa_questions": len(hits),
               "asr_wer": round(wer, 4) if wer is not None else None, "asr_utterances": len(refs),
               "reconstruction_psnr_db": round(float(np.mean(psnrs)), 2) if psnrs else None,
               "latency_s": {k: round(float(np.median([x for x in v if x is not None])), 3) if v else None
                             for k, v in lat.items()},
               "results": len(taps["results"]), "final_errors": len(final_errors),
               "flowgraph_seconds": round(collected["seconds"], 1)}
    (out / "metrics.json").write_text(json.dumps(summary, indent=1) + "\n")
    with open(out / "results.jsonl", "w") as f:
        for meta, _ in taps["results"] + taps["errors"]:
            f.write(json.dumps({k: v for k, v in meta.items() if isinstance(v, (str, int, float, bool, type(None)))})
                    + "\n")
    _figures(out, grid, collected)
    print(f"[demo] VQA {summary['vqa_accuracy']} on {len(hits)} questions, ASR WER {summary['asr_wer']}, "
          f"reconstruction PSNR {summary['reconstruction_psnr_db']} dB, median latency {summary['latency_s']} s, "
          f"{len(final_errors)} failed requests; {args.channel} {args.snr_db:g} dB; files in {out}/")
    return summary


def _figures(out, grid, collected):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    if grid:
        fig, axes = plt.subplots(len(grid), 4, figsize=(6.4, 1.7 * len(grid)), squeeze=False)
        for r, row in enumerate(grid):
            for c, (img, title) in enumerate(zip(row, ("original", "received", "caption render", "MLLM t2i"))):
                axes[r, c].imshow(img, interpolation="nearest")
                axes[r, c].set_xticks([]), axes[r, c].set_yticks([])
                if r == 0:
                    axes[r, c].set_title(title, fontsize=8)
        fig.tight_layout()
        fig.savefig(out / "images.png", dpi=110)
        plt.close(fig)
    rx, tx = collected["rx"], collected["tx"]
    if len(rx):
        eq, _ = _equalised(rx, collected["rx_tags"])
        fig, (a, b) = plt.subplots(1, 2, figsize=(7, 3.4))
        a.plot(tx.real, tx.imag, ".", ms=2, alpha=0.5)
        a.set_title("transmitted (image link)", fontsize=9)
        b.plot(eq.real, eq.imag, ".", ms=2, alpha=0.5, color="C1")
        b.set_title("received, divided by h", fontsize=9)
        for ax in (a, b):
            ax.set_aspect("equal"), ax.set_xlim(-3, 3), ax.set_ylim(-3, 3), ax.grid(alpha=0.3)
        fig.tight_layout()
        fig.savefig(out / "constellation.png", dpi=110)
        plt.close(fig)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--snr-db", type=float, default=10.0)
    p.add_argument("--channel", default="rayleigh", choices=("awgn", "rayleigh", "rician"))
    p.add_argument("--n", type=int, default=4, help="samples (each: a vqa, a t2i and an asr request)")
    p.add_argument("--first", type=int, default=0, help="first test scene")
    p.add_argument("--rate", type=int, default=8, help="symbols per token")
    p.add_argument("--steps", type=int, default=50, help="diffusion steps per generated image token")
    p.add_argument("--seed", type=int, default=1, help="channel seed")
    p.add_argument("--address", default=schema.DEFAULT_ADDRESS, help="MLLM server (started here when local and silent)")
    p.add_argument("--model-dir", default=None, help="MLLM graphs for a server started here (default: shipped)")
    p.add_argument("--out", default="demo_out")
    p.add_argument("--build", default="build", help="where grcc writes the compiled flowgraph")
    args = p.parse_args(argv)
    gr.logging().set_default_level(gr.log_levels.warn)
    server = None
    health = server_answers(args.address)
    if health is None:
        if not _local(args.address):
            raise SystemExit(f"no MLLM server answers at {args.address}; start one there (./unitocom serve)")
        print(f"[demo] no MLLM server at {args.address}: starting one", flush=True)
        server = spawn(["--quiet"] + (["--model-dir", args.model_dir] if args.model_dir else []), args.address,
                       timeout_s=120)
        health = server_answers(args.address)
    print(f"[demo] MLLM {health.get('model')} on {health.get('device')}", flush=True)
    try:
        collected = run(args)
        report(collected, args, health)
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=30)


if __name__ == "__main__":
    main()
