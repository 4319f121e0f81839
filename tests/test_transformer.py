"""The Transformer baseline: models/attention.py, the encoder's positions, experiments/configs/transformer.py.

The shared layer contract (shape, padding invariance, causality of the causal option, gradients) is in
tests/test_layers.py; here: attention against float64 NumPy, the mask in both directions, positions, CLS pooling,
configs, and the ListOps smoke training from the CLI.
"""
import math
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import models
from experiments import optim
from experiments.configs import base, transformer
from models.attention import MultiHeadAttention, explicit_attention

B, L, H, HEADS = 2, 7, 8, 2
LENGTHS = np.array([7, 4])


def mask(length=L):
    return jnp.arange(length)[None, :] < jnp.asarray(LENGTHS)[:, None]


def inputs(seed, length=L):
    return jax.random.normal(jax.random.key(seed), (B, length, H), jnp.float32)


def numpy_attention(layer, u, lengths, causal=False):
    """float64 multi-head attention with the layer's weights; pad queries give 0, pad keys get no weight."""
    p = {name: (np.asarray(getattr(layer, name).kernel[...], np.float64),
                np.asarray(getattr(layer, name).bias[...], np.float64)) for name in ("W_q", "W_k", "W_v", "W_o")}
    lin = lambda x, name: x @ p[name][0] + p[name][1]
    u = np.asarray(u, np.float64)
    out = np.zeros((u.shape[0], u.shape[1], p["W_o"][0].shape[1]))
    for b, n in enumerate(lengths):
        q, k, v = (lin(u[b, :n], w).reshape(n, HEADS, -1) for w in ("W_q", "W_k", "W_v"))
        logits = np.einsum("qhd,khd->hqk", q, k) / math.sqrt(q.shape[-1])
        if causal:
            logits = np.where(np.tril(np.ones((n, n), bool)), logits, -np.inf)
        w = np.exp(logits - logits.max(-1, keepdims=True))
        w /= w.sum(-1, keepdims=True)
        out[b, :n] = lin(np.einsum("hqk,khd->qhd", w, v).reshape(n, -1), "W_o")
    return out


@pytest.mark.parametrize("causal", [False, True], ids=["bidirectional", "causal"])
def test_attention_equals_float64_numpy(causal):
    layer = MultiHeadAttention(H, HEADS, qkv_dim=6, causal=causal, rngs=nnx.Rngs(0))
    u = inputs(0)
    np.testing.assert_allclose(np.asarray(layer(u, mask())), numpy_attention(layer, u, LENGTHS, causal),
                               rtol=1e-4, atol=1e-5)


def test_pads_neither_attend_nor_are_attended():
    layer = MultiHeadAttention(H, HEADS, rngs=nnx.Rngs(0))
    u, m = inputs(0), mask()
    valid = np.asarray(m)
    y = np.asarray(layer(u, m))
    # Pads attend to nothing: their outputs are 0 and depend on no input.
    assert np.all(y[~valid] == 0.0)
    g_pad = jax.grad(lambda u: jnp.where(~m[..., None], layer(u, m), 0.0).sum())(u)
    assert np.abs(np.asarray(g_pad)).max() == 0.0
    # Pads are not attended: no valid output depends on a pad input (and every valid input matters).
    g_valid = np.asarray(jax.grad(lambda u: jnp.where(m[..., None], layer(u, m), 0.0).sum())(u))
    assert np.abs(g_valid[~valid]).max() == 0.0 and np.abs(g_valid[valid]).max(axis=-1).min() > 0.0
    # ... which the mask is needed for: without it the valid outputs of the short row change.
    assert np.abs(np.asarray(layer(u))[1, :4] - y[1, :4]).max() > 1e-4


@pytest.mark.parametrize("causal", [False, True], ids=["bidirectional", "causal"])
def test_a_mask_with_holes_is_attention_over_the_valid_positions_only(causal):
    """Left padding and a hole: each valid output equals float64 attention over the row's valid inputs alone
    (compacted), unchunked and in query chunks of 3; pad outputs are 0. (mask.sum() read as a prefix failed this.)"""
    holes = np.array([[0, 0, 1, 1, 0, 1, 1], [1, 0, 0, 1, 1, 0, 0]], bool)
    u = inputs(0)
    for chunk in (None, 3):
        layer = MultiHeadAttention(H, HEADS, causal=causal, query_chunk_size=chunk, rngs=nnx.Rngs(0))
        y = np.asarray(layer(u, jnp.asarray(holes)))
        for b in range(B):
            want = numpy_attention(layer, np.asarray(u)[b:b + 1, holes[b]], [holes[b].sum()], causal)[0]
            np.testing.assert_allclose(y[b, holes[b]], want, rtol=1e-4, atol=1e-5)
        assert np.all(y[~holes] == 0.0)


