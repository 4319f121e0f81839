"""S4D: Gu, Gupta, Goel, Re 2022, "On the Parameterization and Initialization of Diagonal State Space Models"
(arXiv:2206.11893). H independent SISO SSMs (one per channel h), each with N/2 complex modes n (the other N/2 are
their conjugates, so the output is 2 Re(.)); zero-order hold with a learned dt_h:

    Abar = exp(dt A),  Bbar = (exp(dt A) - 1) / A * B                              (ZOH, paper Eq. (5))
    x_k = Abar x_{k-1} + Bbar u_k,   y_k = 2 Re(sum_n C_n x_{k,n}) + D u_k
        = sum_{j<=k} K_{k-j} u_j + D u_k,   K_l = 2 Re(sum_n C_n Bbar_n exp(dt A_n l))   (the convolution form)

A = -exp(A_re_log) + i A_im (real part kept negative). Inits (paper Sec. 4; n = 0..N/2-1, B = 1 unless noted):
  legs  diagonal part of the HiPPO-LegS normal form (models/hippo.py): A_n = -1/2 + i w_n, B = V^* B_LegS
        with Im(B) clipped to [-2, 2] (as the official S4 code does; the paper's 1/2 factor on B is dropped there too)
  lin   A_n = -1/2 + i pi n        inv   A_n = -1/2 + i N/pi (N/(2n+1) - 1)        real  A_n = -(n+1)
(imaginary parts taken >= 0; the official code stores the conjugates, which gives the same family of 2 Re(.)).
"""
import math

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

import scan
from models import hippo
from models.params import RecurrentParam

INITS = ("legs", "lin", "inv", "real")
MODES = ("conv", "scan")


