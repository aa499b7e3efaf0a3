#!/usr/bin/env python3
"""Writes flowgraphs/gui/unitocom_e2e_gui.grc (kept in the repo; this script documents how it is laid out).

    ./unitocom python scripts/make_e2e_gui_grc.py

The QT GUI twin of flowgraphs/sim/unitocom_e2e.grc (scripts/make_e2e_grc.py): the same chain
sample_source -> tx -> block_fading_channel -> rx -> mllm_client, paced by a throttle per modality (64
symbols a call, set by a snippet in main()) so that it runs for a while; with an SNR slider (channels and
transmitters), a constellation of the image channel's symbols (sent and received), the received and the
generated image, and the received question and caption and the MLLM's answer and transcript, each next
to the truth (unitocom_image_display, unitocom_result_display: GNU Radio's QT GUI Message Edit Box
changes its widget from the message thread and crashes when a running flowgraph feeds it).
"""
import pathlib
import sys

import yaml

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from make_e2e_grc import block, channel_block, param, q, rx_block, source_block, tx_block  # noqa: E402

HERE = pathlib.Path(__file__).resolve().parent.parent / "flowgraphs"
MODALITIES = ("image", "text", "audio")


def text_display(name, label, truth_key, hint, x, y):
    """unitocom_result_display: the latest text of its kind, next to the truth the sample source sent."""
    return block(name, "unitocom_result_display", {"label": label, "truth_key": truth_key, "gui_hint": hint}, x, y)


