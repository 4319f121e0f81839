"""Multi-head self-attention, the sequence layer of the LRA Transformer baseline (Tay et al. 2021, "Long Range
Arena"; attention of Vaswani et al. 2017):

    head_i = softmax(Q_i K_i^T / sqrt(d_head) + mask) V_i,   Q = u W_q, K = u W_k, V = u W_v   (d_head = qkv_dim/heads)
    y = concat(head_1, ..., head_h) W_o

In the Transformer encoder block this layer is the block's `layer` (ResidualBlock with activation="none" and an
mlp_dim, see models/blocks.py): LayerNorm -> attention -> dropout -> residual, then LayerNorm -> MLP -> residual.
Positions are added by the encoder (SequenceEncoder(positions=...)), as attention alone is permutation equivariant.
"""
import math

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from models.params import check_size


class MultiHeadAttention(nnx.Module):
    """layer(u_BxLxH, mask_BxL=None) -> y_BxLxH (float32). Not recurrent: no step mode.

    n_heads: number of heads h; qkv_dim: total width of Q, K, V over all heads (LRA's qkv_dim; default d_model),
      must be divisible by n_heads. W_q, W_k, W_v: Linear(H, qkv_dim) and W_o: Linear(qkv_dim, H), with biases
      (as flax's MultiHeadDotProductAttention used by the LRA code).
    causal: position t attends to positions <= t only (off for the LRA encoder).
    dropout: attention dropout on the softmax weights (LRA's attention_dropout_rate). jax.nn.dot_product_attention
      has none, so while it is active (rate > 0, train mode) the weights are computed explicitly; in eval mode or
      with rate 0 the call goes through jax.nn.dot_product_attention.
    implementation: jax.nn.dot_product_attention's: None / "xla" (XLA; what None selects in jax 0.10) or "cudnn"
      (the fused flash-attention kernel on NVIDIA GPUs; needs dtype "bfloat16" or "float16"). Not measured here
      (no GPU was available to this code's authors).
    dtype: the dtype Q, K, V are cast to for the attention itself (output back to float32); "float32" by default.
    query_chunk_size: None (all queries at once) or C >= 1: the queries are processed C at a time (chunked_attention),
      each chunk attending to every key through jax.nn.dot_product_attention, under jax.checkpoint, so the
      attention's memory is O(B h C L) instead of O(B h L^2), forward and backward, with the same result (the last
      chunk is padded when C does not divide L). Costs a recomputation of each chunk's forward in the backward pass.
      For long inputs on hardware without a fused kernel (Path-X, L = 16384: 1 GiB of scores per example and head,
      the memory the LRA Transformer's Path-X FAIL comes from). Not with attention dropout (its weights are
      materialised whole) nor with implementation="cudnn" (the fused kernel never materialises them): both are
      errors naming the key.

    Padding (mask_BxL, True = valid; any pattern: right or left padding, holes): passed as a key mask of shape
    (B, 1, 1, L) (jax.nn.dot_product_attention's `mask`, broadcast against the logits, so no L x L mask is built
    besides the one inside the attention itself): keys at pads get no weight whatever the mask's shape, and the
    outputs at pad queries are set to 0 (they depend on no input). With implementation="cudnn" the mask is passed
    as sequence lengths instead (mask.sum(1): the fused kernel's PADDING mask type; a boolean mask would become an
    additive B x 1 x 1 x L bias): that path assumes right padding. A mask that is not a prefix of True is a
    ValueError when the mask is concrete (eager call); under jit it cannot raise, so the rows of such a mask are
    set to NaN (loud, not silently wrong).
    Cost: O(B h L^2) time and memory for the attention matrix (it is materialised unless a fused kernel is used or
    query_chunk_size bounds it to O(B h C L) memory).
    """

    def __init__(self, d_model, n_heads, *, qkv_dim=None, causal=False, dropout=0.0, implementation=None,
                 dtype="float32", query_chunk_size=None, rngs: nnx.Rngs):
        qkv_dim = d_model if qkv_dim is None else qkv_dim
        check_size("MultiHeadAttention", "n_heads", n_heads)
        check_size("MultiHeadAttention", "qkv_dim", qkv_dim)
        check_size("MultiHeadAttention", "query_chunk_size", query_chunk_size, none_ok=True)
        if qkv_dim % n_heads:
            raise ValueError(f"qkv_dim={qkv_dim} must be divisible by n_heads={n_heads}")
        if implementation not in (None, "xla", "cudnn"):
            raise ValueError(f"implementation must be None, 'xla' or 'cudnn', got {implementation!r}")
        if query_chunk_size is not None and dropout > 0:
            raise ValueError(f"query_chunk_size={query_chunk_size} cannot be combined with attention dropout "
                             f"(dropout={dropout}): the dropout path materialises all L x L weights; set "
                             "model.layer_args.dropout=0 or model.layer_args.query_chunk_size=None")
        if query_chunk_size is not None and implementation == "cudnn":
            raise ValueError(f"query_chunk_size={query_chunk_size} cannot be combined with implementation='cudnn' "
                             "(the fused kernel already never materialises the L x L weights); set "
                             "model.layer_args.query_chunk_size=None")
        self.query_chunk_size = query_chunk_size
        self.n_heads, self.d_head, self.causal = n_heads, qkv_dim // n_heads, causal
        self.implementation, self.dtype = implementation, jnp.dtype(dtype)
        self.W_q = nnx.Linear(d_model, qkv_dim, rngs=rngs)
        self.W_k = nnx.Linear(d_model, qkv_dim, rngs=rngs)
        self.W_v = nnx.Linear(d_model, qkv_dim, rngs=rngs)
        self.W_o = nnx.Linear(qkv_dim, d_model, rngs=rngs)
        self.attn_dropout = nnx.Dropout(dropout, rngs=rngs)

    def _heads(self, W, u_BxLxH):
        # (B, L, h, d_head) in the attention's dtype
        return W(u_BxLxH).reshape(*u_BxLxH.shape[:2], self.n_heads, self.d_head).astype(self.dtype)

    def __call__(self, u_BxLxH, mask_BxL=None):
        u_BxLxH = u_BxLxH.astype(jnp.float32)
        B, L, _ = u_BxLxH.shape
        q, k, v = (self._heads(W, u_BxLxH) for W in (self.W_q, self.W_k, self.W_v))
        mask_BxL = None if mask_BxL is None else jnp.asarray(mask_BxL, bool)
        if self.attn_dropout.rate > 0 and not self.attn_dropout.deterministic:
            o_BxLxhxd = explicit_attention(q, k, v, mask_BxL, self.causal, dropout=self.attn_dropout)
        elif self.query_chunk_size is not None:
            o_BxLxhxd = chunked_attention(q, k, v, mask_BxL, self.causal, self.query_chunk_size,
                                          implementation=self.implementation)
        elif self.implementation == "cudnn" and mask_BxL is not None:
            lengths_B, is_prefix_B = prefix_lengths(mask_BxL)
            o_BxLxhxd = jax.nn.dot_product_attention(q, k, v, is_causal=self.causal, query_seq_lengths=lengths_B,
                                                     key_value_seq_lengths=lengths_B, implementation="cudnn")
            o_BxLxhxd = jnp.where(is_prefix_B[:, None, None, None], o_BxLxhxd, jnp.nan)
        else:
            key_mask = None if mask_BxL is None else mask_BxL[:, None, None, :]  # (B, 1, 1, L)
            o_BxLxhxd = jax.nn.dot_product_attention(q, k, v, mask=key_mask, is_causal=self.causal,
                                                     implementation=self.implementation)
        y_BxLxH = self.W_o(o_BxLxhxd.astype(jnp.float32).reshape(B, L, -1))
        if mask_BxL is not None:
            y_BxLxH = jnp.where(mask_BxL[..., None], y_BxLxH, 0.0)  # pad queries: output 0, no input reaches it
        return y_BxLxH.astype(jnp.float32)


