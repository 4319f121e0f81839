"""Sequence classifiers for LRA: encoder -> n_layers residual blocks -> masked pooling -> head.

Inputs are right padded; lengths_B (int) counts the valid positions. Nothing at a pad position reaches the logits:
the layers get the mask, BatchNorm statistics skip pads, and pooling is masked.
"""
import math

import jax
import jax.numpy as jnp
from flax import nnx

from models import attention, lru, rnn, rotation, s4d, s5, selective
from models.blocks import MaskedNorm, ResidualBlock

POOLINGS = ("mean", "last", "cls")
POSITIONS = ("none", "learned", "sinusoidal")


def lengths_to_mask(lengths_B, length):
    """(B,) valid counts -> (B, length) bool, True at valid positions."""
    return jnp.arange(length)[None, :] < lengths_B[:, None]


def pool(x_BxLxH, lengths_B, pooling):
    """Masked pooling over time: "mean" of valid positions, "last" valid position, or "cls" (position 0)."""
    if pooling == "mean":
        mask_BxLx1 = lengths_to_mask(lengths_B, x_BxLxH.shape[1])[..., None]
        total_BxH = jnp.where(mask_BxLx1, x_BxLxH, 0.0).sum(axis=1)  # where, not *: 0 * inf at a pad is nan
        return total_BxH / jnp.maximum(lengths_B, 1)[:, None].astype(x_BxLxH.dtype)
    if pooling == "last":
        last_Bx1x1 = jnp.clip(lengths_B - 1, 0, None)[:, None, None]
        return jnp.take_along_axis(x_BxLxH, last_Bx1x1, axis=1)[:, 0]
    if pooling == "cls":
        return x_BxLxH[:, 0]
    raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")


def sinusoidal_positions(length, d_model):
    """(length, d_model) float32: PE[p, 2i] = sin(p / 10000^(2i/d)), PE[p, 2i+1] = cos(p / 10000^(2i/d))
    (Vaswani et al. 2017, Sec. 3.5; the LRA code's fixed position table)."""
    position_Lx1 = jnp.arange(length, dtype=jnp.float32)[:, None]
    inv_freq = jnp.exp(-math.log(10000.0) * jnp.arange(0, d_model, 2, dtype=jnp.float32) / d_model)
    angles = position_Lx1 * inv_freq  # (L, ceil(d/2))
    return jnp.stack([jnp.sin(angles), jnp.cos(angles)], axis=-1).reshape(length, -1)[:, :d_model]


class SequenceEncoder(nnx.Module):
    """encoder(inputs, lengths_B) -> pooled features (B, H).

    inputs: (B, L) int tokens (nnx.Embed, vocab_size set) or (B, L, C) real features (nnx.Linear, d_input set;
    (B, L) real is read as C = 1). make_layer(rngs) builds one sequence layer per block.
    bn_momentum: flax convention (running = momentum * running + (1 - momentum) * batch); PyTorch's default
    momentum 0.1, used by S4, is 0.9 here.
    pooling="cls": a learned vector is prepended at position 0 after encoding (lengths + 1) and read out at the
    end; only useful with non-causal layers (bidirectional LRU, attention), as a causal layer's position 0 sees
    nothing else. With prenorm a final norm precedes pooling (as in S4's pre-norm stack), since the residual
    stream itself is never normalised.
    positions: "none" (default; recurrent layers know the order), "learned" (a (max_len, H) table, init
    N(0, 0.02^2), needs max_len >= the longest input, CLS included) or "sinusoidal" (fixed, any length); added after
    the encoder and the CLS vector, so CLS is position 0 (as in the LRA Transformer).
    mlp_dim: None, or the width of each block's feed-forward sub-block (Transformer; see ResidualBlock).
    """

    def __init__(self, make_layer, *, d_model, n_layers, norm="batch", prenorm=True, activation="half_glu2",
                 dropout=0.0, pooling="mean", vocab_size=None, d_input=None, bn_momentum=0.99,
                 positions="none", max_len=None, mlp_dim=None, dtype="float32", rngs: nnx.Rngs):
        if (vocab_size is None) == (d_input is None):
            raise ValueError("set exactly one of vocab_size (token inputs) and d_input (real-valued inputs)")
        if pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
        if positions not in POSITIONS:
            raise ValueError(f"positions must be one of {POSITIONS}, got {positions!r}")
        if positions == "learned" and not max_len:
            raise ValueError("positions='learned' needs max_len (model.max_len): the longest input, CLS included")
        self.pooling, self.positions, self.max_len = pooling, positions, max_len
        # An Embed (not a bare Param), so the optimiser's rule for embeddings (no weight decay) covers it.
        self.position_table = nnx.Embed(max_len, d_model, embedding_init=nnx.initializers.normal(0.02), rngs=rngs) \
            if positions == "learned" else nnx.data(None)
        if vocab_size is not None:
            self.encoder = nnx.Embed(vocab_size, d_model, rngs=rngs)
        else:
            self.encoder = nnx.Linear(d_input, d_model, rngs=rngs)
        self.cls_token = nnx.Param(0.02 * jax.random.normal(rngs.params(), (d_model,))) if pooling == "cls" \
            else nnx.data(None)
        self.blocks = nnx.List([
            ResidualBlock(make_layer(rngs), d_model, norm=norm, prenorm=prenorm, activation=activation,
                          dropout=dropout, bn_momentum=bn_momentum, mlp_dim=mlp_dim, dtype=dtype, rngs=rngs)
            for _ in range(n_layers)])
        self.final_norm = MaskedNorm(norm, d_model, momentum=bn_momentum, rngs=rngs) if prenorm else nnx.data(None)

    def __call__(self, inputs, lengths_B):
        if isinstance(self.encoder, nnx.Linear) and inputs.ndim == 2:
            inputs = inputs[..., None]
        x_BxLxH = self.encoder(inputs).astype(jnp.float32)
        lengths_B = jnp.asarray(lengths_B, jnp.int32)
        if self.cls_token is not None:
            cls_Bx1xH = jnp.broadcast_to(self.cls_token[...], (x_BxLxH.shape[0], 1, x_BxLxH.shape[-1]))
            x_BxLxH, lengths_B = jnp.concatenate([cls_Bx1xH, x_BxLxH], axis=1), lengths_B + 1
        if self.positions != "none":
            x_BxLxH = x_BxLxH + self._positions(x_BxLxH.shape[1], x_BxLxH.shape[2])
        mask_BxL = lengths_to_mask(lengths_B, x_BxLxH.shape[1])
        for block in self.blocks:
            x_BxLxH = block(x_BxLxH, mask_BxL)
        if self.final_norm is not None:
            x_BxLxH = self.final_norm(x_BxLxH, mask_BxL)
        return pool(x_BxLxH, lengths_B, self.pooling)

    def _positions(self, length, d_model):
        if self.positions == "sinusoidal":
            return sinusoidal_positions(length, d_model)
        if length > self.max_len:
            raise ValueError(f"input length {length} (CLS included) exceeds model.max_len={self.max_len} of the "
                             f"learned position table; raise --config.model.max_len")
        return self.position_table.embedding[:length]