def test_the_fused_kernel_path_refuses_a_mask_that_is_not_right_padding():
    """implementation='cudnn' gets sequence lengths, so it only takes right padding: a concrete left-padded mask is a
    ValueError before the kernel is called (so this runs on a CPU too)."""
    layer = MultiHeadAttention(H, HEADS, implementation="cudnn", dtype="bfloat16", rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match=r"implementation='cudnn' takes right-padded masks only .* rows \[1\]"):
        layer(inputs(0), jnp.asarray([[1] * 7, [0, 0, 1, 1, 1, 1, 1]], bool))


def test_explicit_path_equals_dot_product_attention():
    """The path used for attention dropout (weights materialised) agrees with jax.nn.dot_product_attention."""
    q, k, v = (jax.random.normal(jax.random.key(i), (B, L, HEADS, 3)) for i in range(3))
    lengths = jnp.asarray(LENGTHS)
    for causal in (False, True):
        want = jax.nn.dot_product_attention(q, k, v, is_causal=causal, query_seq_lengths=lengths,
                                            key_value_seq_lengths=lengths)
        got = explicit_attention(q, k, v, mask(), causal)
        np.testing.assert_allclose(np.asarray(got)[np.asarray(mask())], np.asarray(want)[np.asarray(mask())],
                                   rtol=1e-5, atol=1e-6)


def test_attention_dropout_acts_in_train_mode_only():
    layer = MultiHeadAttention(H, HEADS, dropout=0.5, rngs=nnx.Rngs(0, dropout=1))
    reference = MultiHeadAttention(H, HEADS, rngs=nnx.Rngs(0))
    u, m = inputs(0), mask()
    layer.eval()
    np.testing.assert_allclose(np.asarray(layer(u, m)), np.asarray(reference(u, m)), rtol=1e-6)
    layer.train()
    y = np.asarray(layer(u, m))
    assert np.abs(y - np.asarray(reference(u, m)))[np.asarray(m)].max() > 1e-3
    assert np.all(y[~np.asarray(m)] == 0.0)  # the mask still holds on the dropout path


def test_bfloat16_attention_is_close_to_float32():
    u, m = inputs(0), mask()
    y32 = np.asarray(MultiHeadAttention(H, HEADS, rngs=nnx.Rngs(0))(u, m))
    y16 = MultiHeadAttention(H, HEADS, dtype="bfloat16", rngs=nnx.Rngs(0))(u, m)
    assert y16.dtype == jnp.float32
    np.testing.assert_allclose(np.asarray(y16), y32, rtol=0.05, atol=0.05)
    assert np.abs(np.asarray(y16) - y32).max() > 0  # it did compute in bfloat16


def test_the_padding_mask_adds_no_memory_at_long_length():
    """A (B, 1, 1, L) key mask, not an L x L one, reaches jax.nn.dot_product_attention: at L = 1024 the compiled
    forward+backward needs no more temporary memory with the mask than without (both hold a few B*h*L^2 buffers:
    logits, weights)."""
    layer = MultiHeadAttention(16, 2, rngs=nnx.Rngs(0))
    graphdef, params, rest = nnx.split(layer, nnx.Param, ...)
    u, m = jax.ShapeDtypeStruct((1, 1024, 16), jnp.float32), jax.ShapeDtypeStruct((1, 1024), jnp.bool_)

    def temp_bytes(masked):
        loss = lambda p, u, m: nnx.merge(graphdef, p, rest)(u, m if masked else None).sum()
        return jax.jit(jax.grad(loss)).lower(params, u, m).compile().memory_analysis().temp_size_in_bytes

    attention_matrix = 2 * 1024 * 1024 * 4
    assert temp_bytes(True) <= temp_bytes(False) < 8 * attention_matrix


