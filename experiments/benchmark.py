"""Benchmarks: every subcommand prints a readable table and writes JSON (--out).

  python -m experiments.benchmark scan   [--operators diagonal,dense] [--lengths 1024,4096,16384] [--batch 8]
                                         [--state 256] [--reps 7] [--out FILE]
      every method of scan.linear_recurrence on each operator's make_inputs (time-invariant, complex64), side by
      side in one process (round-robin): forward and forward+backward medians, compile times, XLA peak memory,
      the method 'auto' picks, and the memory-bandwidth floor (bytes in + out over the copy bandwidth measured
      in the same run with numpy.copyto into a pre-allocated, already-touched buffer).
  python -m experiments.benchmark step   [--config experiments/configs/lru.py:listops] [--batch 8] [--length 2048]
                                         [--set model.dtype=bfloat16 ...] [--reps 5] [--out FILE]
      one train step and one eval step of a family's classifier through the trainer's make_training, on random
      tokens: tokens/s, compile (+ first step) time, XLA peak bytes and the process's peak RSS. Default: the
      issue's LRU (6 layers, H=128, N=256, LayerNorm, full GLU, B=8, L=2048, AdamW).
  python -m experiments.benchmark layers [--lengths 1024,4096,16384] [--batch 1] [--d-model 128] [--out FILE]
      every family in models.LAYERS at one width (small constructor args in LAYER_ARGS): forward and
      forward+backward time and XLA peak memory per L; a size that does not fit (--max-bytes, or an error from
      XLA) is recorded, not fatal.
  python -m experiments.benchmark rates  [--suites full,ablation] [--batch 2] [--reps 2] [--only lru:listops]
                                         [--out FILE]
      seconds per train step of every full-scale config that a suite of experiments.reproduce runs (its
      STEP_RATE_ESTIMATES): one train + eval step at --batch on the task's full-length random input, scaled
      linearly to the config's batch, plus the step's share of the run's evaluations; the 1-minute load average
      beside each. experiments.reproduce.SAME_COST cases are not measured twice, NOT_ESTIMATED ones not at all.
  python -m experiments.benchmark all --out DIR
      scan + step + layers at the sizes that matter (L up to 16384; larger batches on a GPU/TPU), JSON files in DIR.

Times are wall-clock medians after a warm-up call; compile time is lower + compile. On a shared machine compare
within one run (ratios), not across runs.
"""
import argparse
import importlib.util
import json
import math
import os
import platform
import resource
import statistics
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from experiments.cli import fail
import scan

# Small constructor args per family for `layers` (one common width is passed as d_model). A family registered in
# models.LAYERS but missing here is built with no extra args (and recorded as an error if that fails).
LAYER_ARGS = {
    "lru": dict(d_state=64),
    "s4d": dict(d_state=64),
    "s5": dict(d_state=64),
    "attention": dict(n_heads=4),
    "rnn": dict(d_state=64, nonlinearity="tanh"),
    "selective": dict(d_state=16),
    "rotation": dict(d_state=32),  # 32 blocks of 2 real states = 64 real numbers, as the others' state
}
# The state size used for an operator in `scan` when it differs from --state (dense: N x N transitions).
SCAN_STATE = {"dense": 32}
DEFAULT_STEP_SETTINGS = ("model.norm=layer", "model.activation=glu")  # the LRU on top of lru.py:listops


# ------------------------------------------------------------------------------------------------------ helpers

def _time_call(fn, *args):
    start = time.perf_counter()
    jax.block_until_ready(fn(*args))
    return time.perf_counter() - start


def _compile(fn, *args, jit=True):
    """(compiled, seconds to lower + compile)."""
    start = time.perf_counter()
    compiled = (jax.jit(fn) if jit else fn).lower(*args).compile()
    return compiled, time.perf_counter() - start


def _peak_bytes(compiled):
    """XLA's static buffer assignment: temporaries + arguments + outputs (minus aliased). On CPU this is the
    peak the executable can hold at once, not a measured resident-set size."""
    m = compiled.memory_analysis()
    return int(m.temp_size_in_bytes + m.argument_size_in_bytes + m.output_size_in_bytes - m.alias_size_in_bytes)


