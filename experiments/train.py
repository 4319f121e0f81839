"""Train and evaluate one config on one workdir; rerunning the same command resumes.

  python -m experiments.train --config experiments/configs/lru.py:listops_smoke --workdir runs/smoke \
      [--config.train.num_steps=500 ...]
"""
import importlib.util
import sys

from absl import app, flags, logging
from ml_collections import config_flags

FLAGS = flags.FLAGS
config_flags.DEFINE_config_file("config", None, "experiments/configs/<family>.py:<variant>", lock_config=True)
flags.DEFINE_string("workdir", None, "Run directory: checkpoints, metrics, results. Reuse it to resume.")
flags.mark_flags_as_required(["config", "workdir"])


def load_config(spec: str):
    """The ConfigDict named by 'path/to/family.py:variant' (as --config does)."""
    path, _, arg = spec.partition(":")
    module_spec = importlib.util.spec_from_file_location("_config_module", path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module.get_config(arg) if arg else module.get_config()


def unknown_override(config, argv) -> str | None:
    """A message naming the first --config.<key> override that the config does not have, with the valid keys."""
    for arg in argv:
        if not arg.startswith("--config."):
            continue
        keys = arg[len("--config."):].split("=", 1)[0].split(".")
        node = config
        for depth, key in enumerate(keys):
            if not hasattr(node, "keys") or key not in node:
                where = ".".join(keys[:depth]) or "the top level"
                valid = ", ".join(sorted(node.keys())) if hasattr(node, "keys") else "(none: it is a value)"
                return f"unknown config key '{'.'.join(keys[: depth + 1])}'; valid keys under {where}: {valid}"
            node = node[key]
    return None


def parse_flags(argv):
    try:
        return FLAGS(argv)
    except (AttributeError, KeyError, flags.Error) as e:
        specs = [a.split("=", 1)[1] for a in argv if a.startswith("--config=")]
        specs += [nxt for a, nxt in zip(argv, argv[1:]) if a == "--config"]
        message = unknown_override(load_config(specs[-1]), argv) if specs else None
        print(f"error: {message or e}", file=sys.stderr)
        sys.exit(2)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    logging.set_verbosity(logging.WARNING)  # orbax logs every save at INFO
    # Imported here so that --help and flag errors stay fast.
    import lra
    from experiments import trainer

    try:
        trainer.train_and_evaluate(FLAGS.config, FLAGS.workdir)
    except lra.DataError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    except trainer.TrainingDiverged as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(3)


if __name__ == "__main__":
    app.run(main, flags_parser=parse_flags)
