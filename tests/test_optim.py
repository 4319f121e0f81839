"""Parameter groups and the optimiser (experiments/optim.py)."""
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest
from flax import nnx

import models
from experiments import optim


class Tiny(nnx.Module):
    """One parameter of every kind the group rules distinguish."""

    def __init__(self, rngs):
        self.embed = nnx.Embed(7, 4, rngs=rngs)
        self.norm = nnx.LayerNorm(4, rngs=rngs)
        self.bn = nnx.BatchNorm(4, rngs=rngs)
        self.nu_log = models.RecurrentParam(jnp.zeros(3))
        self.B_re = models.RecurrentParam(jnp.zeros((3, 4)))
        self.D = nnx.Param(jnp.ones(4))
        self.dense = nnx.Linear(4, 5, rngs=rngs)


def optim_cfg(**overrides):
    cfg = ml_collections.ConfigDict(dict(lr=1e-2, recurrent_lr_factor=0.5, weight_decay=0.1, warmup_steps=0,
                                         final_lr_factor=1.0, b1=0.9, b2=0.999, eps=1e-8, grad_clip=1e9))
    cfg.update(overrides)
    return cfg


def test_every_parameter_gets_the_expected_group():
    labels = dict(nnx.to_flat_state(optim.param_labels(Tiny(nnx.Rngs(0)))))
    assert labels == {
        ("embed", "embedding"): "no_decay",
        ("norm", "scale"): "no_decay",
        ("norm", "bias"): "no_decay",
        ("bn", "scale"): "no_decay",
        ("bn", "bias"): "no_decay",
        ("nu_log",): "recurrent",
        ("B_re",): "recurrent",
        ("D",): "no_decay",
        ("dense", "kernel"): "decay",
        ("dense", "bias"): "no_decay",
    }


def test_group_counts_add_up_to_all_parameters():
    model = Tiny(nnx.Rngs(0))
    counts = optim.group_counts(model)
    total = sum(int(np.prod(x.shape)) for x in jax.tree.leaves(nnx.state(model, nnx.Param)))
    assert sum(c["parameters"] for c in counts.values()) == total
    assert counts["recurrent"] == dict(tensors=2, parameters=3 + 12)
    assert counts["decay"] == dict(tensors=1, parameters=20)


def test_lru_parameters_are_recurrent_except_C_and_D():
    layer = models.LAYERS["lru"](8, 4, rngs=nnx.Rngs(0))
    labels = {path[-1]: group for path, group in nnx.to_flat_state(optim.param_labels(layer))}
    for name in ("nu_log", "theta_log", "gamma_log", "B_re", "B_im"):
        assert labels[name] == "recurrent", name
    assert labels["C_re"] == labels["C_im"] == "decay"
    assert labels["D"] == "no_decay"


def one_update(cfg, model):
    """The update of one step with zero gradients, so only weight decay moves parameters."""
    params = nnx.state(model, nnx.Param)
    tx = optim.make_optimizer(cfg, optim.param_labels(model), total_steps=10)
    grads = jax.tree.map(jnp.zeros_like, params)
    updates, _ = tx.update(grads, tx.init(params), params)
    return dict(nnx.to_flat_state(updates))


def test_weight_decay_only_on_the_decay_group():
    model = Tiny(nnx.Rngs(0))
    model.nu_log[...] = jnp.ones(3)
    updates = one_update(optim_cfg(), model)
    for path, u in updates.items():
        moved = bool(jnp.any(u.get_value() != 0))
        assert moved == (path == ("dense", "kernel")), path


def test_recurrent_group_gets_its_own_learning_rate():
    model = Tiny(nnx.Rngs(0))
    params = nnx.state(model, nnx.Param)
    tx = optim.make_optimizer(optim_cfg(weight_decay=0.0), optim.param_labels(model), total_steps=10)
    grads = jax.tree.map(jnp.ones_like, params)
    updates = dict(nnx.to_flat_state(tx.update(grads, tx.init(params), params)[0]))
    # Adam's first step moves every coordinate by lr (gradient sign), so the ratio is the lr factor.
    np.testing.assert_allclose(updates[("nu_log",)].get_value(), -0.5e-2, rtol=1e-4)
    np.testing.assert_allclose(updates[("D",)].get_value(), -1e-2, rtol=1e-4)


def test_schedule_warms_up_linearly_then_decays_to_the_final_factor():
    sched = optim.learning_rate_schedule(1.0, warmup_steps=10, total_steps=110, final_lr_factor=0.1)
    assert float(sched(0)) == 0.0
    assert float(sched(5)) == pytest.approx(0.5)
    assert float(sched(10)) == pytest.approx(1.0)
    assert float(sched(60)) == pytest.approx(0.55, abs=1e-6)  # halfway through the cosine
    assert float(sched(110)) == pytest.approx(0.1)


