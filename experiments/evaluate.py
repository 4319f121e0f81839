"""Evaluate a run directory's checkpoint on a split, without training and without writing anything.

  python -m experiments.evaluate --workdir runs/lru_listops [--checkpoint best|latest] [--split val|test]

The model, optimiser state layout and data come from the run's config.json (the data from the folder it recorded
when training started, checked against its manifest). Safe next to a running trainer: checkpoints are opened
read-only. Prints one line per split and, with --json, the numbers as JSON. Exit code 2 on a user error.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from absl import app, flags, logging

FLAGS = flags.FLAGS
flags.DEFINE_string("workdir", None, "Run directory (holds config.json and checkpoints/).")
flags.DEFINE_enum("checkpoint", "best", ["best", "latest"], "Which checkpoint: best by validation, or the latest.")
flags.DEFINE_multi_enum("split", ["test"], ["train", "val", "test"], "Split(s) to evaluate; repeat the flag for more.")
flags.DEFINE_bool("json", False, "Also print the results as one JSON object.")
flags.mark_flags_as_required(["workdir"])


class EvaluationError(Exception):
    """A run directory that cannot be evaluated; the message says why and what to do."""


def load_run_config(workdir: Path):
    """The run's ConfigDict (from config.json, without the records kept beside it)."""
    import ml_collections

    from experiments import runlog

    if not (workdir / "config.json").is_file():
        raise EvaluationError(f"{workdir} has no config.json: not a run directory, or its run never started "
                              "training (config.json is written at the first step)")
    return ml_collections.ConfigDict(runlog.stored_config(workdir))


def load_run_dataset(workdir: Path, config):
    """The data the run trained on: the folder config.json recorded, else the config's data options."""
    import lra

    recorded = json.loads((workdir / "config.json").read_text()).get("dataset") or {}
    if recorded.get("folder") and Path(recorded["folder"]).is_dir():
        return lra.load_dataset(recorded["folder"])
    return lra.get_dataset(**config.data.to_dict())


def evaluate_run(workdir, checkpoint: str = "best", splits=("test",)) -> dict:
    """{"checkpoint", "step", "<split>_accuracy", "<split>_loss", ...} of one checkpoint of a run directory."""
    import jax
    from jax.sharding import NamedSharding, PartitionSpec as P

    from experiments import checkpointing, optim, trainer

    workdir = Path(workdir).absolute()
    config = load_run_config(workdir)
    dataset = load_run_dataset(workdir, config)
    mesh = trainer.make_mesh()
    model = trainer.build_model(config, dataset)
    tx = optim.make_optimizer(config.optim, optim.param_labels(model), total_steps=config.train.num_steps)
    train_graphdef, eval_graphdef, state = trainer.init_state(model, tx)
    steps = trainer.make_steps(train_graphdef, eval_graphdef, tx)
    state = jax.device_put(state, NamedSharding(mesh, P()))
    if not (workdir / "checkpoints" / checkpoint).is_dir():
        raise EvaluationError(f"{workdir / 'checkpoints' / checkpoint} does not exist: no checkpoint saved yet")
    ckpts = checkpointing.Checkpoints(workdir / "checkpoints", read_only=True)
    try:
        restored = ckpts.restore(checkpoint, state)
    finally:
        ckpts.close()
    if restored is None:
        raise EvaluationError(f"{workdir / 'checkpoints' / checkpoint} holds no complete checkpoint yet")
    state, meta = restored
    results = dict(workdir=str(workdir), checkpoint=checkpoint, step=int(meta["step"]))
    batch_size = config.train.eval_batch_size - config.train.eval_batch_size % mesh.devices.size or mesh.devices.size
    for split in splits:
        values = trainer.evaluate(steps, state, dataset.splits[split], batch_size, mesh)
        results.update({f"{split}_accuracy": values["accuracy"], f"{split}_loss": values["loss"]})
        label, majority = trainer.majority_baseline(dataset, split)
        print(f"{split:<5s} accuracy {values['accuracy']:.4f}  loss {values['loss']:.4f}  "
              f"({checkpoint} checkpoint, step {results['step']}; majority-class baseline {majority:.4f}: "
              f"always predicting label {label}, the most frequent train label)")
    return results


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    logging.set_verbosity(logging.ERROR)  # orbax warns that a read-only checkpoint folder is read-only
    import lra

    try:
        results = evaluate_run(FLAGS.workdir, FLAGS.checkpoint, tuple(dict.fromkeys(FLAGS.split)))
    except (EvaluationError, lra.DataError) as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    if FLAGS.json:
        print(json.dumps(results, sort_keys=True))


if __name__ == "__main__":
    app.run(main)
