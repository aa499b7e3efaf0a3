"""The entry point: second bootstrap is a no-op; bad commands fail clearly."""
import pathlib
import subprocess

ROOT = pathlib.Path(__file__).resolve().parent.parent


def run(*args):
    return subprocess.run([str(ROOT / "unitocom"), *args], capture_output=True, text=True, timeout=600)


def test_second_bootstrap_installs_nothing():
    run("bootstrap")                       # make sure the first one has happened
    again = run("bootstrap")
    assert again.returncode == 0, again.stderr
    assert "installing" not in again.stderr and "creating" not in again.stderr, again.stderr


def test_environment_is_the_one_gnu_radio_needs():
    out = run("python", "-c", "import numpy, gnuradio.gr as gr, onnxruntime, torch; "
                              "print(numpy.__version__, gr.version(), torch.__version__)")
    assert out.returncode == 0, out.stderr
    numpy_v, gr_v, torch_v = out.stdout.split()
    assert numpy_v.startswith("1.") and gr_v.startswith("3.10") and torch_v.startswith("2.13.0")


def test_unknown_command_fails_with_a_message():
    out = run("fly")
    assert out.returncode != 0 and "unknown command 'fly'" in out.stderr
    assert "demo" in run("help").stdout
    usage = run("run")
    assert usage.returncode == 2 and "usage: ./unitocom run FLOWGRAPH.grc" in usage.stderr
