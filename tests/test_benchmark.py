"""The benchmark script runs and reports what the issue asks (experiments/benchmark.py). Times are not asserted."""
import json
import subprocess
import sys
from pathlib import Path

import scan

REPO = Path(__file__).resolve().parent.parent


def test_scan_benchmark_writes_json_for_every_method_and_length(tmp_path):
    out = tmp_path / "bench.json"
    subprocess.run([sys.executable, "-m", "experiments.benchmark", "scan", "--lengths", "8,32", "--batch", "2",
                    "--state", "4", "--reps", "2", "--out", str(out)], cwd=REPO, check=True, capture_output=True,
                   timeout=300)
    report = json.loads(out.read_text())
    assert report["copy_bandwidth_bytes_per_s"] > 0
    assert [r["length"] for r in report["results"]] == [8, 32]
    for row in report["results"]:
        assert set(row["methods"]) == {"sequential", "associative", "chunked"}
        assert row["auto"] == scan.choose_method("diagonal", row["length"], backend=report["backend"])
        for name, m in row["methods"].items():
            for key in ("forward_s", "forward_backward_s", "compile_forward_s", "compile_forward_backward_s",
                        "peak_bytes_forward", "peak_bytes_forward_backward"):
                assert m[key] > 0, (name, key)
            assert m["forward_ratio_to_fastest"] >= 1.0
        assert row["methods"][row["fastest_forward"]]["forward_ratio_to_fastest"] == 1.0
        assert row["bandwidth_floor_forward_s"] > 0