def prefix_lengths(mask_BxL):
    """(lengths_B int32 = mask.sum(1), is_prefix_B bool: the row is True exactly at positions < its length).

    Raises ValueError when the mask is concrete (not traced) and some row is not a prefix (not right padding)."""
    lengths_B = mask_BxL.sum(axis=1, dtype=jnp.int32)
    is_prefix_B = jnp.all(mask_BxL == (jnp.arange(mask_BxL.shape[1])[None, :] < lengths_B[:, None]), axis=1)
    if not isinstance(is_prefix_B, jax.core.Tracer) and not bool(is_prefix_B.all()):
        raise ValueError(f"implementation='cudnn' takes right-padded masks only (True then False in each row), got "
                         f"rows {np.flatnonzero(~np.asarray(is_prefix_B)).tolist()} that are not; use "
                         "implementation=None (model.layer_args.implementation) for other masks")
    return lengths_B, is_prefix_B


def explicit_attention(q_BxLxhxd, k_BxLxhxd, v_BxLxhxd, key_mask_BxL=None, causal=False, dropout=None):
    """softmax(q k^T / sqrt(d) + mask) v with the weights materialised, so `dropout` (a callable) can act on them.

    key_mask_BxL (bool, True = valid) or None: keys where False get no weight (any pattern). Same masking as
    jax.nn.dot_product_attention with mask=key_mask[:, None, None, :]; returns (B, L, h, d).
    """
    L, d = q_BxLxhxd.shape[1], q_BxLxhxd.shape[-1]
    logits_BxhxLxL = jnp.einsum("bqhd,bkhd->bhqk", q_BxLxhxd, k_BxLxhxd) / math.sqrt(d)
    allowed = jnp.ones((1, 1, L, L), bool)
    if causal:
        allowed = allowed & jnp.tril(jnp.ones((L, L), bool))
    if key_mask_BxL is not None:
        allowed = allowed & key_mask_BxL[:, None, None, :]
    logits_BxhxLxL = jnp.where(allowed, logits_BxhxLxL, jnp.finfo(logits_BxhxLxL.dtype).min)
    weights = jax.nn.softmax(logits_BxhxLxL, axis=-1)
    if dropout is not None:
        weights = dropout(weights)
    return jnp.einsum("bhqk,bkhd->bqhd", weights, v_BxLxhxd)


