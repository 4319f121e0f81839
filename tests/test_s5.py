"""models.s5.S5 against float64 NumPy computations of the paper's formulas (Smith et al. 2023, arXiv:2208.04933):
discretisations, the layer (as the full P-state real system, conjugates included), init, options, groups."""
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.linalg
from flax import nnx

import models
from experiments import optim
from model_helpers import np_param, perturb
from models.s5 import S5, block_hippo, discretize

H, P, B, L = 3, 8, 2, 9
LENGTHS = np.array([L, 5])
SSM_PARAMS = ("Lambda_re", "Lambda_im", "B_re", "B_im", "log_dt")


def numpy_discretize(Lambda, B_, dt, method):
    """The paper's formulas in matrix form, float64. ZOH (Eq. (6)): Lambda_bar = exp(Lambda dt) and
    B_bar = int_0^dt exp(Lambda s) ds B, read off the matrix exponential of [[Lambda dt, dt B], [0, 0]] (one
    state at a time, since dt differs per state); bilinear: (I - dt/2 Lambda)^-1 (I + dt/2 Lambda) and
    (I - dt/2 Lambda)^-1 dt B."""
    n, h = B_.shape
    if method == "zoh":
        Lambda_bar, B_bar = np.zeros(n, complex), np.zeros((n, h), complex)
        for p in range(n):
            M = np.zeros((1 + h, 1 + h), complex)
            M[0, 0], M[0, 1:] = Lambda[p] * dt[p], dt[p] * B_[p]
            E = scipy.linalg.expm(M)
            Lambda_bar[p], B_bar[p] = E[0, 0], E[0, 1:]
        return Lambda_bar, B_bar
    left = np.linalg.inv(np.eye(n) - np.diag(dt / 2 * Lambda))
    return np.diag(left @ (np.eye(n) + np.diag(dt / 2 * Lambda))), left @ (np.diag(dt) @ B_)


def numpy_ssm(layer):
    Lambda = np_param(layer, "Lambda_re") + 1j * np_param(layer, "Lambda_im")
    if layer.clip_eigs:
        Lambda = np.minimum(Lambda.real, -1e-4) + 1j * Lambda.imag
    B_ = np_param(layer, "B_re") + 1j * np_param(layer, "B_im")
    return numpy_discretize(Lambda, B_, np.exp(np_param(layer, "log_dt")), layer.discretization)


def numpy_s5(layer, u_LxH):
    """The full real system on one unpadded sequence: P states (the kept P/2 and their conjugates),
    y = Re(C_full x_full) + D u, no factor 2; bidirectional: a second set of P states run from the end."""
    Lambda_bar, B_bar = numpy_ssm(layer)
    full = lambda z, axis: np.concatenate([z, z.conj()], axis=axis)
    C = np_param(layer, "C_re") + 1j * np_param(layer, "C_im")
    y = np_param(layer, "D") * u_LxH
    n, half = len(u_LxH), len(Lambda_bar)
    for d in range(2 if layer.bidirectional else 1):
        x = np.zeros(2 * half, complex)
        for k in (range(n) if d == 0 else reversed(range(n))):
            x = full(Lambda_bar, 0) * x + full(B_bar, 0) @ u_LxH[k]
            y[k] += (full(C[:, d * half:(d + 1) * half], 1) @ x).real
    return y


@pytest.mark.parametrize("method", ["zoh", "bilinear"])
def test_discretization_matches_paper_formulas(method):
    rng = np.random.default_rng(0)
    Lambda = -rng.uniform(0.1, 1, 5) + 1j * rng.normal(size=5) * 3
    B_ = rng.normal(size=(5, 4)) + 1j * rng.normal(size=(5, 4))
    dt = np.exp(rng.uniform(np.log(1e-3), np.log(0.5), 5))
    got = discretize(jnp.asarray(Lambda, jnp.complex64), jnp.asarray(B_, jnp.complex64),
                     jnp.asarray(dt, jnp.float32), method)
    for g, w in zip(got, numpy_discretize(Lambda, B_, dt, method)):
        np.testing.assert_allclose(np.asarray(g), w, rtol=1e-5, atol=1e-6)
    # The two rules differ (so the test can tell them apart), and agree to O(dt^3) for small dt.
    other = numpy_discretize(Lambda, B_, dt, "bilinear" if method == "zoh" else "zoh")
    assert np.abs(other[0] - np.asarray(got[0])).max() > 1e-4


CONFIGS = [dict(), dict(discretization="bilinear"), dict(bidirectional=True), dict(blocks=2, clip_eigs=True),
           dict(bidirectional=True, discretization="bilinear", C_init="complex_normal")]
ids = lambda c: "-".join(f"{k}={v}" for k, v in c.items()) or "paper"


@pytest.mark.parametrize("cfg", CONFIGS, ids=ids)
def test_matches_numpy_full_system_with_padding(cfg):
    layer = S5(H, P, dt_min=0.01, dt_max=0.5, **cfg, rngs=nnx.Rngs(0))
    perturb(layer)
    u = np.random.default_rng(0).normal(size=(B, L, H)).astype(np.float32)
    m = np.arange(L)[None] < LENGTHS[:, None]
    y = np.asarray(layer(jnp.asarray(u), jnp.asarray(m)))
    for b, n in enumerate(LENGTHS):
        np.testing.assert_allclose(y[b, :n], numpy_s5(layer, u[b, :n].astype(np.float64)), rtol=1e-4, atol=1e-4)
    if cfg.get("bidirectional"):  # the test can fail: without the mask, pads reach the reverse scan
        assert np.abs(np.asarray(layer(jnp.asarray(u)))[1, :5] - y[1, :5]).max() > 1e-3


