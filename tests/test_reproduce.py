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


def test_dry_run_lists_runs_and_estimates(tmp_path, capsys):
    suite = write_suite(tmp_path / "s.json", [["lru", "listops_smoke", TINY]])
    assert reproduce.main(["--suite-file", str(suite), "--runs-dir", str(tmp_path / "r"), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "1 runs" in out and "0 not available" in out
    assert "experiments/configs/lru.py:listops_smoke" in out and "40 steps" in out and "estimate" in out
    # The stated LRU ListOps rate is of the mini suite's 32-wide, 2-layer entry: the label says this run differs
    # and claims no size it does not have (fresh-clone review: it said "(32 wide, 2 layers)").
    assert "32 wide" not in out and "this run differs: model.d_model 16 (the entry's 32)" in out
    assert not (tmp_path / "r").exists(), "a dry run writes nothing"


@pytest.mark.parametrize("entry, says", [
    (["lru", "listops_smoke", {"model.bogus_key": 3}], "unknown config key 'model.bogus_key'; valid keys under "
                                                       "model: activation"),
    (["lru", "listops_nope"], "unknown variant 'listops_nope' for lru.py; choose one of: listops, listops_smoke"),
    (["lru", "listops_smoke", {"model.d_model": "abc"}], "--config.model.d_model=abc: invalid literal for int()"),
    (["lru", "listops_smoke", {"train.num_steps": 0}], "config.train.num_steps=0: must be an integer >= 1"),
    (["lur", "listops_smoke"], "experiments/configs/lur.py does not exist; the families are: "),
])
def test_entry_config_errors_exit_2_before_anything_runs(tmp_path, capsys, entry, says):
    """A typo in a suite file is a user error naming the file, the entry and the key or variant (was "0/0 runs
    done, 2 not available", exit 0), in --dry-run too; nothing is written."""
    suite = write_suite(tmp_path / "typo.json", [["lru", "listops_smoke", dict(TINY, name="ok")], entry])
    for extra in (["--dry-run"], []):
        assert reproduce.main(["--suite-file", str(suite), "--runs-dir", str(tmp_path / "r"), *extra]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"error: --suite-file {suite} entry 1 ({entry[0]}, {entry[1]}): "), err
        assert says in err and err.rstrip().endswith(f"Fix the entry in --suite-file {suite}.")
    assert not (tmp_path / "r").exists()


def test_not_available_only_for_an_unwritten_family_of_a_builtin_suite(monkeypatch, tmp_path, capsys):
    # Every run of the built-in suites resolves today (nothing is "not available" any more).
    for name, suite in reproduce.SUITES.items():
        for run in reproduce.expand(suite, name, seeds=1):
            assert reproduce.resolve_config(run, check=False), run.name  # raises NotWritten if not available
    monkeypatch.setitem(reproduce.SUITES, "planned", dict(entries=[("lru", "listops_smoke", TINY),
                                                                    ("mamba9", "listops_smoke")]))
    assert reproduce.main(["--suite", "planned", "--runs-dir", str(tmp_path / "r"), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "(1 not available)" in out and "not available: experiments/configs/mamba9.py does not exist yet" in out


def test_bad_runs_dir_and_progress_every_are_usage_errors(tmp_path, capsys):
    suite = write_suite(tmp_path / "s.json", [["lru", "listops_smoke", TINY]])
    a_file = tmp_path / "a_file"
    a_file.write_text("")
    for runs_dir in (a_file, a_file / "sub"):
        for extra in (["--dry-run"], []):
            assert reproduce.main(["--suite-file", str(suite), "--runs-dir", str(runs_dir), *extra]) == 2
            assert capsys.readouterr().err == f"error: --runs-dir {runs_dir}: {a_file} is a file, not a folder; " \
                                              "give another --runs-dir\n"
    for bad in ("0", "-1", "nan"):
        with pytest.raises(SystemExit) as exit_:
            reproduce.main(["--suite-file", str(suite), "--progress-every", bad, "--dry-run"])
        assert exit_.value.code == 2
        assert f"argument --progress-every: must be a number of seconds > 0, got {bad}" in capsys.readouterr().err


def test_second_driver_on_a_runs_dir_exits_2(tmp_path, capsys):
    suite = write_suite(tmp_path / "s.json", [["lru", "listops_smoke", TINY]])
    (tmp_path / "r").mkdir()
    with reproduce.lock(tmp_path / "r"):
        assert reproduce.main(["--suite-file", str(suite), "--runs-dir", str(tmp_path / "r")]) == 2
    assert capsys.readouterr().err.startswith("error: another experiments.reproduce is running on ")


def fake_run_dir(run_dir, run, finished, **config_changes):
    """A run directory as the trainer leaves it, for `run` with config_changes applied to its resolved config."""
    config = reproduce.resolve_config(run, check=False).to_dict()
    for key, value in config_changes.items():
        section, leaf = key.split(".")
        config[section][leaf] = value
    run_dir.mkdir(parents=True)
    (run_dir / "config.json").write_text(json.dumps(dict(config, dataset={"folder": "x"})))
    (run_dir / "run.json").write_text(json.dumps(run.record()))
    if finished:
        (run_dir / "results.json").write_text(json.dumps(dict(test_accuracy=0.258, val_accuracy=0.25, step=40)))


def test_a_run_with_another_config_is_never_reused(tmp_path, capsys):
    """Fresh-clone review: a finished 600-step, 16-wide run was reused as the mini suite's 2000-step, 32-wide one.
    A finished run is compared outside table.BOOKKEEPING, an unfinished one on every key (as the trainer does on
    resume); a stale one is listed as failed with the keys and the fix, left untouched, and the suite exits 1."""
    entries = [["lru", "listops_smoke", dict(TINY, name=x)] for x in ("same", "bookkeeping", "old", "half")]
    suite = write_suite(tmp_path / "s.json", entries)
    runs_dir = tmp_path / "r"
    same, bookkeeping, old, half = reproduce.expand(json.loads(suite.read_text()), "s")
    fake_run_dir(runs_dir / same.name, same, finished=True)
    fake_run_dir(runs_dir / bookkeeping.name, bookkeeping, finished=True, **{"train.log_every": 7})
    fake_run_dir(runs_dir / old.name, old, finished=True, **{"train.num_steps": 600, "model.d_model": 8})
    fake_run_dir(runs_dir / half.name, half, finished=False, **{"train.log_every": 7})
    args = ["--suite-file", str(suite), "--runs-dir", str(runs_dir)]
    assert reproduce.main([*args, "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "(0 not available, 2 stale)" in out
    assert f"{'old-seed0':<44s} stale (config differs: model.d_model: 8 -> 16; train.num_steps: 600 -> 40): " \
           f"{runs_dir / 'old-seed0'} holds a finished run" in out
    assert "half-seed0" in out and "stale (config differs: train.log_every: 7 -> 5): " in out
    assert "an unfinished run with another config than this suite's entry, so it is not reused; delete or move " \
           "that run directory, or use another --runs-dir" in out
    before = {p: p.read_bytes() for p in runs_dir.rglob("*") if p.is_file()}
    assert reproduce.main(args) == 1  # nothing to train: two finished, two stale
    out = capsys.readouterr().out
    assert "[1/4] same-seed0: finished before, skipped: test 25.80%" in out
    assert "[2/4] bookkeeping-seed0: finished before, skipped" in out
    assert "[3/4] old-seed0: NOT RUN, stale (config differs: model.d_model: 8 -> 16" in out
    assert "2/4 runs done, 2 failed (2 stale)" in out and "  FAILED       half-seed0: stale (config differs" in out
    assert {p: p.read_bytes() for p in runs_dir.rglob("*") if p.is_file() and p.parent != runs_dir} == \
        {p: b for p, b in before.items() if p.parent != runs_dir}, "stale runs are left untouched"
    suite_json = {r["name"]: r["stale"] for r in json.loads((runs_dir / runs.SUITE_FILE).read_text())["runs"]}
    assert suite_json["same-seed0"] is None and suite_json["old-seed0"].startswith("stale (config differs: ")


def test_mini_suite_checkpoints_about_every_minute():
    """A kill -9 of a mini run loses at most about a minute (was: checkpoint_every = num_steps, all of it)."""
    for run in reproduce.expand(reproduce.SUITES["mini"], "mini"):
        train = reproduce.resolve_config(run, check=False).train
        rate = reproduce.STEP_RATE_ESTIMATES[(run.family, run.task, "mini")][0]
        every, n = train.checkpoint_every, train.num_steps
        assert train.eval_every == n, "one validation, at the end"
        assert 1 <= every <= n and (every == n or 40 <= every / rate <= 61), (run.name, every / rate)
        # A save between log lines would inflate the logged steps/s (the trainer drops that time, not the steps).
        assert every % train.log_every == 0 or every == n, (run.name, every, train.log_every)
        if run.task == "pathfinder":
            assert every < n, run.name


def test_failure_reason_keeps_the_command_an_error_says_to_run(tmp_path):
    log = tmp_path / "train.log"
    log.write_text("step 5\nerror: the ListOps release data is not prepared; run the command below\n"
                   "  python -m lra.prepare listops --release-dir DIR\n\nTraceback noise\n")
    failure = reproduce.failure_of(2, log)
    assert failure["reason"] == "error: the ListOps release data is not prepared; run the command below\n" \
                                "  python -m lra.prepare listops --release-dir DIR"
    assert failure["kind"] == runs.USER_ERROR


def test_progress_shows_only_this_sessions_steps_never_backwards(tmp_path):
    metrics = tmp_path / "metrics.jsonl"
    line = lambda step: json.dumps(dict(step=step, split="train", steps_per_s=1.0)) + "\n"
    metrics.write_text(line(200) + line(260))  # a killed session logged 260; its checkpoint is at 200
    progress = reproduce.FreshProgress(tmp_path)
    assert progress.update() is None, "step 260 is stale: the resumed trainer drops it"
    tmp = tmp_path / "m.tmp"
    tmp.write_text(line(200))
    os.replace(tmp, metrics)  # what the resumed trainer does first (runlog.MetricsLog)
    assert progress.update()["step"] == 200
    with metrics.open("a") as f:
        f.write(line(205))
    assert progress.update()["step"] == 205 and progress.update() is None


def test_stop_on_signal_forwards_sigint_then_kills(tmp_path):
    """The first SIGINT/SIGTERM to the driver reaches the trainer as SIGINT; a second one kills it."""
    child = [sys.executable, "-c", "import signal, sys, time\n"
             "signal.signal(signal.SIGINT, lambda *a: print('SIGINT', flush=True))\n"
             "print('ready', flush=True)\nwhile True: time.sleep(0.01)\n"]
    with reproduce.StopOnSignal() as stop:
        stop.proc = subprocess.Popen(child, stdout=subprocess.PIPE, text=True)
        assert stop.proc.stdout.readline() == "ready\n"
        os.kill(os.getpid(), signal.SIGTERM)
        assert stop.proc.stdout.readline() == "SIGINT\n" and stop.signum == signal.SIGTERM
        assert stop.exit_code == 143 and stop.proc.poll() is None
        os.kill(os.getpid(), signal.SIGINT)
        assert stop.proc.wait(10) == -signal.SIGKILL
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL, "handlers restored"


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


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="process groups and the parent-death signal")
def test_sigint_to_the_driver_alone_stops_the_trainer_at_a_step_boundary(tmp_path, data_dir):
    """kill -INT <driver pid> (not its process group): the driver forwards it to the trainer, waits for it to stop
    at a step boundary (the trainer's own Ctrl-C: its message in train.log, no half-written checkpoint), then exits
    130 with its summary (fresh-clone review: it exited 130 at once and the parent-death signal SIGKILLed the
    trainer mid-save)."""
    long = {"train.num_steps": 100000, "train.eval_every": 100000, "train.checkpoint_every": 5}
    suite = write_suite(tmp_path / "s.json", [["lru", "listops_smoke", dict(TINY, name="r", **long)]])
    runs_dir = tmp_path / "runs"
    run_dir = runs_dir / "r-seed0"
    proc = subprocess.Popen(driver(suite, runs_dir, data_dir), cwd=REPO, env=env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        assert wait_for(lambda: train_step(run_dir) >= 10 or proc.poll() is not None, 600), "no step logged"
        assert proc.poll() is None, "the driver ended before it could be interrupted"
        trainer_pid = json.loads((runs_dir / ".reproduce.lock").read_text())["trainer"]
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, out + err
    assert not process_alive(trainer_pid)
    assert "SIGINT: asking the trainer" in err and "interrupted (SIGINT): r-seed0 stopped at step " in err
    assert "suite stopped after" in out and "0/1 runs done, 0 failed" in out
    log = (run_dir / "train.log").read_text()
    assert "error: interrupted at step " in log, "the trainer stopped by itself, at a step boundary"
    assert not any("tmp" in p.name for p in (run_dir / "checkpoints").rglob("*")), "no half-written checkpoint"
    assert not (run_dir / runs.FAILURE_FILE).exists(), "an interrupted run is not a failed one"


def test_an_unreadable_run_directory_is_a_failed_run_and_the_suite_goes_on(tmp_path, capsys):
    """Review: a corrupt results.json or config.json crashed the driver (ValueError traceback) before any run."""
    entries = [["lru", "listops_smoke", dict(TINY, name=x)] for x in ("results", "config", "fine")]
    suite = write_suite(tmp_path / "s.json", entries)
    runs_dir = tmp_path / "r"
    for run in reproduce.expand(json.loads(suite.read_text()), "s"):
        fake_run_dir(runs_dir / run.name, run, finished=True)
    (runs_dir / "results-seed0" / "results.json").write_text('{"test_accuracy": ')
    (runs_dir / "config-seed0" / "config.json").write_text("{")
    args = ["--suite-file", str(suite), "--runs-dir", str(runs_dir)]
    assert reproduce.main([*args, "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "(0 not available, 2 unreadable)" in out
    assert f"{'results-seed0':<44s} unreadable: {runs_dir / 'results-seed0' / 'results.json'}: Expecting value: " \
           "line 1 column 19 (char 18); move or delete that run directory" in out
    assert f"unreadable: {runs_dir / 'config-seed0' / 'config.json'}: Expecting property name" in out
    assert reproduce.main(args) == 1
    out = capsys.readouterr().out
    assert "[1/3] results-seed0: NOT RUN, unreadable: " in out and "[3/3] fine-seed0: finished before" in out
    assert "1/3 runs done, 2 failed (2 unreadable)" in out and "  FAILED       config-seed0: unreadable: " in out
    suite_json = {r["name"]: r["stale"] for r in json.loads((runs_dir / runs.SUITE_FILE).read_text())["runs"]}
    assert suite_json["results-seed0"] is None, "not called stale in suite.json (the table shows it unreadable)"


@pytest.mark.parametrize("suite, says", [
    (dict(seed=1, entries=[]), 'unknown key "seed" (the valid keys: entries, seeds, scale)'),
    (dict(entries=[], extra=1), 'unknown key "extra" (the valid keys: entries, seeds, scale)'),
    (dict(seeds="2", entries=[]), '"seeds" must be a positive integer (the number of seeds per entry), got "2"'),
    (dict(seeds=0, entries=[]), '"seeds" must be a positive integer (the number of seeds per entry), got 0'),
    (dict(seeds=True, entries=[]), '"seeds" must be a positive integer'),
    (dict(seeds=1.5, entries=[]), '"seeds" must be a positive integer'),
    (dict(entries=[["lru", "listops_smoke", [1, 2]]]), 'entry 0 ["lru", "listops_smoke", [1, 2]]: its overrides '
                                                       'must be a JSON object'),
    (dict(entries=[[1, 2]]), "entry 0 [1, 2]: family must be a non-empty string, got 1"),
    (dict(entries=[["lru"]]), 'entry 0 ["lru"] is not [family, variant] or [family, variant, {overrides}]'),
    (dict(entries=["lru"]), 'entry 0 "lru" is not [family, variant]'),
    (dict(entries=[["../lru", "listops_smoke"]]), 'family "../lru" contains a path separator or \'..\''),
    (dict(entries=[["lru", "listops_smoke/x"]]), 'variant "listops_smoke/x" contains a path separator'),
    (dict(entries=[["lru", "listops_smoke", {"name": "../../x"}]]), 'name "../../x" contains a path separator'),
])
def test_suite_file_mistakes_are_usage_errors_naming_the_file(tmp_path, capsys, monkeypatch, suite, says):
    monkeypatch.setattr(reproduce, "resolve_all", lambda *a, **k: pytest.fail("checked before configs resolve"))
    path = tmp_path / "s.json"
    path.write_text(json.dumps(suite))
    assert reproduce.main(["--suite-file", str(path), "--runs-dir", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: --suite-file {path}: ") and says in err and err.count("\n") == 1, err
    assert "; expected {\"entries\": [[family, variant] or [family, variant, {overrides}], ...]" in err
    assert not (tmp_path / "r").exists()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc")
def test_uncreatable_runs_dir_and_ctrl_c_at_start_up_are_one_line(tmp_path, capsys, monkeypatch):
    suite = write_suite(tmp_path / "s.json", [["lru", "listops_smoke", TINY]])
    assert reproduce.main(["--suite-file", str(suite), "--runs-dir", "/proc/nope"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --runs-dir /proc/nope: cannot create it (") and err.count("\n") == 1, err

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt
    monkeypatch.setattr(reproduce, "resolve_all", interrupted)
    assert reproduce.main(["--suite-file", str(suite), "--runs-dir", str(tmp_path / "r")]) == 130
    assert capsys.readouterr().err == "\ninterrupted (SIGINT) during start-up; nothing was run\n"


def test_the_trainer_dies_with_the_driver_without_preexec_fn(monkeypatch):
    """Review: Popen(preexec_fn=...) after JAX started threads warned of a fork deadlock. The trainer asks for the
    parent-death signal itself, and exits if the driver named in LRA_DRIVER_PID is not its parent (any more)."""
    import inspect

    from experiments import train

    assert "preexec_fn=" not in inspect.getsource(reproduce.run_one)
    run = reproduce.expand(dict(entries=[["lru", "listops_smoke"]]), "s")[0]
    assert run.name == "lru-listops_smoke-seed0"
    train.die_with_driver({})  # not started by the driver: nothing
    train.die_with_driver({"LRA_DRIVER_PID": str(os.getppid())})  # its parent: goes on
    if sys.platform.startswith("linux"):  # that asked for a parent-death signal for pytest itself: undo it
        import ctypes
        ctypes.CDLL(None).prctl(1, 0)
    if sys.platform.startswith("linux"):
        exits = []
        monkeypatch.setattr(train.os, "_exit", exits.append)
        train.die_with_driver({"LRA_DRIVER_PID": str(os.getpid())})  # the driver is not its parent: exit
        assert exits == [1]


def test_describe_shows_the_chance_level_and_the_eta_counts_from_the_checkpoint(tmp_path):
    info = runs.RunInfo(path=tmp_path, name="x", family="lru", option=None, task="pathfinder", seed=0, scale="mini",
                        status="done", failure=None, step=600, num_steps=600, config=None,
                        results=dict(test_accuracy=0.5425, val_accuracy=0.5, chance_accuracy=0.5425,
                                     majority_class_test_accuracy=0.4575, chance_level=True))
    assert reproduce.describe(info) == "test 54.25% (val 50.00%, chance 54.2%)  CHANCE LEVEL: did not learn the task"
    del info.results["chance_accuracy"]  # a results.json from before chance_accuracy was recorded
    assert "(val 50.00%, majority class 45.8%)" in reproduce.describe(info)
    run = reproduce.expand(dict(entries=[["lru", "listops_smoke", TINY]]), "s")[0]
    run_dir = tmp_path / run.name
    fake_run_dir(run_dir, run, finished=False)
    (run_dir / "checkpoints" / "latest" / "30").mkdir(parents=True)  # logged: nothing yet (log_every > 30)
    rates = {("lru", "listops", "mini"): 1.0}
    seconds, how = reproduce.estimate(run, run_dir, 40, rates)
    assert seconds == 10 + reproduce.START_UP_S["mini"], how
