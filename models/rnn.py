"""Dense RNNs, the first rungs of the LRU paper's ablation ladder (Orvieto et al. 2023, "Resurrecting Recurrent
Neural Networks for Long Sequences", Sec. 3.1-3.2, Table 1 and the "Dense A" row of Table 2):

    h_t = sigma(A h_{t-1} + B u_t),   y_t = C h_t + D u_t,   A: (N, N), B: (N, H), C: (H, N), D: (H,)
    sigma = tanh (RNN-Tanh) | relu (RNN-ReLU) | identity (RNN-Lin, the linear dense RNN)

tanh/relu are nonlinear, so they run as a sequential lax.scan (L dependent steps); the linear RNN runs through
scan.linear_recurrence(operator="dense"). No bias inside sigma (the paper's equations have none), so a zero state
fed zero input stays zero, which is what keeps pads out of the reverse direction.

Initialisation: A ~ Glorot normal, N(0, 2/(N + N)) = N(0, 1/N) per entry; the paper (Sec. 3.2) uses this init
for the dense linear RNN and notes that its eigenvalues are then close to uniform on the unit disk (circular law),
the spectrum the diagonal "Real+Im uniform on the unit disk" rung copies. B, C: Glorot normal N(0, 2/(fan_in +
fan_out)) (the paper states none for them; our choice). D ~ N(0, 1) as in the LRU.

max_radius (our choice, not the paper's): the circular law puts the eigenvalues of a Glorot A inside the unit disk
only as N -> infinity; at finite N the spectral radius rho(A) is above 1 for most seeds (37 of 40; seeds 0-9:
N=64 0.94-1.13, N=192 1.00-1.10, N=256 1.00-1.05, N=384 1.01-1.07), and a linear state grows as rho^L: at L=1024
one RNN-Lin layer's state reached |h| = 3e26 (N=64, seed 0, rho 1.128) and the ladder's pathfinder_smoke rnn_lin
run was non-finite at step 1. With max_radius set, each direction's A is scaled by max_radius / rho(A) at init when
rho(A) > max_radius (else left as drawn), so the spectrum is the Glorot one, squeezed into the disk of that radius.
The ladder's rnn_lin rung uses max_radius=1.0, the unit disk the paper (Sec. 3.2) says the eigenvalues lie in: the
same A rescaled gave |h| <= 68 at L=1024 (N=64, 256; seeds 0-2). Off (None) by default.
"""
import math

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

import scan
from models.params import RecurrentParam, check_size

NONLINEARITIES = {"tanh": jnp.tanh, "relu": jax.nn.relu, "linear": None}


def glorot_normal(key, shape):
    fan_out, fan_in = shape[-2:]
    return jax.random.normal(key, shape, jnp.float32) * math.sqrt(2.0 / (fan_in + fan_out))


def spectral_radius(A_xNxN):
    """rho(A) = max |eigenvalue| per matrix of the leading axes, float32 of shape A.shape[:-2]. Computed by NumPy on
    the host through jax.pure_callback: jnp.linalg.eigvals has no TPU kernel, and this runs once, at init."""
    def host_rho(A):
        return np.abs(np.linalg.eigvals(np.asarray(A, np.float64))).max(axis=-1).astype(np.float32)
    return jax.pure_callback(host_rho, jax.ShapeDtypeStruct(A_xNxN.shape[:-2], jnp.float32), A_xNxN)


def limit_spectral_radius(A_xNxN, max_radius):
    """A scaled by max_radius / rho(A) where its spectral radius rho(A) exceeds max_radius, per matrix of the
    leading axes; others unchanged."""
    rho = spectral_radius(A_xNxN)
    return A_xNxN * jnp.minimum(1.0, max_radius / rho)[..., None, None].astype(A_xNxN.dtype)