@pytest.mark.parametrize("causal", [False, True], ids=["bidirectional", "causal"])
def test_query_chunks_equal_all_queries_at_once(causal):
    """query_chunk_size=3 on L=7 (the last chunk padded): the same outputs and gradients (inputs and every
    parameter) as the unchunked call, with a padding mask."""
    layers = [MultiHeadAttention(H, HEADS, causal=causal, query_chunk_size=c, rngs=nnx.Rngs(0)) for c in (None, 3)]
    u, m = inputs(0), mask()
    outputs = []
    for layer in layers:
        graphdef, params, rest = nnx.split(layer, nnx.Param, ...)
        loss = lambda p, u: jnp.sum(jnp.sin(nnx.merge(graphdef, p, rest)(u, m)))
        outputs.append((layer(u, m), *jax.grad(loss, argnums=(0, 1))(params, u)))
    for want, got in zip(jax.tree.leaves(outputs[0]), jax.tree.leaves(outputs[1])):
        np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-5, atol=1e-6)
    assert np.all(np.asarray(outputs[1][0])[~np.asarray(m)] == 0.0)


def test_query_chunks_bound_the_memory_and_refuse_what_needs_the_whole_matrix():
    """At L = 1024, chunks of 128 queries need a fraction of the temporary memory of the compiled forward+backward
    (the unchunked one holds several B*h*L^2 buffers); dropout and cuDNN with chunks are errors naming the key."""
    u = jax.ShapeDtypeStruct((1, 1024, 16), jnp.float32)

    def temp_bytes(chunk):
        layer = MultiHeadAttention(16, 2, query_chunk_size=chunk, rngs=nnx.Rngs(0))
        graphdef, params, rest = nnx.split(layer, nnx.Param, ...)
        loss = lambda p, u: nnx.merge(graphdef, p, rest)(u).sum()
        return jax.jit(jax.grad(loss)).lower(params, u).compile().memory_analysis().temp_size_in_bytes

    attention_matrix = 2 * 1024 * 1024 * 4
    assert temp_bytes(128) < attention_matrix < temp_bytes(None)
    with pytest.raises(ValueError, match="model.layer_args.dropout=0"):
        MultiHeadAttention(H, HEADS, dropout=0.1, query_chunk_size=4, rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match="model.layer_args.query_chunk_size=None"):
        MultiHeadAttention(H, HEADS, implementation="cudnn", query_chunk_size=4, rngs=nnx.Rngs(0))


def test_qkv_dim_must_divide_into_heads():
    with pytest.raises(ValueError, match="divisible by n_heads"):
        MultiHeadAttention(H, 3, qkv_dim=8, rngs=nnx.Rngs(0))


def test_sinusoidal_positions_formula():
    pe = np.asarray(models.sinusoidal_positions(5, 7))
    pos, i = np.arange(5)[:, None], np.arange(7)[None, :]
    angle = pos / 10000.0 ** ((i - i % 2) / 7)
    np.testing.assert_allclose(pe, np.where(i % 2 == 0, np.sin(angle), np.cos(angle)), rtol=1e-5, atol=1e-6)


def classifier(positions, pooling="mean", max_len=None, d_input=None):
    kw = dict(d_input=d_input) if d_input else dict(vocab_size=11)
    return models.build_classifier(layer="attention", layer_args=dict(n_heads=HEADS), d_model=H, n_layers=2,
                                   norm="layer", activation="none", mlp_dim=16, pooling=pooling, n_classes=3,
                                   positions=positions, max_len=max_len, rngs=nnx.Rngs(0), **kw)


@pytest.mark.parametrize("positions", ["learned", "sinusoidal"])
def test_positions_break_permutation_invariance(positions):
    """Attention with mean pooling is blind to token order; positions (learned or fixed) are what let it see it."""
    x = jnp.array([[1, 2, 3, 4, 5, 6]])
    x_perm = jnp.array([[6, 1, 5, 2, 4, 3]])
    lengths = jnp.array([6])
    none = classifier("none")
    np.testing.assert_allclose(np.asarray(none(x_perm, lengths)), np.asarray(none(x, lengths)), rtol=1e-5,
                               atol=1e-6)
    model = classifier(positions, max_len=8)
    assert np.abs(np.asarray(model(x_perm, lengths)) - np.asarray(model(x, lengths))).max() > 1e-4


def test_learned_positions_table_and_its_group():
    model = classifier("learned", max_len=8)
    table = model.encoder.position_table.embedding
    assert table.shape == (8, H) and 0.005 < float(jnp.std(table[...])) < 0.05  # N(0, 0.02^2)
    labels = {path: g for path, g in nnx.to_flat_state(optim.param_labels(model))}
    assert labels[("encoder", "position_table", "embedding")] == "no_decay"
    with pytest.raises(ValueError, match="model.max_len=8"):
        model(jnp.ones((1, 9), jnp.int32), jnp.array([9]))
    with pytest.raises(ValueError, match="needs max_len"):
        classifier("learned")
    assert classifier("sinusoidal").encoder.position_table is None  # nothing to learn


