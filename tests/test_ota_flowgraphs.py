"""The OFDM flowgraphs: the USRP ones compile with grcc (no radio needed), the loopback runs headless."""
import pathlib
import re
import subprocess
import sys

import pytest

from gnuradio.unitocom.apps.flowgraph_runner import compile_flowgraph

ROOT = pathlib.Path(__file__).resolve().parent.parent
OTA = sorted((ROOT / "flowgraphs" / "ota").glob("*.grc"))


def test_there_are_usrp_tx_and_rx_flowgraphs():
    names = {p.stem for p in OTA}
    assert {"ota_image_tx", "ota_image_rx", "ota_speech_tx", "ota_speech_rx"} <= names


@pytest.mark.parametrize("grc", OTA, ids=lambda p: p.name)
def test_usrp_flowgraph_compiles_with_its_radio_parameters(grc, tmp_path):
    py = compile_flowgraph(grc, tmp_path).read_text()
    assert "uhd.usrp_" in py and "unitocom.ofdm_" in py
    for option in ("--samp-rate", "--freq", "--gain", "--dev-addr"):
        assert f'"{option}"' in py, option


def test_loopback_flowgraph_delivers_every_image(tmp_path):
    py = compile_flowgraph(ROOT / "flowgraphs" / "sim" / "ota_loopback.grc", tmp_path)
    proc = subprocess.run([sys.executable, str(py), "--n-images", "12", "--snr-db", "15"], capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    m = re.search(r"^ota_loopback: (\d+) images, PSNR mean (\S+) dB", proc.stdout, re.M)
    assert m, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert int(m[1]) == 12 and float(m[2]) > 25.0, m[0]
