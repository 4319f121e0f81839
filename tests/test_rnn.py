"""models/rnn.py: the dense RNNs of the LRU ladder against a float64 NumPy loop, the linear one through the dense
scan operator, step mode, parameter groups. The shared contract (causality, padding, gradients) is in
tests/test_layers.py."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import models
import scan
from experiments import optim

B, L, H, N = 2, 9, 4, 6
LENGTHS = np.array([9, 5])
SIGMA = {"tanh": np.tanh, "relu": lambda x: np.maximum(x, 0.0), "linear": lambda x: x}


def numpy_rnn(layer, u, lengths):
    """float64 loop: h_t = sigma(A h_{t-1} + B u_t), y_t = C [h_fwd; h_bwd]_t + D u_t over each valid prefix."""
    A, Bm, C, D = (np.asarray(p[...], np.float64) for p in (layer.A, layer.B, layer.C, layer.D))
    sigma = SIGMA[layer.nonlinearity]
    u = np.asarray(u, np.float64)
    y = np.zeros(u.shape)
    for b, n in enumerate(lengths):
        hs = []
        for d in range(A.shape[0]):
            order = range(n) if d == 0 else range(n - 1, -1, -1)
            h, h_all = np.zeros(N), np.zeros((n, N))
            for t in order:
                h = sigma(A[d] @ h + Bm[d] @ u[b, t])
                h_all[t] = h
            hs.append(h_all)
        y[b, :n] = np.concatenate(hs, -1) @ C.T + D * u[b, :n]
    return y


@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bidi"])
@pytest.mark.parametrize("nonlinearity", ["tanh", "relu", "linear"])
def test_rnn_equals_float64_loop(nonlinearity, bidirectional):
    layer = models.RNN(H, N, nonlinearity=nonlinearity, bidirectional=bidirectional, rngs=nnx.Rngs(0))
    u = jax.random.normal(jax.random.key(1), (B, L, H))
    mask = jnp.arange(L)[None, :] < jnp.asarray(LENGTHS)[:, None]
    y = np.asarray(layer(u, mask))
    valid = np.asarray(mask)
    np.testing.assert_allclose(y[valid], numpy_rnn(layer, u, LENGTHS)[valid], rtol=1e-4, atol=1e-5)


def test_nonlinearities_differ():
    u = jax.random.normal(jax.random.key(1), (B, L, H))
    ys = [np.asarray(models.RNN(H, N, nonlinearity=s, rngs=nnx.Rngs(0))(u)) for s in ("tanh", "relu", "linear")]
    assert min(np.abs(a - b).max() for i, a in enumerate(ys) for b in ys[i + 1:]) > 1e-3


def test_linear_runs_through_the_dense_scan_operator(monkeypatch):
    layer = models.RNN(H, N, nonlinearity="linear", rngs=nnx.Rngs(0))
    u = jax.random.normal(jax.random.key(1), (B, L, H))
    calls = []
    real = scan.linear_recurrence
    monkeypatch.setattr(scan, "linear_recurrence", lambda *a, **k: calls.append(k["operator"]) or real(*a, **k))
    y = layer(u)
    assert calls == ["dense"]
    h = real(layer.A[...][0], u @ layer.B[...][0].T, operator="dense", axis=1, method="associative")
    np.testing.assert_allclose(np.asarray(y), np.asarray(h @ layer.C[...].T + layer.D[...] * u), rtol=1e-4,
                               atol=1e-5)


@pytest.mark.parametrize("nonlinearity", ["tanh", "linear"])
def test_step_equals_parallel_over_a_longer_sequence(nonlinearity):
    layer = models.RNN(H, N, nonlinearity=nonlinearity, rngs=nnx.Rngs(0))
    u = jax.random.normal(jax.random.key(1), (B, 40, H))
    step = jax.jit(lambda h, u_t: layer.step(h, u_t))
    h, ys = layer.initial_state(B), []
    for t in range(u.shape[1]):
        h, y_t = step(h, u[:, t])
        ys.append(y_t)
    np.testing.assert_allclose(np.stack(ys, 1), np.asarray(layer(u)), rtol=1e-4, atol=1e-4)


def test_bidirectional_has_no_step_mode_and_bad_nonlinearity_is_an_error():
    with pytest.raises(ValueError, match="no recurrent step mode"):
        models.RNN(H, N, bidirectional=True, rngs=nnx.Rngs(0)).initial_state(B)
    with pytest.raises(ValueError, match="nonlinearity must be one of"):
        models.RNN(H, N, nonlinearity="sigmoid", rngs=nnx.Rngs(0))


def test_parameter_groups_and_init():
    layer = models.RNN(64, 128, rngs=nnx.Rngs(0))
    labels = {path[-1]: g for path, g in nnx.to_flat_state(optim.param_labels(layer))}
    assert labels == {"A": "recurrent", "B": "recurrent", "C": "decay", "D": "no_decay"}
    A = np.asarray(layer.A[...][0])
    assert A.std() == pytest.approx(np.sqrt(1 / 128), rel=0.05)  # Glorot normal, N(0, 1/N)
    # Circular law (paper Sec. 3.2): eigenvalues near-uniform on the unit disk; |lambda|^2 ~ U[0, 1] has mean 1/2.
    radius2 = np.abs(np.linalg.eigvals(A)) ** 2
    assert radius2.max() < 1.3 and np.mean(radius2) == pytest.approx(0.5, abs=0.1)


def test_rnn_lin_rung_caps_the_spectral_radius_and_stays_finite_at_length_1024():
    """A Glorot A's spectral radius is above 1 at finite N (seed 0 at N=64: 1.128), and the linear state grows as
    radius^L; the ladder's rnn_lin rung rescales A into the unit disk at init (max_radius=1), so one layer's output
    stays finite at L=1024 (Pathfinder, sCIFAR). Plain Glorot overflows float32 there (1.128^1024 ~ 1e53)."""
    from experiments.configs import ladder
    args = ladder.get_config("pathfinder_smoke,rnn_lin").model.layer_args.to_dict()
    assert args["max_radius"] == 1.0 and args["d_state"] == 64
    u = jax.random.normal(jax.random.key(1), (1, 1024, 4))
    radii = []
    for seed in range(3):
        layer = models.RNN(4, **args, rngs=nnx.Rngs(seed))
        plain = models.RNN(4, **{**args, "max_radius": None}, rngs=nnx.Rngs(seed))
        rho, rho_plain = (np.abs(np.linalg.eigvals(np.asarray(m.A[...][0], np.float64))).max() for m in (layer, plain))
        radii.append(rho_plain)
        assert rho <= 1 + 1e-5, (seed, rho)
        if rho_plain <= 1:  # only rescaled when above the cap
            np.testing.assert_array_equal(np.asarray(layer.A[...]), np.asarray(plain.A[...]))
        else:
            np.testing.assert_allclose(np.asarray(layer.A[...]), np.asarray(plain.A[...]) / rho_plain, rtol=1e-5)
        if seed == 0:
            assert np.abs(np.asarray(layer(u))).max() < 1e3
            assert not np.abs(np.asarray(plain(u))).max() < 1e3  # inf/nan or huge without the cap
    assert max(radii) > 1.1  # the case the cap is for happens at this N


def test_max_radius_must_be_positive():
    with pytest.raises(ValueError, match="max_radius must be None or a number > 0"):
        models.RNN(H, N, max_radius=0.0, rngs=nnx.Rngs(0))
