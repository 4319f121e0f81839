"""Optimiser: AdamW with parameter groups, a learning-rate schedule, global-norm clipping.

Schedules (config optim.schedule; every one starts with a linear warmup from 0 over optim.warmup_steps):
  cosine    then cosine decay to final_lr_factor * lr at train.num_steps (the S4/S5/LRU code bases).
  rsqrt     then lr * sqrt(warmup_steps / step): the LRA code's "constant * linear_warmup * rsqrt_decay"
            (Tay et al. 2021), whose factor is constant * min(1, step/warmup) / sqrt(max(step, warmup)); here
            optim.lr is its peak, constant / sqrt(warmup_steps), reached at the end of the warmup.
  constant  then lr.
optim.grad_clip = 0 turns global-norm clipping off (the LRA code clips only on Path-X).

Groups (ARCHITECTURE.md, "Training"):
  recurrent  parameters created as models.RecurrentParam (e.g. the LRU's nu_log, theta_log, gamma_log, B):
             their own learning rate (lr * recurrent_lr_factor) and no weight decay, as in Orvieto et al. 2023.
  no_decay   norms, biases, embeddings and any other parameter with ndim <= 1 (vectors such as D or a CLS token).
  decay      everything else (weight matrices).
Every parameter gets exactly one group by construction, and tests/test_optim.py asserts the group of each kind
of parameter: a peer project gave its norm parameters weight decay for years through a label function that
missed them.
"""
from __future__ import annotations

import collections

import jax.numpy as jnp
import optax
from flax import nnx

import models

GROUPS = ("recurrent", "no_decay", "decay")
SCHEDULES = ("cosine", "rsqrt", "constant")
# Modules whose parameters never get weight decay, whatever their shape.
NO_DECAY_MODULES = (nnx.Embed, nnx.BatchNorm, nnx.LayerNorm, nnx.RMSNorm)


def _owner_types(model: nnx.Module) -> dict[tuple, type]:
    return {path: type(node) for path, node in nnx.iter_graph(model) if isinstance(node, nnx.Module)}


def param_group(path: tuple, variable: nnx.Variable, owner: type) -> str:
    """The optimiser group of one parameter."""
    if isinstance(variable, models.RecurrentParam):
        return "recurrent"
    if issubclass(owner, NO_DECAY_MODULES) or path[-1] == "bias" or variable.get_value().ndim <= 1:
        return "no_decay"
    return "decay"


def param_labels(model: nnx.Module) -> nnx.State:
    """A State of group names with the structure of nnx.state(model, nnx.Param)."""
    owners = _owner_types(model)
    params = nnx.state(model, nnx.Param)
    flat = [(path, param_group(path, var, owners[path[:-1]])) for path, var in nnx.to_flat_state(params)]
    return nnx.from_flat_state(flat)


def group_counts(model: nnx.Module) -> dict[str, dict[str, int]]:
    """Number of tensors and scalar parameters in each group (printed at start-up, tested)."""
    params = dict(nnx.to_flat_state(nnx.state(model, nnx.Param)))
    counts = {g: collections.Counter() for g in GROUPS}
    for path, group in nnx.to_flat_state(param_labels(model)):
        counts[group]["tensors"] += 1
        counts[group]["parameters"] += int(params[path].get_value().size)
    return {g: dict(tensors=c["tensors"], parameters=c["parameters"]) for g, c in counts.items()}


def schedule(cfg, peak_lr: float, *, total_steps: int):
    """The schedule of one parameter group with peak peak_lr; cfg: the config's `optim` section."""
    kind = cfg.get("schedule", "cosine")
    if kind not in SCHEDULES:
        raise ValueError(f"optim.schedule={kind!r} is not one of {SCHEDULES}; set --config.optim.schedule=...")
    if kind == "cosine":
        return learning_rate_schedule(peak_lr, warmup_steps=cfg.warmup_steps, total_steps=total_steps,
                                      final_lr_factor=cfg.final_lr_factor)
    if kind == "rsqrt":
        return rsqrt_schedule(peak_lr, warmup_steps=cfg.warmup_steps)
    return constant_schedule(peak_lr, warmup_steps=cfg.warmup_steps)


def learning_rate_schedule(peak_lr: float, *, warmup_steps: int, total_steps: int, final_lr_factor: float):
    """Linear warmup from 0 to peak_lr, then cosine decay to final_lr_factor * peak_lr at total_steps."""
    return optax.warmup_cosine_decay_schedule(
        init_value=0.0,
        peak_value=peak_lr,
        warmup_steps=warmup_steps,
        decay_steps=max(total_steps, warmup_steps + 1),
        end_value=peak_lr * final_lr_factor,
    )


def rsqrt_schedule(peak_lr: float, *, warmup_steps: int):
    """Linear warmup from 0 to peak_lr at warmup_steps, then peak_lr * sqrt(warmup_steps / step) (LRA code).

    warmup_steps is also the decay's time scale, so it must be >= 1 (ValueError otherwise).
    """
    if warmup_steps < 1:
        raise ValueError(f"optim.schedule='rsqrt' needs optim.warmup_steps >= 1 (it sets the decay time scale); "
                         f"got {warmup_steps}")
    # join_schedules gives the second schedule the count since its boundary, step = count + warmup_steps (and
    # evaluates it at every step, so negative counts are clamped; their value is not used).
    decay = lambda count: peak_lr * jnp.sqrt(warmup_steps / (jnp.maximum(count, 0) + warmup_steps))
    return optax.join_schedules([optax.linear_schedule(0.0, peak_lr, warmup_steps), decay], [warmup_steps])


def constant_schedule(peak_lr: float, *, warmup_steps: int):
    """Linear warmup from 0 to peak_lr (if warmup_steps > 0), then constant."""
    if warmup_steps < 1:  # optax.linear_schedule with 0 transition steps would stay at its *initial* value
        return optax.constant_schedule(peak_lr)
    return optax.linear_schedule(0.0, peak_lr, warmup_steps)


def make_optimizer(cfg, labels: nnx.State, *, total_steps: int) -> optax.GradientTransformation:
    """cfg: the config's `optim` section."""

    def adamw(lr, weight_decay):
        return optax.adamw(schedule(cfg, lr, total_steps=total_steps), b1=cfg.b1, b2=cfg.b2, eps=cfg.eps,
                           weight_decay=weight_decay)

    per_group = {
        "recurrent": adamw(cfg.lr * cfg.recurrent_lr_factor, 0.0),
        "no_decay": adamw(cfg.lr, 0.0),
        "decay": adamw(cfg.lr, cfg.weight_decay),
    }
    # labels holds strings where params holds Variables, so it is a tree prefix of the params State.
    groups = optax.multi_transform(per_group, labels)
    if cfg.grad_clip < 0:
        raise ValueError(f"optim.grad_clip must be >= 0 (0 turns clipping off); got {cfg.grad_clip}")
    if cfg.grad_clip == 0:
        return groups
    return optax.chain(optax.clip_by_global_norm(cfg.grad_clip), groups)
