"""The methods that run any ScanOperator: sequential, associative, chunked.

Each method is `method(op, problem, reverse, chunk_size) -> h` on a validated Problem (scan/operator.py, the
caller's layout, time axis p.axis) and computes every state of h_t = a_t (.) h_prev + b_t, h_prev = h0 before
the first step, in b's layout. A time-invariant `a` is never broadcast over batch axes:
  sequential  one op.step per position, in place in b's own layout (no transposes), a closed over;
  associative moves time first and broadcasts a over time only (not over batch axes), see associative;
  chunked     moves time first; needs only a^chunk_size (one transition) to carry states across chunks.
"""
from jax import lax
import jax.numpy as jnp

from scan.operator import from_time_major, time_major


def sequential(op, p, reverse, chunk_size=None):
    """A loop over positions that reads b_t and writes h_t in place along p.axis (dynamic slices into one
    output buffer carried by the loop): no transposes into or out of a time-major layout. Measured side by side
    (diagonal, B=8, L=4096, N=256, complex64, batch-major b): 0.86 s against 1.84 s for a lax.scan over
    time-major copies on 2 loaded cores (load ~10), but on the idle machine 92 ms against 89 ms for the earlier
    time-major version (scan/README.md): not faster there. Its reverse mode runs TANGENT_METHODS["sequential"]."""
    del chunk_size
    length = p.b.shape[p.axis]
    at = lambda x, t: lax.dynamic_index_in_dim(x, t, p.axis, keepdims=False)

    def body(i, carry):
        h, out = carry
        t = length - 1 - i if reverse else i
        h = op.step(at(p.a, t) if p.time_varying else p.a, h, at(p.b, t))
        return h, lax.dynamic_update_index_in_dim(out, h, t, p.axis)
    _, h = lax.fori_loop(0, length, body, (p.h0_S, jnp.empty_like(p.b)))
    return h


def sequential_stacked(op, p, reverse, chunk_size=None):
    """The same loop as a lax.scan over time-major copies (moves in and out of the caller's layout), emitting
    h_t as the scan's stacked output. It runs the TANGENT of 'sequential' (TANGENT_METHODS), which reverse
    mode transposes: JAX transposes this scan in linear time, while the transpose of the in-place loop above
    carries the whole output buffer through every step and copies it (quadratic in L). Measured side by side
    (diagonal, B=32, L=1024, N=32, complex64, best of 3, loaded 2-core CPU): fwd+bwd of the in-place loop alone
    3.37 s, of this scan alone 0.037 s; forward 0.011 s in place vs 0.016 s here."""
    del chunk_size
    a, b_LxS = time_major(p)

    def body(h, ab_t):
        a_t, b_t = ab_t if p.time_varying else (a, ab_t)
        h = op.step(a_t, h, b_t)
        return h, h
    _, h_LxS = lax.scan(body, p.h0_S, (a, b_LxS) if p.time_varying else b_LxS, reverse=reverse)
    return from_time_major(p, h_LxS)


def associative(op, p, reverse, chunk_size=None):
    """lax.associative_scan of op.combine; O(log L) depth.

    reverse is done as flip -> forward scan -> flip, so the combine always sees (earlier, later) operands in
    the recurrence's own order (lax.associative_scan(reverse=True) passes them in reversed order).
    h0 is folded into the first element: b_first <- a_first (.) h0 + b_first.
    A time-invariant a is broadcast over time only (its size-1 batch axes stay size 1, see make_problem), so
    the tree holds a^k per position and state but not per batch element. An earlier version kept a per-position
    count k and applied a^k bit by bit from a table of a^(2^j) (no copies of a); measured side by side on the
    loaded 2-core machine (B=8, N=256, L=4096, complex64) it was 8.5x slower forward and 5x slower
    forward+backward at the same XLA peak memory, and compiled 10-15x slower for the rotation operator.
    """
    del chunk_size
    flip = (lambda x: jnp.flip(x, 0)) if reverse else (lambda x: x)
    a, b_LxS = time_major(p)
    b_LxS = flip(b_LxS)
    a_L = flip(a) if p.time_varying else jnp.broadcast_to(a, b_LxS.shape[:1] + a.shape)
    b_LxS = b_LxS.at[0].set(op.step(a_L[0], p.h0_S, b_LxS[0]))
    _, h_LxS = lax.associative_scan(op.combine, (a_L, b_LxS))
    return from_time_major(p, flip(h_LxS))