def main():
    task = lambda t: {"k": 'pmt.intern("task")', "v": f'pmt.intern("{t}")', "invert": "False"}   # noqa: E731
    blocks = [
        block("snr_db", "variable_qtgui_range",
              {"label": "SNR (dB)", "rangeType": "float", "value": "10.0", "start": "-5.0", "stop": "25.0",
               "step": "0.5", "widget": "counter_slider", "orient": "QtCore.Qt.Horizontal", "min_len": "200",
               "gui_hint": "0, 0, 1, 4"}, 200, 8),
        param("channel_type", "Channel (awgn/rayleigh/rician)", "str", "rayleigh", 330),
        param("n_samples", "Samples (each: vqa, t2i, asr)", "intx", "10", 480),
        param("first", "First test scene", "intx", "0", 630),
        param("rate", "Symbols per token", "intx", "8", 780),
        param("address", "MLLM server", "str", "tcp://127.0.0.1:5555", 920),
        param("steps", "Diffusion steps (0 = server's)", "intx", "50", 1080),
        param("symbol_rate", "Channel symbols per second (each modality)", "eng_float", "256", 1240),
        param("seed", "Channel seed", "intx", "1", 1390),
    ]
    blocks.append(source_block())
    for row, modality in enumerate(MODALITIES):
        y = 160 + 140 * row
        blocks += [tx_block(modality, 240, y),
                   block(f"pace_{modality}", "blocks_throttle",
                         {"type": "complex", "samples_per_second": "symbol_rate", "vlen": "1", "ignoretag": "True"},
                         440, y),
                   channel_block(modality, row, 600, y), rx_block(modality, 840, y)]
    blocks += [
        block("constellation", "qtgui_const_sink_x",
              {"type": "complex", "name": '"Image channel: symbols sent and received"', "size": "256",
               "nconnections": "2", "update_time": "0.10", "xmin": "-3", "xmax": "3", "ymin": "-3", "ymax": "3",
               "autoscale": "False",
               "grid": "True", "legend": "True", "axislabels": "True", "label1": "sent", "label2": "received",
               "color1": '"blue"', "color2": '"red"', "style1": "0", "style2": "0", "marker1": "0", "marker2": "0",
               "alpha1": "0.6", "alpha2": "0.6", "gui_hint": "1, 0, 1, 2"}, 840, 40),
        block("received_image", "unitocom_image_display", {"label": "Received image (RX)", "scale": "3",
                                                           "gui_hint": "1, 2, 1, 1"}, 1100, 120),
        block("client", "unitocom_mllm_client",
              {"address": "address", "server_key": "''", "client_key": "''", "timeout_s": "60.0", "max_retries": "5",
               "backoff_s": "0.5", "queue_size": "64", "max_words": "0", "steps": "steps", "sources": "3"}, 1100, 300),
        block("only_t2i", "pdu_pdu_filter", task("t2i"), 1340, 420),
        block("generated_pixels", "unitocom_detokenizer",
              {"modality": q("image"), "model": "''", "variant": "''", "tokenizer_model": "''", "device": q("auto"),
               "threads": "1", "max_batch": "32", "vocoder_iterations": "32"}, 1540, 420),
        block("generated_image", "unitocom_image_display",
              {"label": "Generated image (MLLM, from the received caption)", "scale": "3", "gui_hint": "1, 3, 1, 1"},
              1760, 420),
        block("only_vqa_question", "pdu_pdu_filter", task("vqa"), 1100, 560),
        text_display("question", "Question (received)", "question", "2, 0, 1, 4", 1300, 560),
        block("only_t2i_caption", "pdu_pdu_filter", task("t2i"), 1100, 660),
        text_display("caption", "Caption (received)", "caption", "3, 0, 1, 4", 1300, 660),
        block("only_vqa_answer", "pdu_pdu_filter", task("vqa"), 1340, 240),
        text_display("answer", "Answer (MLLM)", "answer", "4, 0, 1, 4", 1540, 240),
        block("only_asr", "pdu_pdu_filter", task("asr"), 1340, 320),
        text_display("transcript", "Transcript (MLLM)", "transcript", "5, 0, 1, 4", 1540, 320),
        block("errors", "blocks_message_debug", {"en_uvec": "True"}, 1340, 160),
        # A throttle copies all the input it is given, then sleeps until it is due: with a whole run of
        # frames queued behind it, that is one burst at the end. 64 symbols a call keep the flow smooth.
        block("small_bursts", "snippet",
              {"section": "main_after_init", "priority": "0",
               "code": "for m in ('image', 'text', 'audio'):\n"
                       "    getattr(self, 'pace_' + m).set_max_noutput_items(64)"},
              440, 600),
    ]
    conns = [["source", m, f"tx_{m}", "pdu"] for m in MODALITIES]
    for m in MODALITIES:
        conns += [[f"tx_{m}", "0", f"pace_{m}", "0"], [f"pace_{m}", "0", f"channel_{m}", "0"],
                  [f"channel_{m}", "0", f"rx_{m}", "0"], [f"rx_{m}", "tokens", "client", "tokens"]]
    conns += [["pace_image", "0", "constellation", "0"], ["channel_image", "0", "constellation", "1"],
              ["rx_image", "pdu", "received_image", "pdu"],
              ["client", "result", "only_t2i", "pdus"], ["only_t2i", "pdus", "generated_pixels", "tokens"],
              ["generated_pixels", "pdu", "generated_image", "pdu"],
              ["rx_text", "pdu", "only_vqa_question", "pdus"], ["only_vqa_question", "pdus", "question", "pdu"],
              ["rx_text", "pdu", "only_t2i_caption", "pdus"], ["only_t2i_caption", "pdus", "caption", "pdu"],
              ["client", "result", "only_vqa_answer", "pdus"], ["only_vqa_answer", "pdus", "answer", "pdu"],
              ["client", "result", "only_asr", "pdus"], ["only_asr", "pdus", "transcript", "pdu"],
              ["client", "errors", "errors", "print"]]
    doc = {"options": {"parameters": {
        "id": "unitocom_e2e_gui", "title": "UniToCom end to end (GUI): image + question, caption, speech -> MLLM",
        "author": "gr-unitocom", "category": "[UniToCom]",
        "description": ("test-split samples -> unitocom_tx per modality -> throttle -> block_fading_channel (SNR "
                        "slider) -> unitocom_rx -> mllm_client (the MLLM server) -> constellation, images, question, "
                        "caption, answer and transcript in a QT window"),
        "generate_options": "qt_gui", "output_language": "python", "run_options": "prompt", "run": "True",
        "max_nouts": "0", "realtime_scheduling": "", "qt_qss_theme": "", "placement": "(0,0)",
        "window_size": "(1000,1000)", "run_command": "{python} -u {filename}"},
        "states": {"coordinate": [8, 8], "rotation": 0, "state": "enabled"}},
        "blocks": blocks, "connections": conns, "metadata": {"file_format": 1, "grc_version": "3.10.5.1"}}
    out = HERE / "gui" / "unitocom_e2e_gui.grc"
    out.parent.mkdir(exist_ok=True)
    out.write_text(yaml.safe_dump(doc, sort_keys=False, default_flow_style=None, width=120))
    print(out)


if __name__ == "__main__":
    main()
