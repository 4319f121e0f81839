"""models.rotation.RotationRNN against a float64 NumPy loop with explicit 2x2 matrices; its init; its config."""
import jax
import numpy as np
import pytest
from flax import nnx

from experiments import optim
from models.rotation import RotationRNN
from model_helpers import check_every_variant_builds

H, N, B, L = 4, 3, 2, 9


def _np(layer, name):
    return np.asarray(getattr(layer, name)[...], np.float64)


def numpy_rotation(layer, u_LxH):
    """x_k = r R(theta) x_{k-1} + gamma B u_k per block (explicit matrices), y = C x + D u; backward half reversed."""
    r, theta = np.exp(-np.exp(_np(layer, "nu_log"))), np.exp(_np(layer, "theta_log"))
    R = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])  # (2, 2, S)
    A = r[:, None, None] * R.transpose(2, 0, 1)
    gamma, B_, C_, D_ = np.exp(_np(layer, "gamma_log")), _np(layer, "B"), _np(layer, "C"), _np(layer, "D")
    n_dirs = 2 if layer.bidirectional else 1
    x_LxSx2 = np.zeros((len(u_LxH), N * n_dirs, 2))
    for d in range(n_dirs):
        s = slice(d * N, (d + 1) * N)
        x = np.zeros((N, 2))
        for k in (range(len(u_LxH)) if d == 0 else reversed(range(len(u_LxH)))):
            x = np.einsum("nij,nj->ni", A[s], x) + gamma[s, None] * (B_[s] @ u_LxH[k])
            x_LxSx2[k, s] = x
    return np.einsum("hsi,lsi->lh", C_, x_LxSx2) + D_ * u_LxH


@pytest.mark.parametrize("cfg", [dict(), dict(bidirectional=True, scan_method="associative")],
                         ids=["causal", "bidir-associative"])
def test_matches_float64_numpy_loop_with_padding(cfg):
    layer = RotationRNN(H, N, r_min=0.4, r_max=0.95, **cfg, rngs=nnx.Rngs(0))
    for i, (_, var) in enumerate(nnx.iter_graph(layer)):  # off the init values
        if isinstance(var, nnx.Param):
            var[...] = var[...] + 0.05 * jax.random.normal(jax.random.key(i), var.shape)
    lengths = np.array([L, 5])
    u_BxLxH = np.random.default_rng(0).normal(size=(B, L, H)).astype(np.float32)
    y = np.asarray(layer(u_BxLxH, np.arange(L)[None] < lengths[:, None]))
    for i, n in enumerate(lengths):
        np.testing.assert_allclose(y[i, :n], numpy_rotation(layer, u_BxLxH[i, :n].astype(np.float64)),
                                   rtol=1e-4, atol=1e-5)


def test_init_is_the_lru_ring_and_groups():
    layer = RotationRNN(8, 500, r_min=0.5, r_max=0.9, max_phase=1.0, rngs=nnx.Rngs(0))
    alpha, beta = np.asarray(layer.transition(), np.float64).T
    r, theta = np.hypot(alpha, beta), np.arctan2(beta, alpha)
    assert 0.5 - 1e-6 <= r.min() and r.max() <= 0.9 + 1e-6 and 0 <= theta.min() and theta.max() <= 1.0
    np.testing.assert_allclose(np.exp(_np(layer, "gamma_log")), np.sqrt(1 - r**2), rtol=1e-5)
    groups = {".".join(map(str, p)): g for p, g in nnx.to_flat_state(optim.param_labels(layer))}
    assert groups == {"nu_log": "recurrent", "theta_log": "recurrent", "gamma_log": "recurrent", "B": "recurrent",
                      "C": "decay", "D": "no_decay"}


def test_config_every_variant_builds_its_layer():
    from experiments.configs import rotation as rotation_config
    check_every_variant_builds(rotation_config, "rotation", RotationRNN, "listops_smok")
