"""flowgraphs/gui/unitocom_e2e_gui.grc, the QT GUI flowgraph.

It is what scripts/make_e2e_gui_grc.py writes; it compiles with grcc (no display needed) and its SNR slider
reaches the three channels and transmitters; and under Xvfb its generated main() starts it, it runs a few
seconds against a tiny random MLLM served in this process, its displays show the received question,
caption and image and the MLLM's answer, transcript and generated image, and SIGTERM stops it cleanly
(driven by scripts/screenshot_e2e_gui.py, the script that took docs/gui_e2e.png).
"""
import importlib.util
import json
import os
import pathlib
import shutil
import subprocess
import sys

import numpy as np
import pytest

from gnuradio.unitocom.apps.flowgraph_runner import compile_flowgraph

ROOT = pathlib.Path(__file__).resolve().parent.parent
GRC = ROOT / "flowgraphs" / "gui" / "unitocom_e2e_gui.grc"
SCRIPTS = ROOT / "scripts"
MODALITIES = ("image", "text", "audio")


def test_the_committed_flowgraph_is_what_the_generator_writes(tmp_path, monkeypatch, capsys):
    spec = importlib.util.spec_from_file_location("make_e2e_gui_grc", SCRIPTS / "make_e2e_gui_grc.py")
    generator = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generator)
    monkeypatch.setattr(generator, "HERE", tmp_path)
    generator.main()
    assert (tmp_path / "gui" / GRC.name).read_text() == GRC.read_text(), "run scripts/make_e2e_gui_grc.py"


def test_it_compiles_with_the_slider_wired_to_channels_and_transmitters(tmp_path):
    code = compile_flowgraph(GRC, tmp_path).read_text()
    assert "class unitocom_e2e_gui(gr.top_block, Qt.QWidget)" in code
    assert "RangeWidget(" in code and "qtgui.const_sink_c(" in code
    setter = code[code.index("    def set_snr_db(self, snr_db):"):]
    setter = setter[:setter.index("\n    def ", 10)]
    for m in MODALITIES:
        assert f"self.channel_{m}.set_snr_db(self.snr_db)" in setter
        assert f"self.tx_{m}.set_snr_db(self.snr_db)" in setter
    for name in ("received_image", "generated_image", "question", "caption", "answer", "transcript"):
        assert f"self.top_grid_layout.addWidget(self._{name}_win" in code


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    torch = pytest.importorskip("torch")
    from gnuradio.unitocom.mllm import batcher as batching, engine, server
    from onnx_export.mllm import export
    from onnx_export.mllm.testing import tiny_model
    torch.set_num_threads(1)
    files = export.export_all(tiny_model(seed=3), tmp_path_factory.mktemp("mllm"), "test")
    s = server.Server(batching.Batcher(engine.MLLM(files=files, threads=1, device="cpu"), window_ms=2.0),
                      bind="tcp://127.0.0.1:*").start()
    yield s
    s.stop()


def test_it_runs_under_xvfb_shows_the_results_and_stops(served, tmp_path):
    if shutil.which("xvfb-run") is None:
        pytest.skip("xvfb-run is not installed (Debian package xvfb)")
    from gnuradio.unitocom.data import speech
    png = tmp_path / "gui.png"
    env = dict(os.environ, HOME=str(tmp_path), XDG_CONFIG_HOME=str(tmp_path / ".config"))   # QSettings go here
    env.pop("QT_QPA_PLATFORM", None)                                                       # the X server's window
    proc = subprocess.run(
        ["xvfb-run", "-a", "-s", "-screen 0 1280x1024x24", sys.executable, str(SCRIPTS / "screenshot_e2e_gui.py"),
         "--seconds", "6", "--png", str(png), "--build", str(tmp_path / "build"),
         "--", "--address", served.address, "--n-samples", "2", "--steps", "3", "--symbol-rate", "4000",
         "--channel-type", "awgn"],
        capture_output=True, text=True, timeout=150, env=env, cwd=tmp_path)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    for bad in ("Traceback", "Segmentation fault", ":error:", "VERBOSE PDU DEBUG PRINT", "dropped"):
        assert bad not in out, out                           # the last one: an error PDU of the MLLM client
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["received_image"] == 2 and report["generated_image"] == 2, report
    for name in ("question", "caption", "answer") + (("transcript",) if speech.espeak_available() else ()):
        assert report[name] and "      [truth: " in report[name], report   # the text, next to the truth
    from PIL import Image
    picture = np.asarray(Image.open(png).convert("RGB"))
    assert picture.shape[:2] == (860, 1200) and picture.std() > 10, picture.shape  # a window, not a blank