def chunked(op, p, reverse, chunk_size=None):
    """Sequential inside chunks of T steps, vectorised over all C = ceil(L/T) chunks, in three passes:

    1. from a zero state, scan every chunk at once (T steps on (C, S) slabs), keeping only each chunk's end
       state e_c and its transition M_c (the product of its a's; a^T when a is time-invariant);
    2. scan the C chunk boundaries: c_in[c] = state entering chunk c, from h0 (C steps on S);
    3. rescan every chunk from its true entering state c_in (T steps on (C, S)) and emit h.
    No per-position products are stored, so memory is inputs + outputs; compute is ~2 sequential sweeps but
    with C-times-wider steps (fewer, larger loop iterations) and a sequential depth of 2T + C instead of L.
    L is padded with zero inputs up to C*T after the end (before the start when reverse): padded positions
    come after every real one in the recurrence's order, so they change nothing that is kept.
    """
    a, b_LxS = time_major(p)
    length = b_LxS.shape[0]
    t_len = default_chunk_size(length) if chunk_size is None else min(chunk_size, length)
    n_chunks = -(-length // t_len)
    pad = n_chunks * t_len - length

    def to_chunks(x_LxS):  # (L, ...) -> (T, C, ...)
        widths = [(pad, 0) if reverse else (0, pad)] + [(0, 0)] * (x_LxS.ndim - 1)
        x = jnp.pad(x_LxS, widths) if pad else x_LxS
        return jnp.swapaxes(x.reshape((n_chunks, t_len) + x.shape[1:]), 0, 1)

    b_TxCxS = to_chunks(b_LxS)
    zeros_CxS = jnp.zeros(b_TxCxS.shape[1:], b_TxCxS.dtype)
    if p.time_varying:
        a_TxC = to_chunks(a)

        def pass1(carry, ab_t):
            m, e = carry
            return (op.compose(ab_t[0], m), op.step(ab_t[0], e, ab_t[1])), None
        (m_C, e_CxS), _ = lax.scan(pass1, (op.identity(a_TxC[0]), zeros_CxS), (a_TxC, b_TxCxS), reverse=reverse)
        rescan = lambda h, ab_t: (lambda h: (h, h))(op.step(ab_t[0], h, ab_t[1]))
        xs3 = (a_TxC, b_TxCxS)
    else:
        e_CxS, _ = lax.scan(lambda e, b_t: (op.step(p.a, e, b_t), None), zeros_CxS, b_TxCxS, reverse=reverse)
        m_C = power(op, p.a, t_len)  # the same transition a^T for every chunk
        rescan = lambda h, b_t: (lambda h: (h, h))(op.step(p.a, h, b_t))
        xs3 = b_TxCxS

    def pass2(h, me_c):  # emits the state entering chunk c, then steps over the whole chunk
        m, e = me_c if p.time_varying else (m_C, me_c)
        return op.step(m, h, e), h
    _, c_in_CxS = lax.scan(pass2, p.h0_S, (m_C, e_CxS) if p.time_varying else e_CxS, reverse=reverse)
    _, h_TxCxS = lax.scan(rescan, c_in_CxS, xs3, reverse=reverse, unroll=1)  # unroll 4: within noise; 16: 1.3-2.5x slower (measured)
    h = jnp.swapaxes(h_TxCxS, 0, 1).reshape((n_chunks * t_len,) + h_TxCxS.shape[2:])
    return from_time_major(p, h[pad:] if reverse else h[:length])


def default_chunk_size(length):
    """~sqrt(L) balances the 2T steps of passes 1 and 3 against the C = L/T steps of pass 2."""
    return max(1, int(round(length ** 0.5)))


def power(op, a, k):
    """a^k for a Python int k >= 1 by binary exponentiation with op.compose (powers of one a commute)."""
    result, a_pow = None, a
    while k:
        if k & 1:
            result = a_pow if result is None else op.compose(a_pow, result)
        k >>= 1
        if k:
            a_pow = op.compose(a_pow, a_pow)
    return result


METHODS = {"sequential": sequential, "associative": associative, "chunked": chunked}
# The method that computes a method's tangent recurrence (scan/adjoint.py), where it differs: reverse mode
# transposes the tangent, and the in-place loop of 'sequential' does not transpose in linear time.
TANGENT_METHODS = {"sequential": sequential_stacked}