class RNN(nnx.Module):
    """Dense RNN layer, batch-first: layer(u_BxLxH, mask_BxL=None) -> y_BxLxH (float32).

    d_state: N, the size of the hidden state (per direction).
    nonlinearity: "tanh" | "relu" | "linear".
    bidirectional: a second, independent (A, B) runs backwards in time; y = C [h_fwd; h_bwd] + D u
      (C: (H, 2N)), as in the bidirectional LRU. Then there is no step mode.
    scan_method: passed to scan.linear_recurrence (linear only; tanh/relu are always sequential).
    max_radius: None (plain Glorot A) or a number > 0: A is rescaled at init so its spectral radius is at most
      max_radius (module docstring; our choice, not the paper's). Only the init: training may move it past.

    Parameters: A (n_dir, N, N) and B (n_dir, N, H) are models.RecurrentParam (own lr, no weight decay, as the
    LRU's recurrent parameters); C, D are plain parameters.
    Padding (mask_BxL, True = valid, right padding): B u is zeroed at pads, so the reverse recurrence starts from
    a zero state at the last valid position and pads never reach valid outputs. Outputs at pads are meaningless.
    """

    def __init__(self, d_model, d_state, *, nonlinearity="tanh", bidirectional=False, scan_method="auto",
                 max_radius=None, rngs: nnx.Rngs):
        if nonlinearity not in NONLINEARITIES:
            raise ValueError(f"nonlinearity must be one of {tuple(NONLINEARITIES)}, got {nonlinearity!r}")
        if max_radius is not None and not max_radius > 0:
            raise ValueError(f"max_radius must be None or a number > 0, got {max_radius!r}")
        check_size("RNN", "d_state (N)", d_state)
        self.d_state, self.nonlinearity = d_state, nonlinearity
        self.bidirectional, self.scan_method = bidirectional, scan_method
        H, N, n_dir = d_model, d_state, 2 if bidirectional else 1
        A = glorot_normal(rngs.params(), (n_dir, N, N))
        self.A = RecurrentParam(A if max_radius is None else limit_spectral_radius(A, max_radius))
        self.B = RecurrentParam(glorot_normal(rngs.params(), (n_dir, N, H)))
        self.C = nnx.Param(glorot_normal(rngs.params(), (H, n_dir * N)))
        self.D = nnx.Param(jax.random.normal(rngs.params(), (H,), jnp.float32))

    def _recur(self, A_NxN, bu_BxLxN, reverse):
        """Every state h_t (B, L, N) of h_t = sigma(A h_{t-1} + bu_t), h_{-1} = 0."""
        sigma = NONLINEARITIES[self.nonlinearity]
        if sigma is None:
            return scan.linear_recurrence(A_NxN, bu_BxLxN, reverse=reverse, axis=1, method=self.scan_method,
                                          operator="dense")

        def step(h_BxN, bu_BxN):
            h_BxN = sigma(h_BxN @ A_NxN.T + bu_BxN)
            return h_BxN, h_BxN

        h0_BxN = jnp.zeros((bu_BxLxN.shape[0], self.d_state), jnp.float32)
        _, h_LxBxN = jax.lax.scan(step, h0_BxN, jnp.swapaxes(bu_BxLxN, 0, 1), reverse=reverse)
        return jnp.swapaxes(h_LxBxN, 0, 1)

    def __call__(self, u_BxLxH, mask_BxL=None):
        u_BxLxH = u_BxLxH.astype(jnp.float32)
        A, B = self.A[...], self.B[...]
        hs = []
        for d in range(A.shape[0]):  # d = 0 forward, d = 1 backward
            bu_BxLxN = u_BxLxH @ B[d].T
            if mask_BxL is not None:
                bu_BxLxN = jnp.where(mask_BxL[..., None], bu_BxLxN, 0.0)
            hs.append(self._recur(A[d], bu_BxLxN, reverse=d == 1))
        return jnp.concatenate(hs, axis=-1) @ self.C[...].T + self.D[...] * u_BxLxH

    def initial_state(self, batch_size):
        """Zero state (B, N) float32 for step()."""
        self._check_causal()
        return jnp.zeros((batch_size, self.d_state), jnp.float32)

    def step(self, h_BxN, u_BxH):
        """One step of recurrent inference: (h_{t-1}, u_t) -> (h_t, y_t); equals the parallel call."""
        self._check_causal()
        u_BxH = u_BxH.astype(jnp.float32)
        sigma = NONLINEARITIES[self.nonlinearity] or (lambda x: x)
        h_BxN = sigma(h_BxN @ self.A[...][0].T + u_BxH @ self.B[...][0].T)
        return h_BxN, h_BxN @ self.C[...].T + self.D[...] * u_BxH

    def _check_causal(self):
        if self.bidirectional:
            raise ValueError("RNN.step/initial_state: a bidirectional RNN reads the future (its backward pass), so "
                             "it has no recurrent step mode; use the parallel call layer(u_BxLxH, mask_BxL).")
