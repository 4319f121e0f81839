"""Rotation operator: h_t = A_t h_{t-1} + b_t with A_t block-diagonal of 2x2 scaled rotations (real arithmetic).

Each block n of the state is a pair h[..., n, :] = (h_0, h_1) and its transition is

    A = r [[cos(theta), -sin(theta)],   stored as a[..., n, :] = (alpha, beta) = (r cos(theta), r sin(theta)),
           [sin(theta),  cos(theta)]]   i.e. A = [[alpha, -beta], [beta, alpha]].

Such matrices multiply like complex numbers alpha + i beta (they commute, and A2 A1 is the block of the product),
so a real recurrence can rotate and decay its state (oscillating memory, as the LRU's complex lambda does) with
no complex dtype anywhere: useful where complex64 is slow or missing (bfloat16 kernels, some accelerators).
Unlike the diagonal operator its transpose is not itself: A^T = [[alpha, beta], [-beta, alpha]] = (alpha, -beta).

a: b's shape (time-varying: one (alpha, beta) per position and block) or broadcastable to b's shape without the
time axis (time-invariant), with the last axis of size exactly 2 in both a and b. Complex entries are allowed
(A is then a general normal matrix alpha I + beta J with eigenvalues alpha +- i beta).
"""
import jax.numpy as jnp
import numpy as np

from scan.operator import (ScanOperator, broadcasts_to, make_problem, normalize_axis, reference_loop, step_order,
                           sum_to_shape)


def apply(a, x):
    """A x for A = [[alpha, -beta], [beta, alpha]] per block: (alpha x0 - beta x1, beta x0 + alpha x1)."""
    alpha, beta, x0, x1 = a[..., 0], a[..., 1], x[..., 0], x[..., 1]
    return jnp.stack([alpha * x0 - beta * x1, beta * x0 + alpha * x1], axis=-1)


def compose(a_later, a_earlier):
    return apply(a_later, a_earlier)  # A2 A1 has the same form: its (alpha, beta) is A2 applied to (alpha1, beta1)


def identity(a):
    return jnp.stack([jnp.ones_like(a[..., 0]), jnp.zeros_like(a[..., 1])], axis=-1)


def prepare(a, b, h0, axis):
    a, b = jnp.asarray(a), jnp.asarray(b)
    if b.ndim < 2 or b.shape[-1] != 2:
        raise ValueError(f"b must have a time axis and a last axis of size 2 (the pair of each block); got shape "
                         f"{b.shape}")
    axis = normalize_axis(axis, b.ndim)
    if axis == b.ndim - 1:
        raise ValueError(f"axis={axis} is the pair axis of b (the last one) for operator 'rotation'")
    state_S = b.shape[:axis] + b.shape[axis + 1:]
    time_varying = a.ndim == b.ndim
    if time_varying and a.shape != b.shape:
        raise ValueError(f"a (time-varying) must have b's shape {b.shape}; got {a.shape}")
    # The pair axis must not broadcast: (alpha, beta) are two different numbers, and a size-1 axis would sum
    # their cotangents together.
    if not time_varying and not (a.ndim >= 1 and a.shape[-1] == 2 and broadcasts_to(a.shape, state_S)):
        raise ValueError(f"a must have b's shape {b.shape} (time-varying) or broadcast to b's shape without the "
                         f"time axis {state_S} with a last axis of size 2 (time-invariant); got {a.shape}")
    return make_problem(a, b, h0, axis, time_varying)


# ---- Test support: random inputs and float64 NumPy references (time axis 1). ----

