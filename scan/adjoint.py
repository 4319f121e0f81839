"""Memory-lean backward pass for any linear operator: the adjoint of a linear recurrence is the same
recurrence run in the opposite direction with the transposed transition (JAX's cotangent convention has
no complex conjugation; in the mathematical/PyTorch convention this reads conj(a)).

With g the cotangent of h:
    gb_t  = g_t + a_next(t)^T gb_next(t)       (gb: the recurrence run the other way, a shifted by one step)
    ga_t  = outer(gb_t, h_prev(t))             (h_prev = h one step earlier, h0 at the first step)
    gh0   = a_first^T gb_first
The residuals are a, h and h0 only: no per-step or per-level buffers of the forward method are kept, and the
backward runs with the same method as the forward.
"""
import jax
import jax.numpy as jnp

from scan.operator import Problem, sum_to_shape


def linear_vjp(op, run, problem, reverse):
    """run(problem, reverse) -> h_LxS, differentiated by the adjoint recurrence (op.transpose, op.outer)."""
    time_varying = problem.time_varying

    @jax.custom_vjp
    def recurrence(a, b_LxS, h0_S):
        return run(Problem(a, b_LxS, h0_S, time_varying), reverse)

    def fwd(a, b_LxS, h0_S):
        h_LxS = recurrence(a, b_LxS, h0_S)
        return h_LxS, (a, h_LxS, h0_S)

    def bwd(residuals, g_LxS):
        a, h_LxS, h0_S = residuals
        a_t = op.transpose(a)
        if time_varying:  # a_next(t) = a_{t+1} (a_{t-1} when reverse); the boundary value meets a zero state
            pad = jnp.zeros_like(a_t[:1])
            a_t = jnp.concatenate([pad, a_t[:-1]]) if reverse else jnp.concatenate([a_t[1:], pad])
        gb_LxS = run(Problem(a_t, g_LxS, jnp.zeros_like(h0_S), time_varying), not reverse)
        first = -1 if reverse else 0
        # outer(gb_t, h_prev(t)) without materialising the shifted h: slices, fused by XLA into the products.
        rest = op.outer(gb_LxS[:-1], h_LxS[1:]) if reverse else op.outer(gb_LxS[1:], h_LxS[:-1])
        at_first = op.outer(gb_LxS[first], h0_S)
        if time_varying:
            pieces = [rest, at_first[None]] if reverse else [at_first[None], rest]
            ga, a_first = jnp.concatenate(pieces), a[first]
        else:
            ga, a_first = sum_to_shape(rest.sum(0) + at_first, a.shape), a
        gh0 = op.apply(op.transpose(a_first), gb_LxS[first])
        return ga, gb_LxS, gh0

    recurrence.defvjp(fwd, bwd)
    return recurrence(problem.a, problem.b_LxS, problem.h0_S)
