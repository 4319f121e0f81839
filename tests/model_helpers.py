"""Helpers shared by the per-family model tests (test_s4d.py, test_s5.py, test_rotation.py, test_selective.py)."""
import jax
import numpy as np
import pytest
from flax import nnx


def np_param(layer, name):
    """A parameter of `layer` as a float64 NumPy array."""
    return np.asarray(getattr(layer, name)[...], np.float64)


def perturb(layer, scale=0.05, seed=1):
    """Move every parameter off its init so that the comparisons are not specific to init values."""
    for i, (_, var) in enumerate(nnx.iter_graph(layer)):
        if isinstance(var, nnx.Param):
            var[...] = var[...] + scale * jax.random.normal(jax.random.key(seed + i), var.shape)


def check_every_variant_builds(config_module, layer, layer_cls, misspelt_variant):
    """Every task and task_smoke variant of a family's config file selects `layer`, keeps its warmup inside the run
    and builds layer_cls from its layer_args (shapes only, nnx.eval_shape); a misspelt variant is an error."""
    from experiments.configs import base
    for task in base.TASKS:
        for variant in (task, f"{task}_smoke"):
            c = config_module.get_config(variant)
            assert c.model.layer == layer and c.data.task == task
            assert c.optim.warmup_steps < c.train.num_steps
            nnx.eval_shape(lambda: layer_cls(c.model.d_model, **c.model.layer_args.to_dict(), rngs=nnx.Rngs(0)))
    with pytest.raises(ValueError, match="unknown variant"):
        config_module.get_config(misspelt_variant)
