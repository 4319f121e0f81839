"""Conformance suite for scan/: every registered operator x method against float64 NumPy loops.

Parametrised over scan.OPERATORS, so a newly registered operator is tested with no edit here; it only has to
provide make_inputs / reference / reference_vjp (scan/operator.py).

Tolerances (float32 / complex64 accumulation; errors are normwise: max|x - ref| / max|ref|):
  values and gradients, |a| <= 0.9:            2e-5 (observed ~1e-6; the bound leaves room for deep associative
                                                 trees, whose error grows ~log L)
  stability, L = 16384, |a| = 0.9999:          1e-3 (the issue's bound)
  bfloat16 inputs, L = 1000, |a| <= 0.99:      2e-5 against the reference on the same bf16-rounded inputs
                                                 (bf16 accumulation would be off by ~1e-2)
  method vs method / reverse vs flipped:       2e-5
"""
import functools

import hypothesis
import hypothesis.strategies as st
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import scan
from compile_options import cheap_jit
from scan.operator import from_time_major, time_major

TOL = 2e-5
BATCH, STATE = 2, 3
# 257 = 2^8 + 1: an odd length past a power of two (an unbalanced associative tree, a last chunk of one step with
# the default ~sqrt(L) chunks of 16), and longer than |a| <= 0.9 remembers (~50 steps to 1e-2). It was 4097 = 2^12 + 1,
# which tested the same at 2-4x the compile and run time of each case; length itself is tested by
# test_stable_at_16k_with_a_near_one (L = 16384, |a| = 0.9999).
LENGTHS = (1, 2, 3, 7, 64, 257)
DTYPES = (np.float32, np.complex64)


def _method_cases():
    """Every (operator, method) pair. 'auto' is not a method of its own (it runs one of these, see
    test_auto_follows_the_measured_rule), so it is not repeated here."""
    return [pytest.param(name, method, id=f"{name}-{method}")
            for name, op in sorted(scan.OPERATORS.items()) for method in op.methods]


def _reference_cases():
    """(dtype, length, reverse, with_h0) for the float64 comparison: every dtype at every length, and the four
    (reverse, h0) combinations in turn along the lengths (shifted by one between the dtypes), so each combination
    meets each dtype and both short and long lengths without the full product (which was 4x the compiles)."""
    combos = [(False, False), (True, True), (False, True), (True, False)]
    cases = []
    for d, dtype in enumerate(DTYPES):
        for i, length in enumerate(LENGTHS):
            reverse, with_h0 = combos[(i + d) % len(combos)]
            cases.append(pytest.param(dtype, length, reverse, with_h0, id=f"{np.dtype(dtype).name}-{length}-"
                                      f"{'rev' if reverse else 'fwd'}-{'h0' if with_h0 else 'zero_h0'}"))
    return cases


def _op_cases():
    return [pytest.param(name, id=name) for name in sorted(scan.OPERATORS)]


def _rel_err(x, ref):
    x, ref = np.asarray(x, np.complex128), np.asarray(ref, np.complex128)
    assert x.shape == ref.shape, (x.shape, ref.shape)
    return np.abs(x - ref).max() / max(np.abs(ref).max(), 1e-30)


@functools.lru_cache(maxsize=None)
def _value_and_vjp(operator, method, reverse, with_h0, chunk_size=None, axis=1):
    """One jitted function per configuration (jit caches per shape), returning h and the VJP of cotangent g."""
    def run(a, b, h0, g):
        f = lambda a, b, h0: scan.linear_recurrence(a, b, h0=h0 if with_h0 else None, reverse=reverse, axis=axis,
                                                     method=method, operator=operator, chunk_size=chunk_size)
        h, vjp = jax.vjp(f, a, b, h0)
        return (h,) + vjp(g.astype(h.dtype))
    return cheap_jit(run)


def _inputs(operator, length, dtype, seed=0, a_abs=0.9, time_varying=False, batch=BATCH, state=STATE):
    rng = np.random.default_rng(seed)
    a, b, h0 = scan.OPERATORS[operator].make_inputs(rng, batch, length, state, dtype, a_abs, time_varying)
    g = rng.normal(size=b.shape).astype(b.dtype)
    return a, b, h0, g


