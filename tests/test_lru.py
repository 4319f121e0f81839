"""models.lru.LRU against a NumPy loop of the paper's equations (Orvieto et al. 2023), its init, switches, step."""
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import models
import scan
from models.lru import LRU

H, N, B, L = 4, 6, 2, 9


def _np(layer, name):
    return np.asarray(getattr(layer, name)[...], np.float64) if hasattr(layer, name) else None


def numpy_lambda(layer):
    """lambda from the stored parameters, straight from each parameterisation's formula."""
    p, complex_diag = layer.parameterization, layer.complex_diag
    if p == "stable_exp":
        phase = np.exp(_np(layer, "theta_log")) if complex_diag else 0.0
        return np.exp(-np.exp(_np(layer, "nu_log")) + 1j * phase)
    if p == "exp":
        return np.exp(-_np(layer, "nu") + 1j * (_np(layer, "theta") if complex_diag else 0.0))
    return _np(layer, "lambda_re") + 1j * (_np(layer, "lambda_im") if complex_diag else 0.0)


def numpy_lru(layer, u_LxH):
    """x_k = lambda x_{k-1} + gamma (B u_k); y_k = Re(C x_k) + D u_k, a float64 loop over one unpadded sequence.
    Bidirectional: the second half of the state runs from the end backwards; C reads [x_fwd; x_bwd]."""
    lam = numpy_lambda(layer)
    gamma = np.exp(_np(layer, "gamma_log")) if layer.gamma_norm else np.ones_like(lam.real)
    imag = lambda name: _np(layer, name) if layer.complex_diag else 0.0
    B_ = _np(layer, "B_re") + 1j * imag("B_im")
    C_ = _np(layer, "C_re") + 1j * imag("C_im")
    D_ = _np(layer, "D")
    n_dirs = 2 if layer.bidirectional else 1
    x_LxS = np.zeros((len(u_LxH), N * n_dirs), np.complex128)
    for d in range(n_dirs):
        s = slice(d * N, (d + 1) * N)
        x = np.zeros(N, np.complex128)
        for k in (range(len(u_LxH)) if d == 0 else reversed(range(len(u_LxH)))):
            x = lam[s] * x + gamma[s] * (B_[s] @ u_LxH[k])
            x_LxS[k, s] = x
    return (x_LxS @ C_.T).real + D_ * u_LxH


def perturb(layer, scale=0.05, seed=1):
    """Move every parameter off its init so that the comparison is not specific to init values."""
    for i, (_, var) in enumerate(nnx.iter_graph(layer)):
        if isinstance(var, nnx.Param):
            noise = jax.random.normal(jax.random.key(seed + i), var.shape)
            var[...] = var[...] + scale * noise


CONFIGS = [
    dict(),
    dict(parameterization="exp"),
    dict(parameterization="real_imag"),
    dict(gamma_norm=False),
    dict(complex_diag=False),
    dict(parameterization="real_imag", complex_diag=False, gamma_norm=False),
    dict(bidirectional=True),
    dict(bidirectional=True, parameterization="exp", complex_diag=False),
    dict(bidirectional=True, scan_method="associative"),
    dict(bidirectional=True, scan_method="chunked"),
]
ids = lambda c: "-".join(f"{k}={v}" for k, v in c.items()) or "paper"


@pytest.mark.parametrize("cfg", CONFIGS, ids=ids)
def test_matches_numpy_loop_with_padding(cfg):
    layer = LRU(H, N, r_min=0.4, r_max=0.95, max_phase=math.pi, **cfg, rngs=nnx.Rngs(0))
    perturb(layer)
    lengths = np.array([L, 5])
    u_BxLxH = np.random.default_rng(0).normal(size=(B, L, H)).astype(np.float32)
    mask_BxL = np.arange(L)[None] < lengths[:, None]
    y_BxLxH = np.asarray(layer(jnp.asarray(u_BxLxH), jnp.asarray(mask_BxL)))
    for b, n in enumerate(lengths):  # the reference only ever sees the valid part of the sequence
        np.testing.assert_allclose(y_BxLxH[b, :n], numpy_lru(layer, u_BxLxH[b, :n].astype(np.float64)),
                                   rtol=1e-5, atol=1e-5)
    if cfg.get("bidirectional"):
        # The test can fail: without the mask the padding (non-zero here) reaches the reverse scan.
        y_nomask = np.asarray(layer(jnp.asarray(u_BxLxH)))
        assert np.abs(y_nomask[1, :5] - y_BxLxH[1, :5]).max() > 1e-3


