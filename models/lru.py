"""Linear Recurrent Unit: Orvieto et al. 2023, "Resurrecting Recurrent Neural Networks for Long Sequences"
(arXiv:2303.06349). Notation follows the paper:

    x_k = lambda * x_{k-1} + gamma * (B u_k),   gamma = exp(gamma_log)   (diagonal complex state, N per direction)
    y_k = Re(C x_k) + D * u_k

Switches reproduce the paper's ablation ladder (Tables 1-3): how lambda is parameterised, gamma normalisation,
complex vs real diagonal, and a bidirectional variant. Defaults are the paper's LRU.
"""
import math

import jax
import jax.numpy as jnp
from flax import nnx

import scan
from models.params import RecurrentParam, check_size

PARAMETERIZATIONS = ("stable_exp", "exp", "real_imag")
_TINY = float(jnp.finfo(jnp.float32).tiny)  # keeps the logs of the init finite (u1 = 0 with r_min = 0, u2 = 0)


def ring_init(key, n, r_min, r_max, max_phase):
    """Paper Lemma 3.2: |lambda|^2 ~ U[r_min^2, r_max^2], arg(lambda) ~ U[0, max_phase].

    Returns (nu_N, theta_N) with lambda = exp(-nu + i*theta); r_min = 0, r_max = 1 is uniform on the unit disk.
    max_phase: an angle in [0, 2*pi] (ValueError otherwise): past 2*pi the draw only wraps around the circle again
    (no longer uniform on it), and below 0 the stable_exp parameterisation (theta = exp(theta_log)) cannot hold it.
    0 starts every lambda real (the phase can still be trained).
    """
    if not (isinstance(max_phase, (int, float)) and 0.0 <= max_phase <= 2 * math.pi):
        raise ValueError(f"max_phase must be a number in [0, 2*pi] (arg(lambda) ~ U[0, max_phase], LRU paper Lemma "
                         f"3.2); got {max_phase!r}")
    k1, k2 = jax.random.split(key)
    u1 = jax.random.uniform(k1, (n,), jnp.float32)
    u2 = jax.random.uniform(k2, (n,), jnp.float32)
    nu = -0.5 * jnp.log(u1 * (r_max**2 - r_min**2) + r_min**2)
    return jnp.clip(nu, _TINY, None), max_phase * u2


