#!/usr/bin/env python3
"""int8 versions of the receiver's models (JSCC decoder, image de-tokenizer): their speed and the PSNR they cost.

    ./unitocom python scripts/quantize_rx_models.py [--out-dir DIR] [--images 64] [--snr-db 10 20] [--ship]

1. Quantises the bundled ``image_jscc_decoder_s32`` and ``image_detokenizer_s32``
   with onnxruntime's dynamic quantisation (``quantize_dynamic``: MatMul/Gemm
   weights int8, activations quantised per call; shape pre-processing first),
   keeping the metadata and noting the source model in ``quantized_from``.
   Files are named like the shipped ones: ``<name>_int8_s32-genib-<sha256[:8]>.onnx``.
2. Times every model (onnxruntime CPU ms per frame, one intra-op thread, batch 1 and 8).
3. Runs the over-the-air loopback (``apps.ota_loopback``: tx → ofdm_tx → 3-tap
   multipath, CFO, noise → ofdm_rx → rx) on ``--images`` test images at each
   SNR, *once*, and decodes the very same received frames with every
   combination (fp32/int8 decoder × fp32/int8 de-tokenizer), so the PSNR
   differences are the models' alone; plus the noiseless tokenizer →
   de-tokenizer round trip.

``--ship`` copies a quantised model into ``python_blocks/unitocom/models`` only
when it costs less than ``--max-cost`` dB (0.3) at every SNR (and noiseless)
*and* saves at least ``--min-saving-ms`` (0.2) of CPU per frame at batch 8.
Measured (the README, "Throughput"): the de-tokenizer passes (×1.5, −0.03 dB) and
ships as ``image_detokenizer_int8_s32``; the JSCC decoder costs as little but
saves ≈ 0.01–0.02 ms of its ≈ 0.1 ms per frame, so it does not.
"""
import argparse
import hashlib
import os
import pathlib
import shutil
import tempfile
import time

import numpy as np
from gnuradio import blocks, gr

from gnuradio.unitocom.apps import ota_loopback as ol
from gnuradio.unitocom.data import corpus
from gnuradio.unitocom.ofdm_rx import ofdm_rx
from gnuradio.unitocom.runtime import model_store
from gnuradio.unitocom.runtime.onnx_session import make_session
from gnuradio.unitocom.rx import rx

SOURCES = {"decoder": ("image_jscc_decoder_s32", "image_jscc_decoder_int8_s32"),
           "detokenizer": ("image_detokenizer_s32", "image_detokenizer_int8_s32")}


