"""models.classifier: build_classifier, pooling, padding invariance (single and dual encoder), train/eval."""
import inspect

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import models
from models.blocks import MaskedNorm, ResidualBlock

H, N, VOCAB, N_CLASSES = 8, 4, 11, 3
LENGTHS = np.array([8, 4, 1])
forward = nnx.jit(lambda model, *args: model(*args))


def build(pooling="mean", bidirectional=False, norm="batch", dual=False, **kw):
    kw = {"vocab_size": VOCAB, **kw}
    return models.build_classifier(layer="lru", layer_args=dict(d_state=N, bidirectional=bidirectional,
                                   r_min=0.5, r_max=0.99), d_model=H, n_layers=2, norm=norm, pooling=pooling,
                                   n_classes=N_CLASSES, dual=dual, rngs=nnx.Rngs(0), **kw)


def tokens(seed, length):
    """Random tokens everywhere, pad positions included: pads hold junk, never a neutral value."""
    return jax.random.randint(jax.random.key(seed), (len(LENGTHS), length), 0, VOCAB)


def run(model, *args, fn=forward):
    """Logits and the BatchNorm statistics after the call, from a copy (train mode updates the statistics)."""
    model = nnx.clone(model)
    logits = np.asarray(fn(model, *args))
    stats = [np.asarray(v[...]) for _, v in nnx.to_flat_state(nnx.state(model, nnx.BatchStat))]
    return logits, stats


@pytest.mark.parametrize("train", [False, True], ids=["eval", "train"])
@pytest.mark.parametrize("norm", ["batch", "layer"])
@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bidi"])
@pytest.mark.parametrize("pooling", models.POOLINGS)
def test_padding_invariance(pooling, bidirectional, norm, train):
    model = build(pooling, bidirectional, norm)
    model.train() if train else model.eval()
    x, lengths = tokens(0, 8), jnp.asarray(LENGTHS)
    x_padded = jnp.concatenate([x, tokens(1, 5)], axis=1)
    logits, stats = run(model, x, lengths)
    logits_padded, stats_padded = run(model, x_padded, lengths)
    assert logits.shape == (3, N_CLASSES) and logits.dtype == np.float32
    np.testing.assert_allclose(logits_padded, logits, rtol=1e-5, atol=1e-5)
    for s, s_padded in zip(stats, stats_padded, strict=True):
        np.testing.assert_allclose(s_padded, s, rtol=1e-5, atol=1e-6)
    if train and norm == "batch":  # the statistics did move
        _, stats_before = run(model, fn=lambda model: jnp.zeros(()))
        assert all(np.abs(s - s0).max() > 1e-4 for s, s0 in zip(stats, stats_before, strict=True))


@pytest.mark.parametrize("bidirectional, norm, train", [(True, "layer", False), (False, "batch", True)],
                         ids=["reverse-scan", "batch-stats"])
def test_padding_leaks_without_mask(bidirectional, norm, train, monkeypatch):
    """The invariance test can fail: with the blocks ignoring the mask (pooling still masked), pads leak through
    the reverse scan and through BatchNorm's batch statistics, the two paths by which they can reach valid
    positions (a causal layer with per-position normalisation cannot see pads at all)."""
    model = build("mean", bidirectional, norm)
    model.train() if train else model.eval()
    x, lengths = tokens(0, 8), jnp.asarray(LENGTHS)
    logits, _ = run(model, x, lengths)
    block_call, norm_call = ResidualBlock.__call__, MaskedNorm.__call__
    monkeypatch.setattr(ResidualBlock, "__call__", lambda self, x, mask=None: block_call(self, x, None))
    monkeypatch.setattr(MaskedNorm, "__call__", lambda self, x, mask=None: norm_call(self, x, None))
    unmasked = nnx.jit(lambda model, *args: model(*args))  # a fresh trace, so the patches take effect
    leaky, _ = run(model, jnp.concatenate([x, tokens(1, 5)], axis=1), lengths, fn=unmasked)
    assert np.abs(leaky - logits).max() > 1e-4


@pytest.mark.parametrize("train", [False, True], ids=["eval", "train"])
def test_dual_encoder_padding_invariance(train):
    model = build("mean", bidirectional=True, norm="batch", dual=True)
    model.train() if train else model.eval()
    x1, x2 = tokens(0, 8), tokens(1, 6)  # different lengths: the model pads them to a common one
    l1, l2 = jnp.asarray(LENGTHS), jnp.asarray([3, 6, 2])
    logits, stats = run(model, x1, l1, x2, l2)
    logits_padded, stats_padded = run(model, jnp.concatenate([x1, tokens(2, 3)], 1), l1,
                                      jnp.concatenate([x2, tokens(3, 9)], 1), l2)
    assert logits.shape == (3, N_CLASSES) and logits.dtype == np.float32
    np.testing.assert_allclose(logits_padded, logits, rtol=1e-5, atol=1e-5)
    for s, s_padded in zip(stats, stats_padded, strict=True):
        np.testing.assert_allclose(s_padded, s, rtol=1e-5, atol=1e-6)
    swapped, _ = run(model, x2, l2, x1, l1)  # the head is not symmetric in the two documents (u - v)
    assert np.abs(swapped - logits).max() > 1e-5


