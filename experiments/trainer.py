"""The one trainer for every model family and task.

State is a plain dict pytree {step, params, rest, opt_state, nonfinite_step}: `params` are the nnx.Param
variables, `rest` everything else the model holds (BatchNorm statistics, dropout RNG counters). A step is a pure
jitted function of (state, batch), data-parallel over the 'data' axis of a device mesh. The data order is a pure
function of (train.data_seed, step), so a checkpoint of the state is all that a resume needs.
"""
from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

import lra
import models
from experiments import checkpointing, optim, runlog

MODEL_INPUTS = ("inputs", "lengths", "inputs2", "lengths2")  # batch keys the model takes, when present


class TrainingDiverged(RuntimeError):
    pass


@dataclasses.dataclass(frozen=True)
class Steps:
    train: callable  # (state, batch) -> (state, metrics)
    evaluate: callable  # (params, rest, batch) -> {loss_sum, correct, count}


# ----------------------------------------------------------------------------------------------- model and steps


def build_model(config, dataset) -> nnx.Module:
    return models.build_classifier(
        **config.model.to_dict(),
        n_classes=dataset.n_classes,
        vocab_size=dataset.vocab_size,
        dual="inputs2" in dataset.splits["train"],
        rngs=nnx.Rngs(params=config.seed, dropout=config.seed + 1),
    )


def classification_metrics(logits_BxC, labels_B, valid_B):
    """Sums over valid examples (padding in the last eval batch has valid=False)."""
    weight_B = valid_B.astype(jnp.float32)
    ce_B = optax.softmax_cross_entropy_with_integer_labels(logits_BxC.astype(jnp.float32), labels_B)
    correct_B = (jnp.argmax(logits_BxC, -1) == labels_B).astype(jnp.float32)
    return dict(loss_sum=(ce_B * weight_B).sum(), correct=(correct_B * weight_B).sum(), count=weight_B.sum())


def _forward(graphdef, params, rest, batch):
    model = nnx.merge(graphdef, params, rest, copy=True)  # fresh Variables at this trace level
    logits = model(*[batch[k] for k in MODEL_INPUTS if k in batch])  # positional: (inputs, lengths[, inputs2, lengths2])
    return logits, nnx.split(model, nnx.Param, ...)[2]


def make_steps(train_graphdef, eval_graphdef, tx) -> Steps:
    def loss_fn(params, rest, batch):
        logits, new_rest = _forward(train_graphdef, params, rest, batch)
        sums = classification_metrics(logits, batch["labels"], batch["valid"])
        return sums["loss_sum"] / jnp.maximum(sums["count"], 1.0), (new_rest, sums)

    def train_step(state, batch):
        grad_fn = jax.value_and_grad(loss_fn, has_aux=True)
        (loss, (rest, sums)), grads = grad_fn(state["params"], state["rest"], batch)
        updates, opt_state = tx.update(grads, state["opt_state"], state["params"])
        grad_norm = optax.tree.norm(grads)
        finite = jnp.isfinite(loss) & jnp.isfinite(grad_norm)
        # Remember the first non-finite step; the loop checks it before it logs or saves anything.
        first_bad = jnp.where((state["nonfinite_step"] < 0) & ~finite, state["step"] + 1, state["nonfinite_step"])
        new_state = dict(
            step=state["step"] + 1,
            params=optax.apply_updates(state["params"], updates),
            rest=rest,
            opt_state=opt_state,
            nonfinite_step=first_bad,
        )
        metrics = dict(loss=loss, accuracy=sums["correct"] / jnp.maximum(sums["count"], 1.0), grad_norm=grad_norm)
        return new_state, metrics

    def eval_step(params, rest, batch):
        logits, _ = _forward(eval_graphdef, params, rest, batch)
        return classification_metrics(logits, batch["labels"], batch["valid"])

    return Steps(train=jax.jit(train_step, donate_argnums=0), evaluate=jax.jit(eval_step))