def _peak_rss_bytes():
    """The process's peak resident set so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def measure_copy_bandwidth(n_bytes=512 * 2**20, reps=7):
    """Bytes read + written per second copying into a pre-allocated, already-touched buffer (numpy.copyto): the
    hardware's copy bandwidth, without the page faults of a freshly allocated output."""
    src = np.ones(n_bytes // 4, np.float32)
    dst = np.empty_like(src)
    np.copyto(dst, src)  # touch every page of dst once
    seconds = []
    for _ in range(reps):
        start = time.perf_counter()
        np.copyto(dst, src)
        seconds.append(time.perf_counter() - start)
    return 2 * n_bytes / statistics.median(seconds)


def measure_jax_negate_bandwidth(n_bytes=512 * 2**20, reps=7):
    """Read + write bytes/s of a jitted negate (allocates a fresh output every call: includes page faults)."""
    x = jnp.ones((n_bytes // 4,), jnp.float32)
    neg, _ = _compile(lambda x: -x, x)
    jax.block_until_ready(neg(x))
    return 2 * n_bytes / statistics.median(_time_call(neg, x) for _ in range(reps))


def print_table(title, header, rows):
    """A plain aligned text table on stdout."""
    cells = [[str(c) for c in header]] + [[_fmt(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    print(f"\n{title}")
    for i, row in enumerate(cells):
        print("  ".join(c.rjust(w) for c, w in zip(row, widths)))
        if i == 0:
            print("  ".join("-" * w for w in widths))


def _fmt(x):
    if isinstance(x, float):
        return f"{x:.3g}" if abs(x) < 1000 else f"{x:,.0f}"
    return "-" if x is None else str(x)


def _positive_int(text):
    """argparse type: an integer >= 1 (else argparse's one-line error, exit 2)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} must be >= 1")
    return value


def _int_list(text):
    """argparse type: comma-separated integers >= 1."""
    values = [_positive_int(x) for x in text.split(",") if x]
    if not values:
        raise argparse.ArgumentTypeError("expected comma-separated integers >= 1, e.g. 1024,4096")
    return values


def _str_list(text):
    return [x for x in text.split(",") if x]


def _environment():
    return {"backend": jax.default_backend(), "devices": [str(d) for d in jax.devices()], "jax": jax.__version__,
            "machine": platform.processor() or platform.machine(), "cpu_count": os.cpu_count()}


# --------------------------------------------------------------------------------------------------------- scan

def _scan_inputs(operator, batch, length, state, seed=0):
    """Time-invariant complex64 (a, b) from the operator's own make_inputs (|a| = 0.99)."""
    a, b, _ = scan.OPERATORS[operator].make_inputs(np.random.default_rng(seed), batch, length, state,
                                                   np.complex64, 0.99, False)
    return jnp.asarray(a), jnp.asarray(b)


def _scan_forward(operator, method):
    return lambda a, b: scan.linear_recurrence(a, b, method=method, operator=operator)


def _scan_forward_backward(operator, method):
    def loss(a, b):
        h = scan.linear_recurrence(a, b, method=method, operator=operator)
        return jnp.sum(jnp.real(h)) + jnp.sum(jnp.imag(h))
    return jax.grad(loss, argnums=(0, 1))


def bench_scan_length(operator, length, batch, state, reps, bandwidth):
    a, b = _scan_inputs(operator, batch, length, state)
    compiled, rows = {}, {}
    for method in scan.OPERATORS[operator].methods:
        fwd, fwd_s = _compile(_scan_forward(operator, method), a, b)
        bwd, bwd_s = _compile(_scan_forward_backward(operator, method), a, b)
        compiled[method] = (fwd, bwd)
        rows[method] = {"compile_forward_s": fwd_s, "compile_forward_backward_s": bwd_s,
                        "peak_bytes_forward": _peak_bytes(fwd), "peak_bytes_forward_backward": _peak_bytes(bwd),
                        "forward_s": [], "forward_backward_s": []}
        jax.block_until_ready((fwd(a, b), bwd(a, b)))  # warm-up
    for _ in range(reps):  # round-robin: noise spreads over all methods alike
        for method, (fwd, bwd) in compiled.items():
            rows[method]["forward_s"].append(_time_call(fwd, a, b))
            rows[method]["forward_backward_s"].append(_time_call(bwd, a, b))
    for row in rows.values():
        row["forward_s"] = statistics.median(row["forward_s"])
        row["forward_backward_s"] = statistics.median(row["forward_backward_s"])
    for key in ("forward_s", "forward_backward_s"):
        best = min(row[key] for row in rows.values())
        for row in rows.values():
            row[key.replace("_s", "_ratio_to_fastest")] = row[key] / best
    io_forward = a.nbytes + 2 * b.nbytes  # a, b in; h out
    io_backward = io_forward + 2 * b.nbytes + a.nbytes  # + the cotangents of b and a out, h reread
    for row in rows.values():
        row["forward_ratio_to_floor"] = row["forward_s"] / (io_forward / bandwidth)
        row["forward_backward_ratio_to_floor"] = row["forward_backward_s"] / (io_backward / bandwidth)
        row["peak_forward_backward_over_output"] = row["peak_bytes_forward_backward"] / b.nbytes
    auto = scan.choose_method(operator, length, time_varying=False)
    return {
        "operator": operator, "length": length, "batch": batch, "state": state, "output_bytes": b.nbytes,
        "methods": rows, "auto": auto,
        "fastest_forward": min(rows, key=lambda m: rows[m]["forward_s"]),
        "fastest_forward_backward": min(rows, key=lambda m: rows[m]["forward_backward_s"]),
        "auto_forward_ratio_to_fastest": rows[auto]["forward_ratio_to_fastest"],
        "auto_forward_backward_ratio_to_fastest": rows[auto]["forward_backward_ratio_to_fastest"],
        "bandwidth_floor_forward_s": io_forward / bandwidth,
        "bandwidth_floor_forward_backward_s": io_backward / bandwidth,
    }


def run_scan(args):
    unknown = [op for op in args.operators if op not in scan.OPERATORS]
    if unknown:
        fail(f"--operators {','.join(unknown)}: not in scan.OPERATORS {sorted(scan.OPERATORS)}")
    bandwidth = measure_copy_bandwidth()
    results = [bench_scan_length(op, length, args.batch, SCAN_STATE.get(op, args.state), args.reps, bandwidth)
               for op in args.operators for length in args.lengths]
    report = {
        "benchmark": "scan", "case": "time-invariant a from each operator's make_inputs (|a| = 0.99), complex64, "
                                     "axis=1, reverse=False",
        "batch": args.batch, "state": args.state, "reps": args.reps, **_environment(),
        "copy_bandwidth_bytes_per_s": bandwidth,
        "jax_negate_bandwidth_bytes_per_s": measure_jax_negate_bandwidth(),
        "notes": {"peak_bytes": "compiled.memory_analysis(): temp + argument + output - alias bytes (XLA buffer "
                                "assignment, a static upper bound on live buffers, not measured RSS)",
                  "bandwidth_floor": "(bytes in + bytes out) / copy bandwidth (numpy.copyto of 512 MiB into a "
                                     "pre-allocated, already-touched buffer, this run)",
                  "forward_backward": "jax.grad of sum(Re h + Im h) w.r.t. a and b"},
        "results": results,
    }
    rows = [(r["operator"], r["length"], m, v["forward_s"] * 1e3, v["forward_ratio_to_fastest"],
             v["forward_ratio_to_floor"], v["forward_backward_s"] * 1e3, v["forward_backward_ratio_to_fastest"],
             v["forward_backward_ratio_to_floor"],
             v["compile_forward_backward_s"], v["peak_bytes_forward_backward"] / 2**20,
             v["peak_forward_backward_over_output"], "auto" if m == r["auto"] else "")
            for r in results for m, v in r["methods"].items()]
    print_table(f"scan (B={args.batch}; copy bandwidth {bandwidth / 1e9:.1f} GB/s, numpy.copyto)",
                ["operator", "L", "method", "fwd ms", "fwd/fastest", "fwd/floor", "fwd+bwd ms", "fb/fastest",
                 "fb/floor",
                 "compile fb s", "peak fb MiB", "peak/out", ""], rows)
    return report


# --------------------------------------------------------------------------------------------------------- step

def load_config(spec):
    """'path/to/family.py:variant' -> the family's get_config(variant), unlocked for --set overrides."""
    path, _, variant = spec.partition(":")
    if not Path(path).is_file():
        fail(f"--config {spec!r}: no file {path!r} (expected experiments/configs/<family>.py:<variant>)")
    if not variant:
        from experiments.configs.__main__ import missing_variant

        fail(missing_variant(Path(path)))
    module_spec = importlib.util.spec_from_file_location(Path(path).stem, path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    try:
        config = module.get_config(variant)
    except ValueError as e:  # an unknown variant: the config file's own message
        fail(f"--config {spec!r}: {e}")
    config.unlock()
    return config


def apply_settings(config, settings):
    """'a.b.c=value' overrides (value parsed as a Python literal when it is one, else a string)."""
    import ast
    for setting in settings:
        key, sep, text = setting.partition("=")
        if not sep:
            fail(f"--set {setting!r}: expected key=value, e.g. model.dtype=bfloat16")
        try:
            value = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            value = text
        *parents, leaf = key.split(".")
        node = config
        for p in parents:
            node = node[p]
        if leaf not in node:
            fail(f"--set {setting!r}: the config has no key {key!r}")
        node[leaf] = value
    return config


def bench_step(config, batch_size, length, reps, vocab_size=20, n_classes=10, d_input=None, dual=False):
    """Train and eval step of config's classifier on random inputs, with the trainer's own steps and state
    (trainer.make_training: optimiser, jitted train step donating the state, eval step, state replicated over the
    devices' mesh; the batch sharded over it as in a run). Inputs: tokens < vocab_size, or (B, L, d_input) float32
    reals if d_input is set; dual: two documents per example (Retrieval's DualClassifier)."""
    from flax import nnx

    import models
    from experiments import trainer

    mesh = trainer.make_mesh()
    if batch_size % mesh.devices.size:
        raise ValueError(f"--batch {batch_size} is not divisible by the {mesh.devices.size} devices; pass a multiple")
    rng = np.random.default_rng(0)
    inputs = lambda: (rng.normal(size=(batch_size, length, d_input)).astype(np.float32) if d_input else
                      rng.integers(0, vocab_size, (batch_size, length)).astype(np.int32))
    batch = {"inputs": inputs(), "lengths": np.full(batch_size, length, np.int32),
             "labels": rng.integers(0, n_classes, batch_size).astype(np.int32), "valid": np.ones(batch_size, bool)}
    if dual:
        batch.update(inputs2=inputs(), lengths2=np.full(batch_size, length, np.int32))
    batch = trainer.to_device(batch, mesh)
    # trainer.build_model's classifier for a token task (it reads sizes from a dataset; here: random tokens).
    model = models.build_classifier(**config.model.to_dict(), n_classes=n_classes,
                                    vocab_size=None if d_input else vocab_size, d_input=d_input, dual=dual,
                                    rngs=nnx.Rngs(params=config.seed, dropout=config.seed + 1))
    steps, state = trainer.make_training(config, model, mesh)
    n_params = sum(x.size for x in jax.tree.leaves(state["params"]))

    start = time.perf_counter()
    train, train_compile_s = _compile(steps.train, state, batch, jit=False)
    state, metrics = train(state, batch)
    jax.block_until_ready(metrics)
    first_train_s = time.perf_counter() - start  # compile + first step: what a run waits for before step 2
    # Wall and process CPU seconds (all of XLA's threads): on a shared machine the CPU seconds depend less on
    # what else runs; on an idle machine the wall time lies between CPU seconds / cores and CPU seconds.
    train_times, train_cpu = [], []
    for _ in range(reps):
        start, start_cpu = time.perf_counter(), time.process_time()
        state, metrics = train(state, batch)
        jax.block_until_ready(metrics)
        train_times.append(time.perf_counter() - start)
        train_cpu.append(time.process_time() - start_cpu)
    evaluate, eval_compile_s = _compile(steps.evaluate, state["params"], state["rest"], batch, jit=False)
    jax.block_until_ready(evaluate(state["params"], state["rest"], batch))
    eval_times, eval_cpu = [], []
    for _ in range(reps):
        start_cpu = time.process_time()
        eval_times.append(_time_call(evaluate, state["params"], state["rest"], batch))
        eval_cpu.append(time.process_time() - start_cpu)
    tokens = batch_size * length * (2 if dual else 1)
    train_s, eval_s = statistics.median(train_times), statistics.median(eval_times)
    return {
        "layer": config.model.layer, "model": config.model.to_dict(), "batch": batch_size, "length": length,
        "parameters": int(n_params), "optimizer": "AdamW (experiments/optim.py, the trainer's)",
        "train_step_s": train_s, "train_tokens_per_s": tokens / train_s,
        "train_compile_s": train_compile_s, "train_compile_and_first_step_s": first_train_s,
        "train_peak_bytes_xla": _peak_bytes(train),
        "eval_step_s": eval_s, "eval_tokens_per_s": tokens / eval_s, "eval_compile_s": eval_compile_s,
        "eval_peak_bytes_xla": _peak_bytes(evaluate), "train_step_cpu_s": statistics.median(train_cpu),
        "eval_step_cpu_s": statistics.median(eval_cpu), "peak_rss_bytes": _peak_rss_bytes(),
        "final_loss": float(metrics["loss"]),
    }


def run_step(args):
    config = apply_settings(load_config(args.config), list(DEFAULT_STEP_SETTINGS) + list(args.set))
    result = bench_step(config, args.batch, args.length, args.reps)
    report = {"benchmark": "step", "config": args.config, "settings": list(DEFAULT_STEP_SETTINGS) + list(args.set),
              **_environment(), "reps": args.reps,
              "notes": {"peak_rss_bytes": "the process's peak resident set (getrusage), whole process",
                        "train_peak_bytes_xla": "memory_analysis of the compiled train step (donated state)"},
              "results": [result]}
    r = result
    print_table(f"step ({args.config} {' '.join(report['settings'])})",
                ["layer", "B", "L", "params", "train tok/s", "eval tok/s", "compile+1st s", "eval compile s",
                 "XLA peak MiB", "peak RSS MiB"],
                [(r["layer"], r["batch"], r["length"], r["parameters"], r["train_tokens_per_s"],
                  r["eval_tokens_per_s"], r["train_compile_and_first_step_s"], r["eval_compile_s"],
                  r["train_peak_bytes_xla"] / 2**20, r["peak_rss_bytes"] / 2**20)])
    return report


# -------------------------------------------------------------------------------------------------------- rates

# Validation / test examples per task (experiments/published/lra_data.md; Retrieval: the AAN eval / test files,
# 18,090 / 17,437 pairs as the S4 paper's LRA table counts them): the evaluation share of a run's time.
EVAL_EXAMPLES = {"listops": (2_000, 2_000), "text": (25_000, 25_000), "retrieval": (18_090, 17_437),
                 "image": (5_000, 10_000), "pathfinder": (20_000, 20_000), "pathx": (20_000, 20_000)}
# Measured batch where the default (--batch) does not fit in this machine's memory beside other processes.
RATE_BATCH = {("transformer", "text"): 1, ("transformer", "retrieval"): 1}


def task_input(config) -> dict:
    """Full-scale padded input of config's task for random batches: length, vocab_size (tokens; 256 covers every
    task's vocabulary) or d_input (real channels), dual (Retrieval: two documents), n_classes.
    Lengths: experiments/published/lra_data.md (ListOps pads to 2000; Text / Retrieval: the config's max_len)."""
    from experiments.configs import base

    data, task = config.data, config.data.task
    length = {"listops": 2000, "text": data.get("max_len"), "retrieval": data.get("max_len"), "image": 1024,
              "pathfinder": data.get("resolution", 32) ** 2, "pathx": 128 * 128}[task]
    real = (task == "image" and data.mode != "grey_tokens") or (task in ("pathfinder", "pathx")
                                                                 and data.encoding == "real")
    return dict(length=length, vocab_size=None if real else 256,
                d_input=(3 if data.get("mode") == "colour_real" else 1) if real else None,
                dual=task == "retrieval", n_classes=base.N_CLASSES[task])


def rate_cases(suites):
    """{(model, task): config spec} of every run of the given experiments.reproduce suites (one seed)."""
    from experiments import reproduce

    cases = {}
    for name in suites:
        if name not in reproduce.SUITES:
            fail(f"--suites {name}: not a suite of experiments.reproduce ({', '.join(sorted(reproduce.SUITES))})")
        for run in reproduce.expand(reproduce.SUITES[name], name, seeds=1):
            cases.setdefault((run.model, run.task), run.config_spec)
    return cases


def bench_rate(spec, batch_size, reps):
    """Seconds per train step of a full config at its own batch size, from one train and one eval step measured
    at batch_size on the config's full-length input and scaled linearly (x B / batch_size), plus the step's
    share of the run's evaluations (every eval_every steps over the validation set, once over the test set)."""
    config = load_config(spec)
    task_in = task_input(config)
    task = config.data.task
    r = bench_step(config, batch_size, task_in["length"], reps, vocab_size=task_in["vocab_size"],
                   n_classes=task_in["n_classes"], d_input=task_in["d_input"], dual=task_in["dual"])
    t = config.train
    evaluations = math.ceil(t.num_steps / t.eval_every)
    val, test = EVAL_EXAMPLES[task]
    per_step = lambda train, evaluate: (train * t.batch_size + (evaluations * val + test) * evaluate / t.num_steps
                                        ) / batch_size
    train_s = r["train_step_s"] * t.batch_size / batch_size
    eval_s = (evaluations * val + test) * r["eval_step_s"] / batch_size
    step_s = per_step(r["train_step_s"], r["eval_step_s"])
    return {"config": spec, "task": task, "length": task_in["length"], "dual": task_in["dual"],
            "measured_batch": batch_size, "train_step_s_measured": r["train_step_s"],
            "eval_step_s_measured": r["eval_step_s"], "train_step_cpu_s_measured": r["train_step_cpu_s"],
            "eval_step_cpu_s_measured": r["eval_step_cpu_s"],
            "step_cpu_s_with_eval": per_step(r["train_step_cpu_s"], r["eval_step_cpu_s"]),
            "train_compile_and_first_step_s": r["train_compile_and_first_step_s"],
            "eval_compile_s": r["eval_compile_s"], "peak_rss_bytes": r["peak_rss_bytes"],
            "config_batch": t.batch_size, "num_steps": t.num_steps, "evaluations": evaluations,
            "train_step_s_scaled": train_s, "eval_s_total": eval_s, "step_s_with_eval": step_s,
            "run_hours": step_s * t.num_steps / 3600,
            "run_cpu_hours": per_step(r["train_step_cpu_s"], r["eval_step_cpu_s"]) * t.num_steps / 3600}


def run_rates(args):
    from experiments.reproduce import NOT_ESTIMATED, SAME_COST

    cases = rate_cases(args.suites)
    if args.only:
        unknown = [x for x in args.only if x not in {f"{m}:{t}" for m, t in cases}]
        if unknown:
            fail(f"--only {','.join(unknown)}: not a model:task of the suites; they have "
                 f"{', '.join(f'{m}:{t}' for m, t in cases)}")
    report = {"benchmark": "rates", "suites": args.suites, **_environment(), "reps": args.reps,
              "notes": {"scaling": "train/eval step measured at measured_batch on the full-length input, x "
                                   "config_batch / measured_batch (linear: an estimate; per-step overheads make it "
                                   "an over-estimate where the measured step is small)",
                        "step_s_with_eval": "scaled train step + (evaluations x val + test examples) x eval step "
                                            "per example / num_steps",
                        "load": "os.getloadavg() 1-minute before / after each case (2 shared cores)",
                        "cpu": "process CPU seconds (time.process_time, all threads): less sensitive to the load "
                               "than wall seconds; idle 2-core wall time lies between CPU / 2 and CPU"},
              "results": []}
    for (model, task), spec in cases.items():
        if args.only and f"{model}:{task}" not in args.only:
            continue
        entry = {"model": model, "task": task}
        if model in SAME_COST:
            entry["same_cost_as"] = SAME_COST[model]
        elif (model, task) in NOT_ESTIMATED:
            entry["not_estimated"] = NOT_ESTIMATED[(model, task)]
        else:
            load_before = os.getloadavg()[0]
            entry.update(bench_rate(spec, RATE_BATCH.get((model, task), args.batch), args.reps),
                         load_before=load_before, load_after=os.getloadavg()[0])
        report["results"].append(entry)
        print(f"  rates: {model} {task} done: {json.dumps(entry)}", file=sys.stderr, flush=True)
        if args.out:
            _write_json(args.out, report)  # after every case: a long measurement keeps what it has
    measured = [r for r in report["results"] if "step_s_with_eval" in r]
    print_table(f"rates (one step at the measured b, full length, scaled to the config's B; {args.suites})",
                ["model", "task", "L", "b", "train wall s @b", "train CPU s @b", "compile+1st s", "B",
                 "CPU s/step @B +eval", "steps", "CPU hours", "load"],
                [(r["model"], r["task"], r["length"], r["measured_batch"], r["train_step_s_measured"],
                  r["train_step_cpu_s_measured"], r["train_compile_and_first_step_s"], r["config_batch"],
                  r["step_cpu_s_with_eval"], r["num_steps"], r["run_cpu_hours"], r["load_before"])
                 for r in measured])
    print("\nexperiments/reproduce.py FULL_MEASURED entries, (model, task): (b, train CPU s at b, CPU s/step at B "
          "with the evaluation share, B):")
    for r in measured:
        print(f'    ("{r["model"]}", "{r["task"]}"): ({r["measured_batch"]}, {r["train_step_cpu_s_measured"]:.3g}, '
              f'{r["step_cpu_s_with_eval"]:.4g}, {r["config_batch"]}),')
    return report


# ------------------------------------------------------------------------------------------------------- layers

def bench_layer(name, d_model, batch, length, reps, max_bytes):
    """Forward and forward+backward of one layer on random (B, L, H) float32 input with a full mask."""
    from flax import nnx

    import models
    layer = models.LAYERS[name](d_model, **LAYER_ARGS.get(name, {}), rngs=nnx.Rngs(0))
    graphdef, params, rest = nnx.split(layer, nnx.Param, ...)  # differentiate parameters only (not RNG keys)
    u = jnp.asarray(np.random.default_rng(0).normal(size=(batch, length, d_model)), jnp.float32)
    mask = jnp.ones((batch, length), bool)
    forward = lambda params, u: nnx.merge(graphdef, params, rest)(u, mask)
    loss = lambda params, u: jnp.sum(forward(params, u) ** 2)
    row = {}
    for key, fn in (("forward", forward), ("forward_backward", jax.grad(loss, argnums=(0, 1)))):
        compiled, compile_s = _compile(fn, params, u)
        peak = _peak_bytes(compiled)
        row[f"{key}_compile_s"], row[f"{key}_peak_bytes"] = compile_s, peak
        if peak > max_bytes:
            row["skipped"] = f"{key} needs {peak / 2**30:.1f} GiB > --max-bytes {max_bytes / 2**30:.1f} GiB"
            return row
        jax.block_until_ready(compiled(params, u))
        row[f"{key}_s"] = statistics.median(_time_call(compiled, params, u) for _ in range(reps))
    row["forward_backward_tokens_per_s"] = batch * length / row["forward_backward_s"]
    return row


def run_layers(args):
    import models
    results = []
    for name in sorted(models.LAYERS):
        for length in args.lengths:
            entry = {"layer": name, "length": length, "batch": args.batch, "d_model": args.d_model,
                     "layer_args": LAYER_ARGS.get(name, {})}
            try:
                entry.update(bench_layer(name, args.d_model, args.batch, length, args.reps, args.max_bytes))
            except Exception as error:  # noqa: BLE001 - an OOM / XLA limit is a result to record, not a crash
                entry["error"] = f"{type(error).__name__}: {str(error).splitlines()[0][:300]}"
            results.append(entry)
            print(f"  layers: {name} L={length} done", file=sys.stderr, flush=True)
    report = {"benchmark": "layers", **_environment(), "batch": args.batch, "d_model": args.d_model,
              "reps": args.reps, "max_bytes": args.max_bytes, "results": results}
    ms = lambda r, k: r[k] * 1e3 if k in r else None
    mib = lambda r, k: r[k] / 2**20 if k in r else None
    print_table(f"layers (B={args.batch}, H={args.d_model})",
                ["layer", "L", "fwd ms", "fwd+bwd ms", "fwd peak MiB", "fwd+bwd peak MiB", "note"],
                [(r["layer"], r["length"], ms(r, "forward_s"), ms(r, "forward_backward_s"),
                  mib(r, "forward_peak_bytes"), mib(r, "forward_backward_peak_bytes"),
                  r.get("skipped") or r.get("error", "")[:60]) for r in results])
    return report


# ---------------------------------------------------------------------------------------------------------- all

def all_sizes(backend):
    """Sizes for `all`: L up to 16384; batches that fill an accelerator (GPU/TPU), CPU-sized otherwise."""
    accelerator = backend in ("gpu", "tpu")
    return dict(scan_batch=64 if accelerator else 8, step_batch=32 if accelerator else 8,
                layers_batch=16 if accelerator else 1, reps=5 if accelerator else 3)


def run_all(args):
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    sizes = all_sizes(jax.default_backend())
    runs = {
        "scan": (run_scan, argparse.Namespace(operators=sorted(scan.OPERATORS), lengths=[1024, 4096, 16384],
                                              batch=sizes["scan_batch"], state=256, reps=sizes["reps"])),
        "step": (run_step, argparse.Namespace(config="experiments/configs/lru.py:listops", set=[],
                                              batch=sizes["step_batch"], length=2048, reps=sizes["reps"])),
        "layers": (run_layers, argparse.Namespace(lengths=[1024, 4096, 16384], batch=sizes["layers_batch"],
                                                  d_model=128, reps=sizes["reps"], max_bytes=args.max_bytes)),
    }
    summary = {"benchmark": "all", **_environment(), "sizes": sizes, "files": {}}
    for name, (fn, sub_args) in runs.items():
        start = time.perf_counter()
        report = fn(sub_args)
        report["elapsed_s"] = time.perf_counter() - start
        _write_json(out / f"{name}.json", report)
        summary["files"][name] = str(out / f"{name}.json")
    _write_json(out / "all.json", summary)
    return summary


def _write_json(path, obj):
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2) + "\n")
    tmp.replace(path)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m experiments.benchmark", description=__doc__.splitlines()[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    fmt = argparse.ArgumentDefaultsHelpFormatter
    p = sub.add_parser("scan", help="scan.linear_recurrence methods side by side", formatter_class=fmt)
    p.add_argument("--operators", type=_str_list, default=sorted(scan.OPERATORS),
                   help="comma-separated names in scan.OPERATORS")
    p.add_argument("--lengths", type=_int_list, default=[1024, 4096, 16384])
    p.add_argument("--batch", type=_positive_int, default=8)
    p.add_argument("--state", type=_positive_int, default=256, help=f"N (overridden per operator by {SCAN_STATE})")
    p.add_argument("--reps", type=_positive_int, default=7, help="timed calls per method (median reported)")
    p.add_argument("--out", default=None, help="write the JSON to this file")
    p = sub.add_parser("step", help="one train step and one eval step through the trainer", formatter_class=fmt)
    p.add_argument("--config", default="experiments/configs/lru.py:listops", help="<family file>:<variant>")
    p.add_argument("--set", action="append", default=[],
                   help=f"config override key=value (repeatable), applied after {DEFAULT_STEP_SETTINGS}")
    p.add_argument("--batch", type=_positive_int, default=8)
    p.add_argument("--length", type=_positive_int, default=2048)
    p.add_argument("--reps", type=_positive_int, default=5)
    p.add_argument("--out", default=None, help="write the JSON to this file")
    p = sub.add_parser("rates", help="seconds per train step of every full config of experiments.reproduce "
                                     "suites (STEP_RATE_ESTIMATES)", formatter_class=fmt)
    p.add_argument("--suites", type=_str_list, default=["full", "ablation"], help="experiments.reproduce suites")
    p.add_argument("--batch", type=_positive_int, default=2, help="measured batch (scaled to each config's)")
    p.add_argument("--reps", type=_positive_int, default=2, help="timed train / eval steps after the first")
    p.add_argument("--only", type=_str_list, default=[], help="model:task cases, e.g. lru:listops,s5:text")
    p.add_argument("--out", default=None, help="write the JSON to this file (rewritten after every case)")
    p = sub.add_parser("layers", help="every family in models.LAYERS at one width", formatter_class=fmt)
    p.add_argument("--lengths", type=_int_list, default=[1024, 4096, 16384])
    p.add_argument("--batch", type=_positive_int, default=1)
    p.add_argument("--d-model", dest="d_model", type=_positive_int, default=128)
    p.add_argument("--reps", type=_positive_int, default=3)
    p.add_argument("--max-bytes", dest="max_bytes", type=int, default=16 * 2**30,
                   help="skip running a compiled function whose XLA peak exceeds this (recorded as skipped)")
    p.add_argument("--out", default=None, help="write the JSON to this file")
    p = sub.add_parser("all", help="scan + step + layers at the sizes that matter", formatter_class=fmt,
                       description="One command for a lent accelerator: scan (every operator, L 1k/4k/16k), step "
                                   "(lru.py:listops, L 2048) and layers (every family, L 1k/4k/16k), at batches "
                                   "64/32/16 on GPU/TPU and 8/8/1 on CPU (all_sizes); each report is written to "
                                   "--out as soon as it finishes.")
    p.add_argument("--out", required=True, help="directory for scan.json, step.json, layers.json, all.json (required)")
    p.add_argument("--max-bytes", dest="max_bytes", type=int, default=32 * 2**30,
                   help="layers: skip running a compiled function whose XLA peak exceeds this")
    args = parser.parse_args(argv)
    result = {"scan": run_scan, "step": run_step, "layers": run_layers, "rates": run_rates,
              "all": run_all}[args.command](args)
    if args.command != "all" and args.out:
        _write_json(args.out, result)
    return result


if __name__ == "__main__":
    sys.exit(main() and 0)