def chunked_attention(q_BxLxhxd, k_BxLxhxd, v_BxLxhxd, key_mask_BxL=None, causal=False, chunk_size=1024,
                      implementation=None):
    """jax.nn.dot_product_attention, chunk_size queries at a time: the same (B, L, h, d) result, O(B h C L) memory.

    The queries are split into ceil(L / C) chunks (the last padded with zeros, its extra rows dropped), mapped over
    with lax.map; each chunk attends to all L keys and runs under jax.checkpoint, so the backward pass keeps only
    the chunk's inputs and recomputes its (B, h, C, L) weights instead of storing all chunks' weights. Masking as the
    unchunked call with mask=key_mask[:, None, None, :]; causal is a (C, L) mask k <= s + q for the chunk starting
    at s, since is_causal assumes query i is key i.
    """
    B, L, h, d = q_BxLxhxd.shape
    n_chunks = -(-L // chunk_size)
    q_pad = jnp.pad(q_BxLxhxd, ((0, 0), (0, n_chunks * chunk_size - L), (0, 0), (0, 0)))
    q_nxBxCxhxd = jnp.moveaxis(q_pad.reshape(B, n_chunks, chunk_size, h, d), 1, 0)
    key_mask = jnp.ones((1, 1, 1, L), bool) if key_mask_BxL is None else key_mask_BxL[:, None, None, :]

    @jax.checkpoint
    def one_chunk(args):
        q_BxCxhxd, start = args
        mask = key_mask
        if causal:
            mask = mask & (jnp.arange(L)[None, :] <= start + jnp.arange(chunk_size)[:, None])  # (B|1, 1, C, L)
        return jax.nn.dot_product_attention(q_BxCxhxd, k_BxLxhxd, v_BxLxhxd, mask=mask,
                                            implementation=implementation)

    o_nxBxCxhxd = jax.lax.map(one_chunk, (q_nxBxCxhxd, jnp.arange(n_chunks, dtype=jnp.int32) * chunk_size))
    return jnp.moveaxis(o_nxBxCxhxd, 0, 1).reshape(B, n_chunks * chunk_size, h, d)[:, :L]
