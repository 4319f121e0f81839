"""The residual block shared by every sequence-layer family:

    [pre-norm] -> layer(x, mask) -> activation/GLU -> dropout -> + residual [post-norm]
    and, with mlp_dim set, a second (feed-forward) sub-block, as in a Transformer encoder block:
    [pre-norm] -> Linear(H, mlp_dim) -> gelu -> dropout -> Linear(mlp_dim, H) -> dropout -> + residual [post-norm]

Activations (S5, Smith et al. 2023, and its code; W, W1, W2 are H x H Linear layers with bias):
    gelu:      y = gelu(x)
    glu:       y = W1 gelu(x) * sigmoid(W2 gelu(x))        (S5 "full_glu")
    half_glu1: y = gelu(x) * sigmoid(W gelu(x))
    half_glu2: y = x * sigmoid(W gelu(x))                  (used by S5 and LRU configs on LRA)
    none:      y = x                                       (attention: its own output projection suffices)
S5 additionally applies dropout to gelu(x) inside the GLU; here dropout is applied once, after the activation.

Mixed precision (dtype="bfloat16"; the mamba and S4 authors' advice: recurrences in float32): parameters stay
float32 and the residual stream and norms stay float32; the block casts the layer's input to `dtype`, and the GLU's
matmuls run in `dtype`. The contract for every sequence layer: compute your matmuls in the dtype of the input you
are given (cast the weights: `u @ W.astype(u.dtype)`), run the scan and keep its state in float32 (scan.
linear_recurrence accumulates in float32 whatever it gets), and return float32. A layer that casts its input to
float32 first is still correct, it just does not gain from bfloat16.
"""
import jax
import jax.numpy as jnp
from flax import nnx

ACTIVATIONS = ("gelu", "glu", "half_glu1", "half_glu2", "none")
NORMS = ("batch", "layer")


class MaskedNorm(nnx.Module):
    """BatchNorm or LayerNorm over the feature axis of (B, L, H), called norm(x_BxLxH, mask_BxL).

    BatchNorm's training statistics (the normalisation and the running averages) use only valid positions
    (nnx.BatchNorm's mask= argument); in eval mode it is per-position, like LayerNorm, so masks do not matter.
    The batch variance is the two-pass mean((x - mean)^2) (use_fast_variance=False): flax's default
    E[x^2] - E[x]^2 cancels catastrophically in float32 when a channel's mean is large against its spread
    (mean 1e4, std 1 gives std ~300 after normalisation).
    """

    def __init__(self, kind, d_model, *, momentum=0.99, rngs: nnx.Rngs):
        if kind not in NORMS:
            raise ValueError(f"norm must be one of {NORMS}, got {kind!r}")
        self.kind = kind
        if kind == "batch":
            self.norm = nnx.BatchNorm(d_model, momentum=momentum, use_fast_variance=False, rngs=rngs)
        else:
            self.norm = nnx.LayerNorm(d_model, rngs=rngs)

    def __call__(self, x_BxLxH, mask_BxL=None):
        if self.kind == "batch" and mask_BxL is not None:
            return self.norm(x_BxLxH, mask=mask_BxL[..., None].astype(bool))
        return self.norm(x_BxLxH)


class MLP(nnx.Module):
    """The Transformer's position-wise feed-forward part: Linear(H, mlp_dim) -> gelu -> dropout -> Linear(mlp_dim, H)
    (the LRA code's MlpBlock; Tay et al. 2021)."""

    def __init__(self, d_model, mlp_dim, *, dropout=0.0, rngs: nnx.Rngs):
        self.W1 = nnx.Linear(d_model, mlp_dim, rngs=rngs)
        self.W2 = nnx.Linear(mlp_dim, d_model, rngs=rngs)
        self.dropout = nnx.Dropout(dropout, rngs=rngs)

    def __call__(self, x_BxLxH):
        return self.W2(self.dropout(jax.nn.gelu(self.W1(x_BxLxH))))


class ResidualBlock(nnx.Module):
    """block(x_BxLxH, mask_BxL=None) -> (B, L, H); `layer` is any module called layer(x_BxLxH, mask_BxL).

    mlp_dim: None (default) for the single sub-block; an int adds the feed-forward sub-block (own norm, residual).
    """

    def __init__(self, layer, d_model, *, norm="batch", prenorm=True, activation="gelu", dropout=0.0,
                 bn_momentum=0.99, mlp_dim=None, dtype="float32", rngs: nnx.Rngs):
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {ACTIVATIONS}, got {activation!r}")
        self.layer, self.prenorm, self.activation = layer, prenorm, activation
        self.dtype = jnp.dtype(dtype)  # compute dtype of the layer's input and the GLU matmuls (params: float32)
        self.norm = MaskedNorm(norm, d_model, momentum=bn_momentum, rngs=rngs)
        linear = lambda: nnx.Linear(d_model, d_model, dtype=self.dtype, rngs=rngs)
        self.W1 = linear() if activation == "glu" else nnx.data(None)
        self.W2 = linear() if activation not in ("gelu", "none") else nnx.data(None)
        self.dropout = nnx.Dropout(dropout, rngs=rngs)
        if mlp_dim is None:
            self.mlp = self.mlp_norm = nnx.data(None)
        else:
            self.mlp = MLP(d_model, mlp_dim, dropout=dropout, rngs=rngs)
            self.mlp_norm = MaskedNorm(norm, d_model, momentum=bn_momentum, rngs=rngs)

    def _activate(self, x):
        if self.activation == "none":
            return x
        g = jax.nn.gelu(x.astype(self.dtype))
        if self.activation == "gelu":
            return g
        gate = jax.nn.sigmoid(self.W2(g))
        if self.activation == "glu":
            return self.W1(g) * gate
        return (g if self.activation == "half_glu1" else x.astype(self.dtype)) * gate

    def __call__(self, x_BxLxH, mask_BxL=None):
        x_BxLxH = self._residual(self.norm, lambda z: self._activate(self.layer(z.astype(self.dtype), mask_BxL)),
                                 x_BxLxH, mask_BxL)
        if self.mlp is not None:
            x_BxLxH = self._residual(self.mlp_norm, self.mlp, x_BxLxH, mask_BxL)
        return x_BxLxH

    def _residual(self, norm, f, x_BxLxH, mask_BxL):
        z = norm(x_BxLxH, mask_BxL) if self.prenorm else x_BxLxH
        x_BxLxH = x_BxLxH + self.dropout(f(z)).astype(x_BxLxH.dtype)  # the residual stream stays float32
        return x_BxLxH if self.prenorm else norm(x_BxLxH, mask_BxL)