def test_pooling():
    x_BxLxH = jnp.arange(2 * 4 * 3, dtype=jnp.float32).reshape(2, 4, 3)
    x_BxLxH = x_BxLxH.at[1, 2:].set(jnp.inf)  # pads may hold anything
    lengths = jnp.array([4, 2])
    np.testing.assert_allclose(models.pool(x_BxLxH, lengths, "mean"),
                               np.stack([np.asarray(x_BxLxH[0]).mean(0), np.asarray(x_BxLxH[1, :2]).mean(0)]))
    np.testing.assert_array_equal(models.pool(x_BxLxH, lengths, "last"), np.stack([x_BxLxH[0, 3], x_BxLxH[1, 1]]))
    np.testing.assert_array_equal(models.pool(x_BxLxH, lengths, "cls"), x_BxLxH[:, 0])
    with pytest.raises(ValueError, match="pooling"):
        models.pool(x_BxLxH, lengths, "max")


def test_cls_token_is_prepended(monkeypatch):
    model = build("cls", bidirectional=True)
    assert model.encoder.cls_token.shape == (H,)
    seen, block_call = [], ResidualBlock.__call__

    def spy(self, x, mask=None):
        seen.append((x.shape, np.asarray(mask).sum(1)))
        return block_call(self, x, mask)

    monkeypatch.setattr(ResidualBlock, "__call__", spy)
    model(tokens(0, 8), jnp.asarray(LENGTHS))
    assert seen[0][0] == (3, 9, H)
    np.testing.assert_array_equal(seen[0][1], LENGTHS + 1)


def test_real_valued_inputs():
    model = build(d_input=2, vocab_size=None)
    model.eval()
    x = jax.random.normal(jax.random.key(0), (3, 8, 2))
    x_padded = jnp.concatenate([x, 100 * jnp.ones((3, 4, 2))], axis=1)
    logits, _ = run(model, x, jnp.asarray(LENGTHS))
    np.testing.assert_allclose(run(model, x_padded, jnp.asarray(LENGTHS))[0], logits, rtol=1e-5, atol=1e-5)
    assert isinstance(model.encoder.encoder, nnx.Linear)
    with pytest.raises(ValueError, match="exactly one"):
        build(d_input=2, vocab_size=VOCAB)


def test_build_classifier_signature_and_layers():
    params = inspect.signature(models.build_classifier).parameters
    assert list(params) == ["layer", "layer_args", "d_model", "n_layers", "norm", "prenorm", "activation",
                            "dropout", "pooling", "n_classes", "vocab_size", "d_input", "dual", "bn_momentum",
                            "positions", "max_len", "mlp_dim", "dtype", "rngs"]
    assert all(p.kind == p.KEYWORD_ONLY for p in params.values())
    defaults = {k: p.default for k, p in params.items() if p.default is not p.empty}
    assert defaults == dict(norm="batch", prenorm=True, activation="half_glu2", dropout=0.0, pooling="mean",
                            vocab_size=None, d_input=None, dual=False, bn_momentum=0.99, positions="none",
                            max_len=None, mlp_dim=None, dtype="float32")
    from experiments.configs import base  # every key of the config's model section is one of these arguments
    assert set(base.base_config().model) <= set(params)
    assert models.LAYERS["lru"] is models.LRU and all(isinstance(cls, type) for cls in models.LAYERS.values())
    model = build(bn_momentum=0.9)
    momenta = [m.momentum for _, m in nnx.iter_graph(model) if isinstance(m, nnx.BatchNorm)]
    assert len(momenta) == 3 and set(momenta) == {0.9}  # two blocks and the final norm
    with pytest.raises(ValueError, match="unknown layer"):
        models.build_classifier(layer="s4", layer_args={}, d_model=H, n_layers=1, n_classes=2, vocab_size=5,
                                rngs=nnx.Rngs(0))


def test_train_eval_modes_reach_every_module():
    model = models.build_classifier(layer="lru", layer_args=dict(d_state=N), d_model=H, n_layers=2, dropout=0.1,
                                    n_classes=2, vocab_size=VOCAB, rngs=nnx.Rngs(0))
    dropouts = [m for _, m in nnx.iter_graph(model) if isinstance(m, nnx.Dropout)]
    norms = [m for _, m in nnx.iter_graph(model) if isinstance(m, nnx.BatchNorm)]
    assert len(dropouts) == 2 and len(norms) == 3  # one per block, plus the final pre-norm stack norm
    model.eval()
    assert all(m.deterministic for m in dropouts) and all(m.use_running_average for m in norms)
    model.train()
    assert not any(m.deterministic for m in dropouts) and not any(m.use_running_average for m in norms)


def test_train_step_gradients():
    model = build("mean", dropout=0.1)
    model.train()
    x, y = tokens(0, 8), jnp.array([0, 1, 2])

    @nnx.jit
    def loss_and_grads(model, x, lengths, y):
        def loss_fn(model):
            logits = model(x, lengths)
            return -jnp.take_along_axis(jax.nn.log_softmax(logits), y[:, None], 1).mean()
        return nnx.value_and_grad(loss_fn)(model)

    loss, grads = loss_and_grads(model, x, jnp.asarray(LENGTHS), y)
    assert np.isfinite(float(loss))
    flat = nnx.to_flat_state(grads)
    assert all(np.isfinite(np.asarray(g[...])).all() for _, g in flat)
    recurrent = nnx.to_flat_state(nnx.state(model, models.RecurrentParam))
    assert {p[-1] for p, _ in recurrent} == {"nu_log", "theta_log", "gamma_log", "B_re", "B_im"}
    assert len(recurrent) == 2 * 5
