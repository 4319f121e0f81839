"""The trainer with train.bucket_boundaries: exact resume after a kill, and real vs padded tokens/s in the logs
and results. Uses the command and helpers of tests/test_train.py (tiny LRU on small generated ListOps)."""
import json
import signal
import subprocess

import pytest

from test_train import REPO, command, data_dir, env, logged_step, records, train, wait_for  # noqa: F401

# Two buckets (two compiled shapes per step kind) are enough to test resume across shapes; more buckets only add
# compiles (the test took 159 s with four boundaries on an idle machine).
BUCKETS = ("--config.train.bucket_boundaries=(128,)",)
EXACT_KEYS = ("val_accuracy", "val_loss", "test_accuracy", "test_loss", "best_step", "step", "final_train_loss")


@pytest.mark.slow
def test_bucketed_run_resumes_exactly_and_reports_real_and_padded_tokens(data_dir, tmp_path):  # noqa: F811
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    train(whole, data_dir, *BUCKETS)
    proc = subprocess.Popen(command(killed, data_dir, *BUCKETS), cwd=REPO, env=env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    reached = wait_for(lambda: logged_step(killed) >= 25 or proc.poll() is not None, 600)
    assert reached and proc.poll() is None, "the run ended before step 25"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    train(killed, data_dir, *BUCKETS)  # resumes from its last checkpoint
    a, b = (json.loads((d / "results.json").read_text()) for d in (whole, killed))
    assert {k: a[k] for k in EXACT_KEYS} == {k: b[k] for k in EXACT_KEYS}
    assert [(r["step"], r["loss"]) for r in records(whole, "train")] == \
           [(r["step"], r["loss"]) for r in records(killed, "train")]
    for r in records(whole, "train")[1:]:  # the first window holds only the compile step
        assert 0 < r["tokens_per_s"] < r["padded_tokens_per_s"]
    assert 0 < a["tokens_per_s"] < a["padded_tokens_per_s"]
