"""Selective state space layer (Mamba-style): Gu & Dao 2023, "Mamba: Linear-Time Sequence Modeling with Selective
State Spaces" (arXiv:2312.00752), Sec. 3 and Algorithm 2. Notation follows the paper (E = expand * H channels,
N states per channel, R = rank of the dt projection):

    x, z   = in_proj(u)                               (B, L, E) each
    x      = silu(causal_depthwise_conv_k(x))         k = d_conv = 4
    dt_t   = softplus(W_dt_up (W_dt_down x_t) + b_dt)  (E,)  per channel, input dependent
    B_t    = W_B x_t,  C_t = W_C x_t                  (N,)  input dependent, shared by the E channels
    A      = -exp(A_log)                              (E, N), S4D-Real init A_log[e, n] = log(n + 1)
    h_t    = exp(dt_t A) * h_{t-1} + (dt_t x_t) B_t   (E, N) ZOH for A; B discretised as dt * B (the paper's
                                                       simplification); float32 state and scan
    y_t    = <C_t, h_t> + D * x_t
    out    = out_proj(y * silu(z))

The recurrence is the time-varying diagonal operator: scan.linear_recurrence(a_BxLxExN, b_BxLxExN, axis=1).
"""
import math

import jax
import jax.numpy as jnp
from flax import nnx

import scan
from models.params import RecurrentParam, check_size


def inverse_softplus(y):
    """x with softplus(x) = y, for y > 0: x = y + log(1 - exp(-y))."""
    return y + jnp.log(-jnp.expm1(-y))


def causal_depthwise_conv(x_BxLxE, w_KxE, bias_E):
    """out[:, t] = bias + sum_j w[j] * x[:, t - (K-1) + j] with zeros before position 0 (reads no future)."""
    K, L = w_KxE.shape[0], x_BxLxE.shape[1]
    x_pad = jnp.pad(x_BxLxE, ((0, 0), (K - 1, 0), (0, 0)))
    return bias_E + sum(w_KxE[j] * x_pad[:, j:j + L] for j in range(K))


