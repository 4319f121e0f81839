"""The LRU smoke configs of Text, Retrieval and Image train a few steps in-process on mocked / fixture data.

Checks the path config -> lra.get_dataset -> batches -> model (embedding, linear encoder for 1 or 3 real channels,
dual encoder for two documents) -> trainer, with tiny sizes.
"""
import json

import numpy as np
import pytest
import tensorflow_datasets as tfds

from experiments import trainer
from experiments.configs import lru

# ~15 s of CPU each, but about a minute of wall time on the shared 2-core machine (compiles).
pytestmark = pytest.mark.slow


def tiny(config, workdir_data, **data):
    config.data.data_dir = str(workdir_data)
    config.data.update(data)
    config.model.d_model = 8
    config.model.n_layers = 1
    config.model.layer_args.d_state = 4
    config.train.batch_size = 4
    config.train.eval_batch_size = 8
    config.train.num_steps = 3
    config.train.log_every = 3
    config.train.eval_every = 3
    config.train.checkpoint_every = 3
    config.train.async_checkpointing = False
    config.optim.warmup_steps = 1
    return config


def write_aan(folder, n_rows=12):
    """Small new_aan_pairs.{train,eval,test}.tsv files (release format: no header, float labels, quotes)."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in ("train", "eval", "test"):
        lines = []
        for i in range(n_rows):
            words = " ".join(rng.choice(["graph", "parse", '"tree"', "model's", "corpus."], 6))
            lines.append(f"{['0', '1.0'][i % 2]}\tid{i}\tid{i + 1}\t{words}\t{words[::-1]}")
        (folder / f"new_aan_pairs.{name}.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


def check_results(workdir, results):
    assert results["step"] == 3 and 0.0 <= results["test_accuracy"] <= 1.0
    assert np.isfinite(results["test_loss"]) and np.isfinite(results["final_train_loss"])
    assert json.loads((workdir / "results.json").read_text())["test_accuracy"] == results["test_accuracy"]


def test_text_smoke_trains(tmp_path):
    config = tiny(lru.get_config("text_smoke"), tmp_path / "data", max_len=32)
    with tfds.testing.mock_data(num_examples=16):
        results = trainer.train_and_evaluate(config, tmp_path / "run")
    check_results(tmp_path / "run", results)


def test_retrieval_smoke_trains_the_dual_encoder(tmp_path):
    release = write_aan(tmp_path / "tsv_data")
    config = tiny(lru.get_config("retrieval_smoke"), tmp_path / "data", max_len=24, release_dir=str(release))
    results = trainer.train_and_evaluate(config, tmp_path / "run")
    check_results(tmp_path / "run", results)
    params = json.loads((tmp_path / "run" / "config.json").read_text())
    assert params["data"]["task"] == "retrieval"


@pytest.mark.parametrize("mode", ["colour_real", "grey_real"])  # (B, L, 3) and (B, L) reals; tokens: Text
def test_image_smoke_trains(tmp_path, mode):
    config = tiny(lru.get_config("image_smoke"), tmp_path / "data", mode=mode)
    with tfds.testing.mock_data(num_examples=20):
        results = trainer.train_and_evaluate(config, tmp_path / "run")
    check_results(tmp_path / "run", results)
