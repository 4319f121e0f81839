"""models.blocks: the residual block's wiring, its activations, dropout modes and masked BatchNorm."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from models.blocks import ACTIVATIONS, MaskedNorm, ResidualBlock

B, L, H = 3, 7, 8


class Identity(nnx.Module):
    """A sequence layer that returns its input, so the block's own arithmetic can be checked by hand."""

    def __call__(self, x_BxLxH, mask_BxL=None):
        return x_BxLxH


def expected_activation(block, z):
    if block.activation == "none":
        return z
    g = jax.nn.gelu(z)
    if block.activation == "gelu":
        return g
    gate = jax.nn.sigmoid(g @ block.W2.kernel[...] + block.W2.bias[...])
    if block.activation == "glu":
        return (g @ block.W1.kernel[...] + block.W1.bias[...]) * gate
    return (g if block.activation == "half_glu1" else z) * gate


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("prenorm", [True, False])
def test_block_wiring(activation, prenorm):
    block = ResidualBlock(Identity(), H, norm="layer", prenorm=prenorm, activation=activation, rngs=nnx.Rngs(0))
    x = jax.random.normal(jax.random.key(1), (B, L, H))
    y = block(x)
    assert y.shape == (B, L, H) and y.dtype == jnp.float32
    if prenorm:
        want = x + expected_activation(block, block.norm.norm(x))
    else:
        want = block.norm.norm(x + expected_activation(block, x))
    np.testing.assert_allclose(np.asarray(y), np.asarray(want), rtol=1e-5, atol=1e-5)
    n_linear = {"gelu": 0, "half_glu1": 1, "half_glu2": 1, "glu": 2, "none": 0}[activation]
    assert sum(isinstance(m, nnx.Linear) for _, m in nnx.iter_graph(block)) == n_linear


@pytest.mark.parametrize("prenorm", [True, False])
def test_block_with_mlp_is_a_transformer_block(prenorm):
    """mlp_dim adds a second sub-block: x1 = x + layer(LN1(x)); y = x1 + W2 gelu(W1 LN2(x1)) (pre-norm)."""
    block = ResidualBlock(Identity(), H, norm="layer", prenorm=prenorm, activation="none", mlp_dim=16,
                          rngs=nnx.Rngs(0))
    x = jax.random.normal(jax.random.key(1), (B, L, H))
    mlp = lambda z: jax.nn.gelu(z @ block.mlp.W1.kernel[...] + block.mlp.W1.bias[...]) @ block.mlp.W2.kernel[...] \
        + block.mlp.W2.bias[...]
    n1, n2 = block.norm.norm, block.mlp_norm.norm
    if prenorm:
        x1 = x + n1(x)
        want = x1 + mlp(n2(x1))
    else:
        x1 = n1(x + x)
        want = n2(x1 + mlp(x1))
    assert block.mlp.W1.kernel.shape == (H, 16)
    np.testing.assert_allclose(np.asarray(block(x)), np.asarray(want), rtol=1e-5, atol=1e-5)


def test_half_glus_differ():
    """half_glu1 gates gelu(x), half_glu2 gates x itself: same weights, different outputs."""
    x = jax.random.normal(jax.random.key(1), (B, L, H))
    y1, y2 = (ResidualBlock(Identity(), H, norm="layer", activation=a, rngs=nnx.Rngs(0))(x)
              for a in ("half_glu1", "half_glu2"))
    assert np.abs(np.asarray(y1 - y2)).max() > 1e-3


def test_dropout_only_in_train_mode():
    x = jax.random.normal(jax.random.key(1), (B, L, H))
    block = ResidualBlock(Identity(), H, norm="layer", activation="gelu", dropout=0.5, rngs=nnx.Rngs(0))
    reference = ResidualBlock(Identity(), H, norm="layer", activation="gelu", dropout=0.0, rngs=nnx.Rngs(0))
    block.eval()
    np.testing.assert_array_equal(np.asarray(block(x)), np.asarray(block(x)))
    np.testing.assert_allclose(np.asarray(block(x)), np.asarray(reference(x)), rtol=1e-6)
    block.train()
    a, b = np.asarray(block(x)), np.asarray(block(x))
    assert np.abs(a - b).max() > 1e-3  # a fresh mask per call
    residual = np.asarray(x)
    dropped = np.isclose(a, residual, atol=1e-7)  # dropped units leave only the residual
    assert 0.3 < dropped.mean() < 0.7


def test_masked_batchnorm_uses_only_valid_positions():
    x = jax.random.normal(jax.random.key(1), (B, L, H)) + 1.0
    lengths = jnp.array([L, 4, 1])
    mask = jnp.arange(L)[None] < lengths[:, None]
    x = jnp.where(mask[..., None], x, 1e3)  # pads hold large values: any leak would show
    norm = MaskedNorm("batch", H, momentum=0.5, rngs=nnx.Rngs(0))
    norm.train()
    y = norm(x, mask)
    valid = np.asarray(x)[np.asarray(mask)]  # (n_valid, H)
    mean, var = valid.mean(0), valid.var(0)
    np.testing.assert_allclose(np.asarray(y)[np.asarray(mask)], (valid - mean) / np.sqrt(var + 1e-5),
                               rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(np.asarray(norm.norm.mean[...]), 0.5 * mean, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.asarray(norm.norm.var[...]), 0.5 + 0.5 * var, rtol=1e-5, atol=1e-6)
    # Without the mask the statistics would be dominated by the pads.
    unmasked = MaskedNorm("batch", H, momentum=0.5, rngs=nnx.Rngs(0))
    unmasked(x)
    assert np.abs(np.asarray(unmasked.norm.mean[...]) - 0.5 * mean).min() > 10
    # Eval mode: per-position normalisation with the running statistics.
    norm.eval()
    np.testing.assert_allclose(np.asarray(norm(x, mask)), np.asarray(norm(x)), rtol=1e-6)


def test_rejects_unknown_options():
    with pytest.raises(ValueError, match="activation"):
        ResidualBlock(Identity(), H, activation="relu", rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match="norm"):
        ResidualBlock(Identity(), H, norm="group", rngs=nnx.Rngs(0))


def test_masked_batchnorm_variance_survives_large_channel_means():
    """Channels whose mean is 1e3-1e4 times their spread: E[x^2] - E[x]^2 in float32 would lose the variance."""
    offsets = jnp.array([0.0, 1e3, 1e4, -3e3])
    x = jax.random.normal(jax.random.key(2), (B, L, 4)) + offsets
    lengths = jnp.array([L, 5, 2])
    mask = jnp.arange(L)[None] < lengths[:, None]
    norm = MaskedNorm("batch", 4, rngs=nnx.Rngs(0))
    norm.train()
    y_valid = np.asarray(norm(x, mask))[np.asarray(mask)]
    np.testing.assert_allclose(y_valid.std(0), 1.0, rtol=1e-2)
    np.testing.assert_allclose(y_valid.mean(0), 0.0, atol=1e-2)
