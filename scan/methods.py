"""The methods that run any ScanOperator: sequential, associative, chunked.

Each method is `method(op, problem, reverse, chunk_size) -> h_LxS` on a validated time-major Problem
(scan/operator.py) and computes every state of h_t = a_t (.) h_prev + b_t, h_prev = h0 before the first step.
A time-invariant `a` is never broadcast over the time axis:
  sequential  closes over a in the scan body;
  associative uses elements (count, b) with a^count applied from a table of a^(2^j) (see _counts_combine);
  chunked     needs only a^chunk_size (one transition) to carry states across chunks.
"""
import functools

import jax.numpy as jnp
from jax import lax

# lax.scan unroll for the sequential passes. Measured on this CPU (B=8, N=256, complex64, L=1024..16384):
# unroll=4 was within noise of 1 and unroll=16 was 1.3-2.5x slower, so no unrolling.
SEQUENTIAL_UNROLL = 1


def sequential(op, p, reverse, chunk_size=None):
    """lax.scan over the time-major layout; the reference-like method (one op.step per position)."""
    del chunk_size
    if p.time_varying:
        def body(h, ab_t):
            h = op.step(ab_t[0], h, ab_t[1])
            return h, h
        xs = (p.a, p.b_LxS)
    else:
        def body(h, b_t):
            h = op.step(p.a, h, b_t)  # a closed over: never materialised per step
            return h, h
        xs = p.b_LxS
    _, h_LxS = lax.scan(body, p.h0_S, xs, reverse=reverse, unroll=SEQUENTIAL_UNROLL)
    return h_LxS


def associative(op, p, reverse, chunk_size=None):
    """lax.associative_scan of op.combine; O(log L) depth.

    reverse is done as flip -> forward scan -> flip, so the combine always sees (earlier, later) operands in
    the recurrence's own order (lax.associative_scan(reverse=True) passes them in reversed order).
    h0 is folded into the first element: b_first <- a_first (.) h0 + b_first.
    """
    del chunk_size
    flip = (lambda x: jnp.flip(x, 0)) if reverse else (lambda x: x)
    b_LxS = flip(p.b_LxS)
    if p.time_varying:
        a_L = flip(p.a)
        b_LxS = b_LxS.at[0].set(op.step(a_L[0], p.h0_S, b_LxS[0]))
        _, h_LxS = lax.associative_scan(op.combine, (a_L, b_LxS))
    else:
        b_LxS = b_LxS.at[0].set(op.step(p.a, p.h0_S, b_LxS[0]))
        length = b_LxS.shape[0]
        count_L = jnp.ones((length,) + (1,) * (b_LxS.ndim - 1), jnp.int32)
        table = _power_table(op, p.a, length.bit_length())
        _, h_LxS = lax.associative_scan(functools.partial(_counts_combine, op, table), (count_L, b_LxS))
    return flip(h_LxS)


def _power_table(op, a, n_bits):
    """[a, a^2, a^4, ..., a^(2^(n_bits-1))] by repeated squaring (the same products a tree of broadcast a's
    would form, so the rounding matches the materialised associative scan)."""
    table = [a]
    for _ in range(n_bits - 1):
        table.append(op.compose(table[-1], table[-1]))
    return table


def _counts_combine(op, table, e1, e2):
    """Combine for a time-invariant a: an element is (k, x) meaning (a^k, x); only k (one int per position)
    replaces the per-position transition. a^k2 (.) x1 is applied bit by bit from the table: log2(L)
    multiply-selects per combine instead of one multiply, traded for not holding L copies of a per level.
    The loop is unrolled so XLA fuses it into one elementwise pass (a rolled fori_loop measured slower to
    compile under autodiff and makes log2(L) passes over memory)."""
    (k1, x1), (k2, x2) = e1, e2
    for j, a_pow in enumerate(table):
        # x1 + bit * (a_pow x1 - x1) rather than jnp.where(bit, ...): where broadcasts the per-position bit to
        # the full state shape, and reverse mode would keep that mask (log2(L) of them per tree level).
        bit = ((k2 >> j) & 1).astype(x1.real.dtype)  # (positions, 1, ..., 1)
        x1 = x1 + bit * (op.apply(a_pow, x1) - x1)
    return k1 + k2, x1 + x2


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
    length = p.b_LxS.shape[0]
    t_len = default_chunk_size(length) if chunk_size is None else min(chunk_size, length)
    n_chunks = -(-length // t_len)
    pad = n_chunks * t_len - length

    def to_chunks(x_LxS):  # (L, ...) -> (T, C, ...)
        widths = [(pad, 0) if reverse else (0, pad)] + [(0, 0)] * (x_LxS.ndim - 1)
        x = jnp.pad(x_LxS, widths) if pad else x_LxS
        return jnp.swapaxes(x.reshape((n_chunks, t_len) + x.shape[1:]), 0, 1)

    b_TxCxS = to_chunks(p.b_LxS)
    zeros_CxS = jnp.zeros(b_TxCxS.shape[1:], b_TxCxS.dtype)
    if p.time_varying:
        a_TxC = to_chunks(p.a)

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
    _, h_TxCxS = lax.scan(rescan, c_in_CxS, xs3, reverse=reverse, unroll=SEQUENTIAL_UNROLL)
    h = jnp.swapaxes(h_TxCxS, 0, 1).reshape((n_chunks * t_len,) + h_TxCxS.shape[2:])
    return h[pad:] if reverse else h[:length]


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
