"""The benchmark script runs and reports what the issue asks (experiments/benchmark.py): JSON structure only, at
tiny sizes. Times are not asserted."""
import json

import pytest

import models
import scan
from experiments import benchmark


def test_scan_benchmark_writes_json_for_every_method_and_length(tmp_path, capsys):
    out = tmp_path / "scan.json"
    benchmark.main(["scan", "--operators", "diagonal", "--lengths", "8,32", "--batch", "2", "--state", "4",
                    "--reps", "2", "--out", str(out)])
    report = json.loads(out.read_text())
    assert "fwd+bwd ms" in capsys.readouterr().out  # the readable table
    assert report["copy_bandwidth_bytes_per_s"] > 0 and report["jax_negate_bandwidth_bytes_per_s"] > 0
    assert [(r["operator"], r["length"]) for r in report["results"]] == [("diagonal", 8), ("diagonal", 32)]
    for row in report["results"]:
        assert set(row["methods"]) == set(scan.OPERATORS["diagonal"].methods)
        assert row["auto"] == scan.choose_method("diagonal", row["length"], backend=report["backend"])
        for name, m in row["methods"].items():
            for key in ("forward_s", "forward_backward_s", "compile_forward_s", "compile_forward_backward_s",
                        "peak_bytes_forward", "peak_bytes_forward_backward", "forward_ratio_to_floor"):
                assert m[key] > 0, (name, key)
            assert m["forward_ratio_to_fastest"] >= 1.0
        assert row["methods"][row["fastest_forward"]]["forward_ratio_to_fastest"] == 1.0
        assert row["bandwidth_floor_forward_s"] > 0


@pytest.mark.parametrize("argv,message", [
    (["scan", "--operators", "nope", "--lengths", "8"], "--operators nope"),
    (["scan", "--lengths", "abc"], "'abc' is not an integer"),
    (["layers", "--lengths", "0"], "0 must be >= 1"),
    (["step", "--batch", "0"], "0 must be >= 1"),
    (["step", "--length", "-1"], "-1 must be >= 1"),
    (["step", "--reps", "0"], "0 must be >= 1"),
    (["step", "--config", "experiments/configs/lru.py:listop"], "unknown variant 'listop'"),
    (["step", "--config", "experiments/configs/nope.py:listops"], "no file"),
    (["step", "--set", "model.nope=1"], "model.nope"),
])
def test_bad_arguments_are_one_error_line_and_exit_2(argv, message, capsys):
    """Found by a fresh-clone review: tracebacks (negative length, 0 reps, unknown variant), 0-batch rows, exit 1."""
    with pytest.raises(SystemExit) as exit_:
        benchmark.main(argv)
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and message in err and "Traceback" not in err, err


def test_step_benchmark_reports_tokens_compile_and_memory(tmp_path):
    out = tmp_path / "step.json"
    benchmark.main(["step", "--batch", "2", "--length", "16", "--reps", "1", "--set", "model.d_model=8",
                    "--set", "model.n_layers=1", "--set", "model.layer_args.d_state=4", "--out", str(out)])
    (row,) = json.loads(out.read_text())["results"]
    assert row["layer"] == "lru" and row["model"]["norm"] == "layer" and row["model"]["activation"] == "glu"
    for key in ("train_tokens_per_s", "eval_tokens_per_s", "train_compile_and_first_step_s", "eval_compile_s",
                "train_peak_bytes_xla", "peak_rss_bytes"):
        assert row[key] > 0, key



def test_layers_benchmark_covers_every_family_and_records_limits(tmp_path):
    out = tmp_path / "layers.json"
    benchmark.main(["layers", "--lengths", "8", "--batch", "1", "--d-model", "8", "--reps", "1",
                    "--max-bytes", str(2**40), "--out", str(out)])
    results = json.loads(out.read_text())["results"]
    assert sorted({r["layer"] for r in results}) == sorted(models.LAYERS)
    for r in results:
        assert "error" not in r, r
        assert r["forward_s"] > 0 and r["forward_backward_s"] > 0 and r["forward_backward_peak_bytes"] > 0
    # A size over the limit is recorded as skipped, not run.
    small = benchmark.bench_layer("lru", 8, 1, 16, 1, max_bytes=1)
    assert "skipped" in small and "forward_s" not in small


def test_all_uses_accelerator_sized_batches():
    cpu, gpu = benchmark.all_sizes("cpu"), benchmark.all_sizes("gpu")
    assert gpu["scan_batch"] > cpu["scan_batch"] and gpu["layers_batch"] > cpu["layers_batch"]
