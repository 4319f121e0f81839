"""S5: Smith, Warrington, Linderman 2023, "Simplified State Space Layers for Sequence Modeling" (arXiv:2208.04933).
One MIMO SSM over all H channels with a diagonal state of size P, kept as P/2 complex states (conjugate symmetry,
paper App. D.3, so the readout is 2 Re(C x)):

    x_k = Lambda_bar x_{k-1} + B_bar u_k,   y_k = 2 Re(C x_k) + D u_k
    ZOH (paper Eq. (6)):  Lambda_bar = exp(Lambda dt),  B_bar = (Lambda_bar - 1) / Lambda * B
    bilinear:             Lambda_bar = (1 + dt/2 Lambda) / (1 - dt/2 Lambda),  B_bar = dt / (1 - dt/2 Lambda) * B

dt = exp(log_dt) per state, log-uniform in [dt_min, dt_max] at init.
Init (paper Sec. 4.1 and App. B.1.1): Lambda = the HiPPO-LegS normal-form eigenvalues of a block of size P/J,
repeated J times (block-diagonal V); B = V^{-1} B0 with B0 (P, H) LeCun normal; C = C0 V with C0 (H, P)
("trunc_standard_normal": each row LeCun normal over P; "lecun_normal": LeCun normal over the whole (H, P) array;
"complex_normal": C itself ~ complex normal, E|C_hp|^2 = 1, not multiplied by V). D ~ N(0, 1).
"""
import math

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

import scan
from models import hippo
from models.params import RecurrentParam, check_size

DISCRETIZATIONS = ("zoh", "bilinear")
C_INITS = ("trunc_standard_normal", "lecun_normal", "complex_normal")


