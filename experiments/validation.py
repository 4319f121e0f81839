"""Checks of a whole config before anything is built or written: one ConfigError naming the key and the fix.

  check_config(config)   train counts and intervals, optimiser values, model sizes, and the sequence layer's
                         arguments (the layer is built and called abstractly, so every family is checked by its
                         own constructor, without per-family code here)

Decisions (documented in README.md, "Exit codes and errors"):
- Every count or interval in `train` is an integer >= 1 (keep_checkpoints=0 would leave nothing to resume from).
- num_steps < 2**31 - 1: the step counter in the state is int32 and must never wrap.
- optim.warmup_steps > train.num_steps is an error, not a warning: such a run never reaches its peak learning rate
  (a 30-step run of a 12k-warmup config trains at lr ~1e-6), and a warning scrolls away.
"""
from __future__ import annotations

import math

STEP_LIMIT = 2**31 - 1  # the state's step counter is int32
# train.<key> values that count steps or examples: integers >= 1.
TRAIN_COUNTS = ("num_steps", "batch_size", "eval_batch_size", "log_every", "eval_every", "checkpoint_every",
                "keep_checkpoints")
WHY = {"keep_checkpoints": " (0 would keep no latest checkpoint, so a stopped run could not resume)"}


class ConfigError(ValueError):
    """A config value the run cannot use. The message names the key (config.<section>.<key>) and the fix."""


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _require(ok: bool, key: str, value, need: str) -> None:
    if not ok:
        raise ConfigError(f"config.{key}={value!r}: must be {need}{WHY.get(key.split('.')[-1], '')}; "
                          f"set --config.{key}=<value>")


def check_train(train) -> None:
    for key in TRAIN_COUNTS:
        if key in train:
            _require(_is_int(train[key]) and train[key] >= 1, f"train.{key}", train[key], "an integer >= 1")
    _require(train.num_steps < STEP_LIMIT, "train.num_steps", train.num_steps,
             f"below 2**31 - 1 = {STEP_LIMIT} (the step counter is int32 and would wrap)")
    if "data_seed" in train:
        _require(_is_int(train.data_seed) and train.data_seed >= 0, "train.data_seed", train.data_seed,
                 "an integer >= 0")


def check_optim(optim, num_steps: int) -> None:
    from experiments.optim import SCHEDULES

    _require(_is_number(optim.lr) and optim.lr > 0, "optim.lr", optim.lr, "a finite number > 0")
    if "schedule" in optim:
        _require(optim.schedule in SCHEDULES, "optim.schedule", optim.schedule, f"one of {', '.join(SCHEDULES)}")
        if optim.schedule == "rsqrt":
            _require(_is_int(optim.warmup_steps) and optim.warmup_steps >= 1, "optim.warmup_steps",
                     optim.warmup_steps, "an integer >= 1 with optim.schedule=rsqrt (its decay is sqrt(warmup/step))")
    for key in ("recurrent_lr_factor", "weight_decay"):
        if key in optim:
            _require(_is_number(optim[key]) and optim[key] >= 0, f"optim.{key}", optim[key], "a finite number >= 0")
    if "final_lr_factor" in optim:
        _require(_is_number(optim.final_lr_factor) and 0 <= optim.final_lr_factor <= 1, "optim.final_lr_factor",
                 optim.final_lr_factor, "between 0 and 1")
    for key in ("b1", "b2"):
        if key in optim:
            _require(_is_number(optim[key]) and 0 <= optim[key] < 1, f"optim.{key}", optim[key], "in [0, 1)")
    if "eps" in optim:
        _require(_is_number(optim.eps) and optim.eps > 0, "optim.eps", optim.eps, "a finite number > 0")
    if "grad_clip" in optim:
        _require(_is_number(optim.grad_clip) and optim.grad_clip >= 0, "optim.grad_clip", optim.grad_clip,
                 "a finite number >= 0 (0 turns clipping off)")
    _require(_is_int(optim.warmup_steps) and optim.warmup_steps >= 0, "optim.warmup_steps", optim.warmup_steps,
             "an integer >= 0")
    if optim.warmup_steps > num_steps:
        raise ConfigError(
            f"config.optim.warmup_steps={optim.warmup_steps} is larger than config.train.num_steps={num_steps}: "
            f"the run would end before the learning rate reaches optim.lr. Set --config.optim.warmup_steps to at "
            f"most {num_steps} (e.g. {num_steps // 10}, a tenth of the run), or raise train.num_steps")


def check_model_sizes(model) -> None:
    for key in ("d_model", "n_layers"):
        _require(_is_int(model[key]) and model[key] >= 1, f"model.{key}", model[key], "an integer >= 1")
    if "dropout" in model:
        _require(_is_number(model.dropout) and 0 <= model.dropout < 1, "model.dropout", model.dropout, "in [0, 1)")


def check_layer(model, length: int = 16, batch: int = 2) -> None:
    """Build config.model's sequence layer and call it on a (batch, length, d_model) input, abstractly.

    jax.eval_shape runs the constructor's and the call's Python (so every check a layer family makes, on its
    arguments or at call time, e.g. an unknown scan method) but no arithmetic: milliseconds, whatever d_model.
    """
    import jax
    import jax.numpy as jnp
    from flax import nnx

    import models

    if model.layer not in models.LAYERS:
        raise ConfigError(f"config.model.layer={model.layer!r} is not a layer family; choose one of "
                          f"{', '.join(sorted(models.LAYERS))}")
    layer_cls, args = models.LAYERS[model.layer], model.layer_args.to_dict()

    def build_and_call():
        layer = layer_cls(model.d_model, **args, rngs=nnx.Rngs(0))
        u_BxLxH = jnp.zeros((batch, length, model.d_model), jnp.float32)
        return layer(u_BxLxH, jnp.ones((batch, length), bool))

    try:
        jax.eval_shape(build_and_call)
    except (ValueError, TypeError, KeyError, IndexError, ArithmeticError, NotImplementedError) as e:
        what = str(e) if isinstance(e, ValueError) else f"{type(e).__name__}: {e}"
        given = ", ".join(f"{k}={v!r}" for k, v in args.items()) or "none"
        raise ConfigError(f"config.model.layer_args are not valid for layer {model.layer!r}: {what}\n"
                          f"  given: {given}\n  fix the value with --config.model.layer_args.<key>=<value> "
                          "(or in the config file)") from None


def check_config(config) -> None:
    """Everything that can be checked without data; ConfigError on the first problem."""
    check_train(config.train)
    check_optim(config.optim, config.train.num_steps)
    check_model_sizes(config.model)
    check_layer(config.model)
