"""models.s4d.S4D against float64 NumPy versions of the paper's formulas (Gu et al. 2022, arXiv:2206.11893):
its inits, the kernel, both computing forms, the bidirectional variant, step mode and parameter groups."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import models
from experiments import optim
from model_helpers import np_param, perturb
from models.s4d import INITS, S4D

H, N, B, L = 3, 6, 2, 9
LENGTHS = np.array([L, 5])
SSM_PARAMS = ("A_re_log", "A_im", "log_dt", "B_re", "B_im")


def numpy_ssm(layer):
    """(A, dt, B, C) in float64 from the stored parameters: A = -exp(A_re_log) + i A_im, dt = exp(log_dt)."""
    A = -np.exp(np_param(layer, "A_re_log")) + 1j * np_param(layer, "A_im")
    C = np_param(layer, "C_re") + 1j * np_param(layer, "C_im")
    return A, np.exp(np_param(layer, "log_dt")), np_param(layer, "B_re") + 1j * np_param(layer, "B_im"), C


def numpy_s4d(layer, u_LxH):
    """The recurrence on one unpadded sequence, float64: x_k = Abar x_{k-1} + Bbar u_k (ZOH),
    y_k = 2 Re(sum_n C_n x_k) + D u_k; bidirectional: + 2 Re(sum_n C^bwd_n x^bwd_{k+1}), x^bwd run from the end."""
    A, dt, B_, C = numpy_ssm(layer)
    Abar = np.exp(dt[:, None] * A)
    Bbar = (Abar - 1) / A * B_
    y = np_param(layer, "D") * u_LxH
    n = len(u_LxH)
    x = np.zeros_like(A)
    for k in range(n):
        x = Abar * x + Bbar * u_LxH[k][:, None]
        y[k] += 2 * (C[0] * x).sum(-1).real
    if layer.bidirectional:
        x = np.zeros_like(A)  # state after reading u_{k+1..n-1}
        for k in reversed(range(n)):
            y[k] += 2 * (C[1] * x).sum(-1).real
            x = Abar * x + Bbar * u_LxH[k][:, None]
    return y


def data():
    u = np.random.default_rng(0).normal(size=(B, L, H)).astype(np.float32)
    return u, np.arange(L)[None] < LENGTHS[:, None]


@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bidir"])
@pytest.mark.parametrize("init", INITS)
def test_both_forms_match_numpy_loop_with_padding(init, bidirectional):
    u, m = data()
    ys = {}
    for mode in ("conv", "scan"):
        layer = S4D(H, N, init=init, mode=mode, bidirectional=bidirectional, dt_min=0.01, dt_max=0.5,
                    rngs=nnx.Rngs(0))
        perturb(layer)
        ys[mode] = np.asarray(layer(jnp.asarray(u), jnp.asarray(m)))
        for b, n in enumerate(LENGTHS):  # the reference only ever sees the valid part of the sequence
            np.testing.assert_allclose(ys[mode][b, :n], numpy_s4d(layer, u[b, :n].astype(np.float64)),
                                       rtol=1e-4, atol=1e-4, err_msg=mode)
    valid = m
    np.testing.assert_allclose(ys["conv"][valid], ys["scan"][valid], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("mode", ["conv", "scan"])
def test_bidirectional_pads_would_leak_without_the_mask(mode):
    u, m = data()
    layer = S4D(H, N, mode=mode, bidirectional=True, rngs=nnx.Rngs(0))
    with_mask = np.asarray(layer(jnp.asarray(u), jnp.asarray(m)))
    without = np.asarray(layer(jnp.asarray(u)))  # pads (non-zero here) now reach the backward direction
    assert np.abs(with_mask[1, :5] - without[1, :5]).max() > 1e-3


def test_kernel_matches_formula():
    layer = S4D(H, N, init="lin", bidirectional=True, dt_min=0.01, dt_max=0.5, rngs=nnx.Rngs(0))
    perturb(layer)
    A, dt, B_, C = numpy_ssm(layer)
    dtA = dt[:, None] * A
    l = np.arange(L)
    # K_l = 2 Re(sum_n C_n B_n (exp(dt A_n) - 1) / A_n exp(dt A_n l))
    want = 2 * np.einsum("dhn,hnl->dhl", C * B_ * (np.exp(dtA) - 1) / A, np.exp(dtA[..., None] * l)).real
    np.testing.assert_allclose(np.asarray(layer.kernel(L)), want, rtol=1e-5, atol=1e-6)


def test_inits_match_their_formulas():
    n = np.arange(N // 2)
    want = {"lin": -0.5 + 1j * np.pi * n, "inv": -0.5 + 1j * N / np.pi * (N / (1 + 2 * n) - 1),
            "real": -(n + 1.0) + 0j}
    S = models.hippo.legs_normal(N)[0]
    for init in INITS:
        layer = S4D(H, N, init=init, rngs=nnx.Rngs(0))
        A, _, B_, _ = numpy_ssm(layer)
        assert A.shape == (H, N // 2)
        if init == "legs":  # eigenvalues of the LegS normal part with Im > 0; B = V^* B_LegS (Im clipped to 2)
            np.testing.assert_allclose(A.real, -0.5, rtol=1e-6)
            eig = np.linalg.eigvals(S)
            eig = eig[eig.imag > 0]
            np.testing.assert_allclose(A[0], eig[np.argsort(eig.imag)], rtol=1e-5, atol=1e-5)
            assert np.abs(B_.imag).max() <= 2.0 and np.abs(B_ - 1).max() > 0.1
        else:
            np.testing.assert_allclose(A, np.broadcast_to(want[init], A.shape), rtol=1e-6, atol=1e-6)
            np.testing.assert_array_equal(B_, 1.0)


def test_dt_is_log_uniform_per_channel():
    dt_min, dt_max = 1e-3, 1e-1
    log_dt = np.asarray(S4D(4000, 2, dt_min=dt_min, dt_max=dt_max, rngs=nnx.Rngs(0)).log_dt[...])
    assert log_dt.shape == (4000,)
    assert log_dt.min() >= np.log(dt_min) - 1e-6 and log_dt.max() <= np.log(dt_max) + 1e-6
    u = np.sort((log_dt - np.log(dt_min)) / (np.log(dt_max) - np.log(dt_min)))
    assert np.abs(u - np.arange(1, 4001) / 4000).max() < 2.0 / np.sqrt(4000)  # KS, uniform in log space


@pytest.mark.parametrize("mode", ["conv", "scan"])
def test_step_matches_parallel_and_conv_is_causal(mode):
    layer = S4D(H, N, mode=mode, dt_min=0.01, dt_max=0.5, rngs=nnx.Rngs(0))
    perturb(layer)
    u = jax.random.normal(jax.random.key(1), (B, L, H))
    x, ys = layer.initial_state(B), []
    assert x.shape == (B, H, N // 2) and x.dtype == jnp.complex64
    for k in range(L):
        x, y = layer.step(x, u[:, k])
        ys.append(y)
    np.testing.assert_allclose(np.stack(ys, 1), np.asarray(layer(u)), rtol=1e-5, atol=1e-5)
    # Causality; the FFT convolution leaks only rounding noise to the future (exact zeros in scan mode).
    grad = np.asarray(jax.grad(lambda u: layer(u)[:, 4].sum())(u))
    assert np.abs(grad[:, 5:]).max() <= 1e-6 * np.abs(grad[:, :5]).max()


def test_bidirectional_has_no_step():
    layer = S4D(H, N, bidirectional=True, rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match="bidirectional"):
        layer.initial_state(B)


def test_real_init_leaves_its_saddle():
    """S4D-Real starts with A, B real, where no gradient reaches C_im; A_im does get one, so one step leaves."""
    layer = S4D(H, N, init="real", rngs=nnx.Rngs(0))
    u = jax.random.normal(jax.random.key(1), (B, L, H))
    grads = nnx.grad(lambda m: (m(u) ** 2).mean())(layer)
    assert np.abs(np.asarray(grads.C_im[...])).max() == 0.0
    assert np.abs(np.asarray(grads.A_im[...])).max() > 0.0


@pytest.mark.parametrize("bidirectional", [False, True])
def test_parameter_shapes_and_groups(bidirectional):
    model = models.build_classifier(layer="s4d", layer_args=dict(d_state=N, bidirectional=bidirectional),
                                    d_model=H, n_layers=2, n_classes=3, vocab_size=7, rngs=nnx.Rngs(0))
    layer = model.encoder.blocks[0].layer
    shapes = {"A_re_log": (H, N // 2), "A_im": (H, N // 2), "log_dt": (H,), "B_re": (H, N // 2),
              "B_im": (H, N // 2), "C_re": (1 + bidirectional, H, N // 2), "C_im": (1 + bidirectional, H, N // 2),
              "D": (H,)}
    assert set(nnx.state(layer, nnx.Param).keys()) == set(shapes)
    for name, shape in shapes.items():
        assert getattr(layer, name).shape == shape and getattr(layer, name)[...].dtype == jnp.float32, name
    labels = dict(nnx.to_flat_state(optim.param_labels(model)))
    for (*_, name), group in ((p, g) for p, g in labels.items() if "layer" in p):
        assert group == ("recurrent" if name in SSM_PARAMS else "no_decay" if name == "D" else "decay"), name
    counts = optim.group_counts(model)
    assert counts["recurrent"]["tensors"] == 2 * len(SSM_PARAMS)  # every SSM parameter of both layers, no other
    assert counts["recurrent"]["parameters"] == 2 * (4 * H * N // 2 + H)


def test_rejects_bad_arguments():
    for kwargs, match in [(dict(init="hippo"), "init"), (dict(mode="fft"), "mode"), (dict(d_state=5), "even"),
                          (dict(dt_min=0.1, dt_max=0.01), "dt_min")]:
        with pytest.raises(ValueError, match=match):
            S4D(H, **{"d_state": N, **kwargs}, rngs=nnx.Rngs(0))
