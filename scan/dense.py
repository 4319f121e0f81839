"""Dense operator: h_t = A_t h_{t-1} + b_t with a full (N, N) transition (linear dense RNN, LRU ablation ladder).

b: (..., L, ..., N) with the state in the last axis; A: b's shape + (N,) (time-varying, one matrix per step)
or (..., N, N) broadcastable to b's batch dims (time-invariant). The associative method multiplies N x N
matrices (O(N^3) per combine), so it is meant for small N.
"""
import jax.numpy as jnp
import numpy as np

from scan.operator import (ScanOperator, broadcasts_to, make_problem, normalize_axis, reference_loop, step_order,
                           sum_to_shape)


def apply(a, x):
    return jnp.matmul(a, x[..., None])[..., 0]


def compose(a_later, a_earlier):
    return jnp.matmul(a_later, a_earlier)


def identity(a):
    return jnp.broadcast_to(jnp.eye(a.shape[-1], dtype=a.dtype), a.shape)


def prepare(a, b, h0, axis):
    a, b = jnp.asarray(a), jnp.asarray(b)
    if b.ndim < 2:
        raise ValueError(f"b must have a time axis and a state axis (last); got shape {b.shape}")
    axis = normalize_axis(axis, b.ndim)
    if axis == b.ndim - 1:
        raise ValueError(f"axis={axis} is the state axis of b (the last one) for operator 'dense'")
    n = b.shape[-1]
    state_S = b.shape[:axis] + b.shape[axis + 1:]
    time_varying = a.ndim == b.ndim + 1
    if time_varying and a.shape != b.shape + (n,):
        raise ValueError(f"a (time-varying) must have shape {b.shape + (n,)} (b's shape + (N,)); got {a.shape}")
    if not time_varying and not (2 <= a.ndim <= b.ndim and a.shape[-2:] == (n, n)
                                 and broadcasts_to(a.shape[:-2], state_S[:-1])):
        raise ValueError(f"a must have shape {b.shape + (n,)} (time-varying) or (..., {n}, {n}) with leading dims "
                         f"broadcasting to {state_S[:-1]} (time-invariant); got {a.shape}")
    return make_problem(a, b, h0, axis, time_varying, transition_ndim=1)


# ---- Test support: random inputs and float64 NumPy references (time axis 1). ----

def make_inputs(rng, batch, length, state, dtype, a_abs=0.9, time_varying=False):
    """A = a_abs * (random orthogonal / unitary), so its spectral norm is a_abs (no transient growth)."""
    complex_ = np.issubdtype(np.dtype(dtype), np.complexfloating)
    noise = lambda shape: rng.normal(size=shape) + (1j * rng.normal(size=shape) if complex_ else 0)
    a_lead = (batch, length) if time_varying else ()
    q, _ = np.linalg.qr(noise(a_lead + (state, state)))
    b, h0 = noise((batch, length, state)), noise((batch, state))
    return tuple(np.asarray(x, dtype) for x in (a_abs * q, b, h0))


def _a_at(a, b):
    a = np.asarray(a, np.complex128)
    if a.ndim == b.ndim + 1:
        return lambda t: a[:, t]
    return lambda t: a


def reference(a, b, h0, reverse=False):
    """h_t = A_t h_prev + b_t in complex128."""
    matvec = lambda a_t, h: np.einsum("...ij,...j->...i", a_t, h)
    return reference_loop(matvec, _a_at(a, b), b, h0, reverse)


def reference_vjp(a, b, h0, reverse, g):
    """Float64 adjoint loop (JAX convention): gb_t = g_t + A_next^T gb_next, gA_t = outer(gb_t, h_prev)."""
    b, g = np.asarray(b, np.complex128), np.asarray(g, np.complex128)
    a_at, state = _a_at(a, b), b.shape[:1] + b.shape[2:]
    h0_S = np.zeros(state, np.complex128) if h0 is None else np.broadcast_to(np.asarray(h0, np.complex128), state)
    h = reference(a, b, h0_S, reverse)
    order = step_order(b.shape[1], reverse)
    time_varying = np.ndim(a) == b.ndim + 1
    gb = np.zeros_like(b)
    ga = np.zeros(np.shape(a), np.complex128)
    carry = np.zeros(state, np.complex128)
    for i in range(len(order) - 1, -1, -1):
        t = order[i]
        gb[:, t] = g[:, t] + carry
        outer = np.einsum("...i,...j->...ij", gb[:, t], h[:, order[i - 1]] if i > 0 else h0_S)
        if time_varying:
            ga[:, t] = outer
        else:
            ga += sum_to_shape(outer, np.shape(a))
        carry = np.einsum("...ji,...j->...i", a_at(t), gb[:, t])
    gh0 = None if h0 is None else sum_to_shape(carry, np.shape(h0))
    return ga, gb, gh0


DENSE = ScanOperator(
    name="dense", apply=apply, compose=compose, identity=identity, prepare=prepare,
    methods=("sequential", "associative", "chunked"), make_inputs=make_inputs, reference=reference,
    reference_vjp=reference_vjp)
