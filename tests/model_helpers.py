"""Helpers shared by the per-family model tests (test_s4d.py, test_s5.py)."""
import jax
import numpy as np
from flax import nnx


def np_param(layer, name):
    """A parameter of `layer` as a float64 NumPy array."""
    return np.asarray(getattr(layer, name)[...], np.float64)


def perturb(layer, scale=0.05, seed=1):
    """Move every parameter off its init so that the comparisons are not specific to init values."""
    for i, (_, var) in enumerate(nnx.iter_graph(layer)):
        if isinstance(var, nnx.Param):
            var[...] = var[...] + scale * jax.random.normal(jax.random.key(seed + i), var.shape)
