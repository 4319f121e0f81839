"""Rotation RNN: the LRU (Orvieto et al. 2023, arXiv:2303.06349) in real arithmetic, on the 'rotation' scan operator
(scan/rotation.py). Each of the N state blocks is a real pair x_n in R^2 driven by a scaled rotation:

    x_k = r R(theta) x_{k-1} + gamma (B u_k),   r = exp(-exp(nu_log)), theta = exp(theta_log), gamma = exp(gamma_log)
    y_k = sum_n C_n x_k,n + D u_k               R(theta) = [[cos, -sin], [sin, cos]];  B: (N, 2, H), C: (H, N, 2)

The eigenvalues of r R(theta) are r exp(+-i theta), the LRU's lambda and its conjugate, so the model class is the
LRU's; the init is the LRU's ring init (models.lru.ring_init) and gamma normalisation. What differs is that no
complex number appears anywhere (state, parameters, scan), which is what the operator exists for.
"""
import math

import jax
import jax.numpy as jnp
from flax import nnx

import scan
from models.lru import ring_init
from models.params import RecurrentParam, check_size


class RotationRNN(nnx.Module):
    """Rotation RNN layer, batch-first: layer(u_BxLxH, mask_BxL=None) -> y_BxLxH (float32; real float32 state).

    d_state: N blocks of 2 real numbers per direction. r_min, r_max, max_phase: the LRU ring init of r and theta.
    bidirectional: a second, independent set of recurrent parameters runs backwards in time; the state axis
      holds [forward N, backward N] blocks and the readout sums both.
    scan_method: passed to scan.linear_recurrence(..., operator="rotation").

    Padding (mask_BxL, True = valid, right padding): the input term is zeroed at pads, so the reverse scan starts
    from a zero state at the last valid position and pads never reach valid outputs.
    """

    def __init__(self, d_model, d_state, *, r_min=0.0, r_max=1.0, max_phase=2 * math.pi, bidirectional=False,
                 scan_method="auto", rngs: nnx.Rngs):
        if not 0.0 <= r_min < r_max <= 1.0:
            raise ValueError(f"need 0 <= r_min < r_max <= 1, got r_min={r_min}, r_max={r_max}")
        check_size("RotationRNN", "d_state (N)", d_state)
        self.d_state, self.bidirectional, self.scan_method = d_state, bidirectional, scan_method
        H, S = d_model, d_state * (2 if bidirectional else 1)
        nu, theta = ring_init(rngs.params(), S, r_min, r_max, max_phase)
        self.nu_log = RecurrentParam(jnp.log(nu))
        self.theta_log = RecurrentParam(jnp.log(jnp.maximum(theta, jnp.finfo(jnp.float32).tiny)))
        self.gamma_log = RecurrentParam(0.5 * jnp.log(-jnp.expm1(-2.0 * nu)))  # sqrt(1 - r^2), as in the LRU
        normal = lambda shape, var: jax.random.normal(rngs.params(), shape, jnp.float32) * math.sqrt(var)
        self.B = RecurrentParam(normal((S, 2, H), 1 / (2 * H)))
        self.C = nnx.Param(normal((H, S, 2), 1 / d_state))
        self.D = nnx.Param(normal((H,), 1.0))

    def transition(self):
        """(S, 2) pairs (alpha, beta) = r (cos theta, sin theta): the rotation operator's time-invariant a."""
        r, theta = jnp.exp(-jnp.exp(self.nu_log[...])), jnp.exp(self.theta_log[...])
        return r[:, None] * jnp.stack([jnp.cos(theta), jnp.sin(theta)], axis=-1)

    def _drive(self, u_xH):
        """gamma * (B u): (..., H) -> (..., S, 2)."""
        return jnp.exp(self.gamma_log[...])[:, None] * jnp.einsum("sih,...h->...si", self.B[...], u_xH)

    def _readout(self, x_xSx2, u_xH):
        return jnp.einsum("hsi,...si->...h", self.C[...], x_xSx2) + self.D[...] * u_xH

    def __call__(self, u_BxLxH, mask_BxL=None):
        u_BxLxH = u_BxLxH.astype(jnp.float32)
        a_Sx2, bu_BxLxSx2 = self.transition(), self._drive(u_BxLxH)
        if mask_BxL is not None:
            bu_BxLxSx2 = jnp.where(mask_BxL[..., None, None], bu_BxLxSx2, 0.0)
        N = self.d_state
        run = lambda a, b, reverse: scan.linear_recurrence(a, b, reverse=reverse, axis=1, method=self.scan_method,
                                                           operator="rotation")
        x = run(a_Sx2[:N], bu_BxLxSx2[:, :, :N], False)  # time-invariant a: no time axis, never repeated L times
        if self.bidirectional:
            x = jnp.concatenate([x, run(a_Sx2[N:], bu_BxLxSx2[:, :, N:], True)], axis=2)
        return self._readout(x, u_BxLxH)

    def initial_state(self, batch_size):
        """Zero state (B, N, 2) for step()."""
        self._check_causal()
        return jnp.zeros((batch_size, self.d_state, 2), jnp.float32)

    def step(self, x_BxNx2, u_BxH):
        """One step of recurrent inference: (x_{k-1}, u_k) -> (x_k, y_k); equals the parallel call."""
        self._check_causal()
        u_BxH = u_BxH.astype(jnp.float32)
        x_BxNx2 = scan.OPERATORS["rotation"].step(self.transition(), x_BxNx2, self._drive(u_BxH))
        return x_BxNx2, self._readout(x_BxNx2, u_BxH)

    def _check_causal(self):
        if self.bidirectional:
            raise ValueError("RotationRNN.step/initial_state: a bidirectional layer reads the future (its backward "
                             "scan), so it has no recurrent step mode; use the parallel call.")
