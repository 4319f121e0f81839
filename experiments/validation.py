"""Checks of a whole config before anything is built or written: one ConfigError naming the key and the fix.

  check_config(config)   train counts and intervals, optimiser values, model sizes, the data section (task and
                         the task's options, by lra's own make_options: errors name config.data.<key>), and the
                         sequence layer's arguments (the layer is built and called abstractly, so every family is
                         checked by its own constructor, without per-family code here; scan_method is checked by
                         key, since S4D's conv mode never calls the scan)

Decisions (documented in README.md, "Exit codes and errors"):
- Every count or interval in `train` is an integer >= 1 (keep_checkpoints=0 would leave nothing to resume from).
- num_steps < 2**31 - 1: the step counter in the state is int32 and must never wrap.
- optim.warmup_steps > train.num_steps is an error, not a warning: such a run never reaches its peak learning rate
  (a 30-step run of a 12k-warmup config trains at lr ~1e-6), and a warning scrolls away. A config that means it
  (the LRA Transformer on Retrieval: 5000 steps, 8000 warmup) says so with optim.warmup_past_end = True.
- train.bucket_boundaries is () or a strictly increasing tuple of integers >= 1 (an unsorted or repeated list is a
  typo more often than an intent, even where the iterator would cope with it).
- Layer arguments are checked by name before the layer is built, so a bad value is reported with its key and its
  range (not as the ZeroDivisionError it causes inside a constructor): LAYER_SIZES are integers >= 1,
  LAYER_RANGES have their own ranges. A layer_args key the chosen layer does not take is reported with the families
  that do take it: layer_args belong to the config file's family, so overriding model.layer alone cannot switch
  family (use that family's config file). Everything else a family checks itself, in its constructor or call.
"""
from __future__ import annotations

import inspect
import math
from pathlib import Path

STEP_LIMIT = 2**31 - 1  # the state's step counter is int32
# train.<key> values that count steps or examples: integers >= 1.
TRAIN_COUNTS = ("num_steps", "batch_size", "eval_batch_size", "log_every", "eval_every", "checkpoint_every",
                "keep_checkpoints")
WHY = {"keep_checkpoints": " (0 would keep no latest checkpoint, so a stopped run could not resume)"}
# config.model.layer_args keys that are sizes in every family that has them (state size N or P, heads, blocks J,
# expansion, convolution width, ranks, attention's query chunk): integers >= 1; None where the layer's own default
# is None (derived size, or off).
LAYER_SIZES = ("d_state", "n_heads", "qkv_dim", "blocks", "expand", "d_conv", "dt_rank", "query_chunk_size")
# Other layer_args with a range of their own: key -> (test, the range in words).
LAYER_RANGES = {
    # LRU paper (Orvieto et al. 2023) Lemma 3.2: arg(lambda) ~ U[0, max_phase], a fraction of the circle.
    "max_phase": (lambda v: _is_number(v) and 0 <= v <= 2 * math.pi, "a number in [0, 2*pi] (arg(lambda) is drawn "
                  "from U[0, max_phase], LRU paper Lemma 3.2)"),
    # S4/S5/Mamba: the step size dt is drawn log-uniformly from [dt_min, dt_max].
    "dt_min": (lambda v: _is_number(v) and v > 0, "a finite number > 0 (dt ~ log-uniform [dt_min, dt_max])"),
    "dt_max": (lambda v: _is_number(v) and v > 0, "a finite number > 0 (dt ~ log-uniform [dt_min, dt_max])"),
    # models/rnn.py: the dense A is rescaled at init so its spectral radius is at most max_radius.
    "max_radius": (lambda v: v is None or (_is_number(v) and v > 0),
                   "None or a finite number > 0 (the dense RNN's A is rescaled at init to spectral radius <= it)"),
}
CONFIGS_DIR = Path(__file__).resolve().parent / "configs"


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
    if "bucket_boundaries" in train:
        b = train.bucket_boundaries
        _require(isinstance(b, (tuple, list)) and all(_is_int(x) and x >= 1 for x in b)
                 and all(x < y for x, y in zip(b, b[1:])), "train.bucket_boundaries", b,
                 "() or a strictly increasing tuple of integers >= 1 (no repeats), e.g. (256, 512, 1024)")
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
    if optim.warmup_steps > num_steps and not optim.get("warmup_past_end", False):
        raise ConfigError(
            f"config.optim.warmup_steps={optim.warmup_steps} is larger than config.train.num_steps={num_steps}: "
            f"the run would end before the learning rate reaches optim.lr. Set --config.optim.warmup_steps to at "
            f"most {num_steps} (e.g. {num_steps // 10}, a tenth of the run), or raise train.num_steps (a published "
            f"setting that really ends inside its warmup sets config.optim.warmup_past_end=True)")


