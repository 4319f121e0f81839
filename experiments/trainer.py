"""The one trainer for every model family and task.

State is a plain dict pytree {step, params, rest, opt_state, nonfinite_step}: `params` are the nnx.Param
variables, `rest` everything else the model holds (BatchNorm statistics, dropout RNG counters). A step is a pure
jitted function of (state, batch), data-parallel over the 'data' axis of a device mesh. The data order is a pure
function of (train.data_seed, step), so a checkpoint of the state is all that a resume needs.

Order of a run: check the config and the workdir (reading only), load the data, build the model, then lock the
workdir and write config.json: a run that fails before its first step leaves nothing that binds the workdir.
"""
from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import signal
import sys
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
from experiments import checkpointing, optim, runlog, validation

MODEL_INPUTS = ("inputs", "lengths", "inputs2", "lengths2")  # batch keys the model takes, when present


class TrainingDiverged(RuntimeError):
    pass


class Interrupted(Exception):
    """SIGINT (Ctrl-C) or SIGTERM. The message says at which step training stopped and which checkpoint a rerun
    resumes from; `signum` is the signal (the command exits with 128 + signum: 130, 143)."""

    def __init__(self, message: str, signum: int = signal.SIGINT):
        super().__init__(message)
        self.signum = int(signum)


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
        d_input=dataset.d_input,
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
        params = optax.apply_updates(state["params"], updates)
        # The updated parameters too: a finite gradient times a huge learning rate can overflow them.
        params_finite = jax.tree.reduce(jnp.logical_and, jax.tree.map(lambda x: jnp.isfinite(x).all(), params))
        finite = jnp.isfinite(loss) & jnp.isfinite(grad_norm) & params_finite
        # Remember the first non-finite step; the loop checks it before it logs or saves anything.
        first_bad = jnp.where((state["nonfinite_step"] < 0) & ~finite, state["step"] + 1, state["nonfinite_step"])
        new_state = dict(
            step=state["step"] + 1,
            params=params,
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


def make_training(config, model: nnx.Module, mesh: Mesh) -> tuple[Steps, dict]:
    """(the jitted steps, the initial state replicated over mesh) for `model` with config.optim's optimiser.

    Everything a run needs to take training steps, without a workdir, checkpoints or evaluation: a state is
    advanced by `state, metrics = steps.train(state, to_device(batch, mesh))` (which donates its input state).
    """
    tx = optim.make_optimizer(config.optim, optim.param_labels(model), total_steps=config.train.num_steps)
    train_graphdef, eval_graphdef, state = init_state(model, tx)
    steps = make_steps(train_graphdef, eval_graphdef, tx)
    return steps, jax.device_put(state, NamedSharding(mesh, P()))  # replicated


# ------------------------------------------------------------------------------------------------ devices and data


def make_mesh() -> Mesh:
    # A plain Mesh has Auto axis types, which NNX data parallelism needs (jax.make_mesh defaults to Explicit).
    return Mesh(np.array(jax.devices()), ("data",))


def check_batch_sizes(config, mesh: Mesh) -> None:
    n = mesh.devices.size
    for key in ("batch_size", "eval_batch_size"):
        if config.train[key] % n:
            raise validation.ConfigError(f"config.train.{key}={config.train[key]} is not divisible by the {n} "
                                         f"devices; set --config.train.{key} to a multiple of {n}")


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


def evaluate(steps: Steps, state, split: dict, batch_size: int, mesh: Mesh, progress=None, what="evaluation",
             bucket_boundaries=()) -> dict:
    """Loss and accuracy over every example of split; progress (a runlog.Progress) reports long evaluations."""
    totals = dict(loss_sum=0.0, correct=0.0, count=0.0)
    batches = eval_batch_stream(split, batch_size, bucket_boundaries)
    if progress is not None:
        batches = progress.batches(batches, lra.num_eval_batches(split, batch_size), what)
    for batch in batches:
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
            f"non-finite loss, gradient or parameters at step {bad}; stopped without saving that state (a checkpoint, "
            "if one was saved, is from before it). Lower --config.optim.lr or --config.optim.grad_clip, or check the "
            "data; this workdir stays bound to this config, so rerun with other settings in a new --workdir (or "
            "delete this one)."
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


def majority_baseline(dataset, split: str) -> tuple[int, float]:
    """The majority-class baseline, defined once: (the most frequent TRAIN label, the accuracy on `split` of
    always predicting it). Ties go to the lowest label."""
    label = int(np.argmax(np.bincount(dataset.splits["train"]["labels"], minlength=dataset.n_classes)))
    return label, dataset.majority_class_accuracy(split)


CHANCE_MARGIN = 0.01  # accuracy a run must gain over the best constant predictor not to be flagged at chance


def best_constant_baseline(dataset, split: str) -> tuple[int, float]:
    """The best constant predictor on `split`: (the most frequent label OF THAT SPLIT, its frequency there).
    No classifier that ignores its input scores more on `split`; ties go to the lowest label. It differs from
    majority_baseline when the train and `split` majorities differ (mini Pathfinder: 45.75% vs 54.25% on test)."""
    counts = np.bincount(dataset.splits[split]["labels"], minlength=dataset.n_classes)
    label = int(np.argmax(counts))
    return label, float(counts[label] / counts.sum())


def is_chance_level(accuracy: float, chance_accuracy: float) -> bool:
    """A run learned nothing when it is not above the best constant predictor by CHANCE_MARGIN (a model that
    always predicts one class scores at most chance_accuracy; Path-X runs stay there on some seeds)."""
    # Rounded: accuracies are ratios of counts, and 221/400 vs 217/400 + 0.01 must not depend on float rounding.
    return bool(round(accuracy - chance_accuracy, 9) <= CHANCE_MARGIN)


def dataset_record(dataset) -> dict:
    """What config.json records about the data a run trained on: the resolved folder and its manifest's sha256."""
    manifest = Path(dataset.path) / "manifest.json"
    return dict(folder=str(Path(dataset.path).resolve()), name=dataset.manifest.get("name"),
                manifest_sha256=hashlib.sha256(manifest.read_bytes()).hexdigest())


def build_checked_model(config, dataset) -> nnx.Module:
    """build_model, with a constructor's ValueError/TypeError reported as a ConfigError naming config.model."""
    try:
        return build_model(config, dataset)
    except (ValueError, TypeError) as e:
        raise validation.ConfigError(f"config.model cannot be built: {e}") from None


def stored_results_if_finished(config, workdir: Path) -> dict | None:
    """The results of a finished run in workdir with this config (nothing is re-evaluated), else None."""
    runlog.check_config(workdir, config.to_dict())
    return runlog.finished_results(workdir, config.train.num_steps)


def train_and_evaluate(config, workdir) -> dict:
    """Trains (or resumes) the run in `workdir`, then tests its best-by-validation checkpoint. Returns results.

    Raises validation.ConfigError, lra.DataError, runlog.RunDirError (user errors), TrainingDiverged,
    checkpointing.CheckpointSaveError, Interrupted.
    """
    workdir = Path(workdir).absolute()
    validation.check_config(config)
    blocking = next((p for p in (workdir, *workdir.parents) if p.exists() and not p.is_dir()), None)
    if blocking is not None:
        raise runlog.RunDirError(f"--workdir {workdir}: {blocking} is a file, not a folder; choose another --workdir")
    results = stored_results_if_finished(config, workdir)
    if results is not None:
        print(f"{workdir} holds a finished run of {config.train.num_steps} steps; its stored results "
              "(results.json, nothing re-evaluated):")
        print_summary(results)
        return results

    # An existing workdir is locked at once (another trainer may be using it); a new one only once it is made.
    lock = runlog.WorkdirLock(workdir) if workdir.is_dir() else None
    try:
        dataset = lra.get_dataset(**config.data.to_dict())
        mesh = make_mesh()
        check_batch_sizes(config, mesh)
        model = build_checked_model(config, dataset)
        if lock is None:
            workdir.mkdir(parents=True, exist_ok=True)
            lock = runlog.WorkdirLock(workdir)
        runlog.check_config(workdir, config.to_dict())  # again: another trainer may have started it meanwhile
        return run(config, workdir, dataset, mesh, model)
    finally:
        if lock is not None:
            lock.release()


def run(config, workdir: Path, dataset, mesh: Mesh, model: nnx.Module) -> dict:
    """Training proper, in a locked workdir."""
    print_param_groups(model)
    steps, state = make_training(config, model, mesh)

    runlog.record_config(workdir, config.to_dict(), dataset_record(dataset))  # training starts: bind the workdir
    runlog.write_json_atomic(workdir / "environment.json", runlog.environment())
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

    with stop_at_step_boundary_on_signal() as stop:
        try:
            state, meta = train_loop(config, dataset, mesh, steps, state, meta, ckpts, log, wall_time)
            stop.at_once(meta["step"])  # the last step is saved: a signal now stops the final evaluation at once
            results = final_evaluation(config, dataset, mesh, steps, state, meta, ckpts, log)
        except KeyboardInterrupt as e:
            close_quietly(ckpts, log)  # the save in flight completes first: no checkpoint is left half-written
            raise interrupted(workdir, config, ckpts, getattr(e, "step", None),
                              getattr(e, "signum", signal.SIGINT)) from None
        except BaseException:
            close_quietly(ckpts, log)
            raise
    ckpts.wait()
    ckpts.close()
    log.close()
    results.update(wall_time_s=wall_time(), workdir=str(workdir))
    runlog.write_json_atomic(workdir / "results.json", results)
    print_summary(results)
    return results


class SignalInterrupt(KeyboardInterrupt):
    """SIGINT or SIGTERM, raised in the main thread; `signum` says which, `step` (set by train_loop) the last
    step done."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = int(signum)


class StopRequested(SignalInterrupt):
    """Raised by the train loop at a step boundary after a first signal, once that step is saved."""


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class _StopFlag:
    """What the signal handler has seen: `signum` of a first signal the loop has not acted on yet (else None);
    `immediate` once nothing is left to save (a signal then interrupts at once)."""

    def __init__(self):
        self.signum, self.immediate = None, False

    def at_once(self, step: int) -> None:
        self.immediate = True
        if self.signum is not None:  # came during the last step, which is saved: stop before the final evaluation
            e = SignalInterrupt(self.signum)
            e.step = step
            raise e


_stop = _StopFlag()


@contextlib.contextmanager
def stop_at_step_boundary_on_signal():
    """A first SIGINT (Ctrl-C) or SIGTERM asks the loop to stop after the current step and save it (so no step,
    save or evaluation is cut in half); a second one interrupts at once (raises SignalInterrupt wherever the
    main thread is; the caller then waits for an orbax write in flight, which cannot be cut short from Python);
    a third kills the process with the signal's default action. None of them can corrupt a checkpoint: orbax
    writes each one into a temporary folder and renames it when complete, so the previous one stays the latest
    and the leftover is removed at the next start. Only in the main thread (signal handlers cannot be set
    elsewhere); elsewhere nothing is installed."""
    global _stop
    _stop = stop = _StopFlag()

    def handler(signum, frame):
        if stop.signum is not None or stop.immediate:
            for s in STOP_SIGNALS:  # the next one kills at once
                signal.signal(s, signal.SIG_DFL)
            raise SignalInterrupt(stop.signum or signum)
        stop.signum = signum
        print(f"\n{signal.Signals(signum).name}: stopping after the current step and saving it (send it again "
              "to stop at once)", file=sys.stderr, flush=True)

    try:
        previous = {s: signal.signal(s, handler) for s in STOP_SIGNALS}
    except ValueError:  # not the main thread
        yield stop
        return
    try:
        yield stop
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


def close_quietly(ckpts, log) -> None:
    """Finish or abandon what is in flight while another error propagates (that error is the one to report)."""
    try:
        ckpts.wait()
    except checkpointing.CheckpointSaveError:
        pass
    ckpts.close()
    log.close()


def interrupted(workdir: Path, config, ckpts, step, signum=signal.SIGINT) -> Interrupted:
    resume = ckpts.last_complete_step("latest")
    where = f"at step {step} of {config.train.num_steps}" if step is not None else "during the final evaluation"
    then = (f"a rerun of the same command resumes from step {resume} ({workdir / 'checkpoints' / 'latest'}/{resume})"
            if resume is not None else "no checkpoint was saved yet: a rerun starts from step 0")
    return Interrupted(f"interrupted {where} ({signal.Signals(signum).name}); {then}.", signum)


def train_loop(config, dataset, mesh, steps, state, meta, ckpts, log, wall_time):
    cfg = config.train
    lr_schedule = optim.schedule(config.optim, config.optim.lr, total_steps=cfg.num_steps)
    progress = runlog.Progress(cfg.num_steps)
    step = progress.step = meta["step"]
    batches = train_batch_stream(dataset.splits["train"], cfg, step)
    try:
        return _train_steps(config, dataset, mesh, steps, state, meta, ckpts, log, wall_time, batches, progress,
                            lr_schedule)
    except KeyboardInterrupt as e:
        e.step = progress.step  # the last step done, for the message
        raise


def window_record(window: list) -> dict:
    """The per-step train metrics since the last logged step, as JSON for a checkpoint's metadata: a run resumed
    at a step that was not logged averages its next train row over the same steps as an uninterrupted one."""
    host = jax.device_get(window)
    return dict(dtypes={k: str(np.asarray(v).dtype) for k, v in host[0].items()} if host else {},
                values=[{k: float(v) for k, v in m.items()} for m in host])  # float32 -> float64 -> float32: exact


def restored_window(record: dict | None) -> list:
    """Inverse of window_record (checkpoints written before it existed have none: an empty window)."""
    if not record:
        return []
    return [{k: np.asarray(v, dtype=record["dtypes"][k]) for k, v in m.items()} for m in record["values"]]


def _train_steps(config, dataset, mesh, steps, state, meta, ckpts, log, wall_time, batches, progress, lr_schedule):
    cfg = config.train
    step = meta["step"]
    window = restored_window(meta.pop("log_window", None))
    window_tokens, window_padded, window_time, timed_steps, timer = 0, 0, 0.0, 0, runlog.Timer()
    compile_s = None

    def resume_meta():
        """meta for a latest checkpoint at `step`: totals include the steps since the last log, whose metrics
        travel with it (the live meta adds them at the next log)."""
        return dict(meta, step=step, wall_time_s=wall_time(), train_time_s=meta["train_time_s"] + window_time,
                    train_tokens=meta["train_tokens"] + window_tokens,
                    train_padded_tokens=meta.get("train_padded_tokens", 0) + window_padded,
                    log_window=window_record(window))

    while step < cfg.num_steps:
        if _stop.signum is not None:
            if step > 0:  # save the state reached (unless that step is saved already), waiting for the write
                window_time += timer.lap()
                check_finite(state)
                progress.message(f"{signal.Signals(_stop.signum).name}: saving step {step} before stopping")
                ckpts.save("latest", step, state, resume_meta())
                ckpts.wait()
            raise StopRequested(_stop.signum)
        batch = next(batches)
        state, metrics = steps.train(state, to_device(batch, mesh))
        step += 1
        progress.step = step
        window.append(metrics)
        if compile_s is None:  # this process's first step compiles: timed apart, not in steps/s or tokens/s
            jax.block_until_ready(metrics)
            compile_s = timer.lap()
            meta["compile_s"] = compile_s
            progress.message(f"compiled the train step and ran step {step} in {compile_s:.1f} s")
            progress.start_pace(step)
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
            window_time += timer.lap()  # training time; evaluation and checkpointing below are not
        if logged:
            values = {k: float(np.mean([m[k] for m in jax.device_get(window)])) for k in window[0]}
            meta["train_time_s"] += window_time
            meta["train_tokens"] += window_tokens
            meta["train_padded_tokens"] = meta.get("train_padded_tokens", 0) + window_padded
            meta["last_train_loss"] = values["loss"]
            # optax evaluates the schedule at the count of updates done before: step - 1 made this state.
            # tokens_per_s: real (unpadded) tokens; padded_tokens_per_s: every position the model computed.
            values.update(steps_per_s=timed_steps / window_time, tokens_per_s=window_tokens / window_time,
                          padded_tokens_per_s=window_padded / window_time,
                          lr=float(lr_schedule(step - 1)))
            log.write(step, "train", values)
            progress.update(step, values, elapsed_s=wall_time())
            ckpts.poll()  # a background save that failed stops the run now, not one interval later
            window, window_tokens, window_padded, window_time, timed_steps = [], 0, 0, 0.0, 0
        if evaluated:
            val = evaluate(steps, state, dataset.splits["val"], cfg.eval_batch_size, mesh, progress,
                           f"step {step}: evaluating val", bucket_boundaries=cfg.bucket_boundaries)
            log.write(step, "val", val)
            progress.message(f"step {step}: val accuracy {val['accuracy']:.4f}, loss {val['loss']:.4f}")
            if val["accuracy"] > meta["best_val_accuracy"]:
                meta.update(best_val_accuracy=val["accuracy"], best_val_loss=val["loss"], best_step=step)
                ckpts.save("best", step, state, dict(meta, step=step, wall_time_s=wall_time()))
        if saved:
            meta.update(step=step, wall_time_s=wall_time())
            ckpts.save("latest", step, state, resume_meta())
        if logged or saved:
            timer.lap()  # evaluation and checkpointing are not training time
    return state, meta


def final_evaluation(config, dataset, mesh, steps, state, meta, ckpts, log) -> dict:
    """Test accuracy of the best-by-validation checkpoint (not the last state)."""
    best_state, best_meta = ckpts.restore("best", state)
    # Validation numbers were measured on exactly this state when it was saved as the best.
    val = dict(accuracy=best_meta["best_val_accuracy"], loss=best_meta["best_val_loss"])
    progress = runlog.Progress(config.train.num_steps)
    progress.message(f"testing the best-by-validation checkpoint (step {best_meta['best_step']})")
    test = evaluate(steps, best_state, dataset.splits["test"], config.train.eval_batch_size, mesh, progress,
                    "evaluating test", bucket_boundaries=config.train.bucket_boundaries)
    log.write(best_meta["best_step"], "test", test)
    majority_label, majority = majority_baseline(dataset, "test")
    chance_label, chance = best_constant_baseline(dataset, "test")
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
        majority_class_label=majority_label,
        chance_accuracy=chance,  # the best constant predictor on test: its most frequent label's frequency
        chance_label=chance_label,
        chance_level=is_chance_level(test["accuracy"], chance),
        n_devices=mesh.devices.size,
    )


def print_summary(results: dict) -> None:
    label = results.get("majority_class_label")
    definition = f"always predicting label {label}, " if label is not None else "always predicting "
    lines = [
        f"\nval accuracy  {results['val_accuracy']:.4f}   (best step {results['best_step']})",
        f"test accuracy {results['test_accuracy']:.4f}   majority-class baseline "
        f"{results['majority_class_test_accuracy']:.4f} ({definition}the most frequent train label)",
    ]
    if results.get("chance_accuracy") is not None:  # results.json files written before it was recorded lack it
        lines.append(f"              chance level  {results['chance_accuracy']:.4f} (the best constant predictor: "
                     f"always predicting label {results['chance_label']}, the most frequent test label)")
    lines.append(f"run directory {results['workdir']}")
    print("\n".join(lines))
    if results["chance_level"]:
        reference = "the chance level" if results.get("chance_accuracy") is not None else "the majority-class baseline"
        print(f"WARNING: test accuracy is not above {reference} + {CHANCE_MARGIN}: this run did not learn the task.")
