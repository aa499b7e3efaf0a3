"""GNU Radio Companion starts under Xvfb and loads a committed flowgraph cleanly.

GRC itself prints nothing when a block id is unknown: it draws a red
"Missing Block" and keeps the error in that block's properties. So GRC runs
here with a small probe (its own main(), plus an idle callback) that prints
what the GUI would show: every block's error messages, "Block id ... not
found." among them, once the flowgraph is open. The window itself is looked
for on the X server (xwininfo), so the test sees what a user would see.
"""
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import time

import pytest
import yaml

ROOT = pathlib.Path(__file__).resolve().parent.parent
FLOWGRAPH = ROOT / "flowgraphs" / "sim" / "image_link.grc"
BLOCKS = ROOT / "gr-unitocom" / "grc"
DEADLINE_S = 25.0

PROBE = r"""
from gi.repository import Gio, GLib

def probe():
    app = Gio.Application.get_default()
    window = getattr(app, "main_window", None)
    pages = window.get_pages() if window is not None else []
    if not pages:
        return True                                   # not up yet: ask again
    for page in pages:
        fg = page.flow_graph
        errors = list(fg.get_error_messages())        # leaves out missing blocks (disabled)
        errors += ['Block id "{}" not found (block {})'.format(b.key, b.name)
                   for b in fg.blocks if b.is_dummy_block]
        for msg in errors:
            print("GRC-PROBE error:", msg.replace("\n", " "), flush=True)
        keys = sorted({b.key for b in fg.blocks})
        print("GRC-PROBE loaded:", page.file_path, len(fg.blocks), "blocks:", " ".join(keys), flush=True)
    return False

GLib.timeout_add(200, probe)
from gnuradio.grc.main import main
main()
"""


def start_xvfb():
    """Xvfb on a free display (it picks one and writes it to -displayfd)."""
    read_fd, write_fd = os.pipe()
    xvfb = subprocess.Popen(["Xvfb", "-displayfd", str(write_fd), "-screen", "0", "1600x1000x24",
                             "-nolisten", "tcp"], pass_fds=[write_fd],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(write_fd)
    with os.fdopen(read_fd) as f:
        number = f.readline().strip()
    assert number, "Xvfb did not start"
    return xvfb, f":{number}"


def window_titles(display):
    out = subprocess.run(["xwininfo", "-root", "-tree", "-display", display],
                         capture_output=True, text=True).stdout
    return [line.split('"')[1] for line in out.splitlines() if line.count('"') >= 2]


def stop(proc):
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def run_grc(flowgraph, env, tmp_path):
    """Start GRC on ``flowgraph``; return (window title or None, output) once
    it is up and the probe has reported, or it died, or the deadline passed."""
    xvfb, display = start_xvfb()
    out_path = tmp_path / "grc.log"
    env = dict(env, DISPLAY=display, HOME=str(tmp_path),   # fresh grc.conf: no old files reopened
               XDG_CONFIG_HOME=str(tmp_path / ".config"), XDG_CACHE_HOME=str(tmp_path / ".cache"))
    env.pop("DBUS_SESSION_BUS_ADDRESS", None)               # never hand the file to a running GRC
    grc = None
    try:
        with open(out_path, "w") as out:
            grc = subprocess.Popen([sys.executable, "-c", PROBE, str(flowgraph)], env=env, cwd=tmp_path,
                                   stdout=out, stderr=subprocess.STDOUT)
            title, deadline = None, time.monotonic() + DEADLINE_S
            while time.monotonic() < deadline and grc.poll() is None:
                title = next((t for t in window_titles(display) if t.startswith(flowgraph.name)), None)
                if title and "GRC-PROBE loaded:" in out_path.read_text():
                    break
                time.sleep(0.25)
    finally:
        if grc is not None:
            stop(grc)
        stop(xvfb)
    return title, out_path.read_text()


def grc_env(blocks_path):
    env = {k: v for k, v in os.environ.items() if k != "GRC_BLOCKS_PATH"}
    if blocks_path:
        env["GRC_BLOCKS_PATH"] = str(blocks_path)
    return env


def test_grc_opens_image_link_with_the_unitocom_blocks(tmp_path):
    if shutil.which("Xvfb") is None and not os.environ.get("CI"):
        pytest.skip("Xvfb is not installed (./unitocom bootstrap installs it)")
    title, output = run_grc(FLOWGRAPH, grc_env(BLOCKS), tmp_path)
    assert "Failed to initialize GTK" not in output, output
    assert "Traceback" not in output, output
    assert title, f"no GRC window for {FLOWGRAPH.name} within {DEADLINE_S:.0f} s:\n{output}"
    assert f"Loading: \"{FLOWGRAPH}\"" in output and "GRC-PROBE loaded:" in output, output
    errors = [line for line in output.splitlines() if line.startswith("GRC-PROBE error:")]
    assert not errors, "\n".join(errors)
    loaded = next(line for line in output.splitlines() if line.startswith("GRC-PROBE loaded:")).split()
    ours = {b["id"] for b in yaml.safe_load(FLOWGRAPH.read_text())["blocks"] if b["id"].startswith("unitocom_")}
    assert ours and ours <= set(loaded), loaded
