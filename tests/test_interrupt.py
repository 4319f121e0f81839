"""Stopping the trainer with SIGINT/SIGTERM saves the step it stopped at, and the chance-level flag.

In-process: the trainer's own signal handler receives real signals (os.kill of this process), sent from the batch
stream when the batch of a chosen step is drawn or from a checkpoint save; a run interrupted twice at steps that are
neither logged nor checkpointed, and then finished, must equal an uninterrupted run exactly.
"""
import json
import os
import signal
import types

import numpy as np
import pytest

import lra
from experiments import checkpointing, trainer
from experiments.configs import lru

NUM_STEPS, LOG_EVERY, EVAL_EVERY = 60, 5, 20
STOP_TERM, STOP_INT = 7, 13  # neither logged nor checkpointed (checkpoint_every = num_steps, as in the mini suite)
EXACT_KEYS = ("val_accuracy", "val_loss", "test_accuracy", "test_loss", "best_step", "step", "final_train_loss",
              "chance_accuracy", "chance_label", "chance_level", "majority_class_test_accuracy")
ROW_KEYS = ("step", "split", "loss", "accuracy", "grad_norm", "lr")  # every value but the speeds


def tiny_config(data_dir):
    """tests/test_train.py's TINY run (the same compiled programs: the session's compilation cache serves both),
    checkpointed only at evaluations, as the mini suite's runs are."""
    config = lru.get_config("listops_smoke")
    config.unlock()
    config.data.data_dir = str(data_dir)
    config.model.update(d_model=16, n_layers=1, dropout=0.1)  # dropout: its RNG state must be restored too
    config.model.layer_args.d_state = 8
    config.train.update(batch_size=8, eval_batch_size=256, num_steps=NUM_STEPS, log_every=LOG_EVERY,
                        eval_every=EVAL_EVERY, checkpoint_every=NUM_STEPS)
    config.optim.warmup_steps = 5
    return config


def signal_at_step(monkeypatch, step, signum):
    """Send `signum` to this process when the batch of `step` is drawn: the handler sees it before that step runs."""
    stream = trainer.train_batch_stream

    def patched(split, cfg, start_step):
        for i, batch in enumerate(stream(split, cfg, start_step), start=start_step + 1):
            if i == step:
                os.kill(os.getpid(), signum)
            yield batch

    monkeypatch.setattr(trainer, "train_batch_stream", patched)


def rows(workdir):
    lines = (workdir / "metrics.jsonl").read_text().splitlines()
    return [{k: r[k] for k in ROW_KEYS if k in r} for r in map(json.loads, lines)]


@pytest.mark.slow  # ~20 s with the train step in the compilation cache, ~60 s without
def test_a_signal_saves_the_step_reached_and_the_rerun_equals_an_uninterrupted_run(listops_data_dir, tmp_path,
                                                                                     monkeypatch, capsys):
    config = tiny_config(listops_data_dir)
    # What the handlers were before (an xdist worker ignores SIGINT; a plain pytest run has Python's default).
    handlers_before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    ref = trainer.train_and_evaluate(config, tmp_path / "ref")
    work = tmp_path / "run"
    latest = work / "checkpoints" / "latest"

    # SIGTERM at a step that is neither logged nor checkpointed: that step is saved, exit code 143.
    with monkeypatch.context() as m:
        signal_at_step(m, STOP_TERM, signal.SIGTERM)
        with pytest.raises(trainer.Interrupted) as stopped:
            trainer.train_and_evaluate(config, work)
    assert stopped.value.signum == signal.SIGTERM
    assert str(stopped.value).startswith(f"interrupted at step {STOP_TERM} of {NUM_STEPS} (SIGTERM); a rerun of the "
                                         f"same command resumes from step {STOP_TERM} ")
    assert sorted(int(p.name) for p in latest.iterdir()) == [STOP_TERM]

    # SIGINT, then a second SIGINT while the save of that step is in flight: the write completes, the rerun
    # resumes from it, and no temporary folder is left behind.
    save = checkpointing.Checkpoints.save

    def save_then_signal(self, which, step, state, meta):
        save(self, which, step, state, meta)
        if step == STOP_INT:
            os.kill(os.getpid(), signal.SIGINT)

    with monkeypatch.context() as m:
        signal_at_step(m, STOP_INT, signal.SIGINT)
        m.setattr(checkpointing.Checkpoints, "save", save_then_signal)
        with pytest.raises(trainer.Interrupted) as stopped:
            trainer.train_and_evaluate(config, work)
    assert stopped.value.signum == signal.SIGINT
    assert f"interrupted at step {STOP_INT} of {NUM_STEPS} (SIGINT)" in str(stopped.value)
    assert f"resumes from step {STOP_INT} " in str(stopped.value)
    assert sorted(p.name for p in latest.iterdir()) == sorted([str(STOP_TERM), str(STOP_INT)])  # no orbax tmp
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == handlers_before  # restored

    capsys.readouterr()
    got = trainer.train_and_evaluate(config, work)
    assert f"resuming from step {STOP_INT}" in capsys.readouterr().out
    assert {k: got[k] for k in EXACT_KEYS} == {k: ref[k] for k in EXACT_KEYS}
    # Train rows average the same steps as the uninterrupted run's, across both interruptions (steps 6-7 and
    # 11-13 travelled in the checkpoints' metadata).
    assert rows(work) == rows(tmp_path / "ref")

    # The chance reference is the best constant predictor on test.
    ds_test = np.array(lra.get_dataset(**config.data.to_dict()).splits["test"]["labels"])
    assert got["chance_accuracy"] == pytest.approx(np.bincount(ds_test).max() / len(ds_test))
    assert got["chance_label"] == int(np.argmax(np.bincount(ds_test)))
    assert got["chance_level"] == (got["test_accuracy"] <= got["chance_accuracy"] + trainer.CHANCE_MARGIN)


