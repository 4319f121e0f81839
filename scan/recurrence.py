"""linear_recurrence: the public entry point, the operator dict and the 'auto' method rule."""
import functools

import jax

from scan import methods as _methods
from scan.adjoint import linear_jvp
from scan.dense import DENSE
from scan.diagonal import DIAGONAL
from scan.rotation import ROTATION

# Registered operators. Add yours here (OPERATORS["name"] = ScanOperator(...)) and the conformance suite in
# tests/test_scan.py tests it under every method it declares.
OPERATORS = {op.name: op for op in (DIAGONAL, DENSE, ROTATION)}
METHODS = ("auto",) + tuple(_methods.METHODS)


def linear_recurrence(a, b, *, h0=None, reverse=False, axis=1, method="auto", operator="diagonal",
                      chunk_size=None):
    """Every state of h_t = a_t (.) h_{t-1} + b_t along `axis` of b (h_{-1} = h0, or zeros).

    a: b's shape (time-varying) or without the time axis (time-invariant; never broadcast over time); for
       operator 'dense' one (N, N) matrix per step / per batch, see scan/dense.py.
    reverse: run from the last position to the first, h_t = a_t (.) h_{t+1} + b_t.
    method: 'sequential' | 'associative' | 'chunked' | 'auto' (choose_method).
    chunk_size: steps per chunk for 'chunked' (default ~sqrt(L)); need not divide L.
    Returns h with b's shape in dtype promote(a, b, h0) upcast to >= float32 / complex64, the dtype it
    accumulates in (bfloat16 inputs give float32 outputs).
    """
    op = get_operator(operator)
    if method not in METHODS:
        raise ValueError(f"method={method!r} is not one of {METHODS}")
    if method != "auto" and method not in op.methods:
        raise ValueError(f"method={method!r} is not supported by operator {op.name!r} (supports {op.methods})")
    if chunk_size is not None and (not isinstance(chunk_size, int) or chunk_size < 1):
        raise ValueError(f"chunk_size must be a positive int or None; got {chunk_size!r}")
    if chunk_size is not None and method not in ("chunked", "auto"):
        raise ValueError(f"chunk_size={chunk_size} is only used by method='chunked', not {method!r}")
    problem = op.prepare(a, b, h0, axis)
    length = problem.b.shape[problem.axis]
    if length == 0:
        return problem.b
    if method == "auto":
        method = choose_method(op.name, length, time_varying=problem.time_varying)
    run = functools.partial(_run, op, _methods.METHODS[method], chunk_size)
    tangent_run = functools.partial(_run, op, _methods.TANGENT_METHODS.get(method, _methods.METHODS[method]),
                                    chunk_size)
    return linear_jvp(op, run, problem, reverse, tangent_run)  # forward mode, and reverse mode as its transpose


def _run(op, method_fn, chunk_size, problem, reverse):
    return method_fn(op, problem, reverse, chunk_size)


def get_operator(operator):
    """OPERATORS[operator] (or a ScanOperator passed directly), else a ValueError naming the argument."""
    if isinstance(operator, str):
        if operator not in OPERATORS:
            raise ValueError(f"operator={operator!r} is not registered; scan.OPERATORS has {sorted(OPERATORS)}")
        return OPERATORS[operator]
    if hasattr(operator, "step") and hasattr(operator, "combine"):
        return operator
    raise ValueError(f"operator must be a name in scan.OPERATORS or a ScanOperator; got {operator!r}")


def choose_method(operator, length, *, time_varying=False, backend=None):
    """The method 'auto' runs for this operator, length and backend (default: jax.default_backend()).

    CPU: 'sequential', from measurements (python -m experiments.benchmark scan; diagonal, lam_N time-invariant,
    complex64, B=8, N=256; medians of 7 round-robin calls; time / fastest method's time, forward (fwd+bwd)):

        L        sequential    associative   chunked      (idle machine, session 4)
        1024     1.00 (1.00)   3.84 (1.80)   4.67 (1.79)
        4096     1.00 (1.00)   2.27 (2.09)   2.39 (1.91)
        16384    1.00 (1.00)   1.67 (2.27)   1.83 (1.96)

    (full table and the current run in scan/README.md). One loop step touches B*N elements (the loop is still
    5-16x the copy-bandwidth floor), while associative does ~2 log2(L) passes over memory and chunked two
    sweeps plus layout copies. 'dense' was not benchmarked separately: its associative combine
    multiplies N x N matrices, strictly more work than its sequential matvecs, so the CPU rule is the same.

    GPU/TPU: NOT measured in this repository (no accelerator here). Belief to be checked with the same
    benchmark: at long L the O(log L)-depth associative scan (diagonal) and the chunked form (dense, whose
    associative combine is O(N^3)) beat L dependent steps. Short sequences stay sequential. Pass method=...
    to override; update this rule with the measured table.
    """
    del time_varying  # only the time-invariant (LRU) case was benchmarked; kept so a rule can depend on it
    backend = backend or jax.default_backend()
    if backend == "cpu" or length < 256:
        return "sequential"
    return "chunked" if operator == "dense" else "associative"