def init_state(model: nnx.Module, tx):
    """(train graphdef, eval graphdef, state). Train/eval mode lives in the graphdef (static attributes)."""
    model.eval()
    eval_graphdef = nnx.split(model, nnx.Param, ...)[0]
    model.train()
    train_graphdef, params, rest = nnx.split(model, nnx.Param, ...)
    state = dict(
        step=jnp.zeros((), jnp.int32),
        params=params,
        rest=rest,
        opt_state=tx.init(params),
        nonfinite_step=jnp.full((), -1, jnp.int32),
    )
    return train_graphdef, eval_graphdef, state


# ------------------------------------------------------------------------------------------------ devices and data


def make_mesh() -> Mesh:
    # A plain Mesh has Auto axis types, which NNX data parallelism needs (jax.make_mesh defaults to Explicit).
    return Mesh(np.array(jax.devices()), ("data",))


def check_batch_sizes(config, mesh: Mesh) -> None:
    n = mesh.devices.size
    for key in ("batch_size", "eval_batch_size"):
        if config.train[key] % n:
            raise SystemExit(f"error: config train.{key}={config.train[key]} is not divisible by the {n} devices; "
                             f"set --config.train.{key} to a multiple of {n}")


def to_device(batch: dict, mesh: Mesh) -> dict:
    return jax.device_put(batch, NamedSharding(mesh, P("data")))


def batch_tokens(batch: dict) -> tuple[int, int]:
    """(real, padded) tokens of a batch: real counts valid positions of valid rows, padded every position."""
    real = padded = 0
    for inputs, lengths in (("inputs", "lengths"), ("inputs2", "lengths2")):
        if lengths in batch:
            real += int(batch[lengths][batch["valid"]].sum())
            padded += int(np.prod(batch[inputs].shape[:2]))
    return real, padded


def train_batch_stream(split: dict, cfg, start_step: int):
    """The training batches from start_step; length-bucketed when train.bucket_boundaries is set."""
    boundaries = tuple(cfg.get("bucket_boundaries") or ())
    if boundaries:
        return lra.iterator.bucketed_train_batches(split, cfg.batch_size, cfg.data_seed, start_step=start_step,
                                                   bucket_boundaries=boundaries)
    return lra.train_batches(split, cfg.batch_size, cfg.data_seed, start_step=start_step)


def eval_batch_stream(split: dict, batch_size: int, bucket_boundaries=()):
    if bucket_boundaries:
        return lra.iterator.bucketed_eval_batches(split, batch_size, bucket_boundaries=tuple(bucket_boundaries))
    return lra.eval_batches(split, batch_size)


def evaluate(steps: Steps, state, split: dict, batch_size: int, mesh: Mesh, bucket_boundaries=()) -> dict:
    totals = dict(loss_sum=0.0, correct=0.0, count=0.0)
    for batch in eval_batch_stream(split, batch_size, bucket_boundaries):
        sums = jax.device_get(steps.evaluate(state["params"], state["rest"], to_device(batch, mesh)))
        for k in totals:
            totals[k] += float(sums[k])
    n_examples = len(split["labels"])
    if totals["count"] != n_examples:
        raise AssertionError(f"evaluation saw {totals['count']} examples, the split has {n_examples}")
    return dict(loss=totals["loss_sum"] / n_examples, accuracy=totals["correct"] / n_examples)


def check_finite(state) -> None:
    bad = int(state["nonfinite_step"])
    if bad >= 0:
        raise TrainingDiverged(
            f"non-finite loss or gradient at step {bad}; stopped without saving that state. The latest checkpoint "
            "is from before it. Lower --config.optim.lr or --config.optim.grad_clip, or check the data."
        )


# ------------------------------------------------------------------------------------------------------- the run


