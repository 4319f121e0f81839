"""The notebooks run top to bottom (nbclient) on small data; an error in any cell fails the test.

02 and 04 read a tiny runs directory made here by the suite driver (one very small LRU ListOps run), passed to the
notebooks through their parameters' environment variables (RUNS_DIR, RUN_DIR).
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

REPO = Path(__file__).resolve().parent.parent
NOTEBOOKS = REPO / "notebooks"
TINY = {"model.d_model": 16, "model.n_layers": 2, "model.layer_args.d_state": 8, "train.batch_size": 16,
        "train.eval_batch_size": 256, "train.num_steps": 40, "train.log_every": 10, "train.eval_every": 20,
        "train.checkpoint_every": 20, "optim.lr": 0.01, "optim.warmup_steps": 4}


def execute(name, **env):
    book = nbformat.read(NOTEBOOKS / name, as_version=4)
    old = {k: os.environ.get(k) for k in env}
    os.environ.update({k: str(v) for k, v in env.items()})  # the kernel inherits the environment
    try:
        NotebookClient(book, timeout=600, kernel_name="python3",
                       resources={"metadata": {"path": str(NOTEBOOKS)}}).execute()
    finally:
        for k, v in old.items():
            os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)
    return book


def output_text(book):
    return "\n".join(o.get("text", "") + str(o.get("data", {}).get("text/plain", ""))
                     for cell in book.cells if cell.cell_type == "code" for o in cell.get("outputs", []))


def test_notebooks_are_committed_without_outputs():
    books = sorted(NOTEBOOKS.glob("*.ipynb"))
    assert [b.name for b in books] == ["01_scan.ipynb", "02_results.ipynb", "03_ablation_ladder.ipynb",
                                       "04_eigenvalues.ipynb"]
    for path in books:
        book = nbformat.read(path, as_version=4)
        nbformat.validate(book)
        assert all(not c.get("outputs") and not c.get("execution_count") for c in book.cells
                   if c.cell_type == "code"), f"{path.name} has outputs: clear them before committing"
        source = "\n".join(c.source for c in book.cells if c.cell_type == "code")
        assert "nnx.Module)" not in source and "def __call__" not in source, f"{path.name} defines model code"


@pytest.fixture(scope="module")
def runs_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("nb_runs")
    suite = root / "suite.json"
    suite.write_text(json.dumps(dict(seeds=1, entries=[["lru", "listops_smoke", TINY]])))
    subprocess.run([sys.executable, "-m", "experiments.reproduce", "--suite-file", str(suite), "--runs-dir",
                    str(root / "runs"), "--data-dir", str(root / "data")], cwd=REPO, check=True, capture_output=True,
                   timeout=900, env=dict(os.environ, JAX_PLATFORMS="cpu"))
    return root / "runs"


def test_01_scan():
    book = execute("01_scan.ipynb", SCAN_SIZES="32,128")
    text = output_text(book)
    assert "max relative error" in text and "L=128" in text


@pytest.mark.slow
def test_02_results(runs_dir, tmp_path):
    fig_path = tmp_path / "out" / "table.png"
    text = output_text(execute("02_results.ipynb", RUNS_DIR=runs_dir, FIG_PATH=fig_path))
    assert "1 runs in" in text and "lru-listops_smoke-seed0" in text and f"figure: {fig_path}" in text
    assert "learning curves: ListOps, 1 runs" in text  # one row of subplots per task
    assert fig_path.exists() and not (runs_dir / "table.png").exists(), "the figure goes to FIG_PATH, not RUNS_DIR"


def test_03_ablation_ladder():
    text = output_text(execute("03_ablation_ladder.ipynb", N_STATE=64, RUNS_DIR=""))
    assert "ring_init" in text and "state variance / input variance" in text
    assert "not on this branch" not in text
    # The rungs' settings come from experiments/configs/ladder.py (ListOps' ring is [0, 0.9], not a copy's values).
    ring = next(line for line in text.splitlines() if line.startswith("ring_init   lru:"))
    assert "'r_max': 0.9" in ring and "'r_min': 0.0" in ring
    # The dense rungs' eigenvalues (of A at init) are computed and plotted too; rnn_lin's are inside the unit disk.
    for rung in ("rnn_relu", "rnn_tanh", "rnn_lin"):
        assert any(line.startswith(f"{rung:11s} eig(dense A)") for line in text.splitlines()), rung
    rnn_lin = next(line for line in text.splitlines() if line.startswith("rnn_lin     eig(dense A)"))
    assert float(rnn_lin.split("max ")[1].split(",")[0]) <= 1.0 + 1e-3


@pytest.mark.slow
def test_04_eigenvalues(runs_dir):
    text = output_text(execute("04_eigenvalues.ipynb", RUN_DIR=runs_dir / "lru-listops_smoke-seed0"))
    assert "best checkpoint: step" in text and "near the unit circle" in text
