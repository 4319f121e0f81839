"""Diagonal operator: h_t = a_t * h_{t-1} + b_t elementwise (LRU, S5/S4D diagonal, Mamba-style selective).

a: b's shape (time-varying, selective) or any shape broadcastable to b's shape without the time axis
(time-invariant, e.g. lam_N with b_BxLxN). Real or complex.
"""
import jax.numpy as jnp
import numpy as np

from scan.operator import (ScanOperator, broadcasts_to, make_problem, normalize_axis, reference_loop, step_order,
                           sum_to_shape)


def apply(a, x):
    return a * x


def compose(a_later, a_earlier):
    return a_later * a_earlier


def identity(a):
    return jnp.ones_like(a)


def prepare(a, b, h0, axis):
    a, b = jnp.asarray(a), jnp.asarray(b)
    if b.ndim < 1:
        raise ValueError(f"b must have a time axis; got shape {b.shape}")
    axis = normalize_axis(axis, b.ndim)
    state_S = b.shape[:axis] + b.shape[axis + 1:]
    time_varying = a.ndim == b.ndim
    if time_varying and a.shape != b.shape:
        raise ValueError(f"a (time-varying) must have b's shape {b.shape}; got {a.shape}")
    if not time_varying and not broadcasts_to(a.shape, state_S):
        raise ValueError(f"a must have b's shape {b.shape} (time-varying) or broadcast to b's shape without the "
                         f"time axis {state_S} (time-invariant); got {a.shape}")
    return make_problem(a, b, h0, axis, time_varying)


# ---- Test support: random inputs and float64 NumPy references (time axis 1). ----

def make_inputs(rng, batch, length, state, dtype, a_abs=0.9, time_varying=False):
    """a: (batch, length, state) or (state,), b: (batch, length, state), h0: (batch, state); |a| in [a_abs/2, a_abs]
    (exactly a_abs when a_abs >= 0.99, for the stability test), random phase for complex dtypes."""
    a_shape = (batch, length, state) if time_varying else (state,)
    mag = np.full(a_shape, a_abs) if a_abs >= 0.99 else rng.uniform(a_abs / 2, a_abs, a_shape)
    complex_ = np.issubdtype(np.dtype(dtype), np.complexfloating)
    a = mag * np.exp(1j * rng.uniform(0, 2 * np.pi, a_shape)) if complex_ else mag * rng.choice([-1, 1], a_shape)
    noise = lambda shape: rng.normal(size=shape) + (1j * rng.normal(size=shape) if complex_ else 0)
    b, h0 = noise((batch, length, state)), noise((batch, state))
    return tuple(np.asarray(x, dtype) for x in (a, b, h0))


def _a_at(a, b):
    """t -> a_t as float64/complex128 broadcast to the state shape (time axis 1 in b)."""
    a, state = np.asarray(a, np.complex128), b.shape[:1] + b.shape[2:]
    if a.ndim == b.ndim:
        return lambda t: a[:, t]
    a_S = np.broadcast_to(a, state)
    return lambda t: a_S


def reference(a, b, h0, reverse=False):
    """h_t = a_t h_prev + b_t in complex128, stepping t in the recurrence's own order."""
    return reference_loop(np.multiply, _a_at(a, np.asarray(b)), b, h0, reverse)


def reference_vjp(a, b, h0, reverse, g):
    """Float64 adjoint loop (JAX convention, no conjugation): returns (ga, gb, gh0) shaped like (a, b, h0)."""
    b, g = np.asarray(b, np.complex128), np.asarray(g, np.complex128)
    a_at, state = _a_at(a, b), b.shape[:1] + b.shape[2:]
    h0_S = np.zeros(state, np.complex128) if h0 is None else np.broadcast_to(np.asarray(h0, np.complex128), state)
    h = reference(a, b, h0_S, reverse)
    order = step_order(b.shape[1], reverse)
    gb, ga_full, carry = np.zeros_like(b), np.zeros_like(b), np.zeros(state, np.complex128)
    for i in range(len(order) - 1, -1, -1):  # walk the recurrence backwards
        t = order[i]
        gb[:, t] = g[:, t] + carry
        ga_full[:, t] = gb[:, t] * (h[:, order[i - 1]] if i > 0 else h0_S)
        carry = a_at(t) * gb[:, t]
    ga = ga_full if np.ndim(a) == b.ndim else sum_to_shape(ga_full.sum(1), np.shape(a))
    gh0 = None if h0 is None else sum_to_shape(carry, np.shape(h0))
    return ga, gb, gh0


DIAGONAL = ScanOperator(
    name="diagonal", apply=apply, compose=compose, identity=identity, prepare=prepare,
    methods=("sequential", "associative", "chunked"), make_inputs=make_inputs, reference=reference,
    reference_vjp=reference_vjp)