def fake_dataset(train_labels, test_labels, n_classes=2):
    return types.SimpleNamespace(
        n_classes=n_classes,
        splits={"train": {"labels": np.array(train_labels)}, "test": {"labels": np.array(test_labels)}},
        majority_class_accuracy=lambda split: float(np.mean(np.array(test_labels) == np.argmax(
            np.bincount(train_labels, minlength=n_classes)))),
    )


def test_chance_is_the_best_constant_predictor_on_test_not_the_train_majority():
    # The mini Pathfinder case: the train majority (0) is the test minority (45.75%).
    dataset = fake_dataset([0] * 60 + [1] * 40, [0] * 183 + [1] * 217)
    assert trainer.majority_baseline(dataset, "test") == (0, pytest.approx(0.4575))
    assert trainer.best_constant_baseline(dataset, "test") == (1, pytest.approx(0.5425))
    _, chance = trainer.best_constant_baseline(dataset, "test")
    assert trainer.is_chance_level(217 / 400, chance)  # always predicting label 1: flagged
    assert trainer.is_chance_level(0.55, chance)  # within the margin
    assert not trainer.is_chance_level(0.56, chance)
    # Exactly one point above, whatever the float rounding of the two ratios (flagged: 'not above' + margin).
    assert trainer.is_chance_level(221 / 400, 217 / 400) and trainer.is_chance_level(45 / 400, 41 / 400)
    # Ties go to the lowest label; a class absent from test scores 0.
    assert trainer.best_constant_baseline(fake_dataset([2, 2], [0, 1, 1, 0], n_classes=3), "test") == (0, 0.5)


def test_summary_of_old_results_without_the_chance_reference(capsys):
    old = dict(val_accuracy=0.5, best_step=10, test_accuracy=0.46, majority_class_test_accuracy=0.4575,
               majority_class_label=0, chance_level=True, workdir="runs/x")
    trainer.print_summary(old)
    out = capsys.readouterr().out
    assert "majority-class baseline 0.4575" in out and "chance level  " not in out
    assert "not above the majority-class baseline + 0.01" in out
    trainer.print_summary(dict(old, test_accuracy=0.5425, chance_accuracy=0.5425, chance_label=1))
    out = capsys.readouterr().out
    assert "chance level  0.5425 (the best constant predictor: always predicting label 1" in out
    assert "not above the chance level + 0.01" in out


@pytest.mark.parametrize("signum, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_the_command_exits_with_128_plus_the_signal(monkeypatch, capsys, signum, code):
    from experiments import train

    def stopped(config, workdir):
        raise trainer.Interrupted("interrupted at step 3 of 9 (...); a rerun of the same command resumes from step 3",
                                  signum)

    monkeypatch.setattr(trainer, "train_and_evaluate", stopped)
    with pytest.raises(SystemExit) as exited:
        train.run(None, "unused")
    assert exited.value.code == code
    assert capsys.readouterr().err.startswith("error: interrupted at step 3 of 9")
