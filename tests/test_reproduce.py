"""experiments/reproduce.py: the suite driver, on a tiny suite of very small LRU ListOps runs (--suite-file)."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from experiments import reproduce, runs

REPO = Path(__file__).resolve().parent.parent

# Very small LRU runs on the small generated ListOps (the trainer tests' size): ~10 s each, mostly start-up.
TINY = {"model.d_model": 16, "model.n_layers": 1, "model.layer_args.d_state": 8, "train.batch_size": 8,
        "train.eval_batch_size": 256, "train.num_steps": 40, "train.log_every": 5, "train.eval_every": 20,
        "train.checkpoint_every": 5, "optim.warmup_steps": 5}


def env():
    return dict(os.environ, PYTHONUNBUFFERED="1", JAX_PLATFORMS="cpu")


def driver(suite_file, runs_dir, data_dir, *extra):
    return [sys.executable, "-m", "experiments.reproduce", "--suite-file", str(suite_file), "--runs-dir",
            str(runs_dir), "--data-dir", str(data_dir), "--progress-every", "1", *extra]


@pytest.fixture
def data_dir(listops_data_dir):
    return listops_data_dir


def write_suite(path, entries, seeds=1):
    path.write_text(json.dumps(dict(seeds=seeds, entries=entries)))
    return path


def test_expand_names_seeds_scale_and_filters():
    suite = dict(seeds=2, entries=[("lru", "listops_smoke"), ("ladder", "pathfinder,ring_init", {"optim.lr": 1e-3}),
                                   ("s4d", "listops", {"scale": "mini"})])
    got = reproduce.expand(suite, "t")
    assert [r.name for r in got[:4]] == ["lru-listops_smoke-seed0", "lru-listops_smoke-seed1",
                                         "ladder-pathfinder-ring_init-seed0", "ladder-pathfinder-ring_init-seed1"]
    assert [(r.scale, r.task, r.option) for r in got[::2]] == [("mini", "listops", None),
                                                                ("full", "pathfinder", "ring_init"),
                                                                ("mini", "listops", None)]
    cmd = got[3].command(Path("/w"), "/d")
    assert "--config.seed=1" in cmd and "--config.train.data_seed=1" in cmd and "--config.optim.lr=0.001" in cmd
    assert "--config.data.data_dir=/d" in cmd and "experiments/configs/ladder.py:pathfinder,ring_init" in cmd
    assert [r.name for r in reproduce.select(got, models=["ladder:ring_init"], tasks=["pathfinder"])] == \
        ["ladder-pathfinder-ring_init-seed0", "ladder-pathfinder-ring_init-seed1"]
    # A model or task the suite has no run of lists the ones it has (was "no run matches"; fresh-clone review).
    with pytest.raises(ValueError, match=r"^--models foo: this suite has no run of it; its models: lru, ladder, "
                                         r"ladder:ring_init, s4d$"):
        reproduce.select(got, models=["lru", "foo"])
    with pytest.raises(ValueError, match=r"^--tasks text image: this suite has no run of them; its tasks: listops, "
                                         r"pathfinder$"):
        reproduce.select(got, tasks=["text", "image"])
    assert reproduce.select(got, models=["s4d"], tasks=["pathfinder"]) == []
    with pytest.raises(ValueError, match="entry 0"):
        reproduce.expand(dict(entries=["lru"]), "bad")
    with pytest.raises(ValueError, match="used twice"):
        reproduce.expand(dict(entries=[("lru", "listops_smoke"), ("lru", "listops_smoke", {"optim.lr": 1})]), "x")
    named = reproduce.expand(dict(entries=[("lru", "listops_smoke", {"name": "wide", "model.d_model": 8})]), "x")
    assert named[0].name == "wide-seed0" and named[0].overrides == {"model.d_model": 8}


def test_builtin_suites_expand():
    for name, suite in reproduce.SUITES.items():
        assert reproduce.expand(suite, name), name
    mini = reproduce.expand(reproduce.SUITES["mini"], "mini")
    assert {r.scale for r in mini} == {"mini"} and {r.task for r in mini} == {"listops", "pathfinder"}
    assert {"lru", "transformer", "s4d"} <= {r.family for r in mini}


def test_dry_run_lists_runs_estimates_and_unavailable_configs(tmp_path, capsys):
    suite = write_suite(tmp_path / "s.json", [["lru", "listops_smoke", TINY], ["nosuchfamily", "listops_smoke"],
                                              ["lru", "pathx_tiny"], ["lru", "listops_smoke", {"name": "x", "train.nope": 1}]])
    assert reproduce.main(["--suite-file", str(suite), "--runs-dir", str(tmp_path / "r"), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "4 runs" in out and "3 not available" in out
    assert "experiments/configs/nosuchfamily.py does not exist yet" in out
    assert "unknown variant 'pathx_tiny'" in out and "override 'train.nope' is not a key" in out
    assert "experiments/configs/lru.py:listops_smoke" in out and "40 steps" in out and "estimate" in out
    assert not (tmp_path / "r").exists(), "a dry run writes nothing"


def test_bad_suite_file_is_a_clear_error(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    assert reproduce.main(["--suite-file", str(bad), "--dry-run"]) == 2
    assert "--suite-file" in capsys.readouterr().err
    both = write_suite(tmp_path / "both.json", [["lru", "listops_smoke"], ["s4d", "pathfinder_smoke"]])
    assert reproduce.main(["--suite-file", str(both), "--models", "lru", "--tasks", "pathfinder", "--dry-run"]) == 2
    assert capsys.readouterr().err.startswith("error: no run of suite both is of --models lru on --tasks pathfinder")
    assert reproduce.main(["--suite-file", str(both), "--models", "lru:foo", "--dry-run"]) == 2
    assert capsys.readouterr().err == "error: --models lru:foo: this suite has no run of it; its models: lru, s4d\n"


def wait_for(predicate, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def process_alive(pid):
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except FileNotFoundError:
        return False
    return state not in ("Z", "X")


def train_step(run_dir):
    records = runs.read_metrics(run_dir, "train")
    return records[-1]["step"] if records else 0


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the trainer dies with the driver on Linux only")
def test_sigkill_then_rerun_finishes_without_redoing_and_reports_failures(tmp_path, data_dir):
    """Kill the driver (SIGKILL) while its second run trains; the rerun skips the first run, resumes the second
    from its checkpoint, runs the third (a data error: trainer exit code 2), lists it as failed with its reason,
    and exits 1."""
    # a and b train the same program (num_steps is compiled into the schedule): b's compile is a hit in the
    # session's compilation cache (tests/conftest.py) after a's, which costs ~260 more cheap steps instead.
    long = {"train.num_steps": 300, "train.eval_every": 150, "train.checkpoint_every": 10}
    entries = [["lru", "listops_smoke", dict(TINY, name="a", **long)],
               ["lru", "listops_smoke", dict(TINY, name="b", **long)],
               ["lru", "listops_smoke", dict(TINY, name="c", **{"data.source": "release"})]]
    suite = write_suite(tmp_path / "tiny.json", entries)
    runs_dir = tmp_path / "runs"
    a, b, c = (runs_dir / f"{x}-seed0" for x in "abc")

    proc = subprocess.Popen(driver(suite, runs_dir, data_dir), cwd=REPO, env=env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        # Killed mid-run once it has a complete checkpoint (orbax names the folder by its step when complete).
        assert wait_for(lambda: (runs.latest_checkpoint_step(b) or 0) >= 10 and train_step(b) >= 20
                        or proc.poll() is not None, 600), "run b never reached a checkpoint"
        assert proc.poll() is None, "the driver ended before it could be killed"
        trainer_pid = json.loads((runs_dir / ".reproduce.lock").read_text())["trainer"]
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
    assert wait_for(lambda: not process_alive(trainer_pid), 20), "the trainer outlived the killed driver"
    assert (a / "results.json").exists() and not (b / "results.json").exists() and not c.exists()
    a_results = (a / "results.json").read_bytes()
    a_mtime = (a / "results.json").stat().st_mtime_ns
    checkpoint = runs.latest_checkpoint_step(b)

    rerun = subprocess.run(driver(suite, runs_dir, data_dir), cwd=REPO, env=env(), capture_output=True, text=True,
                           timeout=900)
    out = rerun.stdout
    assert rerun.returncode == 1, out + rerun.stderr
    assert "[1/3] a-seed0: finished before, skipped" in out
    assert f"[2/3] b-seed0: experiments/configs/lru.py:listops_smoke, resuming from its checkpoint at step " \
           f"{checkpoint}" in out
    assert "2/3 runs done, 1 failed" in out
    assert "FAILED       c-seed0: FAILED (user or data error, exit code 2)" in out
    assert "config.data.release_dir (release_dir=) is not set" in out, "the failure's reason is the trainer's error"
    # Nothing redone: run a untouched; run b resumed from its checkpoint and finished with each step logged once.
    assert (a / "results.json").read_bytes() == a_results and (a / "results.json").stat().st_mtime_ns == a_mtime
    assert f"resuming from step {checkpoint}" in (b / "train.log").read_text()
    steps = [r["step"] for r in runs.read_metrics(b, "train")]
    assert steps == list(range(5, 301, 5))
    info_b, info_c = runs.read_run(b), runs.read_run(c)
    assert info_b.status == "done" and info_b.scale == "mini" and info_b.seed == 0
    assert info_c.status == "failed" and info_c.failure["exit_code"] == 2
    assert json.loads((runs_dir / "suite.json").read_text())["runs"][2]["name"] == "c-seed0"

    # A third invocation has nothing left but the failed run (retried, fails again).
    again = subprocess.run(driver(suite, runs_dir, data_dir, "--models", "lru"), cwd=REPO, env=env(),
                           capture_output=True, text=True, timeout=900)
    assert again.returncode == 1 and again.stdout.count("finished before, skipped") == 2
    assert (a / "results.json").stat().st_mtime_ns == a_mtime