class Classifier(nnx.Module):
    """model(inputs, lengths_B) -> logits (B, n_classes), float32."""

    def __init__(self, encoder: SequenceEncoder, d_model, n_classes, *, rngs: nnx.Rngs):
        self.encoder = encoder
        self.head = nnx.Linear(d_model, n_classes, rngs=rngs)

    def __call__(self, inputs, lengths_B):
        return self.head(self.encoder(inputs, lengths_B)).astype(jnp.float32)


class DualClassifier(nnx.Module):
    """Two-document tasks (LRA Retrieval): model(inputs, lengths, inputs2, lengths2) -> logits (B, n_classes).

    One encoder for both documents; the head is an MLP over [u, v, u*v, u-v] (LRA's dual-encoder head):
    Linear(4H, H) -> gelu -> Linear(H, n_classes). The two documents are padded to a common length and run as
    one batch of 2B, so BatchNorm sees both (pads are masked, so the extra padding changes nothing).
    """

    def __init__(self, encoder: SequenceEncoder, d_model, n_classes, *, rngs: nnx.Rngs):
        self.encoder = encoder
        self.hidden = nnx.Linear(4 * d_model, d_model, rngs=rngs)
        self.head = nnx.Linear(d_model, n_classes, rngs=rngs)

    def __call__(self, inputs, lengths_B, inputs2, lengths2_B):
        length = max(inputs.shape[1], inputs2.shape[1])
        pad_to = lambda x: jnp.pad(x, [(0, 0), (0, length - x.shape[1])] + [(0, 0)] * (x.ndim - 2))
        both = jnp.concatenate([pad_to(inputs), pad_to(inputs2)], axis=0)
        u_BxH, v_BxH = jnp.split(self.encoder(both, jnp.concatenate([lengths_B, lengths2_B])), 2)
        features = jnp.concatenate([u_BxH, v_BxH, u_BxH * v_BxH, u_BxH - v_BxH], axis=-1)
        return self.head(jax.nn.gelu(self.hidden(features))).astype(jnp.float32)


# Sequence-layer families by config name; each is built cls(d_model, **layer_args, rngs=rngs) and called
# layer(u_BxLxH, mask_BxL). Adding a family = one line here.
LAYERS = {
    "lru": lru.LRU,
    "s4d": s4d.S4D,
    "s5": s5.S5,
    "attention": attention.MultiHeadAttention,
    "rnn": rnn.RNN,
    "selective": selective.Selective,
    "rotation": rotation.RotationRNN,
}


def build_classifier(*, layer: str, layer_args: dict, d_model: int, n_layers: int, norm="batch", prenorm=True,
                     activation="half_glu2", dropout=0.0, pooling="mean", n_classes, vocab_size=None,
                     d_input=None, dual=False, bn_momentum=0.99, positions="none", max_len=None, mlp_dim=None,
                     dtype="float32", rngs: nnx.Rngs) -> nnx.Module:
    """The trainer's entry point: a Classifier (or DualClassifier if dual) of n_layers blocks of LAYERS[layer].

    dtype: "float32" or "bfloat16" (mixed precision: bfloat16 activations and matmuls in the blocks and layers,
    float32 parameters, residual stream, norms, pooling, head and recurrences; see models/blocks.py)."""
    if dtype not in ("float32", "bfloat16"):
        raise ValueError(f"model.dtype must be 'float32' or 'bfloat16', got {dtype!r}")
    if layer not in LAYERS:
        raise ValueError(f"unknown layer {layer!r}; known: {sorted(LAYERS)}")
    layer_cls = LAYERS[layer]
    encoder = SequenceEncoder(
        lambda r: layer_cls(d_model, **layer_args, rngs=r), d_model=d_model, n_layers=n_layers, norm=norm,
        prenorm=prenorm, activation=activation, dropout=dropout, pooling=pooling, vocab_size=vocab_size,
        d_input=d_input, bn_momentum=bn_momentum, positions=positions, max_len=max_len, mlp_dim=mlp_dim,
        dtype=dtype, rngs=rngs)
    return (DualClassifier if dual else Classifier)(encoder, d_model, n_classes, rngs=rngs)
