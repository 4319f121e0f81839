"""Benchmarks. `python -m experiments.benchmark scan [--out FILE] [--lengths 1024,4096] [--batch 8] [--state 256]`

scan: every method of scan.linear_recurrence on the LRU case (time-invariant complex lam_N, b_BxLxN) side by
side in one process: median forward and forward+backward wall time (compile excluded, timed separately),
peak memory estimate from XLA's memory analysis, the method 'auto' picks, and the memory-bandwidth floor
measured in the same run. Methods are timed round-robin so machine noise hits them alike; ratios are to the
fastest method of the same L. Writes JSON (stdout by default).
"""
import argparse
import json
import platform
import statistics
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

import scan

SCAN_METHODS = ("sequential", "associative", "chunked")


def _time_call(fn, *args):
    start = time.perf_counter()
    jax.block_until_ready(fn(*args))
    return time.perf_counter() - start


def _compile(fn, *args):
    """(compiled, seconds to lower + compile)."""
    start = time.perf_counter()
    compiled = jax.jit(fn).lower(*args).compile()
    return compiled, time.perf_counter() - start


def _peak_bytes(compiled):
    """XLA's static buffer assignment: temporaries + arguments + outputs (minus aliased). On CPU this is the
    peak the executable can hold at once, not a measured resident-set size."""
    m = compiled.memory_analysis()
    return int(m.temp_size_in_bytes + m.argument_size_in_bytes + m.output_size_in_bytes - m.alias_size_in_bytes)


def measure_copy_bandwidth(n_bytes=512 * 2**20, reps=7):
    """Bytes read + written per second by a jitted elementwise negate of a large float32 array."""
    x = jnp.ones((n_bytes // 4,), jnp.float32)
    neg, _ = _compile(lambda x: -x, x)
    jax.block_until_ready(neg(x))
    seconds = statistics.median(_time_call(neg, x) for _ in range(reps))
    return 2 * n_bytes / seconds


def _inputs(batch, length, state, seed=0):
    rng = np.random.default_rng(seed)
    lam_N = 0.99 * np.exp(2j * np.pi * rng.uniform(size=state))
    b_BxLxN = rng.normal(size=(batch, length, state)) + 1j * rng.normal(size=(batch, length, state))
    return jnp.asarray(lam_N, jnp.complex64), jnp.asarray(b_BxLxN, jnp.complex64)


def _forward(method):
    return lambda lam_N, b: scan.linear_recurrence(lam_N, b, method=method)


def _forward_backward(method):
    def loss(lam_N, b):
        h = scan.linear_recurrence(lam_N, b, method=method)
        return jnp.sum(jnp.real(h)) + jnp.sum(jnp.imag(h))
    return jax.grad(loss, argnums=(0, 1))


def bench_scan_length(length, batch, state, reps, bandwidth):
    lam_N, b = _inputs(batch, length, state)
    compiled, rows = {}, {}
    for method in SCAN_METHODS:
        fwd, fwd_s = _compile(_forward(method), lam_N, b)
        bwd, bwd_s = _compile(_forward_backward(method), lam_N, b)
        compiled[method] = (fwd, bwd)
        rows[method] = {"compile_forward_s": fwd_s, "compile_forward_backward_s": bwd_s,
                        "peak_bytes_forward": _peak_bytes(fwd), "peak_bytes_forward_backward": _peak_bytes(bwd),
                        "forward_s": [], "forward_backward_s": []}
        jax.block_until_ready((fwd(lam_N, b), bwd(lam_N, b)))  # warm-up
    for _ in range(reps):  # round-robin: noise spreads over all methods alike
        for method, (fwd, bwd) in compiled.items():
            rows[method]["forward_s"].append(_time_call(fwd, lam_N, b))
            rows[method]["forward_backward_s"].append(_time_call(bwd, lam_N, b))
    for row in rows.values():
        row["forward_s"] = statistics.median(row["forward_s"])
        row["forward_backward_s"] = statistics.median(row["forward_backward_s"])
    for key in ("forward_s", "forward_backward_s"):
        best = min(row[key] for row in rows.values())
        for row in rows.values():
            row[key.replace("_s", "_ratio_to_fastest")] = row[key] / best
    itemsize = b.dtype.itemsize
    io_forward = lam_N.size * itemsize + 2 * b.size * itemsize  # lam, b in; h out
    io_backward = io_forward + 2 * b.size * itemsize + lam_N.size * itemsize  # + grads of b and lam (h reread)
    auto = scan.choose_method("diagonal", length, time_varying=False)
    fastest = min(rows, key=lambda m: rows[m]["forward_s"])
    fastest_fb = min(rows, key=lambda m: rows[m]["forward_backward_s"])
    return {
        "length": length, "methods": rows, "auto": auto, "fastest_forward": fastest,
        "fastest_forward_backward": fastest_fb,
        "auto_forward_ratio_to_fastest": rows[auto]["forward_ratio_to_fastest"],
        "auto_forward_backward_ratio_to_fastest": rows[auto]["forward_backward_ratio_to_fastest"],
        "bandwidth_floor_forward_s": io_forward / bandwidth,
        "bandwidth_floor_forward_backward_s": io_backward / bandwidth,
    }


def run_scan(args):
    bandwidth = measure_copy_bandwidth()
    results = [bench_scan_length(length, args.batch, args.state, args.reps, bandwidth) for length in args.lengths]
    return {
        "benchmark": "scan", "case": "diagonal, time-invariant lam_N, complex64, axis=1, reverse=False",
        "batch": args.batch, "state": args.state, "reps": args.reps,
        "backend": jax.default_backend(), "devices": [str(d) for d in jax.devices()],
        "jax": jax.__version__, "machine": platform.processor() or platform.machine(),
        "copy_bandwidth_bytes_per_s": bandwidth,
        "notes": {"peak_bytes": "compiled.memory_analysis(): temp + argument + output - alias bytes (XLA buffer "
                                "assignment, a static upper bound on live buffers, not measured RSS)",
                  "bandwidth_floor": "(bytes in + bytes out) / copy bandwidth measured by a jitted negate of a "
                                     "512 MiB array in this run",
                  "forward_backward": "jax.grad of sum(Re h + Im h) w.r.t. lam_N and b"},
        "results": results,
    }


def _int_list(text):
    return [int(x) for x in text.split(",") if x]


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m experiments.benchmark", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p_scan = sub.add_parser("scan", help="scan.linear_recurrence methods side by side")
    p_scan.add_argument("--lengths", type=_int_list, default=[1024, 4096, 16384])
    p_scan.add_argument("--batch", type=int, default=8)
    p_scan.add_argument("--state", type=int, default=256)
    p_scan.add_argument("--reps", type=int, default=7, help="timed calls per method (median reported)")
    p_scan.add_argument("--out", default=None, help="write the JSON here instead of stdout")
    args = parser.parse_args(argv)
    result = {"scan": run_scan}[args.command](args)
    text = json.dumps(result, indent=2)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text + "\n")
    else:
        print(text)
    return result


if __name__ == "__main__":
    sys.exit(main() and 0)
