"""Mixed precision (model.dtype="bfloat16") agrees with float32, and forward-mode AD runs through a whole model.

Tolerances (stated, from the measured gaps at these sizes): bfloat16 has an 8-bit mantissa (relative rounding
2^-9 ~ 2e-3 per operation); through 2 blocks the normwise logit error measured 3e-3 (loss: 1e-3 relative), so
the bounds are 2e-2 on the logits (normwise max|x - ref| / max|ref|) and 1e-2 relative on the loss.
"""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

import models

B, L, H, VOCAB, CLASSES = 4, 32, 16, 12, 5


def _classifier(dtype, seed=0, n_layers=2):
    return models.build_classifier(layer="lru", layer_args=dict(d_state=8, r_min=0.5, r_max=0.95), d_model=H,
                                   n_layers=n_layers, norm="layer", activation="glu", n_classes=CLASSES,
                                   vocab_size=VOCAB, dtype=dtype, rngs=nnx.Rngs(seed))


def _batch(seed=0):
    rng = np.random.default_rng(seed)
    lengths = rng.integers(L // 2, L + 1, B).astype(np.int32)
    tokens = rng.integers(0, VOCAB, (B, L)).astype(np.int32)
    return tokens, lengths, rng.integers(0, CLASSES, B).astype(np.int32)


def _rel_err(x, ref):
    x, ref = np.asarray(x, np.float64), np.asarray(ref, np.float64)
    return np.abs(x - ref).max() / np.abs(ref).max()


def test_bfloat16_matches_float32_logits_and_loss():
    tokens, lengths, labels = _batch()
    f32, bf16 = _classifier("float32"), _classifier("bfloat16")
    # Same initialisation: parameters are float32 in both (only the compute dtype differs).
    for p32, p16 in zip(jax.tree.leaves(nnx.state(f32, nnx.Param)), jax.tree.leaves(nnx.state(bf16, nnx.Param))):
        assert p16.dtype == p32.dtype and np.array_equal(p16, p32)
    logits32, logits16 = f32(tokens, lengths), bf16(tokens, lengths)
    assert logits16.dtype == jnp.float32
    # The bf16 path really computes in bf16 (else it would agree to float32 rounding).
    assert _rel_err(logits16, logits32) > 1e-5
    assert _rel_err(logits16, logits32) <= 2e-2
    loss = lambda logits: float(optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean())
    assert abs(loss(logits16) - loss(logits32)) <= 1e-2 * abs(loss(logits32))


def test_bad_dtype_names_the_key():
    with pytest.raises(ValueError, match="model.dtype"):
        _classifier("float16")


def test_forward_mode_through_the_lru_classifier():
    """jax.jvp w.r.t. all parameters equals the directional derivative from reverse mode (grad . v), and a
    Hessian-vector product (forward over reverse) runs and is symmetric: v2 . H v1 = v1 . H v2."""
    tokens, lengths, labels = _batch(1)
    graphdef, params, rest = nnx.split(_classifier("float32", n_layers=1), nnx.Param, ...)

    def loss(params):
        logits = nnx.merge(graphdef, params, rest)(tokens, lengths)
        return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()

    rng = np.random.default_rng(2)
    direction = lambda: jax.tree.map(lambda p: jnp.asarray(rng.normal(size=p.shape), p.dtype), params)
    v1, v2 = direction(), direction()
    dot = lambda x, y: sum(jnp.vdot(a, b).real for a, b in zip(jax.tree.leaves(x), jax.tree.leaves(y)))
    hvp = lambda p, v: jax.jvp(jax.grad(loss), (p,), (v,))[1]

    @jax.jit  # one compile for all four
    def derivatives(p, v1, v2):
        forward = jax.jvp(loss, (p,), (v1,))[1]
        return forward, dot(jax.grad(loss)(p), v1), dot(v2, hvp(p, v1)), dot(v1, hvp(p, v2))
    forward, reverse, v2_h_v1, v1_h_v2 = derivatives(params, v1, v2)
    np.testing.assert_allclose(forward, reverse, rtol=1e-4)
    np.testing.assert_allclose(v2_h_v1, v1_h_v2, rtol=1e-3)
    assert abs(float(v2_h_v1)) > 0