def fresh_meta() -> dict:
    return dict(step=0, best_val_accuracy=-1.0, best_val_loss=None, best_step=-1, train_time_s=0.0, wall_time_s=0.0,
                train_tokens=0, train_padded_tokens=0, last_train_loss=None, compile_s=None)


def print_param_groups(model: nnx.Module) -> None:
    counts = optim.group_counts(model)
    total = sum(c["parameters"] for c in counts.values())
    print(f"parameters: {total:,} in total")
    for group, c in counts.items():
        print(f"  {group:<10s} {c['parameters']:>12,d} in {c['tensors']:>3d} tensors")


def train_and_evaluate(config, workdir) -> dict:
    """Trains (or resumes) the run in `workdir`, then tests its best-by-validation checkpoint. Returns results."""
    workdir = Path(workdir).absolute()
    workdir.mkdir(parents=True, exist_ok=True)
    runlog.record_config(workdir, config.to_dict())
    runlog.write_json_atomic(workdir / "environment.json", runlog.environment())

    dataset = lra.get_dataset(**config.data.to_dict())
    mesh = make_mesh()
    check_batch_sizes(config, mesh)
    model = build_model(config, dataset)
    print_param_groups(model)
    tx = optim.make_optimizer(config.optim, optim.param_labels(model), total_steps=config.train.num_steps)
    train_graphdef, eval_graphdef, state = init_state(model, tx)
    steps = make_steps(train_graphdef, eval_graphdef, tx)
    state = jax.device_put(state, NamedSharding(mesh, P()))  # replicated

    ckpts = checkpointing.Checkpoints(
        workdir / "checkpoints", keep=config.train.keep_checkpoints, async_save=config.train.async_checkpointing
    )
    restored = ckpts.restore("latest", state)
    state, meta = restored if restored else (state, fresh_meta())
    if restored:
        print(f"resuming from step {meta['step']} ({workdir / 'checkpoints' / 'latest'})")
    log = runlog.MetricsLog(workdir, resume_step=meta["step"])
    session_start, wall_before = time.perf_counter(), meta["wall_time_s"]

    def wall_time():  # over all sessions of this run, up to now
        return wall_before + time.perf_counter() - session_start

    try:
        state, meta = train_loop(config, dataset, mesh, steps, state, meta, ckpts, log, wall_time)
        results = final_evaluation(config, dataset, mesh, steps, state, meta, ckpts, log)
    finally:
        ckpts.wait()
        ckpts.close()
        log.close()
    results.update(wall_time_s=wall_time(), workdir=str(workdir))
    runlog.write_json_atomic(workdir / "results.json", results)
    print_summary(results)
    return results