def quantize(src, name, out_dir):
    """Path of the int8 model of ``src`` in ``out_dir`` (``<name>-<variant>-<sha256[:8]>.onnx``)."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.quantization.shape_inference import quant_pre_process
    meta = model_store.read_metadata(src)
    with tempfile.TemporaryDirectory() as tmp:
        pre, q = os.path.join(tmp, "pre.onnx"), os.path.join(tmp, "q.onnx")
        quant_pre_process(str(src), pre, skip_symbolic_shape=False)
        quantize_dynamic(pre, q, weight_type=QuantType.QInt8, per_channel=False, op_types_to_quantize=["MatMul", "Gemm"])
        m = onnx.load(q)
        props = {p.key: p.value for p in m.metadata_props if not p.key.startswith("onnx.")}
        props.update({k: v for k, v in meta.items()}, quantized_from=model_store.model_id(src),
                     quantization="onnxruntime quantize_dynamic: MatMul/Gemm weights int8 (per tensor), "
                                  "activations uint8 quantised per call")
        del m.metadata_props[:]
        for k, v in sorted(props.items()):
            m.metadata_props.add(key=k, value=v)
        data = m.SerializeToString()
    path = pathlib.Path(out_dir) / f"{name}-{meta['variant']}-{hashlib.sha256(data).hexdigest()[:8]}.onnx"
    path.write_bytes(data)
    return path


def cpu_ms(path, feed_of, batch, reps=40):
    """onnxruntime CPU ms per frame (thread CPU time, best of 3) at ``batch``."""
    sess = make_session(str(path), 1, "cpu")
    feed = feed_of(batch)
    sess.run(None, feed)
    best = float("inf")
    for _ in range(3):
        t = time.thread_time()
        for _ in range(max(2, reps // batch)):
            sess.run(None, feed)
        best = min(best, (time.thread_time() - t) / max(2, reps // batch) / batch * 1e3)
    return best


def feeds(role):
    rng = np.random.default_rng(0)
    if role == "decoder":
        return lambda b: {"symbols": rng.normal(size=(b, 32, 16, 2)).astype(np.float32),
                          "reliability": np.full((b, 32, 16), 0.9, np.float32),
                          "snr_db": np.full(b, 15, np.float32), "rate": np.full(b, 8, np.float32)}
    return lambda b: {"tokens": rng.normal(size=(b, 32, 16)).astype(np.float32)}


def receive(samples, jscc_model, detokenizer_model):
    """Image PDUs of ofdm_rx → rx with the given models."""
    tb = gr.top_block()
    o = ofdm_rx()
    r, col = rx("image", jscc_model, detokenizer_model, device="cpu"), ol._Collector()
    tb.connect(blocks.vector_source_c(samples), o, r)
    tb.msg_connect(r, "pdu", col, "in")
    tb.run()
    return col.pdus


def noiseless(detokenizer, n_images):
    """Mean PSNR of tokenizer → ``detokenizer`` on n test images (no channel)."""
    images = np.stack([corpus.make_item("test", i, 0)["image"] for i in range(n_images)]).astype(np.float32) / 255
    x = images.transpose(0, 3, 1, 2)
    tok = make_session(str(model_store.find("image_tokenizer_s32", "genib")), 1, "cpu").run(None, {"image": x})[0]
    y = make_session(str(detokenizer), 1, "cpu").run(None, {"tokens": tok})[0]
    return float(np.mean(10 * np.log10(1 / np.mean((np.clip(y, 0, 1) - x) ** 2, axis=(1, 2, 3)))))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out-dir", default="", help="where the int8 models go (default: a temporary folder)")
    ap.add_argument("--images", type=int, default=64)
    ap.add_argument("--snr-db", type=float, nargs="+", default=[10.0, 20.0])
    ap.add_argument("--max-cost", type=float, default=0.3, help="largest mean PSNR cost (dB) a shipped model may have")
    ap.add_argument("--min-saving-ms", type=float, default=0.2, help="least CPU ms per frame a shipped model saves")
    ap.add_argument("--ship", action="store_true", help="copy the models that pass into the package's models/")
    args = ap.parse_args()
    out_dir = args.out_dir or tempfile.mkdtemp(prefix="unitocom-int8-")
    os.makedirs(out_dir, exist_ok=True)
    models = {}
    for role, (src_name, name) in SOURCES.items():
        src = model_store.find(src_name, "genib")
        models[role] = (src, quantize(src, name, out_dir))
        (fp, q8) = models[role]
        t = {(k, b): cpu_ms(p, feeds(role), b) for k, p in (("fp32", fp), ("int8", q8)) for b in (1, 8)}
        print(f"{role:12s} {fp.name} → {q8.name} ({fp.stat().st_size / 1e6:.2f} → {q8.stat().st_size / 1e6:.2f} MB); "
              f"CPU ms/frame batch 1: {t['fp32', 1]:.3f} → {t['int8', 1]:.3f}, batch 8: {t['fp32', 8]:.3f} → "
              f"{t['int8', 8]:.3f} (×{t['fp32', 8] / t['int8', 8]:.2f})", flush=True)
        models[role] += (t['fp32', 8] / t['int8', 8], t['fp32', 8] - t['int8', 8])
    fp_det, q_det = models["detokenizer"][:2]
    base_nl, q_nl = noiseless(fp_det, args.images), noiseless(q_det, args.images)
    print(f"noiseless tokenizer → de-tokenizer, {args.images} images: fp32 {base_nl:.2f} dB, int8 {q_nl:.2f} dB "
          f"(cost {base_nl - q_nl:+.3f} dB)")
    images = ol.scenes(args.images)
    bursts = ol.transmit(images)
    combos = {"fp32 decoder + fp32 de-tokenizer": ("", ""),
              "int8 decoder + fp32 de-tokenizer": (str(models["decoder"][1]), ""),
              "fp32 decoder + int8 de-tokenizer": ("", str(q_det)),
              "int8 decoder + int8 de-tokenizer": (str(models["decoder"][1]), str(q_det))}
    cost = {role: [] for role in SOURCES}
    for snr in args.snr_db:
        x, _ = ol.impair(bursts, ol.Impairments(snr_db=snr, seed=0))
        res = {label: ol.psnrs(receive(x, *m), images) for label, m in combos.items()}
        ref = res["fp32 decoder + fp32 de-tokenizer"]
        for label, got in res.items():
            common = sorted(set(got) & set(ref))
            d = np.array([got[i] - ref[i] for i in common])
            print(f"  {snr:4.1f} dB, {label}: {len(got)}/{args.images} images, PSNR {np.mean(list(got.values())):.3f} dB, "
                  f"vs fp32: {d.mean():+.3f} dB (per image std {d.std():.3f}, worst {d.min():+.3f})", flush=True)
        for role, label in (("decoder", "int8 decoder + fp32 de-tokenizer"),
                            ("detokenizer", "fp32 decoder + int8 de-tokenizer")):
            cost[role].append(np.mean([ref[i] - res[label][i] for i in ref if i in res[label]]))
    cost["detokenizer"].append(base_nl - q_nl)
    for role, (src, q8, speedup, saving) in models.items():
        ok = max(cost[role]) < args.max_cost and saving >= args.min_saving_ms
        print(f"{q8.name}: worst PSNR cost {max(cost[role]):+.3f} dB, ×{speedup:.2f} ({saving:.3f} ms/frame saved) → "
              f"{'ships' if ok else 'not worth shipping'} (limits {args.max_cost} dB, >= {args.min_saving_ms} ms)")
        if ok and args.ship:
            shutil.copy(q8, model_store.PACKAGE_MODELS / q8.name)
            print(f"  copied to {model_store.PACKAGE_MODELS / q8.name}")


if __name__ == "__main__":
    main()
