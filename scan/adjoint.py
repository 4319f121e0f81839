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
from jax.custom_derivatives import SymbolicZero

from scan.operator import Problem


def linear_jvp(op, run, problem, reverse):
    """run(problem, reverse) -> h_LxS with the custom JVP above (time-major Problem, see scan/operator.py)."""
    time_varying = problem.time_varying

    @jax.custom_jvp
    def recurrence(a, b_LxS, h0_S):
        return run(Problem(a, b_LxS, h0_S, time_varying), reverse)

    def jvp(primals, tangents):
        a, b_LxS, h0_S = primals
        da, db_LxS, dh0_S = tangents
        h_LxS = recurrence(a, b_LxS, h0_S)
        zero = lambda t: isinstance(t, SymbolicZero)
        if zero(da) and zero(db_LxS) and zero(dh0_S):
            return h_LxS, jnp.zeros_like(h_LxS)
        drive_LxS = jnp.zeros_like(b_LxS) if zero(db_LxS) else db_LxS
        if not zero(da):
            first = h0_S[None]  # h_prev: h shifted one step along the recurrence's order, h0 at the first step
            h_prev_LxS = jnp.concatenate([h_LxS[1:], first]) if reverse else jnp.concatenate([first, h_LxS[:-1]])
            drive_LxS = drive_LxS + jax.jvp(lambda a: op.apply(a, h_prev_LxS), (a,), (da,))[1]
        dh0_S = jnp.zeros_like(h0_S) if zero(dh0_S) else dh0_S
        # Called through `recurrence` so that higher derivatives of the tangent use this rule again; under
        # reverse mode JAX inlines it (partial evaluation keeps only the linear tangent) and transposes it.
        return h_LxS, recurrence(a, drive_LxS, dh0_S)

    recurrence.defjvp(jvp, symbolic_zeros=True)
    return recurrence(problem.a, problem.b_LxS, problem.h0_S)
