"""End-to-end training (experiments/train.py, experiments/trainer.py) on tiny generated ListOps.

Each test runs the real command in a subprocess: exact resume after SIGKILL, 4 devices vs 1, divergence, config
errors. They are marked slow but run in CI.
"""
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parent.parent

# A tiny LRU on the small generated ListOps: ~15 s per run on 2 cores, most of it start-up and compilation.
TINY = [
    "--config.model.d_model=16",
    "--config.model.n_layers=1",
    "--config.model.layer_args.d_state=8",
    "--config.model.dropout=0.1",  # so that the dropout RNG state must be restored too
    "--config.train.batch_size=8",
    "--config.train.eval_batch_size=256",
    "--config.train.num_steps=60",
    "--config.train.log_every=5",
    "--config.train.eval_every=20",
    "--config.train.checkpoint_every=10",
    "--config.optim.warmup_steps=5",
]
EXACT_KEYS = ("val_accuracy", "val_loss", "test_accuracy", "test_loss", "best_step", "step", "final_train_loss")


@pytest.fixture(scope="session")
def data_dir(listops_data_dir):
    return listops_data_dir


def command(workdir, data_dir, *extra):
    return [sys.executable, "-m", "experiments.train", "--config", "experiments/configs/lru.py:listops_smoke",
            "--workdir", str(workdir), f"--config.data.data_dir={data_dir}", *TINY, *extra]


