"""experiments/configs/ladder.py: every rung of the LRU paper's ablation ladder for every task, the layer each rung
builds, and that only the recurrence changes between rungs; the rnn_tanh ListOps smoke trains from the CLI."""
import csv
import math
from pathlib import Path

import pytest
from flax import nnx

import models
from experiments.configs import base, ladder, lru

REPO = Path(__file__).resolve().parent.parent
ABLATIONS_CSV = REPO / "experiments" / "published" / "lru_ablations.csv"  # the paper's table, kept in the project


def build(c, task):
    return nnx.eval_shape(lambda: models.build_classifier(**c.model.to_dict(), n_classes=2, vocab_size=16,
                                                          dual=task == "retrieval", rngs=nnx.Rngs(0)))


@pytest.mark.parametrize("task", base.TASKS)
def test_every_rung_builds_for_every_task_and_only_the_recurrence_changes(task):
    for variant in (task, f"{task}_smoke"):
        configs = {rung: ladder.get_config(f"{variant},{rung}") for rung in ladder.RUNGS}
        reference = configs["lru"].to_dict()
        for rung, c in configs.items():
            layer = build(c, task).encoder.blocks[0].layer
            assert isinstance(layer, models.LAYERS[c.model.layer]), (variant, rung)
            d = c.to_dict()
            for section in ("data", "optim", "train"):
                assert d[section] == reference[section], (variant, rung, section)
            other = {k: v for k, v in d["model"].items() if k not in ("layer", "layer_args")}
            assert other == {k: v for k, v in reference["model"].items() if k not in ("layer", "layer_args")}


def test_lru_rung_is_the_lru_config():
    for variant in lru.VARIANTS:
        assert ladder.get_config(f"{variant},lru").to_dict() == lru.get_config(variant).to_dict()


def rung_args(task, rung):
    return ladder.get_config(f"{task},{rung}").model.layer_args.to_dict()


@pytest.mark.parametrize("task", ["listops", "pathx"])
def test_rung_layer_args_are_the_paper_rows(task):
    ring = rung_args(task, "lru")
    disk = dict(r_min=0.0, r_max=1.0, max_phase=2 * math.pi)
    for rung, nonlinearity in (("rnn_relu", "relu"), ("rnn_tanh", "tanh"), ("rnn_lin", "linear")):
        args = rung_args(task, rung)
        assert ladder.get_config(f"{task},{rung}").model.layer == "rnn"
        assert args["nonlinearity"] == nonlinearity and args["d_state"] == ring["d_state"]
        assert args["bidirectional"] == ring["bidirectional"]
        # Our cap on the dense linear RNN's initial spectral radius (models/rnn.py), not the paper's.
        assert args.get("max_radius") == (1.0 if rung == "rnn_lin" else None)
    for rung, parameterization in (("real_imag", "real_imag"), ("exp", "exp"), ("stable_exp", "stable_exp")):
        args = rung_args(task, rung)  # uniform on the unit disk, no gamma normalisation
        assert args == {**ring, "parameterization": parameterization, "gamma_norm": False, **disk}, rung
    # + Ring Init: the task's ring, phase still in [0, 2pi], no gamma; LRU: + gamma (+ max phase pi/10 on Path-X).
    assert rung_args(task, "ring_init") == {**ring, "gamma_norm": False, "max_phase": 2 * math.pi}
    assert ring["parameterization"] == "stable_exp" and ring["gamma_norm"] and ring["complex_diag"]
    assert ring["max_phase"] == pytest.approx(0.1 * math.pi if task == "pathx" else 2 * math.pi)
    assert (ring["r_min"], ring["r_max"]) == ((0.999, 0.9999) if task == "pathx" else (0.0, 0.9))


def test_every_row_of_the_paper_ladder_has_a_rung():
    with open(ABLATIONS_CSV) as f:
        rows = [r for r in csv.reader(line for line in f if not line.startswith("#"))][1:]
    paper = {(r[0], r[1]) for r in rows}
    ours = [row for rows_, _, _ in ladder.RUNGS.values() for row in rows_]
    assert sorted(ours) == sorted(paper)


def test_a_variant_without_a_rung_is_an_error():
    with pytest.raises(ValueError, match="needs a rung"):
        ladder.get_config("listops")
    with pytest.raises(ValueError, match="unknown option 'tanh'"):
        ladder.get_config("listops,tanh")
