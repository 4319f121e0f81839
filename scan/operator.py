"""The scan-operator protocol: what a new recurrence has to provide to run under every method.

An operator describes a linear recurrence h_t = a_t (.) h_{t-1} + b_t, where (.) is the operator's action of
a "transition" a on a state (elementwise product for `diagonal`, matrix-vector product for `dense`).
All functions are plain, pure JAX functions on time-major arrays (time axis first, or no time axis for a
time-invariant transition). The methods in scan/methods.py only ever use these fields.
"""
from typing import Callable, NamedTuple

import jax.numpy as jnp
import numpy as np


class Problem(NamedTuple):
    """A validated recurrence, as produced by an operator's `prepare`, in the caller's layout (no transposes).

    a: with the time axis at `axis` when time_varying (b's layout, plus trailing axes for matrices); else the
       time-invariant transition (no time axis) with leading size-1 axes up to the rank of a time-varying a
       without its time axis (see make_problem), so it broadcasts against one time step of b.
    b: inputs, time axis at `axis`; the state shape S is b's shape without that axis (batch + state dims).
    h0_S: initial state broadcast to S (zeros when none was given).
    axis: the time axis of b (and of a time-varying a), in [0, b.ndim).
    Methods that need time-major data (associative, chunked) move it with time_major / from_time_major.
    """
    a: jnp.ndarray
    b: jnp.ndarray
    h0_S: jnp.ndarray
    time_varying: bool
    axis: int = 0


def time_major(p):
    """(a, b_LxS) with the time axis first (a unchanged when time-invariant)."""
    a = jnp.moveaxis(p.a, p.axis, 0) if p.time_varying else p.a
    return a, jnp.moveaxis(p.b, p.axis, 0)


def from_time_major(p, h_LxS):
    """h in b's layout (the time axis back at p.axis)."""
    return jnp.moveaxis(h_LxS, 0, p.axis)


class ScanOperator(NamedTuple):
    """A linear recurrence, described by plain functions (see scan/diagonal.py for the smallest example).

    name: key in scan.OPERATORS.
    apply(a, x) -> a (.) x: the transition acting on a state (or on a stack of states; broadcasts).
    compose(a_later, a_earlier) -> the transition of applying a_earlier, then a_later.
    identity(a) -> the identity transition shaped like a.
    prepare(a, b, h0, axis) -> Problem: validates shapes (ValueError naming the argument) and moves the
        time axis first; sets the accumulation dtype (>= float32 / complex64).
    methods: the methods (of scan.METHODS, besides 'auto') this operator supports.
    make_inputs(rng, batch, length, state, dtype, a_abs, time_varying) -> (a, b, h0) NumPy test inputs with
        the time axis at 1 (b: (batch, length, ...)); |a| (or its spectral norm) is a_abs.
    reference(a, b, h0, reverse) -> h: float64 NumPy loop on make_inputs' layout.
    reference_vjp(a, b, h0, reverse, g) -> (ga, gb, gh0): float64 NumPy adjoint loop, in JAX's cotangent
        convention (no complex conjugation: the transpose of x -> a x is g -> a g).

    Derived from apply and compose (methods, the same for every linear recurrence):
    step(a_t, h_prev, b_t) -> h_t = apply(a_t, h_prev) + b_t: one sequential step; the oracle of every method.
    combine((a1, b1), (a2, b2)) -> (compose(a2, a1), apply(a2, b1) + b2): the associative combine of the earlier
        element 1 and the later element 2.
    Derivatives need only `apply`: they come from the custom JVP in scan/adjoint.py.
    """
    name: str
    apply: Callable
    compose: Callable
    identity: Callable
    prepare: Callable
    methods: tuple
    make_inputs: Callable
    reference: Callable
    reference_vjp: Callable

    def step(self, a_t, h_prev, b_t):
        return self.apply(a_t, h_prev) + b_t

    def combine(self, e1, e2):
        (a1, b1), (a2, b2) = e1, e2
        return self.compose(a2, a1), self.apply(a2, b1) + b2


def accumulation_dtype(*dtypes):
    """promote(dtypes) upcast to at least float32 / complex64: the dtype every method accumulates and returns."""
    dtype = jnp.result_type(*dtypes)
    if jnp.issubdtype(dtype, jnp.complexfloating):
        return jnp.promote_types(dtype, jnp.complex64)
    return jnp.promote_types(dtype, jnp.float32)


def normalize_axis(axis, ndim, arg="axis"):
    """axis in [-ndim, ndim) -> [0, ndim), else a ValueError naming `arg`."""
    if not -ndim <= axis < ndim:
        raise ValueError(f"{arg}={axis} is out of range for b with {ndim} dimensions")
    return axis % ndim


def broadcasts_to(shape, target):
    """Whether an array of `shape` broadcasts (NumPy rules) to `target` without changing target."""
    return len(shape) <= len(target) and all(s in (1, t) for s, t in zip(shape[::-1], target[::-1]))


def sum_to_shape(x, shape):
    """Sum out the dimensions along which an operand of `shape` was broadcast to x.shape (NumPy or JAX)."""
    lead = x.ndim - len(shape)
    x = x.sum(tuple(range(lead))) if lead else x
    keep = tuple(i for i, s in enumerate(shape) if s == 1 and x.shape[i] != 1)
    return x.sum(keep, keepdims=True) if keep else x


def step_order(length, reverse):
    """Time indices in the order a recurrence visits them (for the NumPy references)."""
    return list(range(length - 1, -1, -1)) if reverse else list(range(length))


def make_problem(a, b, h0, axis, time_varying, transition_ndim=0):
    """The Problem for validated a and b (axis already normalised): checks h0, sets the dtype.

    transition_ndim: axes a transition has beyond the state's (0 for elementwise, 1 for (N, N) matrices); a
    time-invariant a gets leading size-1 axes up to the state's rank + transition_ndim, so that a method can put
    a time axis in front of it (associative does) and still broadcast against b.
    """
    state_S = b.shape[:axis] + b.shape[axis + 1:]
    if h0 is not None and not broadcasts_to(jnp.shape(h0), state_S):
        raise ValueError(f"h0 must broadcast to the state shape {state_S} (b without axis {axis}); "
                         f"got {jnp.shape(h0)}")
    dtype = accumulation_dtype(a.dtype, b.dtype, *([] if h0 is None else [jnp.asarray(h0).dtype]))
    a = a if time_varying else a.reshape((1,) * (len(state_S) + transition_ndim - a.ndim) + a.shape)
    h0_S = jnp.zeros(state_S, dtype) if h0 is None else jnp.broadcast_to(jnp.asarray(h0, dtype), state_S)
    return Problem(a.astype(dtype), b.astype(dtype), h0_S, time_varying, axis)


def reference_loop(apply_np, a_at, b, h0, reverse):
    """Float64 (complex128) NumPy loop h_t = apply_np(a_at(t), h_prev) + b_t on the test layout (time axis 1)."""
    b = np.asarray(b, np.complex128)
    state = b.shape[:1] + b.shape[2:]
    h = np.zeros(state, np.complex128) if h0 is None else np.broadcast_to(np.asarray(h0, np.complex128), state)
    out = np.empty_like(b)
    for t in step_order(b.shape[1], reverse):
        h = apply_np(a_at(t), h) + b[:, t]
        out[:, t] = h
    return out
