"""Derivatives of a linear recurrence for every operator and method: a custom JVP whose tangent is the same
linear recurrence, so forward mode (jvp, jacfwd, hessian, HVPs) works and reverse mode is its transpose.

For h_t = a_t (.) h_prev(t) + b_t (h_prev(t) = h one step earlier in the recurrence's order, h0 at the first):
    dh_t = a_t (.) dh_prev(t) + [db_t + (d/da apply)(a_t, h_prev(t))[da_t]],   dh before the first step = dh0,
i.e. the recurrence with the same a, input b' = db + da (.) h_prev and initial state dh0, computed by the same
method. b' is linear in (da, db) and the recurrence is linear in (b', dh0), so JAX transposes the tangent for
reverse mode: the transpose of a forward recurrence is the backward recurrence with the transposed transition
(JAX's cotangents are unconjugated: for a complex diagonal a it is a itself, conj(a) in the mathematical
convention), gb_t = g_t + a_next^T gb_next, ga = sum outer(gb_t, h_prev(t)), gh0 = a_first^T gb_first.
Residuals are a, h (for h_prev) and h0 only: the primal recurrence is not differentiated through (no per-step or
per-level buffers of its method are kept), and the tangent's only non-linear inputs are a and h_prev.
Only op.apply is needed (linear in the state; its derivative in a is taken by jax.jvp, so apply need not be
linear in a), so every operator gets these derivatives.
"""
import jax
import jax.numpy as jnp
from jax import lax
from jax.custom_derivatives import SymbolicZero

from scan.operator import Problem


def linear_jvp(op, run, problem, reverse, tangent_run=None):
    """run(problem, reverse) -> h (b's layout) with the custom JVP above (Problem: see scan/operator.py).

    tangent_run (default run) computes the tangent recurrence, and under reverse mode it is what JAX transposes:
    a method whose loop does not transpose in linear time passes a variant that does (methods.TANGENT_METHODS).
    """
    time_varying, axis = problem.time_varying, problem.axis
    tangent = _with_jvp(op, tangent_run or run, time_varying, axis, reverse)  # its own tangents use it again
    primal = tangent if tangent_run is None else _with_jvp(op, run, time_varying, axis, reverse, tangent)
    return primal(problem.a, problem.b, problem.h0_S)


def _with_jvp(op, run, time_varying, axis, reverse, tangent=None):
    """run as a custom_jvp function whose JVP rule computes the tangent recurrence with `tangent` (default: itself,
    so every order of derivative uses this rule)."""

    @jax.custom_jvp
    def recurrence(a, b, h0_S):
        return run(Problem(a, b, h0_S, time_varying, axis), reverse)

    def jvp(primals, tangents):
        a, b, h0_S = primals
        da, db, dh0_S = tangents
        h = recurrence(a, b, h0_S)
        zero = lambda t: isinstance(t, SymbolicZero)
        if zero(da) and zero(db) and zero(dh0_S):
            return h, jnp.zeros_like(h)
        drive = jnp.zeros_like(b) if zero(db) else db
        if not zero(da):
            h_prev = _shift(h, h0_S, axis, reverse)
            # A time-invariant a gets a size-1 time axis, so it broadcasts against h_prev in b's layout.
            at_every_t = (lambda a: a) if time_varying else (lambda a: jnp.expand_dims(a, axis))
            drive = drive + jax.jvp(lambda a: op.apply(at_every_t(a), h_prev), (a,), (da,))[1]
        dh0_S = jnp.zeros_like(h0_S) if zero(dh0_S) else dh0_S
        # A custom_jvp function too, so that higher derivatives of the tangent use this rule again; under
        # reverse mode JAX inlines it (partial evaluation keeps only the linear tangent) and transposes it.
        return h, (tangent or recurrence)(a, drive, dh0_S)

    recurrence.defjvp(jvp, symbolic_zeros=True)
    return recurrence


def _shift(h, h0_S, axis, reverse):
    """h_prev: h moved one step along the recurrence's order on the time axis, h0 at the first step."""
    length, first = h.shape[axis], jnp.expand_dims(h0_S, axis)
    if reverse:
        return jnp.concatenate([lax.slice_in_dim(h, 1, length, axis=axis), first], axis)
    return jnp.concatenate([first, lax.slice_in_dim(h, 0, length - 1, axis=axis)], axis)