def test_gradients_are_clipped_by_global_norm():
    model = Tiny(nnx.Rngs(0))
    params = nnx.state(model, nnx.Param)
    tx = optim.make_optimizer(optim_cfg(grad_clip=1.0, b1=0.9), optim.param_labels(model), total_steps=10)
    grads = jax.tree.map(lambda x: 100.0 * jnp.ones_like(x), params)
    _, state = tx.update(grads, tx.init(params), params)
    # Adam's first moment after one step is (1 - b1) * the gradient it saw: here the clipped one, of norm 1.
    mus = [mu for _, mu in optax.tree_utils.tree_get_all_with_path(state, "mu")]
    assert len(mus) == 3  # one per group
    assert float(optax.tree.norm(mus)) == pytest.approx(0.1, rel=1e-4)


@pytest.mark.parametrize("step", [0, 1, 7, 10, 11, 40, 250, 1000])
def test_rsqrt_schedule_is_lra_warmup_then_inverse_sqrt(step):
    """LRA code: constant * min(1, step / warmup) / sqrt(max(step, warmup)); optim.lr is its peak."""
    warmup, constant = 10, 0.05
    peak = constant / np.sqrt(warmup)
    sched = optim.schedule(optim_cfg(schedule="rsqrt", warmup_steps=warmup), peak, total_steps=1000)
    expected = constant * min(1.0, step / warmup) / np.sqrt(max(step, warmup))
    assert float(sched(step)) == pytest.approx(expected, rel=1e-6, abs=1e-12)


def test_rsqrt_schedule_needs_a_warmup():
    with pytest.raises(ValueError, match="warmup_steps >= 1"):
        optim.schedule(optim_cfg(schedule="rsqrt", warmup_steps=0), 1.0, total_steps=10)


@pytest.mark.parametrize("warmup", [0, 4])
def test_constant_schedule(warmup):
    sched = optim.schedule(optim_cfg(schedule="constant", warmup_steps=warmup), 0.3, total_steps=100)
    for step in (0, 1, 2, 4, 5, 50, 100, 1000):
        expected = 0.3 * min(1.0, step / warmup) if warmup else 0.3
        assert float(sched(step)) == pytest.approx(expected, rel=1e-6, abs=1e-12), step


@pytest.mark.parametrize("step", [0, 3, 10, 35, 60, 110, 200])
def test_cosine_schedule_is_the_default_and_matches_its_formula(step):
    warmup, total, final = 10, 110, 0.1
    cfg = optim_cfg(warmup_steps=warmup, final_lr_factor=final)
    assert "schedule" not in cfg  # configs from before the key existed keep today's behaviour
    sched = optim.schedule(cfg, 2.0, total_steps=total)
    if step < warmup:
        expected = 2.0 * step / warmup
    else:
        progress = min(step - warmup, total - warmup) / (total - warmup)
        expected = 2.0 * (final + (1 - final) * 0.5 * (1 + np.cos(np.pi * progress)))
    assert float(sched(step)) == pytest.approx(expected, rel=1e-5, abs=1e-9)
    cfg.schedule = "cosine"
    assert float(optim.schedule(cfg, 2.0, total_steps=total)(step)) == float(sched(step))


def test_unknown_schedule_is_an_error_naming_the_key():
    with pytest.raises(ValueError, match="optim.schedule='linear'"):
        optim.schedule(optim_cfg(schedule="linear"), 1.0, total_steps=10)


def test_base_config_has_the_schedule_key():
    from experiments.configs import base
    assert base.base_config().optim.schedule == "cosine"


def test_grad_clip_zero_turns_clipping_off():
    model = Tiny(nnx.Rngs(0))
    params = nnx.state(model, nnx.Param)
    tx = optim.make_optimizer(optim_cfg(grad_clip=0.0, b1=0.9), optim.param_labels(model), total_steps=10)
    grads = jax.tree.map(lambda x: 100.0 * jnp.ones_like(x), params)
    _, state = tx.update(grads, tx.init(params), params)
    mus = [mu for _, mu in optax.tree_utils.tree_get_all_with_path(state, "mu")]
    expected = 0.1 * float(optax.tree.norm(grads))  # (1 - b1) * the unclipped gradient
    assert float(optax.tree.norm(mus)) == pytest.approx(expected, rel=1e-4)
    with pytest.raises(ValueError, match="grad_clip"):
        optim.make_optimizer(optim_cfg(grad_clip=-1.0), optim.param_labels(model), total_steps=10)