def ks_distance(samples, cdf):
    """Kolmogorov-Smirnov statistic sup |F_n - F|."""
    x = np.sort(samples)
    f, n = cdf(x), len(x)
    return max(np.max(np.arange(1, n + 1) / n - f), np.max(f - np.arange(n) / n))


@pytest.mark.parametrize("parameterization", models.lru.PARAMETERIZATIONS)
def test_ring_init_distribution(parameterization):
    n, r_min, r_max, max_phase = 20000, 0.4, 0.9, 0.75 * math.pi
    layer = LRU(1, n, r_min=r_min, r_max=r_max, max_phase=max_phase, parameterization=parameterization,
                rngs=nnx.Rngs(3))
    lam = np.asarray(layer.lam(), np.complex128)
    r, phase = np.abs(lam), np.angle(lam) % (2 * np.pi)
    assert r.min() >= r_min - 1e-6 and r.max() <= r_max + 1e-6
    assert phase.min() >= 0 and phase.max() <= max_phase + 1e-6
    # KS critical value at alpha = 1e-4 is 2.15/sqrt(n) = 0.015.
    tol = 2.15 / math.sqrt(n)
    uniform_r2 = lambda x: (x**2 - r_min**2) / (r_max**2 - r_min**2)
    assert ks_distance(r, uniform_r2) < tol
    assert ks_distance(phase, lambda x: x / max_phase) < tol
    # The check has power: |lambda| uniform (instead of |lambda|^2) is far outside the tolerance.
    assert ks_distance(r, lambda x: (x - r_min) / (r_max - r_min)) > 5 * tol
    # gamma_log = log(sqrt(1 - |lambda|^2)) at init.
    np.testing.assert_allclose(np.asarray(layer.gamma_log[...]), 0.5 * np.log(1 - r**2), rtol=1e-4, atol=1e-5)


def test_disk_init_is_finite():
    """r_min = 0, r_max = 1 (uniform on the unit disk): all parameters finite, |lambda| < 1."""
    layer = LRU(2, 50000, rngs=nnx.Rngs(0))
    for name in ("nu_log", "theta_log", "gamma_log"):
        assert np.isfinite(np.asarray(getattr(layer, name)[...])).all(), name
    assert np.abs(np.asarray(layer.lam())).max() < 1.0


@pytest.mark.parametrize("parameterization", models.lru.PARAMETERIZATIONS)
def test_parameterisation_maps_to_lambda(parameterization):
    layer = LRU(H, 2, parameterization=parameterization, rngs=nnx.Rngs(0))
    nu, theta = np.array([0.1, 0.7]), np.array([0.5, 2.0])
    want = np.exp(-nu + 1j * theta)
    if parameterization == "stable_exp":
        layer.nu_log[...], layer.theta_log[...] = jnp.log(nu), jnp.log(theta)
    elif parameterization == "exp":
        layer.nu[...], layer.theta[...] = jnp.asarray(nu), jnp.asarray(theta)
    else:
        layer.lambda_re[...], layer.lambda_im[...] = jnp.asarray(want.real), jnp.asarray(want.imag)
    np.testing.assert_allclose(np.asarray(layer.lam()), want, rtol=1e-6)
    assert layer.lam().dtype == jnp.complex64


@pytest.mark.parametrize("parameterization", models.lru.PARAMETERIZATIONS)
def test_real_diagonal(parameterization):
    r_min, r_max = 0.3, 0.8
    layer = LRU(H, 500, r_min=r_min, r_max=r_max, complex_diag=False, parameterization=parameterization,
                rngs=nnx.Rngs(0))
    lam = np.asarray(layer.lam())
    assert lam.dtype == np.float32 and lam.min() >= r_min - 1e-6 and lam.max() <= r_max + 1e-6
    for name in ("theta_log", "theta", "lambda_im", "B_im", "C_im"):
        assert not hasattr(layer, name), name
    assert layer.initial_state(3).dtype == jnp.float32