class Selective(nnx.Module):
    """Selective SSM layer, batch-first and causal: layer(u_BxLxH, mask_BxL=None) -> y_BxLxH (float32).

    d_state: N. expand: E = expand * d_model (paper: 2). d_conv: causal conv width (paper: 4).
    dt_rank: R of the low-rank dt projection; None -> ceil(d_model / 16) (the paper's default).
    dt_min, dt_max: dt ~ logUniform[dt_min, dt_max] at init, stored as b_dt = softplus^-1(dt).
    scan_method: passed to scan.linear_recurrence.

    Parameter groups: A_log, W_dt_down, W_dt_up and b_dt are RecurrentParam (own lr, no weight decay): they set
    the decay rates exp(dt A) of the recurrence, its eigenvalues. W_B and W_C are plain parameters: like any input
    or output projection they act on the signal, not on the stability or time scale of the state (Mamba's own
    code also trains them as part of an ordinary Linear with weight decay; only A_log and D are exempt there).

    Padding (mask_BxL, True = valid; any pattern: right or left padding, holes): a pad position is "no time step".
    The conv's input is zeroed there, so no valid position reads a pad's value through the causal conv window, and
    dt = 0 there, so a = exp(0 * A) = 1 and b = 0 * x * B = 0: the state passes through a pad unchanged (the
    zero-order hold of a step of length 0). Valid outputs are thus independent of the values at pads; with right
    padding they equal those of the unpadded sequence (pads come after every valid step and the conv is causal);
    with left padding too (the state and the conv window stay zero until the first valid position). Outputs at pad
    positions are meaningless.
    Memory: the time-varying transition a (B, L, E, N) is materialised in float32.
    """

    def __init__(self, d_model, d_state=16, *, expand=2, d_conv=4, dt_rank=None, dt_min=1e-3, dt_max=1e-1,
                 scan_method="auto", rngs: nnx.Rngs):
        if not 0 < dt_min <= dt_max:
            raise ValueError(f"need 0 < dt_min <= dt_max, got dt_min={dt_min}, dt_max={dt_max}")
        if d_conv < 1:
            raise ValueError(f"d_conv must be >= 1, got {d_conv}")
        check_size("Selective", "d_state (N)", d_state)
        check_size("Selective", "expand", expand)
        check_size("Selective", "dt_rank (R)", dt_rank, none_ok=True)  # 0 would silently mean None
        H, N, E = d_model, d_state, expand * d_model
        R = dt_rank or math.ceil(d_model / 16)
        self.d_model, self.d_state, self.d_inner, self.d_conv = H, N, E, d_conv
        self.scan_method = scan_method
        uniform = lambda shape, bound: jax.random.uniform(rngs.params(), shape, jnp.float32, -bound, bound)

        self.in_proj = nnx.Linear(H, 2 * E, use_bias=False, rngs=rngs)
        # Depthwise conv: PyTorch Conv1d default init, U(-1/sqrt(fan_in), 1/sqrt(fan_in)) with fan_in = d_conv.
        self.conv_w = nnx.Param(uniform((d_conv, E), 1 / math.sqrt(d_conv)))
        self.conv_b = nnx.Param(uniform((E,), 1 / math.sqrt(d_conv)))
        self.W_B = nnx.Param(uniform((E, N), 1 / math.sqrt(E)))
        self.W_C = nnx.Param(uniform((E, N), 1 / math.sqrt(E)))
        # dt: low-rank projection; the up projection's init std R^-1/2 and the bias from dt ~ logUniform are the
        # paper's (Sec. 3.6 / App. of Gu & Dao 2023).
        self.W_dt_down = RecurrentParam(uniform((E, R), 1 / math.sqrt(E)))
        self.W_dt_up = RecurrentParam(uniform((R, E), R ** -0.5))
        log_dt = jax.random.uniform(rngs.params(), (E,), jnp.float32, math.log(dt_min), math.log(dt_max))
        self.b_dt = RecurrentParam(inverse_softplus(jnp.exp(log_dt)))
        # S4D-Real: A_n = -(n + 1) for every channel.
        self.A_log = RecurrentParam(jnp.log(jnp.broadcast_to(jnp.arange(1, N + 1, dtype=jnp.float32), (E, N))))
        self.D = nnx.Param(jnp.ones((E,), jnp.float32))
        self.out_proj = nnx.Linear(E, H, use_bias=False, rngs=rngs)

    def _ssm_inputs(self, x_xE):
        """dt (..., E), B (..., N), C (..., N) from the conv output x (..., E)."""
        dt = jax.nn.softplus((x_xE @ self.W_dt_down[...]) @ self.W_dt_up[...] + self.b_dt[...])
        return dt, x_xE @ self.W_B[...], x_xE @ self.W_C[...]

    def _discretise(self, x_xE, mask_x=None):
        """(a, b) of h = a * h_prev + b, each (..., E, N): a = exp(dt A), b = dt x B; and C (..., N).

        mask_x (..., bool) or None: dt = 0 where False (a = 1, b = 0: the state passes through unchanged)."""
        dt, B_, C_ = self._ssm_inputs(x_xE)
        if mask_x is not None:
            dt = jnp.where(mask_x[..., None], dt, 0.0)
        A_EN = -jnp.exp(self.A_log[...])
        a = jnp.exp(dt[..., None] * A_EN)
        b = (dt * x_xE)[..., None] * B_[..., None, :]
        return a, b, C_

    def _readout(self, h_xExN, C_xN, x_xE, z_xE):
        y = jnp.einsum("...en,...n->...e", h_xExN, C_xN) + self.D[...] * x_xE
        return self.out_proj(y * jax.nn.silu(z_xE))

    def __call__(self, u_BxLxH, mask_BxL=None):
        x_BxLxE, z_BxLxE = jnp.split(self.in_proj(u_BxLxH.astype(jnp.float32)), 2, axis=-1)
        if mask_BxL is not None:  # the conv window reads zeros, not pad values (as before position 0)
            x_BxLxE = jnp.where(mask_BxL[..., None], x_BxLxE, 0.0)
        x_BxLxE = jax.nn.silu(causal_depthwise_conv(x_BxLxE, self.conv_w[...], self.conv_b[...]))
        a, b, C_BxLxN = self._discretise(x_BxLxE, mask_BxL)
        h_BxLxExN = scan.linear_recurrence(a, b, axis=1, method=self.scan_method)  # a has the time axis
        return self._readout(h_BxLxExN, C_BxLxN, x_BxLxE, z_BxLxE)

    def initial_state(self, batch_size):
        """(conv window: the last d_conv - 1 conv inputs (B, d_conv - 1, E), zeros; SSM state h (B, E, N), zeros)."""
        return (jnp.zeros((batch_size, self.d_conv - 1, self.d_inner), jnp.float32),
                jnp.zeros((batch_size, self.d_inner, self.d_state), jnp.float32))

    def step(self, state, u_BxH):
        """One step of recurrent inference: (state_{t-1}, u_t) -> (state_t, y_t); equals the parallel call."""
        window_BxKm1xE, h_BxExN = state
        x_BxE, z_BxE = jnp.split(self.in_proj(u_BxH.astype(jnp.float32)), 2, axis=-1)
        window_BxKxE = jnp.concatenate([window_BxKm1xE, x_BxE[:, None]], axis=1)
        xc_BxE = jax.nn.silu(self.conv_b[...] + jnp.einsum("bke,ke->be", window_BxKxE, self.conv_w[...]))
        a, b, C_BxN = self._discretise(xc_BxE)
        h_BxExN = a * h_BxExN + b
        return (window_BxKxE[:, 1:], h_BxExN), self._readout(h_BxExN, C_BxN, xc_BxE, z_BxE)
