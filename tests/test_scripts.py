"""The benchmark script runs (a smoke test: it asserts nothing about speed)."""
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent


def test_channel_benchmark_runs_and_prints_ratios():
    out = subprocess.run([sys.executable, str(ROOT / "scripts" / "bench_block_fading_channel.py"),
                          "--msamples", "0.2", "--repeats", "1"],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    rows = [ln for ln in out.stdout.splitlines() if "ratio to channel_model" in ln]
    assert len(rows) == 8, out.stdout


def test_jscc_benchmark_runs_for_every_rate():
    out = subprocess.run([sys.executable, str(ROOT / "scripts" / "bench_jscc_link.py"), "--frames", "40"],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    rows = [ln for ln in out.stdout.splitlines() if ln.strip()[:2].strip().isdigit()]
    assert len(rows) == 4, out.stdout