def test_gamma_norm_off():
    layer = LRU(H, N, gamma_norm=False, rngs=nnx.Rngs(0))
    assert not hasattr(layer, "gamma_log")
    np.testing.assert_array_equal(np.asarray(layer.gamma()), np.ones(N))


@pytest.mark.parametrize("bidirectional", [False, True])
def test_parameter_shapes_and_groups(bidirectional):
    layer = LRU(H, N, bidirectional=bidirectional, rngs=nnx.Rngs(0))
    S = 2 * N if bidirectional else N
    shapes = {"nu_log": (S,), "theta_log": (S,), "gamma_log": (S,), "B_re": (S, H), "B_im": (S, H),
              "C_re": (H, S), "C_im": (H, S), "D": (H,)}
    for name, shape in shapes.items():
        var = getattr(layer, name)
        assert var.shape == shape, name
        assert var[...].dtype == jnp.float32, name  # stored real; complex only in the forward pass
        recurrent = name not in ("C_re", "C_im", "D")
        assert isinstance(var, models.RecurrentParam) == recurrent, name
        assert isinstance(var, nnx.Param), name
    assert set(nnx.state(layer, nnx.Param).keys()) == set(shapes)


@pytest.mark.parametrize("parameterization", ["exp", "real_imag"])
def test_variant_parameters_are_recurrent(parameterization):
    layer = LRU(H, N, parameterization=parameterization, rngs=nnx.Rngs(0))
    names = {"exp": ("nu", "theta"), "real_imag": ("lambda_re", "lambda_im")}[parameterization]
    for name in names + ("gamma_log", "B_re", "B_im"):
        assert isinstance(getattr(layer, name), models.RecurrentParam), name


@pytest.mark.parametrize("cfg", [dict(), dict(complex_diag=False), dict(parameterization="real_imag")], ids=ids)
def test_step_matches_parallel(cfg):
    layer = LRU(H, N, r_min=0.5, r_max=0.99, **cfg, rngs=nnx.Rngs(0))
    u_BxLxH = jax.random.normal(jax.random.key(1), (B, L, H))
    x, ys = layer.initial_state(B), []
    assert x.shape == (B, N)
    for k in range(L):
        x, y = layer.step(x, u_BxLxH[:, k])
        ys.append(y)
    np.testing.assert_allclose(np.stack(ys, 1), np.asarray(layer(u_BxLxH)), rtol=1e-5, atol=1e-5)


def test_bidirectional_has_no_step():
    layer = LRU(H, N, bidirectional=True, rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match="bidirectional"):
        layer.initial_state(B)
    with pytest.raises(ValueError, match="bidirectional"):
        layer.step(jnp.zeros((B, N), jnp.complex64), jnp.zeros((B, H)))


def test_scan_method_is_passed_to_scan(monkeypatch):
    seen = []

    def spy(a, b, **kwargs):
        seen.append(kwargs)
        return real(a, b, **kwargs)

    real = scan.linear_recurrence
    monkeypatch.setattr(scan, "linear_recurrence", spy)
    LRU(H, N, bidirectional=True, scan_method="sequential", rngs=nnx.Rngs(0))(jnp.ones((B, L, H)))
    assert [(k["method"], k["reverse"], k["axis"]) for k in seen] == [("sequential", False, 1),
                                                                     ("sequential", True, 1)]


def test_gradients_finite_and_reach_recurrent_params():
    layer = LRU(H, N, bidirectional=True, rngs=nnx.Rngs(0))
    u_BxLxH = jax.random.normal(jax.random.key(1), (B, L, H))
    mask_BxL = jnp.arange(L)[None] < jnp.array([[L], [4]])
    grads = nnx.jit(nnx.grad(lambda m: (m(u_BxLxH, mask_BxL) ** 2).mean()))(layer)
    for path, g in nnx.to_flat_state(grads):
        g = np.asarray(g[...])
        assert np.isfinite(g).all() and np.abs(g).max() > 0, path


def test_rejects_bad_arguments():
    with pytest.raises(ValueError, match="parameterization"):
        LRU(H, N, parameterization="polar", rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match="r_min"):
        LRU(H, N, r_min=0.9, r_max=0.5, rngs=nnx.Rngs(0))
