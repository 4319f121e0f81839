"""models.selective.Selective against a float64 NumPy loop of the paper's formulas (Gu & Dao 2023), its init and
its parameter groups."""
import math

import jax
import numpy as np
import pytest
from flax import nnx

from experiments import optim
from models.selective import Selective
from model_helpers import check_every_variant_builds, perturb

H, N, B, L, K = 4, 3, 2, 9, 4
# One compile each (eagerly, every op and the scan's loop compile on their own: ~4x slower).
call = nnx.jit(lambda layer, u, mask: layer(u, mask))
step = nnx.jit(lambda layer, state, u_t: layer.step(state, u_t))


def _np(layer, name):
    return np.asarray(getattr(layer, name)[...], np.float64)


def numpy_selective(layer, u_LxH):
    """The module docstring's equations as a float64 loop over one unpadded sequence, stepping t = 0..L-1."""
    softplus = lambda v: np.log1p(np.exp(v))
    silu = lambda v: v / (1 + np.exp(-v))
    W_in = np.asarray(layer.in_proj.kernel[...], np.float64)
    W_out = np.asarray(layer.out_proj.kernel[...], np.float64)
    conv_w, conv_b = _np(layer, "conv_w"), _np(layer, "conv_b")
    A = -np.exp(_np(layer, "A_log"))
    E = A.shape[0]
    h = np.zeros((E, N))
    history = [np.zeros(E)] * (K - 1)  # zeros before position 0
    ys = []
    for t in range(len(u_LxH)):
        x, z = np.split(u_LxH[t] @ W_in, 2)
        history.append(x)
        xc = silu(conv_b + sum(conv_w[j] * history[t + j] for j in range(K)))  # x_{t-K+1..t}
        dt = softplus(xc @ _np(layer, "W_dt_down") @ _np(layer, "W_dt_up") + _np(layer, "b_dt"))
        B_t, C_t = xc @ _np(layer, "W_B"), xc @ _np(layer, "W_C")
        h = np.exp(dt[:, None] * A) * h + (dt * xc)[:, None] * B_t[None, :]
        y = h @ C_t + _np(layer, "D") * xc
        ys.append((y * silu(z)) @ W_out)
    return np.stack(ys)


@pytest.mark.parametrize("scan_method", ["sequential", "associative"])
def test_matches_float64_numpy_loop_with_padding(scan_method):
    layer = Selective(H, N, expand=2, d_conv=K, dt_rank=2, dt_min=0.05, dt_max=0.5, scan_method=scan_method,
                      rngs=nnx.Rngs(0))
    perturb(layer)
    lengths = np.array([L, 5])
    u_BxLxH = np.random.default_rng(0).normal(size=(B, L, H)).astype(np.float32)
    mask_BxL = np.arange(L)[None] < lengths[:, None]
    y = np.asarray(call(layer, u_BxLxH, mask_BxL))
    for i, n in enumerate(lengths):
        ref = numpy_selective(layer, u_BxLxH[i, :n].astype(np.float64))
        np.testing.assert_allclose(y[i, :n], ref, rtol=1e-4, atol=1e-5)


def test_step_matches_numpy_loop():
    layer = Selective(H, N, expand=1, d_conv=K, rngs=nnx.Rngs(2))
    perturb(layer, seed=3)
    u_LxH = np.random.default_rng(1).normal(size=(L, H)).astype(np.float32)
    state, ys = layer.initial_state(1), []
    for t in range(L):
        state, y_t = step(layer, state, u_LxH[None, t])
        ys.append(np.asarray(y_t[0]))
    assert state[0].shape == (1, K - 1, H) and state[1].shape == (1, H, N)
    np.testing.assert_allclose(np.stack(ys), numpy_selective(layer, u_LxH.astype(np.float64)), rtol=1e-4, atol=1e-5)


def test_init_follows_the_paper():
    dt_min, dt_max, d_model = 1e-3, 1e-1, 40
    layer = Selective(d_model, 5, expand=2, dt_min=dt_min, dt_max=dt_max, rngs=nnx.Rngs(0))
    # S4D-Real: A = -(1..N) in every channel.
    np.testing.assert_allclose(-np.exp(_np(layer, "A_log")), -np.tile(np.arange(1, 6), (80, 1)), rtol=1e-6)
    # b_dt = softplus^-1(dt) with dt in [dt_min, dt_max] (log-uniform: spread over the decades).
    dt = np.log1p(np.exp(_np(layer, "b_dt")))
    assert dt.min() >= dt_min * (1 - 1e-4) and dt.max() <= dt_max * (1 + 1e-4)
    assert np.log10(dt).std() > 0.3  # log-uniform over 2 decades has std 2/sqrt(12) = 0.58
    assert layer.W_dt_up.shape == (math.ceil(d_model / 16), 80)  # paper default rank ceil(H / 16)
    np.testing.assert_array_equal(_np(layer, "D"), 1.0)


def test_parameter_groups():
    layer = Selective(H, N, rngs=nnx.Rngs(0))
    groups = {".".join(map(str, path)): g for path, g in nnx.to_flat_state(optim.param_labels(layer))}
    assert groups == {
        "A_log": "recurrent", "W_dt_down": "recurrent", "W_dt_up": "recurrent", "b_dt": "recurrent",
        "W_B": "decay", "W_C": "decay", "conv_w": "decay", "in_proj.kernel": "decay", "out_proj.kernel": "decay",
        "conv_b": "no_decay", "D": "no_decay"}


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="dt_min"):
        Selective(H, N, dt_min=0.1, dt_max=0.01, rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match="d_conv"):
        Selective(H, N, d_conv=0, rngs=nnx.Rngs(0))


def test_config_every_variant_builds_its_layer():
    from experiments.configs import selective as selective_config
    check_every_variant_builds(selective_config, "selective", Selective, "listop")


def test_left_padding_equals_the_unpadded_sequence():
    """A pad is no time step (dt = 0, conv input 0): three left pads of noise change no output of the 6 valid
    positions against the same 6 inputs unpadded (the conv window and the state are zero before either starts)."""
    layer = Selective(H, N, expand=2, d_conv=K, dt_rank=2, dt_min=0.05, dt_max=0.5, rngs=nnx.Rngs(0))
    perturb(layer)
    u_BxLxH = np.random.default_rng(0).normal(size=(B, 6, H)).astype(np.float32)
    noise = 100 * np.random.default_rng(1).normal(size=(B, 3, H)).astype(np.float32)
    mask_BxL = np.arange(9)[None].repeat(B, 0) >= 3
    y_left = np.asarray(layer(np.concatenate([noise, u_BxLxH], axis=1), mask_BxL))
    np.testing.assert_allclose(y_left[:, 3:], np.asarray(layer(u_BxLxH)), rtol=1e-5, atol=1e-5)
