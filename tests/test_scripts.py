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


def test_ota_rx_benchmark_prints_every_chain_before_and_after():
    out = subprocess.run([sys.executable, str(ROOT / "scripts" / "bench_ota_rx.py"), "--frames", "12", "--repeats", "1",
                          "--gaps", "3000", "--gap-frames", "8"], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    rows = [ln for ln in out.stdout.splitlines() if ln.split("|")[0].strip() in ("ofdm_rx", "+ JSCC decoder",
                                                                                   "+ de-tokenizer")]
    assert len(rows) == 3 and all(ln.count("MS/s") >= 3 for ln in rows), out.stdout
    assert "(out:" not in out.stdout, out.stdout                   # every frame came out of every chain
    assert sum("gap    3000" in ln for ln in out.stdout.splitlines()) == 1, out.stdout