def check_model_sizes(model) -> None:
    for key in ("d_model", "n_layers"):
        _require(_is_int(model[key]) and model[key] >= 1, f"model.{key}", model[key], "an integer >= 1")
    if "dropout" in model:
        _require(_is_number(model.dropout) and 0 <= model.dropout < 1, "model.dropout", model.dropout, "in [0, 1)")


def _layer_parameters(layer_cls) -> dict[str, inspect.Parameter] | None:
    """The keyword arguments a layer class takes besides d_model and rngs (None: it takes any, **kwargs)."""
    params = dict(inspect.signature(layer_cls.__init__).parameters)
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return None
    return {k: p for k, p in params.items() if k not in ("self", "d_model", "rngs")}


def config_file_of(layer: str) -> str | None:
    """The config file of a layer family: experiments/configs/<layer>.py, else the one that sets model.layer to it."""
    if (CONFIGS_DIR / f"{layer}.py").is_file():
        return f"experiments/configs/{layer}.py"
    for path in sorted(CONFIGS_DIR.glob("*.py")):
        if path.stem != "base" and f'model.layer = "{layer}"' in path.read_text():
            return f"experiments/configs/{path.name}"
    return None


def check_layer_arg_names(layer: str, args: dict) -> None:
    """Every layer_args key is an argument of the layer; else a ConfigError naming the keys and the way out."""
    import models

    params = _layer_parameters(models.LAYERS[layer])
    unknown = [] if params is None else sorted(set(args) - set(params))
    if not unknown:
        return
    keys = f"config.model.layer_args.{unknown[0]}" if len(unknown) == 1 else \
        f"config.model.layer_args {{{', '.join(unknown)}}}"
    message = f"{keys}: layer {layer!r} takes no such argument (it takes: {', '.join(params) or 'none'})"
    owners = [name for name, cls in sorted(models.LAYERS.items()) if name != layer
              and (p := _layer_parameters(cls)) is not None and set(args) <= set(p)]
    if owners:
        own = config_file_of(layer)
        switch = (f"use its config file: --config {own}:<variant>" if own else
                  "start from a config file whose family it is")
        message += (f". These layer_args are the arguments of {' / '.join(map(repr, owners))}: layer_args belong to "
                    f"the config file's family, so --config.model.layer={layer} alone does not switch family. To "
                    f"train {layer!r}, {switch} (`python -m experiments.configs` lists the files and variants)")
    else:
        message += "; remove or rename it in the config file (--config.model.layer_args.<key>=<value> changes values)"
    raise ConfigError(message)


def check_layer_arg_values(layer: str, args: dict) -> None:
    """Sizes (LAYER_SIZES) and ranged values (LAYER_RANGES) of layer_args, by key, before anything is built."""
    import models

    params = _layer_parameters(models.LAYERS[layer]) or {}
    for key, value in args.items():
        if key in LAYER_SIZES:
            none_ok = key in params and params[key].default is None
            _require((none_ok and value is None) or (_is_int(value) and value >= 1), f"model.layer_args.{key}",
                     value, f"an integer >= 1 (a size of layer {layer!r})" + (" or None (derived)" if none_ok else ""))
        elif key in LAYER_RANGES:
            ok, need = LAYER_RANGES[key]
            _require(ok(value), f"model.layer_args.{key}", value, need)


def check_scan_method(layer: str, args: dict) -> None:
    """layer_args.scan_method (every recurrent family passes it to scan.linear_recurrence as `method`) is one of
    scan.METHODS. Checked by key, not only when the layer calls the scan: S4D's default conv mode never does, and
    would silently ignore a typo."""
    import scan

    if "scan_method" in args:
        _require(args["scan_method"] in scan.METHODS, "model.layer_args.scan_method", args["scan_method"],
                 f"one of {', '.join(scan.METHODS)} (scan.linear_recurrence's method; auto picks per length)")


def check_data(data) -> None:
    """config.data: a known task and options its make_options accepts (lra's DataError, with the key named).
    Checks values only (no files, no data dir): a missing dataset is reported when training loads it."""
    import lra

    options = data.to_dict()
    task = options.pop("task", None)
    options.pop("data_dir", None)
    if task not in lra.TASKS:
        raise ConfigError(f"config.data.task={task!r}: not a task; choose one of {', '.join(lra.TASKS)} "
                          "(set --config.data.task=<task>, or use the <task> variant of the config file)")
    try:
        lra.TASKS[task].make_options(**options)
    except lra.DataError as e:
        key = f"config.data.{e.option}" if e.option else "config.data"
        value = f"={options[e.option]!r}" if e.option in options else ""
        raise ConfigError(f"{key}{value}: {e}" + (f"; set --config.data.{e.option}=<value>" if e.option else "")) \
            from None


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
    check_layer_arg_names(model.layer, args)
    check_layer_arg_values(model.layer, args)
    check_scan_method(model.layer, args)

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
    check_data(config.data)
    check_layer(config.model)
