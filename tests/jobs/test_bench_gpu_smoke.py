"""``benchmarks/bench_gpu.py`` is run on a GPU only when one is lent; its CPU smoke mode keeps it runnable and its
parity checks meaningful in between (score engines, serve path and a train step on the tiny model)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_gpu.py"


def test_the_gpu_benchmark_smoke_run_reports_parity_and_rates(tmp_path):
    out = tmp_path / "report.json"
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--smoke", "--device", "cpu", "--output", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    (report,) = json.loads(out.read_text())
    assert report["engine_max_delta"] < 1e-4 and report["serve_max_delta"] < 1e-4
    assert report["padded"]["tokens_per_s"] > 0 and report["train"]["steps"] == 2
    refused = subprocess.run(
        [sys.executable, str(SCRIPT), "--device", "cpu"], capture_output=True, text=True, timeout=120
    )
    assert refused.returncode != 0 and "--smoke" in refused.stderr