def s4d_init(init, N):
    """(A (N/2,), B (N/2,)) complex128 of S4D-<init> for state size N (even)."""
    if N < 2 or N % 2:
        raise ValueError(f"S4D d_state (N) must be even and >= 2 (N/2 conjugate pairs); got {N}")
    n, ones = np.arange(N // 2), np.ones(N // 2, np.complex128)
    if init == "legs":
        A, _, B = hippo.legs_normal_half(N)
        return A, B.real + 1j * np.clip(B.imag, -2.0, 2.0)
    if init == "lin":
        return -0.5 + 1j * np.pi * n, ones
    if init == "inv":
        return -0.5 + 1j * N / np.pi * (N / (2 * n + 1) - 1), ones
    if init == "real":
        return -(n + 1.0) + 0j, ones
    raise ValueError(f"S4D init must be one of {INITS}, got {init!r}")


class S4D(nnx.Module):
    """S4D layer, batch-first: layer(u_BxLxH, mask_BxL=None) -> y_BxLxH float32.

    d_state: N (even); the layer keeps N/2 complex modes per channel.  init: one of INITS.
    mode: "conv" (kernel K of length L, FFT convolution of size 2L) or "scan" (scan.linear_recurrence over
      the (B, L, H, N/2) states, Abar passed without a time axis); the same function, tested equal.
    dt_min, dt_max: log dt_h ~ U[log dt_min, log dt_max], one dt per channel.
    bidirectional: as the S4 code's bidirectional layer: A, B, dt shared, a second C (C_re[1], C_im[1]) for the
      backward direction, which sees only strictly later inputs: y_k += sum_{j>k} K^bwd_{j-k-1} u_j (so u_k
      enters once, through the forward part and D).
    Padding (mask_BxL True = valid, right padded): the input is zeroed at pads, so nothing at a pad reaches a
    valid output in either direction; outputs at pads are meaningless.
    """

    def __init__(self, d_model, d_state=64, *, init="legs", mode="conv", dt_min=1e-3, dt_max=1e-1,
                 bidirectional=False, scan_method="auto", rngs: nnx.Rngs):
        if mode not in MODES:
            raise ValueError(f"S4D mode must be one of {MODES}, got {mode!r}")
        if not 0 < dt_min <= dt_max:
            raise ValueError(f"need 0 < dt_min <= dt_max, got dt_min={dt_min}, dt_max={dt_max}")
        A, B = s4d_init(init, d_state)
        H, n_dirs = d_model, 2 if bidirectional else 1
        self.d_model, self.d_state, self.init, self.mode = d_model, d_state, init, mode
        self.bidirectional, self.scan_method = bidirectional, scan_method
        per_channel = lambda v: jnp.asarray(np.broadcast_to(v, (H, d_state // 2)), jnp.float32)
        self.A_re_log = RecurrentParam(per_channel(np.log(-A.real)))
        self.A_im = RecurrentParam(per_channel(A.imag))
        self.B_re, self.B_im = RecurrentParam(per_channel(B.real)), RecurrentParam(per_channel(B.imag))
        u = jax.random.uniform(rngs.params(), (H,), jnp.float32)
        self.log_dt = RecurrentParam(math.log(dt_min) + u * (math.log(dt_max) - math.log(dt_min)))
        # C ~ complex standard normal (E|C|^2 = 1), D ~ N(0, 1), as in the paper's code.
        c_shape = (n_dirs, H, d_state // 2)
        self.C_re = nnx.Param(jax.random.normal(rngs.params(), c_shape) * math.sqrt(0.5))
        self.C_im = nnx.Param(jax.random.normal(rngs.params(), c_shape) * math.sqrt(0.5))
        self.D = nnx.Param(jax.random.normal(rngs.params(), (H,)))

    def discretize(self):
        """ZOH: (dt A, Abar, Bbar), each (H, N/2) complex64."""
        A = jax.lax.complex(-jnp.exp(self.A_re_log[...]), self.A_im[...])
        dtA = A * jnp.exp(self.log_dt[...])[:, None]
        return dtA, jnp.exp(dtA), jnp.expm1(dtA) / A * jax.lax.complex(self.B_re[...], self.B_im[...])

    def kernel(self, length):
        """K (n_dirs, H, length) float32: K_l = 2 Re(sum_n C_n Bbar_n exp(dt A_n l)) (a Vandermonde product)."""
        dtA, _, Bbar = self.discretize()
        powers_HxNxL = jnp.exp(dtA[..., None] * jnp.arange(length))  # exp(dt A l), not repeated products
        CB = jax.lax.complex(self.C_re[...], self.C_im[...]) * Bbar
        return 2 * jnp.einsum("dhn,hnl->dhl", CB, powers_HxNxL).real

    def _conv(self, u_BxLxH):
        L = u_BxLxH.shape[1]
        K = self.kernel(L)
        # One kernel of length 2L: [K_fwd, flip(K_bwd)]; the circular wrap of the size-2L FFT puts the backward
        # part at lags -1..-(L-1), and zeros would make it causal.
        k_Hx2L = jnp.concatenate([K[0], K[1, :, ::-1] if self.bidirectional else jnp.zeros_like(K[0])], axis=-1)
        y_f = jnp.fft.rfft(u_BxLxH, n=2 * L, axis=1) * jnp.fft.rfft(k_Hx2L, axis=-1).T
        return jnp.fft.irfft(y_f, n=2 * L, axis=1)[:, :L]

    def _scan(self, u_BxLxH):
        _, Abar, Bbar = self.discretize()
        bu_BxLxHxN = Bbar * u_BxLxH[..., None].astype(Bbar.dtype)
        run = lambda reverse: scan.linear_recurrence(Abar, bu_BxLxHxN, reverse=reverse, axis=1,
                                                     method=self.scan_method)
        readout = lambda x, d: 2 * jnp.einsum("blhn,hn->blh", x, jax.lax.complex(self.C_re[d], self.C_im[d])).real
        y = readout(run(False), 0)
        if self.bidirectional:  # the reverse states from position k+1 on (zero past the end)
            x_bwd = jnp.pad(run(True)[:, 1:], [(0, 0), (0, 1), (0, 0), (0, 0)])
            y = y + readout(x_bwd, 1)
        return y

    def __call__(self, u_BxLxH, mask_BxL=None):
        u_BxLxH = u_BxLxH.astype(jnp.float32)
        v_BxLxH = u_BxLxH if mask_BxL is None else jnp.where(mask_BxL[..., None], u_BxLxH, 0.0)
        y = self._conv(v_BxLxH) if self.mode == "conv" else self._scan(v_BxLxH)
        return y + self.D[...] * u_BxLxH

    def initial_state(self, batch_size):
        """Zero state (B, H, N/2) complex64 for step()."""
        self._check_causal()
        return jnp.zeros((batch_size, self.d_model, self.d_state // 2), jnp.complex64)

    def step(self, x_BxHxN, u_BxH):
        """One step of recurrent inference (x_{k-1}, u_k) -> (x_k, y_k); equals the parallel call."""
        self._check_causal()
        u_BxH = u_BxH.astype(jnp.float32)
        _, Abar, Bbar = self.discretize()
        x_BxHxN = Abar * x_BxHxN + Bbar * u_BxH[..., None]
        C = jax.lax.complex(self.C_re[0], self.C_im[0])
        return x_BxHxN, 2 * (x_BxHxN * C).sum(-1).real + self.D[...] * u_BxH

    def _check_causal(self):
        if self.bidirectional:
            raise ValueError("S4D.step/initial_state: a bidirectional S4D reads the future, so it has no "
                             "recurrent step mode; use the parallel call layer(u_BxLxH, mask_BxL).")
