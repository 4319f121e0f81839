"""The long-gap memory task of issue 6: lra.synthetic.memory_task and experiments/memory_task.py."""
import json
import math

import numpy as np
import pytest

from experiments import memory_task
from lra import synthetic


def test_memory_task_label_is_the_first_token_and_the_rest_is_noise():
    data = synthetic.memory_task(200, 501, 4, seed=3)
    inputs, labels = data["inputs"], data["labels"]
    assert inputs.shape == (200, 501) and inputs.dtype == np.int32 and labels.dtype == np.int32
    np.testing.assert_array_equal(inputs[:, 0], labels + 1)
    noise = inputs[:, 1:]
    assert noise.min() >= 5 and noise.max() < synthetic.memory_vocab_size(4)  # disjoint from label tokens 1..4
    assert len(np.unique(noise)) == 4 and set(np.unique(labels)) == {0, 1, 2, 3}
    np.testing.assert_array_equal(data["lengths"], 501)
    again = synthetic.memory_task(200, 501, 4, seed=3)
    np.testing.assert_array_equal(again["inputs"], inputs)
    assert not np.array_equal(synthetic.memory_task(200, 501, 4, seed=4)["inputs"], inputs)


@pytest.mark.parametrize("kwargs,name", [(dict(n=0), "n"), (dict(length=1), "length"),
                                         (dict(n_classes=1), "n_classes"), (dict(n_noise_tokens=0), "n_noise")])
def test_memory_task_rejects_bad_arguments(kwargs, name):
    args = dict(n=4, length=10, n_classes=3, seed=0) | kwargs
    with pytest.raises(ValueError, match=name):
        synthetic.memory_task(**args)


def test_unregistered_families_are_listed_not_crashing(capsys):
    memory_task.main(["--layers", "no_such_family", "--steps", "1"])
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert lines[1]["layer"] == "no_such_family" and lines[1]["registered"] is False
    assert "not registered" in lines[1]["note"] and lines[1]["steps_to_95"] is None
    with pytest.raises(SystemExit):
        memory_task.main(["--layers", "lru", "--length", "100"])  # gap under 500


def test_memory_configs_give_the_linear_families_long_memory_and_every_family_a_config():
    """The long-memory init reaches the model section (only keys the family has); attention and the tanh RNN are
    found through CONFIG_VARIANTS (they have no configs/<layer>.py)."""
    kwargs = dict(steps=10, d_model=8, n_layers=1, batch_size=4, lr=None)
    s4d, s5, lru = (memory_task.family_config(name, **kwargs).model for name in ("s4d", "s5", "lru"))
    for model in (s4d, s5):
        assert (model.layer_args.dt_min, model.layer_args.bidirectional) == (1e-3, False)
    lru_args = lru.layer_args
    assert (lru_args.r_min, lru_args.r_max, lru_args.max_phase, lru_args.d_state) == (0.999, 0.9999, math.pi / 10, 16)
    assert "dt_min" not in lru_args
    # rotation is the LRU in real 2x2 blocks: the same long-memory init (models/README.md's rotation rows)
    rot_args = memory_task.family_config("rotation", **kwargs).model.layer_args
    assert (rot_args.r_min, rot_args.r_max, rot_args.max_phase, rot_args.d_state) == (0.999, 0.9999, math.pi / 10, 16)
    assert {s4d.pooling, s5.pooling, lru.pooling} == {"last"}  # mean pooling would see position 0 directly
    assert memory_task.family_config("attention", **kwargs).model.layer == "attention"
    assert memory_task.family_config("rnn", **kwargs).model.layer_args.nonlinearity == "tanh"


# The seed-0 rows of models/README.md ("Long-gap memory"): 1 layer, d_model 16, lr 1e-2, cosine over the budget.
# Measured steps to 95% (deterministic on a CPU): S4D 140 and S5 120 (seed 1: 160 and 160) with a 500-step budget
# (>= 3x the worst); the LRU (MEMORY_LAYER_ARGS: Path-X ring, max phase pi/10, d_state 16) 400 / 580 / 560 for
# seeds 0 / 1 / 2 with a 1000-step budget (>= 1.5x the worst seed's 580). The budget sets the cosine schedule, so
# each family's test trains exactly as its measured command; seed 0. The LRU is evaluated every 40 steps instead of
# 20 (evaluation does not change training; its 95% at step 400, 97.7%, is on both grids), halving the eval cost.
LINEAR_RUN = dict(length=512, n_classes=4, d_model=16, n_layers=1, batch_size=32, lr=1e-2, n_val=256, seed=0)
BUDGET = {"lru": dict(steps=1000, eval_every=40), "s4d": dict(steps=500, eval_every=20),
          "s5": dict(steps=500, eval_every=20)}


@pytest.mark.slow
@pytest.mark.parametrize("family", ["lru", "s4d", "s5"])
def test_linear_families_learn_the_500_token_gap(family):
    """Stops at the first evaluation at >= 95%, so it costs the measured steps (not the budget) when it passes."""
    result = memory_task.train_family(family, **BUDGET[family], **LINEAR_RUN)
    assert result["gap"] >= 500
    assert result["learned"] and result["final_val_accuracy"] >= 0.95, result