def test_clip_eigs_keeps_the_state_stable():
    layer = S5(H, P, clip_eigs=True, rngs=nnx.Rngs(0))
    layer.Lambda_re[...] = jnp.full((P // 2,), 0.3)
    assert np.abs(np.asarray(layer.discrete()[0])).max() < 1.0
    layer.clip_eigs = False
    assert np.abs(np.asarray(layer.discrete()[0])).min() > 1.0


@pytest.mark.parametrize("J", [1, 2, 4])
def test_init_is_block_hippo(J):
    P_, H_ = 16, 2000
    layer = S5(H_, P_, blocks=J, rngs=nnx.Rngs(0))
    block, _, _ = models.hippo.legs_normal_half(P_ // J)
    Lambda = np_param(layer, "Lambda_re") + 1j * np_param(layer, "Lambda_im")
    np.testing.assert_allclose(Lambda, np.tile(block, J), rtol=1e-6, atol=1e-6)
    # B = V^-1 B0 with B0 real: 2 Re(V B) recovers B0 (V V^* + conj(V V^*) = I), LeCun normal over P.
    _, V, Vinv = block_hippo(P_, J)
    B_ = np_param(layer, "B_re") + 1j * np_param(layer, "B_im")
    B0 = 2 * (V @ B_).real
    np.testing.assert_allclose(Vinv @ B0, B_, atol=1e-5)
    assert abs(B0.std() * np.sqrt(P_) - 1) < 0.05
    assert np.abs(B0).max() <= 2 / np.sqrt(P_) / 0.87962566 + 1e-5  # truncated at 2 std (jax's lecun_normal)
    # Block-diagonal V: B's rows in block j only mix B0's rows in block j.
    if J > 1:
        assert np.abs(V[: P_ // J, P_ // (2 * J):]).max() == 0.0


@pytest.mark.parametrize("C_init, mean_abs2", [("trunc_standard_normal", lambda P_, H_: 2 / P_),
                                              ("lecun_normal", lambda P_, H_: 2 / (P_ * H_)),
                                              ("complex_normal", lambda P_, H_: 1.0)])
def test_C_init_scales(C_init, mean_abs2):
    """E|C_hp|^2 of C = C0 V (V's columns have unit norm): 2 var(C0) for real and imaginary parts of variance
    1/P (per row) or 1/(P H) (whole array); complex_normal: C itself, E|C|^2 = 1."""
    P_, H_ = 16, 1000
    for bidirectional in (False, True):
        layer = S5(H_, P_, C_init=C_init, bidirectional=bidirectional, rngs=nnx.Rngs(0))
        C = np_param(layer, "C_re") + 1j * np_param(layer, "C_im")
        assert C.shape == (H_, P_ // 2 * (1 + bidirectional))
        assert abs(np.mean(np.abs(C) ** 2) / mean_abs2(P_, H_) - 1) < 0.1


def test_dt_is_log_uniform_per_state():
    n = 1000  # blocks of 2 keep the HiPPO eigendecompositions tiny
    log_dt = np.asarray(S5(2, 2 * n, blocks=n, dt_min=1e-4, dt_max=1e-1, rngs=nnx.Rngs(0)).log_dt[...])
    assert log_dt.shape == (n,)
    u = np.sort((log_dt - np.log(1e-4)) / (np.log(1e-1) - np.log(1e-4)))
    assert u.min() >= -1e-6 and u.max() <= 1 + 1e-6
    assert np.abs(u - np.arange(1, n + 1) / n).max() < 2.0 / np.sqrt(n)  # KS, uniform in log space


@pytest.mark.parametrize("dt_global", [False, True])
def test_parameter_groups(dt_global):
    model = models.build_classifier(layer="s5", layer_args=dict(d_state=P, dt_global=dt_global, bidirectional=True),
                                    d_model=H, n_layers=2, n_classes=3, vocab_size=7, rngs=nnx.Rngs(0))
    layer = model.encoder.blocks[0].layer
    assert set(nnx.state(layer, nnx.Param).keys()) == set(SSM_PARAMS) | {"C_re", "C_im", "D"}
    recurrent = set(SSM_PARAMS) - ({"log_dt"} if dt_global else set())
    labels = dict(nnx.to_flat_state(optim.param_labels(model)))
    for (*_, name), group in ((p, g) for p, g in labels.items() if "layer" in p):
        want = "recurrent" if name in recurrent else "decay" if name in ("C_re", "C_im") else "no_decay"
        assert group == want, name
    assert optim.group_counts(model)["recurrent"]["tensors"] == 2 * len(recurrent)


def test_bidirectional_has_no_step():
    with pytest.raises(ValueError, match="bidirectional"):
        S5(H, P, bidirectional=True, rngs=nnx.Rngs(0)).initial_state(B)


def test_rejects_bad_arguments():
    for kwargs, match in [(dict(discretization="euler"), "discretization"), (dict(C_init="zeros"), "C_init"),
                          (dict(blocks=3), "blocks"), (dict(blocks=8), "even"), (dict(dt_min=0.0), "dt_min")]:
        with pytest.raises(ValueError, match=match):
            S5(H, P, **kwargs, rngs=nnx.Rngs(0))
