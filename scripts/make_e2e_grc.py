#!/usr/bin/env python3
"""Writes flowgraphs/sim/unitocom_e2e.grc (kept in the repo; this script documents how it is laid out).

    ./unitocom python scripts/make_e2e_grc.py
"""
import pathlib

import yaml

HERE = pathlib.Path(__file__).resolve().parent.parent / "flowgraphs"


def block(name, bid, params, x, y):
    return {"name": name, "id": bid, "parameters": params,
            "states": {"coordinate": [x, y], "rotation": 0, "state": "enabled"}}


def param(name, label, ptype, value, x):
    return block(name, "parameter", {"label": label, "type": ptype, "value": value, "short_id": "", "hide": "none"},
                 x, 8)


def q(text):
    """A Python string literal as GRC writes it."""
    return f"'{text}'"


def source_block():
    return block("source", "unitocom_sample_source",
                 {"split": q("test"), "first": "first", "n_samples": "n_samples", "seed": "0",
                  "tasks": "vqa,t2i,asr"}, 8, 240)


def tx_block(modality, x, y):
    return block(f"tx_{modality}", "unitocom_tx",
                 {"modality": q(modality), "tokenizer_model": "''", "variant": "''", "jscc_model": "''",
                  "rate": "rate", "snr_db": "snr_db", "power": "1.0", "len_tag_key": q("packet_len"),
                  "device": q("auto"), "threads": "1", "session_id": "0", "task": "''"}, x, y)


def channel_block(modality, row, x, y):
    return block(f"channel_{modality}", "unitocom_block_fading_channel",
                 {"channel_type": "channel_type", "snr_db": "snr_db", "coherence_len": "0",
                  "k_factor": "4.0", "signal_power": "1.0", "seed": f"seed + {row}",
                  "len_tag_key": q("packet_len")}, x, y)


def rx_block(modality, x, y):
    return block(f"rx_{modality}", "unitocom_rx",
                 {"modality": q(modality), "jscc_model": "''", "detokenizer_model": "''", "variant": "''",
                  "snr_db": "snr_db", "len_tag_key": q("packet_len"), "device": q("auto"), "threads": "1",
                  "session_id": "0", "task": "''"}, x, y)


def main():
    blocks = [
        param("snr_db", "SNR (dB)", "eng_float", "10.0", 200),
        param("channel_type", "Channel (awgn/rayleigh/rician)", "str", "rayleigh", 330),
        param("n_samples", "Samples (each: vqa, t2i, asr)", "intx", "4", 480),
        param("first", "First test scene", "intx", "0", 630),
        param("rate", "Symbols per token", "intx", "8", 780),
        param("address", "MLLM server", "str", "tcp://127.0.0.1:5555", 920),
        param("steps", "Diffusion steps (0 = server's)", "intx", "50", 1080),
        param("out_dir", "PNG folder ('' = none)", "str", "", 1240),
        param("seed", "Channel seed", "intx", "1", 1390),
    ]
    blocks.append(source_block())
    for row, modality in enumerate(("image", "text", "audio")):
        y = 160 + 140 * row
        blocks += [tx_block(modality, 240, y), channel_block(modality, row, 480, y), rx_block(modality, 720, y)]
    blocks += [
        block("client", "unitocom_mllm_client",
              {"address": "address", "server_key": "''", "client_key": "''", "timeout_s": "60.0", "max_retries": "5",
               "backoff_s": "0.5", "queue_size": "64", "max_words": "0", "steps": "steps", "sources": "3"}, 960, 300),
        block("only_t2i", "pdu_pdu_filter", {"k": 'pmt.intern("task")', "v": 'pmt.intern("t2i")', "invert": "False"},
              1200, 420),
        block("generated_pixels", "unitocom_detokenizer",
              {"modality": q("image"), "model": "''", "variant": "''", "tokenizer_model": "''", "device": q("auto"),
               "threads": "1", "max_batch": "32", "vocoder_iterations": "32"}, 1400, 420),
        block("unscored", "pdu_pdu_remove", {"k": 'pmt.intern("scene_index")'}, 1620, 420),
        block("generated_images", "unitocom_image_sink", {"directory": "out_dir", "label": q("generated")}, 1820, 420),
        block("reconstructed_images", "unitocom_image_sink", {"directory": "out_dir", "label": q("reconstructed")},
              960, 120),
        block("only_text", "pdu_pdu_filter", {"k": 'pmt.intern("task")', "v": 'pmt.intern("t2i")', "invert": "True"},
              1200, 280),
        block("results", "blocks_message_debug", {"en_uvec": "True"}, 1400, 280),
        block("errors", "blocks_message_debug", {"en_uvec": "True"}, 1200, 540),
    ]
    conns = [["source", m, f"tx_{m}", "pdu"] for m in ("image", "text", "audio")]
    for m in ("image", "text", "audio"):
        conns += [[f"tx_{m}", "0", f"channel_{m}", "0"], [f"channel_{m}", "0", f"rx_{m}", "0"],
                  [f"rx_{m}", "tokens", "client", "tokens"]]
    conns += [["rx_image", "pdu", "reconstructed_images", "pdu"], ["client", "result", "only_text", "pdus"],
              ["only_text", "pdus", "results", "print"],
              ["client", "errors", "errors", "print"], ["client", "result", "only_t2i", "pdus"],
              ["only_t2i", "pdus", "generated_pixels", "tokens"], ["generated_pixels", "pdu", "unscored", "pdus"],
              ["unscored", "pdus", "generated_images", "pdu"]]
    doc = {"options": {"parameters": {
        "id": "unitocom_e2e", "title": "UniToCom end to end: image + question, caption, speech -> MLLM",
        "author": "gr-unitocom", "category": "[UniToCom]",
        "description": ("test-split samples -> unitocom_tx per modality -> block_fading_channel -> unitocom_rx -> "
                        "mllm_client (the MLLM server) -> answers, transcripts (printed) and generated images (PNG)"),
        "generate_options": "no_gui", "output_language": "python", "run_options": "run", "run": "True",
        "max_nouts": "0", "realtime_scheduling": ""},
        "states": {"coordinate": [8, 8], "rotation": 0, "state": "enabled"}},
        "blocks": blocks, "connections": conns, "metadata": {"file_format": 1, "grc_version": "3.10.5.1"}}
    out = HERE / "sim" / "unitocom_e2e.grc"
    out.write_text(yaml.safe_dump(doc, sort_keys=False, default_flow_style=None, width=120))
    print(out)


if __name__ == "__main__":
    main()
