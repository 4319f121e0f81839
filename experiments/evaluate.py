"""Evaluate a run directory's checkpoint on a split, without training and without writing anything.

  python -m experiments.evaluate --workdir runs/lru_listops [--checkpoint best|latest] [--split val|test]
  python -m experiments.evaluate --checkpoint runs/lru_listops/checkpoints/latest     (the same, by its folder)

The model, optimiser state layout and data come from the run's config.json (the data from the folder it recorded
when training started, checked against its manifest). Safe next to a running trainer: checkpoints are opened
read-only. Prints one line per split and, with --json, the numbers as JSON. Exit code 2 on a user error (a bad
flag, a stray argument, a checkpoint or workdir that is not there): one `error:` line naming it, no traceback.
"""
from __future__ import annotations

import json
from pathlib import Path

from absl import app, flags, logging

from experiments.cli import fail, parse_absl_flags

FLAGS = flags.FLAGS
CHECKPOINTS = ("best", "latest")
flags.DEFINE_string("workdir", None, "Run directory (holds config.json and checkpoints/).")
flags.DEFINE_string("checkpoint", "best", "Which checkpoint: best (by validation) or latest of --workdir, or the "
                    "folder of one, <workdir>/checkpoints/<best|latest> (then --workdir may be left out).")
flags.DEFINE_multi_enum("split", ["test"], ["train", "val", "test"], "Split(s) to evaluate; repeat the flag for more.")
flags.DEFINE_bool("json", False, "Also print the results as one JSON object.")


class EvaluationError(Exception):
    """A run directory that cannot be evaluated; the message says why and what to do."""


def resolve_checkpoint(workdir: str | None, checkpoint: str) -> tuple[Path, str]:
    """(run directory, "best" | "latest") from --workdir and --checkpoint; EvaluationError naming what is wrong."""
    if checkpoint in CHECKPOINTS:
        if not workdir:
            raise EvaluationError(f"--checkpoint={checkpoint} needs --workdir (the run directory), or give the "
                                  f"checkpoint's folder: --checkpoint=<workdir>/checkpoints/{checkpoint}")
        return check_run_dir(Path(workdir)), checkpoint
    folder = Path(checkpoint).expanduser().absolute()
    if not folder.exists():
        raise EvaluationError(f"--checkpoint={checkpoint}: {folder} does not exist; give best or latest (with "
                              "--workdir), or the folder <workdir>/checkpoints/<best|latest> of a run")
    if folder.name not in CHECKPOINTS or folder.parent.name != "checkpoints":
        raise EvaluationError(f"--checkpoint={checkpoint}: {folder} is not a checkpoint folder of a run; give best "
                              "or latest (with --workdir), or <workdir>/checkpoints/<best|latest>")
    run = folder.parent.parent
    if workdir and Path(workdir).absolute() != run:
        raise EvaluationError(f"--checkpoint={checkpoint} belongs to the run {run}, not to --workdir={workdir}; "
                              "leave --workdir out, or give best or latest")
    return check_run_dir(run), folder.name


def check_run_dir(workdir: Path) -> Path:
    """workdir, if it is a run directory (it holds config.json); else EvaluationError saying what it is."""
    if workdir.exists() and not workdir.is_dir():
        raise EvaluationError(f"--workdir {workdir} is a file, not a run directory (give the folder that train "
                              "wrote, the one holding config.json)")
    if not workdir.is_dir():
        raise EvaluationError(f"--workdir {workdir} does not exist (give the run directory that train wrote)")
    if not (workdir / "config.json").is_file():
        raise EvaluationError(f"{workdir} has no config.json: not a run directory, or its run never started "
                              "training (config.json is written at the first step)")
    return workdir


def load_run_config(workdir: Path):
    """The run's ConfigDict (from config.json, without the records kept beside it)."""
    import ml_collections

    from experiments import runlog

    check_run_dir(workdir)
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
    from experiments import checkpointing, trainer

    workdir = Path(workdir).absolute()
    config = load_run_config(workdir)
    dataset = load_run_dataset(workdir, config)
    mesh = trainer.make_mesh()
    model = trainer.build_model(config, dataset)
    steps, state = trainer.make_training(config, model, mesh)
    if not (workdir / "checkpoints" / checkpoint).is_dir():
        raise EvaluationError(f"{workdir / 'checkpoints' / checkpoint} does not exist: no checkpoint saved yet")
    restored = checkpointing.read(workdir / "checkpoints", checkpoint, state)
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
    del argv  # parse_absl_flags refused positional arguments
    logging.set_verbosity(logging.ERROR)  # orbax warns that a read-only checkpoint folder is read-only
    try:
        workdir, checkpoint = resolve_checkpoint(FLAGS.workdir, FLAGS.checkpoint)
    except EvaluationError as e:  # before the imports below: a typo is answered at once
        fail(str(e))
    import lra

    try:
        results = evaluate_run(workdir, checkpoint, tuple(dict.fromkeys(FLAGS.split)))
    except (EvaluationError, lra.DataError) as e:
        fail(str(e))
    if FLAGS.json:
        print(json.dumps(results, sort_keys=True))


if __name__ == "__main__":
    app.run(main, flags_parser=parse_absl_flags)
