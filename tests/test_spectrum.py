"""models/spectrum.py (eigenvalues of recurrent layers) and experiments/runs.py (a run directory's model)."""
import json
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from test_layers import CASES  # the shared layer-contract cases (tests/ is on sys.path under pytest)

import lra
import models
from experiments import runs
from models import spectrum

SPECTRAL_CASES = [c for c, (name, _, causal) in CASES.items() if name in spectrum.SPECTRA and causal]


@pytest.mark.parametrize("case", SPECTRAL_CASES)
def test_eigenvalues_are_those_of_the_step(case):
    """With zero input, one step multiplies the state by the eigenvalues: x_k = lambda * x_{k-1}."""
    name, args, _ = CASES[case]
    layer = models.LAYERS[name](6, **args, rngs=nnx.Rngs(0))
    lam = spectrum.SPECTRA[name](layer).ravel()
    x0 = layer.initial_state(2)
    x0 = (jax.random.normal(jax.random.key(1), x0.shape) + (1j if jnp.iscomplexobj(x0) else 0)).astype(x0.dtype)
    x1, _ = layer.step(x0, jnp.zeros((2, 6), jnp.float32))
    np.testing.assert_allclose(np.asarray(x1).reshape(2, -1), lam * np.asarray(x0).reshape(2, -1), rtol=1e-5,
                               atol=1e-6)


def test_lru_ring_init_in_the_ring():
    layer = models.LRU(8, 256, r_min=0.9, r_max=0.999, max_phase=math.pi / 10, rngs=nnx.Rngs(0))
    lam = spectrum.lru_eigenvalues(layer)
    assert lam.shape == (256,)
    assert np.all(np.abs(lam) >= 0.9 - 1e-6) and np.all(np.abs(lam) <= 0.999 + 1e-6)
    assert np.all(np.angle(lam) >= -1e-6) and np.all(np.angle(lam) <= math.pi / 10 + 1e-6)
    bidir = models.LRU(8, 16, bidirectional=True, rngs=nnx.Rngs(0))
    assert spectrum.lru_eigenvalues(bidir).shape == (32,)


def test_eigenvalues_of_every_layer_of_a_model():
    model = models.build_classifier(layer="lru", layer_args=dict(d_state=4, r_min=0.5, r_max=0.6), d_model=8,
                                    n_layers=3, n_classes=2, vocab_size=5, rngs=nnx.Rngs(0))
    eig = spectrum.eigenvalues(model)
    assert len(eig) == 3 and all("blocks" in path for path in eig)
    assert list(eig) == sorted(eig) and all(v.shape == (4,) and v.dtype == np.complex128 for v in eig.values())
    assert all(np.all((np.abs(v) > 0.5 - 1e-6) & (np.abs(v) < 0.6 + 1e-6)) for v in eig.values())
    # Different layers are initialised differently.
    assert not np.allclose(*list(eig.values())[:2])


def test_a_model_without_recurrence_or_without_an_entry_is_an_error(monkeypatch):
    with pytest.raises(ValueError, match="no recurrent layer"):
        spectrum.eigenvalues(nnx.Linear(2, 2, rngs=nnx.Rngs(0)))
    monkeypatch.setattr(spectrum, "SPECTRA", {})
    with pytest.raises(ValueError, match=r"\['lru'\]"):
        spectrum.eigenvalues(models.LRU(4, 4, rngs=nnx.Rngs(0)))


def test_zoh_memory_and_summary():
    A, dt = np.array([-0.5 + 1j, -2.0]), np.array([0.1, 0.01])
    np.testing.assert_allclose(spectrum.zoh(A, dt), np.exp(dt * A))
    assert np.all(np.abs(spectrum.zoh(A, dt)) < 1)  # Re A < 0: stable
    np.testing.assert_allclose(spectrum.effective_memory([0.9, 0.5j, 0.0]), [10.0, 2.0, 1.0])
    assert spectrum.effective_memory([1.0])[0] == np.inf
    s = spectrum.summary(np.array([0.999, 0.995j, 0.5, 1.0]), near=0.99, length=150)
    assert s["n"] == 4 and s["near_unit_circle"] == 3 and s["unstable"] == 1
    assert s["memory_at_least_150"] == 3 and s["abs_min"] == 0.5  # 1/(1-0.995) = 200 steps


# ------------------------------------------------------------------------------------------ experiments/runs.py


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """A tiny LRU run on the small generated ListOps, trained in this process (a few seconds)."""
    from experiments import trainer
    from experiments.train import load_config

    root = tmp_path_factory.mktemp("run")
    config = load_config("experiments/configs/lru.py:listops_smoke")
    with config.unlocked():
        config.data.data_dir = str(root / "data")
        config.model.d_model, config.model.n_layers = 16, 2
        config.model.layer_args.d_state = 8
        config.train.update(batch_size=16, eval_batch_size=256, num_steps=60, log_every=10, eval_every=20,
                            checkpoint_every=20, async_checkpointing=False)
        config.optim.lr, config.optim.warmup_steps = 1e-2, 5
    trainer.train_and_evaluate(config, root / "run")
    return root / "run"


def accuracy(model, config, split):
    data = lra.get_dataset(**config.data.to_dict()).splits[split]
    correct = 0
    for batch in lra.eval_batches(data, 256):
        pred = np.argmax(np.asarray(model(batch["inputs"], batch["lengths"])), -1)
        correct += int(((pred == batch["labels"]) & batch["valid"]).sum())
    return correct / len(data["labels"])


@pytest.mark.slow
def test_load_model_restores_the_best_checkpoint(tiny_run):
    results = json.loads((tiny_run / "results.json").read_text())
    model, config, meta = runs.load_model(tiny_run, "best")
    assert meta["best_step"] == results["best_step"]
    # The loaded model is the one results.json's test accuracy was measured on.
    assert accuracy(model, config, "test") == pytest.approx(results["test_accuracy"], abs=1e-6)
    init, _, none = runs.load_model(tiny_run, "init")
    assert none is None
    before, after = spectrum.eigenvalues(init), spectrum.eigenvalues(model)
    assert list(before) == list(after) and len(after) == 2
    assert not all(np.allclose(before[k], after[k]) for k in before), "training did not move any eigenvalue"
    latest, _, meta_latest = runs.load_model(tiny_run, "latest")
    assert meta_latest["step"] == 60


def test_load_model_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="config.json"):
        runs.load_model(tmp_path)
    with pytest.raises(ValueError, match="not a run directory"):
        runs.read_run(tmp_path)