def env(devices=1):
    e = dict(os.environ, PYTHONUNBUFFERED="1")
    e["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={devices}"
    e["JAX_PLATFORMS"] = "cpu"
    return e


def train(workdir, data_dir, *extra, devices=1, check=True):
    proc = subprocess.run(command(workdir, data_dir, *extra), cwd=REPO, env=env(devices), capture_output=True,
                          text=True, timeout=600)
    if check and proc.returncode != 0:
        raise AssertionError(f"training failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc


def records(workdir, split):
    lines = (Path(workdir) / "metrics.jsonl").read_text().splitlines()
    return [r for r in map(json.loads, lines) if r["split"] == split]


@pytest.fixture(scope="session")
def reference_run(tmp_path_factory, data_dir):
    workdir = tmp_path_factory.mktemp("reference")
    proc = train(workdir, data_dir)
    return workdir, proc


@pytest.mark.slow
def test_run_directory_holds_everything_a_run_records(reference_run):
    workdir, proc = reference_run
    results = json.loads((workdir / "results.json").read_text())
    for key in ("val_accuracy", "test_accuracy", "step", "wall_time_s", "tokens_per_s", "best_step", "compile_s"):
        assert key in results, key
    assert results["step"] == 60 and results["best_step"] in (20, 40, 60)
    assert results["compile_s"] > 0 and results["tokens_per_s"] > 0
    assert json.loads((workdir / "config.json").read_text())["train"]["num_steps"] == 60
    environment = json.loads((workdir / "environment.json").read_text())
    assert environment["packages"]["jax"] and environment["revision"]
    assert list((workdir / "tensorboard").iterdir()), "no TensorBoard event file"
    train_steps = [r["step"] for r in records(workdir, "train")]
    assert train_steps == list(range(5, 61, 5))
    assert [r["step"] for r in records(workdir, "val")] == [20, 40, 60]
    # The test accuracy is that of the best-by-validation checkpoint, which is kept apart from the latest.
    assert (workdir / "checkpoints" / "best" / str(results["best_step"])).is_dir()
    assert (workdir / "checkpoints" / "latest" / "60").is_dir()
    # Start-up prints the parameter count of each optimiser group; the end prints the accuracies and the run dir.
    assert "recurrent" in proc.stdout and "no_decay" in proc.stdout and "decay" in proc.stdout
    assert "test accuracy" in proc.stdout and "majority-class baseline" in proc.stdout and str(workdir) in proc.stdout


@pytest.mark.slow
def test_rerunning_a_finished_run_prints_its_stored_results(reference_run, data_dir):
    workdir, _ = reference_run
    before = (workdir / "results.json").read_text()
    metrics_before = (workdir / "metrics.jsonl").read_text()
    proc = train(workdir, data_dir)
    assert "its stored results" in proc.stdout and "resuming" not in proc.stdout
    results = json.loads(before)
    assert f"test accuracy {results['test_accuracy']:.4f}" in proc.stdout
    # Nothing re-evaluated or rewritten: no second test row, the same results.json.
    assert (workdir / "results.json").read_text() == before
    assert (workdir / "metrics.jsonl").read_text() == metrics_before
    assert len(records(workdir, "test")) == 1


@pytest.mark.slow
def test_run_records_its_data_and_the_baseline_definition(reference_run, data_dir):
    workdir, proc = reference_run
    config = json.loads((workdir / "config.json").read_text())
    folder = Path(config["dataset"]["folder"])
    assert folder.parent == Path(data_dir).resolve()
    assert config["dataset"]["manifest_sha256"] == hashlib.sha256((folder / "manifest.json").read_bytes()).hexdigest()
    assert isinstance(json.loads((workdir / "environment.json").read_text())["dirty"], bool)
    results = json.loads((workdir / "results.json").read_text())
    train_labels = np.load(folder / "train.labels.npy")
    test_labels = np.load(folder / "test.labels.npy")
    label = int(np.argmax(np.bincount(train_labels)))
    assert results["majority_class_label"] == label
    assert results["majority_class_test_accuracy"] == pytest.approx(np.mean(test_labels == label))
    assert f"always predicting label {label}, the most frequent train label" in proc.stdout
    assert "elapsed" in proc.stdout and "ETA" in proc.stdout


@pytest.mark.slow
def test_evaluate_command_reproduces_the_runs_numbers(reference_run):
    workdir, _ = reference_run
    results = json.loads((workdir / "results.json").read_text())
    proc = subprocess.run([sys.executable, "-m", "experiments.evaluate", "--workdir", str(workdir), "--split", "val",
                           "--split", "test", "--json"], cwd=REPO, env=env(), capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert got["step"] == results["best_step"]
    assert got["val_accuracy"] == pytest.approx(results["val_accuracy"], abs=1e-6)
    assert got["test_accuracy"] == pytest.approx(results["test_accuracy"], abs=1e-6)
    assert len(records(workdir, "test")) == 1  # evaluation writes nothing into the run directory


@pytest.mark.slow
def test_ctrl_c_stops_at_a_step_says_where_a_rerun_resumes_and_the_rerun_finishes(reference_run, data_dir, tmp_path):
    ref_dir, _ = reference_run
    proc = subprocess.Popen(command(tmp_path, data_dir), cwd=REPO, env=env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    assert wait_for(lambda: logged_step(tmp_path) >= 12 or proc.poll() is not None, 300) and proc.poll() is None
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 130, err[-2000:]
    assert "Traceback" not in err and "KeyboardInterrupt" not in err
    message = err.strip().splitlines()[-1]
    assert message.startswith("error: interrupted at step ") and "resumes from step" in message
    resume = int(message.split("resumes from step ")[1].split(" ")[0])
    assert resume == int(message.split("interrupted at step ")[1].split(" ")[0])  # the step reached was saved
    assert (tmp_path / "checkpoints" / "latest" / str(resume)).is_dir()
    rerun = train(tmp_path, data_dir)
    assert f"resuming from step {resume}" in rerun.stdout
    ref = json.loads((ref_dir / "results.json").read_text())
    got = json.loads((tmp_path / "results.json").read_text())
    assert {k: got[k] for k in EXACT_KEYS} == {k: ref[k] for k in EXACT_KEYS}


def wait_for(predicate, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return False


def logged_step(workdir):
    """The last step in metrics.jsonl (0 when none yet)."""
    path = Path(workdir) / "metrics.jsonl"
    lines = path.read_text().splitlines() if path.exists() else []
    try:
        return json.loads(lines[-1])["step"] if lines else 0
    except json.JSONDecodeError:  # a line being written
        return 0


@pytest.mark.slow
def test_sigkill_at_any_moment_then_rerun_gives_identical_results(reference_run, data_dir, tmp_path):
    """Kill twice mid-run at random logged steps (after a checkpoint, around evals and saves), then finish."""
    ref_dir, _ = reference_run
    rng = np.random.default_rng()
    kill_after = []
    for low, high in ((12, 36), (None, 58)):
        # The second kill comes at a later step than the first run had logged.
        target = int(rng.integers(low if low is not None else logged_step(tmp_path) + 5, high))
        kill_after.append(target)
        proc = subprocess.Popen(command(tmp_path, data_dir), cwd=REPO, env=env(), stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        reached = wait_for(lambda: logged_step(tmp_path) >= target or proc.poll() is not None, 300)
        assert reached and proc.poll() is None, f"the run ended before step {target}"
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert not (tmp_path / "results.json").exists()
    train(tmp_path, data_dir)
    ref = json.loads((ref_dir / "results.json").read_text())
    got = json.loads((tmp_path / "results.json").read_text())
    assert {k: got[k] for k in EXACT_KEYS} == {k: ref[k] for k in EXACT_KEYS}, kill_after
    # The metrics log is rewritten on resume: no step twice, and the same losses as the uninterrupted run.
    assert [(r["step"], r["loss"]) for r in records(tmp_path, "train")] == \
           [(r["step"], r["loss"]) for r in records(ref_dir, "train")], kill_after


@pytest.mark.slow
def test_four_devices_give_the_same_losses_as_one(reference_run, data_dir, tmp_path):
    ref_dir, _ = reference_run
    train(tmp_path, data_dir, devices=4)
    assert json.loads((tmp_path / "results.json").read_text())["n_devices"] == 4
    one = [r["loss"] for r in records(ref_dir, "train")]
    four = [r["loss"] for r in records(tmp_path, "train")]
    np.testing.assert_allclose(four, one, rtol=2e-3, atol=2e-4)


@pytest.mark.slow
def test_batch_size_not_divisible_by_devices_is_a_config_error(data_dir, tmp_path):
    proc = train(tmp_path, data_dir, "--config.train.batch_size=6", devices=4, check=False)
    assert proc.returncode != 0
    assert "train.batch_size=6" in proc.stderr + proc.stdout and "Traceback" not in proc.stderr


@pytest.mark.slow
def test_divergence_stops_the_run_without_checkpointing_the_bad_state(data_dir, tmp_path):
    proc = train(tmp_path, data_dir, "--config.optim.lr=1e30", "--config.optim.grad_clip=1e30",
                 "--config.optim.warmup_steps=0", check=False)
    assert proc.returncode == 3, proc.stderr[-2000:]
    assert "non-finite loss, gradient or parameters at step" in proc.stderr and "Traceback" not in proc.stderr
    bad_step = int(proc.stderr.split("at step ")[1].split(";")[0])
    latest = tmp_path / "checkpoints" / "latest"
    saved = [int(p.name) for p in latest.iterdir() if p.name.isdigit()] if latest.exists() else []
    assert all(s < bad_step for s in saved), (saved, bad_step)


def test_unknown_config_key_is_an_error_listing_valid_keys(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "experiments.train", "--config",
                           "experiments/configs/lru.py:listops_smoke", "--workdir", str(tmp_path),
                           "--config.train.num_stepz=3"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "unknown config key 'train.num_stepz'" in proc.stderr and "num_steps" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_resuming_with_another_config_is_refused(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"seed": 1}))
    proc = subprocess.run([sys.executable, "-m", "experiments.train", "--config",
                           "experiments/configs/lru.py:listops_smoke", "--workdir", str(tmp_path)],
                          cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "another config" in proc.stderr and "Traceback" not in proc.stderr


def test_missing_release_data_prints_the_prepare_command(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "experiments.train", "--config",
                           "experiments/configs/lru.py:listops", "--workdir", str(tmp_path / "run"),
                           f"--config.data.data_dir={tmp_path / 'data'}"],
                          cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "python -m lra.prepare listops --release-dir" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "run").exists()  # a run that failed before its first step binds nothing


@pytest.mark.slow
def test_a_checkpoint_restores_onto_another_device_count(reference_run, data_dir, tmp_path):
    ref_dir, _ = reference_run
    workdir = tmp_path / "copy"
    shutil.copytree(ref_dir, workdir)
    (workdir / "results.json").unlink()  # else the finished run just prints its stored results
    proc = train(workdir, data_dir, devices=4)
    assert "resuming from step 60" in proc.stdout
    ref = json.loads((ref_dir / "results.json").read_text())
    got = json.loads((workdir / "results.json").read_text())
    assert got["n_devices"] == 4 and got["best_step"] == ref["best_step"]
    assert got["test_accuracy"] == pytest.approx(ref["test_accuracy"], abs=1e-3)
    assert got["test_loss"] == pytest.approx(ref["test_loss"], rel=1e-4)


@pytest.mark.filterwarnings("ignore:overflow encountered in cast")  # lr=1e39 becomes inf in float32, on purpose
def test_the_divergence_guard_checks_the_updated_parameters():
    """A finite loss and gradient with a learning rate that overflows the parameters is caught at that step."""
    import jax.numpy as jnp
    from flax import nnx

    import models
    from experiments import optim, trainer
    from experiments.configs import lru

    config = lru.get_config("listops_smoke")
    config.unlock()
    config.model.update(d_model=4, n_layers=1)
    config.model.layer_args.d_state = 2
    config.optim.update(lr=1e39, grad_clip=1.0, warmup_steps=0)  # 1e39 overflows float32: params become inf
    model = models.build_classifier(**config.model.to_dict(), n_classes=3, vocab_size=5, rngs=nnx.Rngs(0))
    tx = optim.make_optimizer(config.optim, optim.param_labels(model), total_steps=10)
    train_graphdef, eval_graphdef, state = trainer.init_state(model, tx)
    steps = trainer.make_steps(train_graphdef, eval_graphdef, tx)
    batch = dict(inputs=jnp.ones((2, 6), jnp.int32), lengths=jnp.array([6, 3], jnp.int32),
                 labels=jnp.array([0, 1], jnp.int32), valid=jnp.ones(2, bool))
    state, metrics = steps.train(state, batch)
    assert np.isfinite(float(metrics["loss"])) and np.isfinite(float(metrics["grad_norm"]))
    assert int(state["nonfinite_step"]) == 1
    with pytest.raises(trainer.TrainingDiverged, match="at step 1;"):
        trainer.check_finite(state)


@pytest.mark.slow
def test_a_checkpoint_that_cannot_be_saved_stops_the_run_with_the_last_good_step(data_dir, tmp_path):
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "best").write_text("")  # the first best save (step 20) fails, as on a full disk
    start = time.monotonic()
    proc = train(tmp_path, data_dir, check=False)
    assert proc.returncode == 4, proc.stderr[-2000:]
    message = proc.stderr[proc.stderr.index("error: "):]
    assert message.startswith(f"error: saving checkpoint {tmp_path}/checkpoints/best/20 failed: NotADirectoryError")
    assert "the last complete checkpoint is step 10" in message
    assert (tmp_path / "checkpoints" / "latest" / "10").is_dir() and not (tmp_path / "results.json").exists()
    assert time.monotonic() - start < 250  # no wait of minutes for orbax's threads at exit