def _check_against_reference(operator, method, a, b, h0, g, reverse, with_h0, tol=TOL, **kw):
    op = scan.OPERATORS[operator]
    h, ga, gb, gh0 = _value_and_vjp(operator, method, reverse, with_h0, **kw)(a, b, h0, g)
    h0_ref = h0 if with_h0 else None
    assert _rel_err(h, op.reference(a, b, h0_ref, reverse)) <= tol
    ga_ref, gb_ref, gh0_ref = op.reference_vjp(a, b, h0_ref, reverse, g)
    assert _rel_err(ga, ga_ref) <= tol
    assert _rel_err(gb, gb_ref) <= tol
    if with_h0:
        assert _rel_err(gh0, gh0_ref) <= tol
    else:
        assert np.all(np.asarray(gh0) == 0)
    return h


# ---- values and gradients against float64: every operator x method x dtype x length, reverse and h0 in turn ----

@pytest.mark.parametrize("dtype,length,reverse,with_h0", _reference_cases())
@pytest.mark.parametrize("operator,method", _method_cases())
def test_matches_float64_reference(operator, method, dtype, length, reverse, with_h0):
    a, b, h0, g = _inputs(operator, length, dtype, seed=length)
    h = _check_against_reference(operator, method, a, b, h0, g, reverse, with_h0)
    assert h.dtype == dtype and h.shape == b.shape


@pytest.mark.parametrize("length", [7, 64])
@pytest.mark.parametrize("operator,method", _method_cases())
def test_time_varying_matches_reference_and_time_invariant(operator, method, length):
    """The selective (per-step a) path; and a repeated time-invariant a must give the time-invariant result."""
    a_tv, b, h0, g = _inputs(operator, length, np.complex64, time_varying=True)
    _check_against_reference(operator, method, a_tv, b, h0, g, reverse=True, with_h0=True)
    a_ti = _inputs(operator, length, np.complex64)[0]
    a_rep = np.broadcast_to(a_ti, b.shape[:2] + a_ti.shape)  # make_inputs' time-invariant a has no batch dims
    run = cheap_jit(lambda a: scan.linear_recurrence(a, b, h0=h0, method=method, operator=operator))
    assert _rel_err(run(np.ascontiguousarray(a_rep)), run(a_ti)) <= TOL


@pytest.mark.parametrize("operator", _op_cases())
def test_time_invariant_a_broadcasts_over_batch(operator):
    """a without the time axis may omit or size-1 the batch dims; gradients come back in a's own shape."""
    a, b, h0, g = _inputs(operator, 9, np.complex64)
    a_full = np.broadcast_to(a, (BATCH,) + a.shape)
    for a_in in (a, a[None], np.ascontiguousarray(a_full)):
        _check_against_reference(operator, "sequential", a_in, b, h0, g, reverse=False, with_h0=True)


# ---- structure: associativity, reverse, chunking, layout, dtypes ----