def test_cls_pooling_with_attention_sees_every_valid_input_and_no_pad():
    model = classifier("learned", pooling="cls", max_len=L + 1 + 4, d_input=3)
    x = jax.random.normal(jax.random.key(0), (B, L, 3))
    lengths = jnp.asarray(LENGTHS)
    grad = np.asarray(jax.grad(lambda x: model(x, lengths).sum())(x))
    valid = np.asarray(mask())
    assert np.abs(grad[~valid]).max() == 0.0
    assert np.abs(grad[valid]).max(axis=-1).min() > 0.0  # the CLS output reads every valid position
    longer = jnp.concatenate([x, jax.random.normal(jax.random.key(1), (B, 4, 3))], axis=1)
    np.testing.assert_allclose(np.asarray(model(longer, lengths)), np.asarray(model(x, lengths)), rtol=1e-5,
                               atol=1e-5)


# ------------------------------------------------------------------------------------------------------- configs

@pytest.mark.parametrize("task", base.TASKS)
def test_every_config_builds(task):
    for variant in (task, f"{task}_smoke"):
        c = transformer.get_config(variant)
        assert c.model.layer == "attention" and c.model.activation == "none" and c.model.norm == "layer"
        model = nnx.eval_shape(lambda: models.build_classifier(**c.model.to_dict(), n_classes=2, vocab_size=256,
                                                               dual=task == "retrieval", rngs=nnx.Rngs(0)))
        blocks = model.encoder.blocks
        assert len(blocks) == c.model.n_layers and blocks[0].mlp.W1.kernel.shape == (c.model.d_model,
                                                                                     c.model.mlp_dim)
        assert (c.optim.b1, c.optim.b2, c.optim.eps) == (0.9, 0.98, 1e-9)
        for key in c.data:
            assert key in ("task", "data_dir") or key in (base.SMOKE_DATA if "_smoke" in variant else base.DATA)[task]


def test_published_settings():
    c = transformer.get_config("listops")
    assert (c.model.n_layers, c.model.d_model, c.model.layer_args.n_heads, c.model.mlp_dim) == (4, 512, 8, 1024)
    assert c.model.pooling == "cls" and c.train.batch_size == 32 and c.optim.schedule == "rsqrt"
    # LRA: 0.05 * min(1, step/1000) / sqrt(max(step, 1000)), 5000 steps.
    sched = optim.schedule(c.optim, c.optim.lr, total_steps=c.train.num_steps)
    for step in (500, 1000, 4000):
        assert float(sched(step)) == pytest.approx(0.05 * min(1, step / 1000) / math.sqrt(max(step, 1000)), rel=1e-5)
    assert c.train.num_steps == 5000 and c.optim.weight_decay == 0.1 and c.optim.grad_clip == 0.0
    image = transformer.get_config("image")
    assert (image.model.positions, image.model.max_len, image.model.layer_args.qkv_dim) == ("learned", 1025, 64)
    assert image.model.dropout == 0.3 and image.model.layer_args.dropout == 0.2 and image.optim.schedule == "cosine"
    assert image.data.mode == "grey_tokens" and transformer.get_config("text").data.encoding == "bytes"
    pf = transformer.get_config("pathfinder")
    assert (pf.model.pooling, pf.model.positions, pf.train.batch_size) == ("mean", "sinusoidal", 512)
    assert transformer.get_config("pathx").optim.grad_clip == 1.0
    # Path-X: query chunks offered (off) in the full config, on in the smoke; the other smokes attend all at once.
    assert transformer.get_config("pathx").model.layer_args.query_chunk_size is None
    smoke = transformer.get_config("pathx_smoke")
    assert smoke.model.layer_args.query_chunk_size == 512 and smoke.data.size == "tiny"
    assert (smoke.model.n_layers, smoke.model.d_model, smoke.model.layer_args.n_heads) == (1, 32, 2)
    assert transformer.get_config("pathfinder_smoke").model.layer_args.query_chunk_size is None
    with pytest.raises(ValueError, match="unknown variant"):
        transformer.get_config("listop")