class LRU(nnx.Module):
    """LRU layer, batch-first: layer(u_BxLxH, mask_BxL=None) -> y_BxLxH (float32; the state is complex64).

    parameterization: "stable_exp" (paper: lambda = exp(-exp(nu_log) + i*exp(theta_log))), "exp" (lambda =
      exp(-nu + i*theta), raw nu/theta stored), or "real_imag" (lambda_re, lambda_im stored directly).
      All three start from the same ring distribution.
    gamma_norm: gamma = exp(gamma_log), init sqrt(1 - |lambda|^2) (paper Sec. 3.3); off: gamma == 1.
    complex_diag: False keeps theta at 0 (lambda real in (r_min, r_max)); B_im, C_im do not exist and the state
      is real. Other inits unchanged (it is the complex LRU with every imaginary part frozen at 0).
    bidirectional: a second, independent set of recurrent parameters (lambda, gamma, B) runs backwards in time.
      Both directions live in one state axis of size 2N, [forward, backward]: nu_log (2N,), B_re (2N, H), and
      C_re, C_im (H, 2N), so y = Re(C [x_fwd; x_bwd]) + D u, i.e. the two directions' readouts are summed.
    scan_method: passed to scan.linear_recurrence.

    Padding (mask_BxL, True = valid, right padding): the input term gamma*B u is zeroed at pad positions, so the
    reverse scan starts from a zero state at the last valid position and pads never reach valid outputs.
    Outputs at pad positions are meaningless.
    """

    def __init__(self, d_model, d_state, *, r_min=0.0, r_max=1.0, max_phase=2 * math.pi,
                 parameterization="stable_exp", gamma_norm=True, complex_diag=True, bidirectional=False,
                 scan_method="auto", rngs: nnx.Rngs):
        if parameterization not in PARAMETERIZATIONS:
            raise ValueError(f"parameterization must be one of {PARAMETERIZATIONS}, got {parameterization!r}")
        if not 0.0 <= r_min < r_max <= 1.0:
            raise ValueError(f"need 0 <= r_min < r_max <= 1, got r_min={r_min}, r_max={r_max}")
        check_size("LRU", "d_state (N)", d_state)
        self.d_model, self.d_state = d_model, d_state
        self.parameterization, self.gamma_norm = parameterization, gamma_norm
        self.complex_diag, self.bidirectional, self.scan_method = complex_diag, bidirectional, scan_method
        H, S = d_model, d_state * (2 if bidirectional else 1)  # S: total state size over both directions

        nu, theta = ring_init(rngs.params(), S, r_min, r_max, max_phase)
        if not complex_diag:
            theta = jnp.zeros_like(theta)
        if parameterization == "stable_exp":
            self.nu_log = RecurrentParam(jnp.log(nu))
            if complex_diag:
                self.theta_log = RecurrentParam(jnp.log(jnp.maximum(theta, _TINY)))
        elif parameterization == "exp":
            self.nu = RecurrentParam(nu)
            if complex_diag:
                self.theta = RecurrentParam(theta)
        else:
            self.lambda_re = RecurrentParam(jnp.exp(-nu) * jnp.cos(theta))
            if complex_diag:
                self.lambda_im = RecurrentParam(jnp.exp(-nu) * jnp.sin(theta))
        if gamma_norm:
            # log(sqrt(1 - |lambda|^2)) with |lambda|^2 = exp(-2 nu); expm1 stays finite for |lambda| near 1.
            self.gamma_log = RecurrentParam(0.5 * jnp.log(-jnp.expm1(-2.0 * nu)))

        # Paper init: B ~ N(0, 1/(2H)) per real/imag part, C ~ N(0, 1/N), D ~ N(0, 1).
        normal = lambda shape, var: jax.random.normal(rngs.params(), shape, jnp.float32) * math.sqrt(var)
        self.B_re = RecurrentParam(normal((S, H), 1 / (2 * H)))
        self.C_re = nnx.Param(normal((H, S), 1 / d_state))
        if complex_diag:
            self.B_im = RecurrentParam(normal((S, H), 1 / (2 * H)))
            self.C_im = nnx.Param(normal((H, S), 1 / d_state))
        self.D = nnx.Param(normal((H,), 1.0))

    def lam(self):
        """The diagonal of the recurrence, (S,) complex64 (float32 when complex_diag=False)."""
        if self.parameterization == "real_imag":
            re = self.lambda_re[...]
            return jax.lax.complex(re, self.lambda_im[...]) if self.complex_diag else re
        if self.parameterization == "stable_exp":  # exp(-exp(.)) keeps |lambda| < 1 whatever the values
            nu = jnp.exp(self.nu_log[...])
            theta = jnp.exp(self.theta_log[...]) if self.complex_diag else None
        else:
            nu, theta = self.nu[...], (self.theta[...] if self.complex_diag else None)
        return jnp.exp(-nu) if theta is None else jnp.exp(jax.lax.complex(-nu, theta))

    def gamma(self):
        """Input normalisation, (S,) float32."""
        if not self.gamma_norm:
            return jnp.ones((self.B_re.shape[0],), jnp.float32)
        return jnp.exp(self.gamma_log[...])

    def _drive(self, u_xH):
        """gamma * (B u) for u of shape (..., H) -> (..., S) float32/complex64; the matmul runs in u's dtype
        (bfloat16 under mixed precision); real parts only in the real case."""
        g = self.gamma()
        matmul = lambda W: (u_xH @ W[...].T.astype(u_xH.dtype)).astype(jnp.float32)
        if not self.complex_diag:
            return g * matmul(self.B_re)
        return g * jax.lax.complex(matmul(self.B_re), matmul(self.B_im))

    def _readout(self, x_xS, u_xH):
        """Re(C x) + D u, with Re(C x) = C_re Re(x) - C_im Im(x); matmuls in u's dtype, float32 out."""
        matmul = lambda x, W: x.astype(u_xH.dtype) @ W[...].T.astype(u_xH.dtype)
        y = matmul(jnp.real(x_xS), self.C_re)
        if self.complex_diag:
            y = y - matmul(jnp.imag(x_xS), self.C_im)
        return y.astype(jnp.float32) + self.D[...] * u_xH.astype(jnp.float32)

    def __call__(self, u_BxLxH, mask_BxL=None):
        # Matmuls in the input's dtype when it is bfloat16 (mixed precision, models/blocks.py), else float32;
        # the scan and its state are float32/complex64 either way.
        u_BxLxH = u_BxLxH.astype(jnp.promote_types(u_BxLxH.dtype, jnp.bfloat16))
        lam_S, bu_BxLxS = self.lam(), self._drive(u_BxLxH)
        if mask_BxL is not None:
            # Zero input at pads: the reverse scan then starts from zero state at the last valid position.
            bu_BxLxS = jnp.where(mask_BxL[..., None], bu_BxLxS, jnp.zeros((), bu_BxLxS.dtype))
        N = self.d_state
        # lambda is time-invariant: passed without the time axis (lam_N), never repeated L times.
        run = lambda lam_N, b_BxLxN, reverse: scan.linear_recurrence(
            lam_N, b_BxLxN, reverse=reverse, axis=1, method=self.scan_method)
        x_BxLxS = run(lam_S[:N], bu_BxLxS[..., :N], False)
        if self.bidirectional:
            x_BxLxS = jnp.concatenate([x_BxLxS, run(lam_S[N:], bu_BxLxS[..., N:], True)], axis=-1)
        return self._readout(x_BxLxS, u_BxLxH)

    def initial_state(self, batch_size):
        """Zero state (B, N) for step()."""
        self._check_causal()
        dtype = jnp.complex64 if self.complex_diag else jnp.float32
        return jnp.zeros((batch_size, self.d_state), dtype)

    def step(self, x_BxN, u_BxH):
        """One step of recurrent inference: (x_{k-1}, u_k) -> (x_k, y_k); equals the parallel call."""
        self._check_causal()
        u_BxH = u_BxH.astype(jnp.float32)
        x_BxN = self.lam() * x_BxN + self._drive(u_BxH)
        return x_BxN, self._readout(x_BxN, u_BxH)

    def _check_causal(self):
        if self.bidirectional:
            raise ValueError("LRU.step/initial_state: a bidirectional LRU reads the future (its backward scan), "
                             "so it has no recurrent step mode; use the parallel call layer(u_BxLxH, mask_BxL).")