def make_inputs(rng, batch, length, state, dtype, a_abs=0.9, time_varying=False):
    """`state` blocks of 2: a (batch, length, state, 2) or (state, 2), b (batch, length, state, 2), h0 (batch,
    state, 2). The eigenvalues lam1, lam2 = alpha +- i beta have |lam| in [a_abs/2, a_abs] (exactly a_abs when
    a_abs >= 0.99), so A (a normal matrix) has spectral norm <= a_abs. Real dtypes: lam2 = conj(lam1), i.e. a
    real scaled rotation; complex dtypes: two independent eigenvalues."""
    complex_ = np.issubdtype(np.dtype(dtype), np.complexfloating)
    a_shape = (batch, length, state) if time_varying else (state,)

    def eigenvalue():
        mag = np.full(a_shape, a_abs) if a_abs >= 0.99 else rng.uniform(a_abs / 2, a_abs, a_shape)
        return mag * np.exp(1j * rng.uniform(0, 2 * np.pi, a_shape))
    lam1 = eigenvalue()
    lam2 = eigenvalue() if complex_ else np.conj(lam1)
    alpha, beta = (lam1 + lam2) / 2, (lam1 - lam2) / 2j
    a = np.stack([alpha, beta], -1)
    a = a if complex_ else a.real
    noise = lambda shape: rng.normal(size=shape) + (1j * rng.normal(size=shape) if complex_ else 0)
    b, h0 = noise((batch, length, state, 2)), noise((batch, state, 2))
    return tuple(np.asarray(x, dtype) for x in (a, b, h0))


def _matrices(a):
    """(..., 2) pairs -> (..., 2, 2) matrices [[alpha, -beta], [beta, alpha]] in complex128."""
    a = np.asarray(a, np.complex128)
    alpha, beta = a[..., 0], a[..., 1]
    return np.stack([np.stack([alpha, -beta], -1), np.stack([beta, alpha], -1)], -2)


def _a_at(a, b):
    """t -> A_t as (..., 2, 2) matrices broadcast to the state shape (time axis 1 in b)."""
    m, state = _matrices(a), b.shape[:1] + b.shape[2:]
    if np.ndim(a) == b.ndim:
        return lambda t: m[:, t]
    m_S = np.broadcast_to(m, state + (2,))
    return lambda t: m_S


def _matvec(m, h):
    return np.einsum("...ij,...j->...i", m, h)


def reference(a, b, h0, reverse=False):
    """h_t = A_t h_prev + b_t with explicit 2x2 matrices in complex128 (independent of apply/compose above)."""
    return reference_loop(_matvec, _a_at(a, np.asarray(b)), b, h0, reverse)


def reference_vjp(a, b, h0, reverse, g):
    """Float64 adjoint loop with explicit matrices (JAX convention): gb_t = g_t + A_next^T gb_next,
    gA_t = gb_t h_prev^T, projected on the two directions of (alpha, beta): d A / d alpha = I, d A / d beta = J."""
    b, g = np.asarray(b, np.complex128), np.asarray(g, np.complex128)
    a_at, state = _a_at(a, b), b.shape[:1] + b.shape[2:]
    h0_S = np.zeros(state, np.complex128) if h0 is None else np.broadcast_to(np.asarray(h0, np.complex128), state)
    h = reference(a, b, h0_S, reverse)
    order = step_order(b.shape[1], reverse)
    basis = np.array([[[1, 0], [0, 1]], [[0, -1], [1, 0]]], np.complex128)  # dA/dalpha, dA/dbeta
    gb, ga_full, carry = np.zeros_like(b), np.zeros_like(b), np.zeros(state, np.complex128)
    for i in range(len(order) - 1, -1, -1):
        t = order[i]
        gb[:, t] = g[:, t] + carry
        gA = np.einsum("...i,...j->...ij", gb[:, t], h[:, order[i - 1]] if i > 0 else h0_S)
        ga_full[:, t] = np.einsum("...ij,kij->...k", gA, basis)
        carry = np.einsum("...ji,...j->...i", a_at(t), gb[:, t])
    ga = ga_full if np.ndim(a) == b.ndim else sum_to_shape(ga_full.sum(1), np.shape(a))
    gh0 = None if h0 is None else sum_to_shape(carry, np.shape(h0))
    return ga, gb, gh0


ROTATION = ScanOperator(
    name="rotation", apply=apply, compose=compose, identity=identity, prepare=prepare,
    methods=("sequential", "associative", "chunked"), make_inputs=make_inputs, reference=reference,
    reference_vjp=reference_vjp)
