"""The CMake build installs the module the GNU Radio way, and ctest runs the QA."""
import os
import pathlib
import shutil
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
BLOCKS = sorted(p.name for p in (ROOT / "gr-unitocom" / "grc").glob("*.yml"))

pytestmark = pytest.mark.skipif(shutil.which("cmake") is None, reason="cmake not installed")


def run(cmd, **kwargs):
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, **kwargs)
    assert proc.returncode == 0, f"{cmd}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    build = tmp_path_factory.mktemp("build")
    prefix = tmp_path_factory.mktemp("prefix")
    run(["cmake", "-S", str(ROOT), "-B", str(build), f"-DCMAKE_INSTALL_PREFIX={prefix}",
         f"-DUNITOCOM_TEST_PYTHON={sys.executable}"])
    run(["cmake", "--build", str(build)])
    run(["cmake", "--install", str(build)])
    return build, prefix


def test_install_layout(installed):
    _, prefix = installed
    grc_dir = prefix / "share" / "gnuradio" / "grc" / "blocks"
    assert sorted(p.name for p in grc_dir.glob("*.yml")) == BLOCKS
    pkg = list(prefix.rglob("gnuradio/unitocom/__init__.py"))
    assert len(pkg) == 1
    assert (prefix / "share/gnuradio/unitocom/flowgraphs/sim/fading_link_ber.grc").is_file()
    installed = pkg[0].parent
    assert (installed / "data" / "corpus.py").is_file()
    assert (installed / "baselines" / "ldpc.py").is_file()
    shipped = sorted(p.name for p in (ROOT / "python_blocks/unitocom/models").glob("*.onnx"))
    assert sorted(p.name for p in (installed / "models").glob("*.onnx")) == shipped


def test_installed_package_imports_and_grc_finds_its_blocks(installed, tmp_path):
    _, prefix = installed
    site = next(prefix.rglob("gnuradio/unitocom/__init__.py")).parent.parent.parent
    env = {k: v for k, v in os.environ.items() if k not in ("UNITOCOM_ROOT", "GRC_BLOCKS_PATH")}
    env["PYTHONPATH"] = str(site)
    env["GRC_BLOCKS_PATH"] = str(prefix / "share/gnuradio/grc/blocks")
    # the system interpreter (no development link): only the installed copy exists
    out = run(["/usr/bin/python3", "-c", "from gnuradio import unitocom; from gnuradio.unitocom.data import corpus; "
                                         "print(unitocom.__file__)"],
              env=env, cwd=tmp_path).stdout
    assert out.strip().startswith(str(prefix))
    grc = prefix / "share/gnuradio/unitocom/flowgraphs/sim/fading_link_ber.grc"
    run(["/usr/bin/python3", shutil.which("grcc"), "-o", str(tmp_path), str(grc)], env=env, cwd=tmp_path)
    assert (tmp_path / "fading_link_ber.py").is_file()


def test_ctest_runs_the_qa_tests(installed):
    build, _ = installed
    out = run(["ctest", "--output-on-failure"], cwd=build).stdout
    qa = sorted(p.stem for p in (ROOT / "tests").glob("qa_*.py"))
    for name in qa:
        assert name in out
    assert f"100% tests passed, 0 tests failed out of {len(qa)}" in out