@pytest.mark.parametrize("operator", _op_cases())
@hypothesis.settings(max_examples=20, deadline=None)
@hypothesis.given(seed=st.integers(0, 2**31 - 1), complex_=st.booleans(), a_abs=st.floats(0.1, 1.5))
def test_combine_is_associative(operator, seed, complex_, a_abs):
    op = scan.OPERATORS[operator]
    dtype = np.complex64 if complex_ else np.float32
    a, b, _ = op.make_inputs(np.random.default_rng(seed), 2, 3, STATE, dtype, a_abs, True)
    x, y, z = [(a[:, t], b[:, t]) for t in range(3)]
    left, right = op.combine(op.combine(x, y), z), op.combine(x, op.combine(y, z))
    for l_part, r_part in zip(left, right):
        np.testing.assert_allclose(l_part, r_part, rtol=1e-5, atol=1e-5 * max(1.0, a_abs ** 3))
    # The combine and the sequential step agree: scanning (x, y) from x's state equals two steps.
    h0 = np.zeros_like(b[:, 0])
    np.testing.assert_allclose(op.combine(x, y)[1], op.step(y[0], op.step(x[0], h0, x[1]), y[1]),
                               rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("time_varying", [False, True], ids=["lti", "tv"])
@pytest.mark.parametrize("operator,method", _method_cases())
def test_reverse_is_flip_forward_flip(operator, method, time_varying):
    a, b, h0, _ = _inputs(operator, 37, np.complex64, time_varying=time_varying)
    flip = lambda x: np.flip(x, 1)
    run = cheap_jit(lambda a, b, reverse: scan.linear_recurrence(a, b, h0=h0, reverse=reverse, method=method,
                                                                operator=operator), static_argnums=2)
    expected = flip(run(flip(a) if time_varying else a, flip(b), False))
    assert _rel_err(run(a, b, True), expected) <= TOL


@pytest.mark.parametrize("chunk_size", [1, 3, 5, 16, 37, 100])
@pytest.mark.parametrize("reverse", [False, True], ids=["fwd", "rev"])
@pytest.mark.parametrize("operator", _op_cases())
def test_chunk_sizes_not_dividing_length(operator, reverse, chunk_size):
    for time_varying in (False, True):
        a, b, h0, g = _inputs(operator, 37, np.float32, time_varying=time_varying)
        _check_against_reference(operator, "chunked", a, b, h0, g, reverse, True, chunk_size=chunk_size)


@pytest.mark.parametrize("operator,method", _method_cases())
def test_bfloat16_inputs_accumulate_in_float32(operator, method):
    a, b, h0, _ = _inputs(operator, 1000, np.float32, a_abs=0.99)
    a16, b16 = jnp.asarray(a, jnp.bfloat16), jnp.asarray(b, jnp.bfloat16)
    h = cheap_jit(lambda a, b: scan.linear_recurrence(a, b, method=method, operator=operator))(a16, b16)
    assert h.dtype == jnp.float32
    ref = scan.OPERATORS[operator].reference(np.asarray(a16, np.float64), np.asarray(b16, np.float64), None)
    assert _rel_err(h, ref) <= TOL


@pytest.mark.parametrize("operator,method", _method_cases())
def test_axis_other_than_one(operator, method):
    op = scan.OPERATORS[operator]
    a, b, h0, g = _inputs(operator, 11, np.complex64, time_varying=True)
    ref = op.reference(a, b, h0, False)
    # Time-major layout (L, B, N), axis=0; for the diagonal also time-last (B, N, L), axis=-1.
    move = lambda x, dst: np.moveaxis(x, 1, dst)
    run = cheap_jit(lambda a, b, h0, axis: scan.linear_recurrence(a, b, h0=h0, axis=axis, method=method,
                                                                 operator=operator), static_argnums=3)
    h = run(move(a, 0), move(b, 0), h0, 0)
    assert _rel_err(np.moveaxis(h, 0, 1), ref) <= TOL
    if operator == "diagonal":
        h = run(move(a, -1), move(b, -1), h0, -1)
        assert _rel_err(np.moveaxis(h, -1, 1), ref) <= TOL
    if operator == "dense":  # an extra batch dim before the time axis: b (B, 1, L, N), axis=2
        h = run(a[:, None], b[:, None], h0[:, None], 2)
        assert _rel_err(h[:, 0], ref) <= TOL


@pytest.mark.parametrize("operator,method", _method_cases())
def test_stable_at_16k_with_a_near_one(operator, method):
    """|a| = 0.9999 (spectral norm for dense) over L = 16384: errors must not compound."""
    a, b, h0, _ = _inputs(operator, 16384, np.complex64, a_abs=0.9999, batch=1, state=2)
    h = cheap_jit(lambda a, b, h0: scan.linear_recurrence(a, b, h0=h0, method=method, operator=operator))(a, b, h0)
    assert _rel_err(h, scan.OPERATORS[operator].reference(a, b, h0, False)) <= 1e-3


# ---- derivatives: the custom JVP (scan/adjoint.py); reverse mode is its transpose ----

def _adjoint_cases():
    return [pytest.param(name, method, id=f"{name}-{method}") for name, op in sorted(scan.OPERATORS.items())
            for method in op.methods]


def _autodiff_sequential(operator, reverse):
    """A plain time-major lax.scan of op.step, differentiated by JAX itself (no custom rule): the reference for
    every derivative."""
    op = scan.OPERATORS[operator]

    def run(a, b, h0):
        p = op.prepare(a, b, h0, 1)
        a_L, b_LxS = time_major(p)
        step = (lambda h, ab: (op.step(ab[0], h, ab[1]),) * 2) if p.time_varying else \
            (lambda h, b_t: (op.step(a_L, h, b_t),) * 2)
        _, h_LxS = jax.lax.scan(step, p.h0_S, (a_L, b_LxS) if p.time_varying else b_LxS, reverse=reverse)
        return from_time_major(p, h_LxS)
    return run


@pytest.mark.parametrize("time_varying", [False, True], ids=["lti", "tv"])
@pytest.mark.parametrize("reverse", [False, True], ids=["fwd", "rev"])
@pytest.mark.parametrize("operator,method", _adjoint_cases())
def test_reverse_mode_matches_autodiff_and_keeps_only_a_h_h0(operator, method, reverse, time_varying):
    op = scan.OPERATORS[operator]
    a, b, h0, g = _inputs(operator, 23, np.complex64, time_varying=time_varying)
    custom = lambda a, b, h0: scan.linear_recurrence(a, b, h0=h0, reverse=reverse, method=method, operator=operator)
    vjp_of = lambda f: cheap_jit(lambda a, b, h0, g: jax.vjp(f, a, b, h0)[1](g))
    expected = vjp_of(_autodiff_sequential(operator, reverse))(a, b, h0, g.astype(b.dtype))
    got = vjp_of(custom)(a, b, h0, g.astype(b.dtype))
    adjoint = op.reference_vjp(a, b, h0, reverse, g)
    for x, y, z in zip(got, expected, adjoint):
        assert x.shape == y.shape
        assert _rel_err(x, y) <= TOL and _rel_err(x, z) <= TOL
    # Memory: what reverse mode keeps between the passes (the leaves of the VJP closure) is a, h (as h_prev) and
    # h0 and small tables; with a time-varying a, associative and chunked may keep one more a-sized array (tree
    # levels / a in chunks); associative broadcasts a time-invariant a over time (not batch), and its tree levels
    # hold up to ~2 L copies of a. Per-level state-sized buffers would fail this. The closure is the one tracing
    # builds (jax.eval_shape: shapes only, nothing computed), as under the jit of a train step; built eagerly, the
    # associative tree ran op by op (~100 s a case on the loaded 2-core machine) for the same leaves.
    length = 256
    a, b, h0, _ = _inputs(operator, length, np.complex64, time_varying=time_varying, batch=4, state=8)
    h, kept_leaves = jax.eval_shape(lambda a, b, h0: _output_and_vjp_leaves(custom, a, b, h0), a, b, h0)
    nbytes = lambda x: int(np.prod(x.shape)) * np.dtype(x.dtype).itemsize
    kept = sum(map(nbytes, kept_leaves))
    extra_a = a.nbytes if time_varying and method != "sequential" else 0
    extra_a += 2 * length * a.nbytes if method == "associative" and not time_varying else 0
    allowed = a.nbytes + nbytes(h) + h0.nbytes + extra_a + 64 * 256 * 8 + (8 << 10)
    assert kept <= allowed, (kept, allowed)


def _output_and_vjp_leaves(f, *args):
    """f's output and the arrays its VJP closure keeps for the backward pass."""
    out, vjp = jax.vjp(f, *args)
    return out, jax.tree_util.tree_leaves(vjp)


def _loops_carrying(jaxpr, shapes):
    """Names of the loops (scan/while, at any depth) of a jaxpr whose carry holds an array of one of `shapes`."""
    found = []
    for eqn in jaxpr.eqns:
        if eqn.primitive.name == "scan":
            start = eqn.params["num_consts"]
            carry = eqn.invars[start:start + eqn.params["num_carry"]]
        elif eqn.primitive.name == "while":
            carry = eqn.invars[eqn.params["cond_nconsts"] + eqn.params["body_nconsts"]:]
        else:
            carry = []
        found += [eqn.primitive.name] if any(tuple(v.aval.shape) in shapes for v in carry) else []
        for param in eqn.params.values():
            for sub in param if isinstance(param, (tuple, list)) else [param]:
                sub = getattr(sub, "jaxpr", sub)
                found += _loops_carrying(sub, shapes) if hasattr(sub, "eqns") else []
    return found


@pytest.mark.parametrize("operator,method", _adjoint_cases())
def test_reverse_mode_has_no_loop_carrying_the_whole_output(operator, method):
    """A loop that carries all L states (the in-place forward of 'sequential') costs O(L) per step once
    transposed: reverse mode through it was quadratic in L (measured 3.4 s vs 0.04 s fwd+bwd at B=32, L=1024,
    N=32). Only the primal forward may carry the output; the transposed tangent must not."""
    a, b, h0, g = _inputs(operator, 64, np.complex64)
    f = lambda a, b, h0: scan.linear_recurrence(a, b, h0=h0, method=method, operator=operator)
    h = jax.eval_shape(f, a, b, h0)  # shape and dtype only: an eager associative scan compiles op by op (~1 min)
    shapes = {h.shape, (h.shape[1], h.shape[0]) + h.shape[2:]}  # the caller's layout and time-major
    jaxpr = jax.make_jaxpr(lambda a, b, h0: jax.vjp(f, a, b, h0)[1](g.astype(h.dtype)))(a, b, h0).jaxpr
    primal = 1 if method == "sequential" else 0
    assert len(_loops_carrying(jaxpr, shapes)) <= primal, _loops_carrying(jaxpr, shapes)


def _as_real(*arrays):
    """Complex arrays -> (re, im) float32 pairs (jacfwd/hessian need real inputs), and the inverse."""
    flat = [part for x in arrays for part in ((x.real, x.imag) if np.iscomplexobj(x) else (x,))]
    kinds = [np.iscomplexobj(x) for x in arrays]

    def rebuild(parts):
        out, i = [], 0
        for complex_ in kinds:
            out.append(jax.lax.complex(parts[i], parts[i + 1]) if complex_ else parts[i])
            i += 2 if complex_ else 1
        return out
    return [np.asarray(p, np.float32) for p in flat], rebuild


@pytest.mark.parametrize("time_varying", [False, True], ids=["lti-fwd", "tv-rev"])
@pytest.mark.parametrize("operator,method", _adjoint_cases())
def test_forward_mode_jvp_jacfwd_hessian_match_autodiff(operator, method, time_varying):
    """jvp, jacfwd (forward) = grad (reverse), and the Hessian (forward over reverse) of a nonlinear loss, against
    JAX's own autodiff of the plain lax.scan. Tolerance: TOL for jvp and gradients, 1e-4 for the Hessian (second
    derivatives in float32 of a loss summed over all positions). The Hessian only with the sequential method: it
    is the same custom rule applied twice, and the other methods' forward mode is checked by jvp and jacfwd."""
    reverse = time_varying  # both directions covered without doubling the cases
    a, b, h0, _ = _inputs(operator, 5, np.complex64, time_varying=time_varying, batch=1, state=2)
    custom = lambda a, b, h0: scan.linear_recurrence(a, b, h0=h0, reverse=reverse, method=method, operator=operator)
    plain = _autodiff_sequential(operator, reverse)
    rng = np.random.default_rng(1)
    tangents = [np.asarray(rng.normal(size=x.shape) + 1j * rng.normal(size=x.shape), x.dtype) for x in (a, b, h0)]
    params, rebuild = _as_real(a, b, h0)
    loss_of = lambda f: lambda *p: jnp.sum(jnp.sin(jnp.real(f(*rebuild(p)))) + jnp.imag(f(*rebuild(p))) ** 2)
    argnums = tuple(range(len(params)))
    with_hessian = method == "sequential"  # forward over reverse of the same rule: once per operator

    @cheap_jit  # one program for every derivative: one compile instead of five (seven with the Hessians)
    def derivatives(primals, tangents, params):
        out = dict(jvp=jax.jvp(custom, primals, tangents), jvp_ref=jax.jvp(plain, primals, tangents),
                   forward=jax.jacfwd(loss_of(custom), argnums)(*params),
                   reverse=jax.grad(loss_of(custom), argnums)(*params),
                   reference=jax.grad(loss_of(plain), argnums)(*params))
        if with_hessian:
            out.update(hessian=jax.hessian(loss_of(custom), argnums)(*params),
                       hessian_ref=jax.hessian(loss_of(plain), argnums)(*params))
        return out

    d = derivatives((a, b, h0), tuple(tangents), params)
    (h, dh), (h_ref, dh_ref) = d["jvp"], d["jvp_ref"]
    assert _rel_err(h, h_ref) <= TOL and _rel_err(dh, dh_ref) <= TOL
    for x, y, z in zip(d["forward"], d["reverse"], d["reference"]):
        assert _rel_err(x, z) <= TOL and _rel_err(y, z) <= TOL
    if with_hessian:
        for row, row_ref in zip(d["hessian"], d["hessian_ref"]):
            for x, y in zip(row, row_ref):
                assert _rel_err(x, y) <= 1e-4


# ---- API: errors name the argument, auto picks a supported method ----

@pytest.mark.parametrize("kwargs,match", [
    (dict(method="fast"), "method"),
    (dict(operator="nope"), "operator"),
    (dict(chunk_size=0, method="chunked"), "chunk_size"),
    (dict(chunk_size=4, method="sequential"), "chunk_size"),
    (dict(axis=3), "axis"),
    (dict(h0=np.zeros((5,), np.float32)), "h0"),
])
def test_bad_arguments_raise_value_error_naming_them(kwargs, match):
    a, b = np.full((4,), 0.5, np.float32), np.ones((2, 6, 4), np.float32)
    with pytest.raises(ValueError, match=match):
        scan.linear_recurrence(a, b, **kwargs)


@pytest.mark.parametrize("a_shape,b_shape,operator", [
    ((5,), (2, 6, 4), "diagonal"),
    ((2, 5, 4), (2, 6, 4), "diagonal"),
    ((4, 3), (2, 6, 4), "dense"),
    ((2, 6, 4, 4, 1), (2, 6, 4), "dense"),
])
def test_bad_a_shape_raises_naming_a(a_shape, b_shape, operator):
    with pytest.raises(ValueError, match=r"^a "):
        scan.linear_recurrence(np.ones(a_shape, np.float32), np.ones(b_shape, np.float32), operator=operator)


def test_dense_rejects_state_axis_as_time_axis():
    with pytest.raises(ValueError, match="axis"):
        scan.linear_recurrence(np.eye(4, dtype=np.float32), np.ones((2, 6, 4), np.float32), axis=-1,
                               operator="dense")


@pytest.mark.parametrize("backend", ["cpu", "gpu", "tpu"])
@pytest.mark.parametrize("length", [1, 1000, 16384])
@pytest.mark.parametrize("operator", _op_cases())
def test_auto_follows_the_measured_rule(operator, length, backend):
    """CPU (measured): sequential. GPU/TPU (belief, see choose_method): parallel forms only for long sequences."""
    method = scan.choose_method(operator, length, backend=backend)
    assert method in scan.OPERATORS[operator].methods
    if backend == "cpu" or length < 256:
        assert method == "sequential"
    else:
        assert method == {"diagonal": "associative", "dense": "chunked"}.get(operator, method)


def test_empty_time_axis_returns_empty():
    h = scan.linear_recurrence(np.ones((3,), np.float32), np.ones((2, 0, 3), np.float32))
    assert h.shape == (2, 0, 3) and h.dtype == jnp.float32


def test_time_invariant_a_may_carry_batch_dims():
    """A per-sequence lam_BxN (no time axis) with complex64 b_BxLxN, both directions."""
    lam_N = np.asarray(0.9 * np.exp(1j * np.linspace(0, 3, 4)), np.complex64)
    b = np.asarray(np.random.default_rng(0).normal(size=(2, 5, 4)), np.complex64)
    for reverse in (False, True):
        h = scan.linear_recurrence(np.broadcast_to(lam_N, (2, 4)), b, reverse=reverse, method="auto")
        assert h.dtype == jnp.complex64
        assert _rel_err(h, scan.OPERATORS["diagonal"].reference(lam_N, b, None, reverse)) <= TOL
