"""Suite-wide set-up: one persistent XLA compilation cache shared by every test, worker and subprocess of a session.

Much of the suite compiles the same programs again: the trainer tests start some twenty `experiments.train`
processes on one tiny model, and the smoke, family and notebook tests build the same layers in several places.
JAX's persistent compilation cache (https://docs.jax.dev/en/latest/persistent_compilation_cache.html) stores each
executable XLA compiled on disk, keyed by the program, compile options, devices, backend and jax version; a later
compile of the same program in any process loads it instead (a tiny trainer run: 73 s -> 25 s at load 9, the train
step's compile 35 s -> 4 s). The executable is the one XLA compiled, so nothing a test checks changes; a damaged or
half-written entry is reported by jax as a warning and compiled afresh.

The directory is new for each session and removed at its end, so nothing carries over between runs (a CI run
measures a cold start). It is set here, at import, before any test module imports jax; the pytest-xdist workers and
every subprocess inherit it through the environment. A JAX_COMPILATION_CACHE_DIR set by the caller is respected.
"""
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

_OWN_CACHE_DIR = None
if "JAX_COMPILATION_CACHE_DIR" not in os.environ:
    _OWN_CACHE_DIR = tempfile.mkdtemp(prefix="lra-tests-xla-cache-")
    os.environ["JAX_COMPILATION_CACHE_DIR"] = _OWN_CACHE_DIR
    # Cache every compile, not only those over jax's default 1 s: the many small ones add up too.
    os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")


def pytest_unconfigure(config):
    if _OWN_CACHE_DIR is not None:  # the process that made it (the xdist controller) removes it, after the workers
        shutil.rmtree(_OWN_CACHE_DIR, ignore_errors=True)


@pytest.fixture(scope="session")
def listops_data_dir(tmp_path_factory):
    """A data dir holding the small generated ListOps, prepared once per session (per xdist worker) by the CLI."""
    path = tmp_path_factory.mktemp("listops_small")
    subprocess.run([sys.executable, "-m", "lra.prepare", "listops", "--generate", "--size", "small",
                    "--data-dir", str(path)], cwd=Path(__file__).resolve().parent.parent, check=True,
                   capture_output=True)
    return path
