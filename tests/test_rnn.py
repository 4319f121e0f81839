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