def block_hippo(P, J):
    """(Lambda (P/2,), V (P, P/2), Vinv (P/2, P)) complex128: J blocks of the LegS normal form of size P/J."""
    check_size("S5", "blocks (J)", J)
    if P % J or (P // J) % 2:
        raise ValueError(f"S5 needs d_state (P) divisible by blocks (J) with an even block size P/J; got P={P}, J={J}")
    Lambda, V, _ = hippo.legs_normal_half(P // J)
    eye = np.eye(J)  # kron(I_J, V) = block_diag(V, ..., V)
    return np.tile(Lambda, J), np.kron(eye, V), np.kron(eye, V.conj().T)


def discretize(Lambda, B, dt, method):
    """(Lambda_bar (P/2,), B_bar (P/2, H)) from Lambda (P/2,), B (P/2, H), dt (P/2,); the paper's formulas."""
    if method == "zoh":
        Lambda_bar = jnp.exp(Lambda * dt)
        return Lambda_bar, ((Lambda_bar - 1) / Lambda)[:, None] * B
    if method == "bilinear":
        inv = 1 / (1 - dt / 2 * Lambda)
        return inv * (1 + dt / 2 * Lambda), (inv * dt)[:, None] * B
    raise ValueError(f"S5 discretization must be one of {DISCRETIZATIONS}, got {method!r}")


class S5(nnx.Module):
    """S5 layer, batch-first: layer(u_BxLxH, mask_BxL=None) -> y_BxLxH float32 (state complex64, P/2 wide).

    d_state: P; blocks: J; discretization: "zoh" | "bilinear"; C_init: one of C_INITS; clip_eigs: use
    min(Re Lambda, -1e-4) in the forward pass (S5's Image setting); dt_global: log_dt is an ordinary parameter
    (global lr) instead of a RecurrentParam, as S5's --dt_global flag ("treat timescale parameter as global
    parameter or SSM parameter", an optimiser-group switch; the shape stays one dt per state).
    bidirectional (S5's): Lambda, B, dt shared; a reverse scan over the same inputs and a second readout,
    y = 2 Re(C_fwd x_fwd + C_bwd x_bwd) + D u, with C (H, P) = [C_fwd, C_bwd].
    Padding: B_bar u is zeroed at pads (mask_BxL True = valid, right padded), so the reverse scan starts from
    zero at the last valid position; outputs at pads are meaningless.
    """

    def __init__(self, d_model, d_state=64, *, blocks=1, discretization="zoh", C_init="trunc_standard_normal",
                 dt_min=1e-3, dt_max=1e-1, dt_global=False, clip_eigs=False, bidirectional=False,
                 scan_method="auto", rngs: nnx.Rngs):
        if discretization not in DISCRETIZATIONS:
            raise ValueError(f"S5 discretization must be one of {DISCRETIZATIONS}, got {discretization!r}")
        if C_init not in C_INITS:
            raise ValueError(f"S5 C_init must be one of {C_INITS}, got {C_init!r}")
        if not 0 < dt_min <= dt_max:
            raise ValueError(f"need 0 < dt_min <= dt_max, got dt_min={dt_min}, dt_max={dt_max}")
        H, P, n_dirs = d_model, d_state, 2 if bidirectional else 1
        self.d_model, self.d_state, self.discretization = H, P, discretization
        self.clip_eigs, self.bidirectional, self.scan_method = clip_eigs, bidirectional, scan_method
        Lambda, V, Vinv = block_hippo(P, blocks)
        f32 = lambda x: jnp.asarray(x, jnp.float32)
        self.Lambda_re, self.Lambda_im = RecurrentParam(f32(Lambda.real)), RecurrentParam(f32(Lambda.imag))
        lecun = jax.nn.initializers.lecun_normal()  # truncated normal, variance 1 / fan_in
        # jnp (complex64), not NumPy: the layer must also build under jax.eval_shape (config validation).
        V, Vinv = jnp.asarray(V, jnp.complex64), jnp.asarray(Vinv, jnp.complex64)
        B = Vinv @ lecun(rngs.params(), (P, H))  # fan_in over P, as S5's code
        self.B_re, self.B_im = RecurrentParam(f32(B.real)), RecurrentParam(f32(B.imag))
        u = jax.random.uniform(rngs.params(), (P // 2,), jnp.float32)
        log_dt = math.log(dt_min) + u * (math.log(dt_max) - math.log(dt_min))
        self.log_dt = nnx.Param(log_dt) if dt_global else RecurrentParam(log_dt)
        C = jnp.concatenate([self._init_C(C_init, H, P, V, rngs) for _ in range(n_dirs)], axis=1)
        self.C_re, self.C_im = nnx.Param(f32(C.real)), nnx.Param(f32(C.imag))
        self.D = nnx.Param(jax.random.normal(rngs.params(), (H,)))

    @staticmethod
    def _init_C(C_init, H, P, V, rngs):
        """One direction's C (H, P/2) complex64."""
        if C_init == "complex_normal":
            return jax.random.normal(rngs.params(), (H, P // 2, 2)) @ jnp.array([1, 1j]) / math.sqrt(2)
        lecun = jax.nn.initializers.lecun_normal()  # fan_in: axis -2 times the leading axes
        if C_init == "trunc_standard_normal":  # per row of C: variance 1/P (iid, so drawn as one (P, 2H) array)
            C0 = lecun(rngs.params(), (P, 2 * H)).T.reshape(H, 2, P).transpose(0, 2, 1)
        else:  # the whole (H, P, 2) array: variance 1/(H P)
            C0 = lecun(rngs.params(), (H, P, 2))
        return (C0 @ jnp.array([1, 1j], jnp.complex64)) @ V

    def discrete(self):
        """(Lambda_bar (P/2,), B_bar (P/2, H)) complex64 with this layer's discretisation."""
        Lambda_re = jnp.minimum(self.Lambda_re[...], -1e-4) if self.clip_eigs else self.Lambda_re[...]
        Lambda = jax.lax.complex(Lambda_re, self.Lambda_im[...])
        B = jax.lax.complex(self.B_re[...], self.B_im[...])
        return discretize(Lambda, B, jnp.exp(self.log_dt[...]), self.discretization)

    def _readout(self, x_xS, u_xH):
        return 2 * (x_xS @ jax.lax.complex(self.C_re[...], self.C_im[...]).T).real + self.D[...] * u_xH

    def __call__(self, u_BxLxH, mask_BxL=None):
        u_BxLxH = u_BxLxH.astype(jnp.float32)
        Lambda_bar, B_bar = self.discrete()
        bu_BxLxP = u_BxLxH.astype(B_bar.dtype) @ B_bar.T
        if mask_BxL is not None:
            bu_BxLxP = jnp.where(mask_BxL[..., None], bu_BxLxP, jnp.zeros((), bu_BxLxP.dtype))
        run = lambda reverse: scan.linear_recurrence(Lambda_bar, bu_BxLxP, reverse=reverse, axis=1,
                                                     method=self.scan_method)
        x = run(False)
        if self.bidirectional:
            x = jnp.concatenate([x, run(True)], axis=-1)
        return self._readout(x, u_BxLxH)

    def initial_state(self, batch_size):
        """Zero state (B, P/2) complex64 for step()."""
        self._check_causal()
        return jnp.zeros((batch_size, self.d_state // 2), jnp.complex64)

    def step(self, x_BxP, u_BxH):
        """One step of recurrent inference (x_{k-1}, u_k) -> (x_k, y_k); equals the parallel call."""
        self._check_causal()
        u_BxH = u_BxH.astype(jnp.float32)
        Lambda_bar, B_bar = self.discrete()
        x_BxP = Lambda_bar * x_BxP + u_BxH.astype(B_bar.dtype) @ B_bar.T
        return x_BxP, self._readout(x_BxP, u_BxH)

    def _check_causal(self):
        if self.bidirectional:
            raise ValueError("S5.step/initial_state: a bidirectional S5 reads the future, so it has no recurrent "
                             "step mode; use the parallel call layer(u_BxLxH, mask_BxL).")
