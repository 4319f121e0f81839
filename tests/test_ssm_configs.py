"""experiments/configs/s4d.py and s5.py: every task variant builds with the published values (their smoke configs'
loss going down: tests/test_smoke_matrix.py test_listops_smoke_loss_goes_down)."""
import importlib

import pytest
from flax import nnx

import models
from experiments.configs import base

FAMILIES = ("s4d", "s5")
VARIANTS = [t + s for t in base.TASKS for s in ("", "_smoke")]
# task -> (lr, ssm lr, n_layers, d_model, state size) from experiments/published/hyperparameters.md
S4D_TABLE = {"listops": (0.01, 1e-3, 6, 256, 4), "text": (0.01, 1e-3, 6, 256, 4),
             "retrieval": (0.01, 1e-3, 6, 256, 4), "image": (0.01, 1e-3, 6, 512, 64),
             "pathfinder": (0.004, 1e-3, 6, 256, 64), "pathx": (0.001, 1e-3, 6, 256, 64)}
S5_TABLE = {"listops": (3e-3, 1e-3, 8, 128, 16), "text": (4e-3, 1e-3, 6, 256, 192),
            "retrieval": (2e-3, 1e-3, 6, 128, 256), "image": (4.5e-3, 1e-3, 6, 512, 384),
            "pathfinder": (4.5e-3, 9e-4, 6, 192, 256), "pathx": (1.8e-3, 6e-4, 6, 128, 256)}


def get_config(family, variant):
    return importlib.import_module(f"experiments.configs.{family}").get_config(variant)


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("family", FAMILIES)
def test_every_variant(family, variant):
    c = get_config(family, variant)
    task, smoke = variant.removesuffix("_smoke"), variant.endswith("_smoke")
    assert c.model.layer == family and c.data.task == task
    assert set(c.data.keys()) - {"task", "data_dir"} <= set((base.SMOKE_DATA if smoke else base.DATA)[task])
    assert c.model.bn_momentum == 0.9 and c.model.norm == "batch"
    assert c.model.layer_args.bidirectional
    layer = models.LAYERS[family](4, **c.model.layer_args.to_dict(), rngs=nnx.Rngs(0))  # its arguments are accepted
    assert layer.d_state == c.model.layer_args.d_state
    if not smoke:
        lr, ssm_lr, n_layers, d_model, state = (S4D_TABLE if family == "s4d" else S5_TABLE)[task]
        assert c.optim.lr == lr and c.optim.lr * c.optim.recurrent_lr_factor == pytest.approx(ssm_lr)
        assert (c.model.n_layers, c.model.d_model, c.model.layer_args.d_state) == (n_layers, d_model, state)
        assert c.model.layer_args.dt_min == (1e-4 if task == "pathx" else 1e-3)
        assert c.train.num_steps > c.optim.warmup_steps


def test_s4d_init_option():
    assert get_config("s4d", "text,inv").model.layer_args.init == "inv"
    assert get_config("s4d", "listops_smoke").model.layer_args.init == "legs"
    with pytest.raises(ValueError, match="option"):
        get_config("s4d", "text,hippo")
    with pytest.raises(ValueError, match="option"):
        get_config("s5", "text,inv")