def train_loop(config, dataset, mesh, steps, state, meta, ckpts, log, wall_time):
    cfg = config.train
    lr_schedule = optim.schedule(config.optim, config.optim.lr, total_steps=cfg.num_steps)
    progress = runlog.Progress(cfg.num_steps)
    step = meta["step"]
    window, window_tokens, window_padded, timed_steps, timer = [], 0, 0, 0, runlog.Timer()
    compile_s = None
    batches = train_batch_stream(dataset.splits["train"], cfg, step)
    boundaries = tuple(cfg.get("bucket_boundaries") or ())
    while step < cfg.num_steps:
        batch = next(batches)
        state, metrics = steps.train(state, to_device(batch, mesh))
        step += 1
        window.append(metrics)
        if compile_s is None:  # this process's first step compiles: timed apart, not in steps/s or tokens/s
            jax.block_until_ready(metrics)
            compile_s = timer.lap()
            meta["compile_s"] = compile_s
            progress.message(f"compiled the train step and ran step {step} in {compile_s:.1f} s")
        else:
            timed_steps += 1
            real, padded = batch_tokens(batch)
            window_tokens, window_padded = window_tokens + real, window_padded + padded
        last = step == cfg.num_steps
        logged = step % cfg.log_every == 0 or last
        evaluated = step % cfg.eval_every == 0 or last
        saved = evaluated or step % cfg.checkpoint_every == 0
        if logged or saved:
            check_finite(state)  # one device sync, before anything is logged or saved from this state
        if logged:
            values = {k: float(np.mean([m[k] for m in jax.device_get(window)])) for k in window[0]}
            elapsed = timer.lap()
            meta["train_time_s"] += elapsed
            meta["train_tokens"] += window_tokens
            meta["train_padded_tokens"] = meta.get("train_padded_tokens", 0) + window_padded
            meta["last_train_loss"] = values["loss"]
            # optax evaluates the schedule at the count of updates done before: step - 1 made this state.
            # tokens_per_s: real (unpadded) tokens; padded_tokens_per_s: every position the model computed.
            values.update(steps_per_s=timed_steps / elapsed, tokens_per_s=window_tokens / elapsed,
                          padded_tokens_per_s=window_padded / elapsed,
                          lr=float(lr_schedule(step - 1)))
            log.write(step, "train", values)
            progress.update(step, values)
            window, window_tokens, window_padded, timed_steps = [], 0, 0, 0
        if evaluated:
            val = evaluate(steps, state, dataset.splits["val"], cfg.eval_batch_size, mesh, boundaries)
            log.write(step, "val", val)
            progress.message(f"step {step}: val accuracy {val['accuracy']:.4f}, loss {val['loss']:.4f}")
            if val["accuracy"] > meta["best_val_accuracy"]:
                meta.update(best_val_accuracy=val["accuracy"], best_val_loss=val["loss"], best_step=step)
                ckpts.save("best", step, state, dict(meta, step=step, wall_time_s=wall_time()))
        if saved:
            meta.update(step=step, wall_time_s=wall_time())
            ckpts.save("latest", step, state, meta)
            timer.lap()  # evaluation and checkpointing are not training time
    return state, meta


def final_evaluation(config, dataset, mesh, steps, state, meta, ckpts, log) -> dict:
    """Test accuracy of the best-by-validation checkpoint (not the last state)."""
    best_state, best_meta = ckpts.restore("best", state)
    # Validation numbers were measured on exactly this state when it was saved as the best.
    val = dict(accuracy=best_meta["best_val_accuracy"], loss=best_meta["best_val_loss"])
    test = evaluate(steps, best_state, dataset.splits["test"], config.train.eval_batch_size, mesh,
                    tuple(config.train.get("bucket_boundaries") or ()))
    log.write(best_meta["best_step"], "test", test)
    majority = dataset.majority_class_accuracy("test")
    return dict(
        val_accuracy=val["accuracy"],
        val_loss=val["loss"],
        test_accuracy=test["accuracy"],
        test_loss=test["loss"],
        best_step=best_meta["best_step"],
        step=meta["step"],
        final_train_loss=meta["last_train_loss"],
        train_time_s=meta["train_time_s"],
        compile_s=meta["compile_s"],  # the train step's compile (+ first step) in the last session that trained
        tokens_per_s=meta["train_tokens"] / max(meta["train_time_s"], 1e-9),  # real (unpadded) tokens
        padded_tokens_per_s=meta.get("train_padded_tokens", 0) / max(meta["train_time_s"], 1e-9),
        majority_class_test_accuracy=majority,
        # A run that does not beat the majority class learned nothing (Path-X runs do this on some seeds).
        chance_level=bool(test["accuracy"] <= majority + 0.01),
        n_devices=mesh.devices.size,
    )


def print_summary(results: dict) -> None:
    print(
        f"\nval accuracy  {results['val_accuracy']:.4f}   (best step {results['best_step']})\n"
        f"test accuracy {results['test_accuracy']:.4f}   majority-class baseline {results['majority_class_test_accuracy']:.4f}\n"
        f"run directory {results['workdir']}"
    )
    if results["chance_level"]:
        print("WARNING: test accuracy is at the majority-class level: this run did not learn the task.")
