"""Train and evaluate one config on one workdir; rerunning the same command resumes.

  python -m experiments.train --config experiments/configs/lru.py:listops_smoke --workdir runs/smoke \
      [--config.train.num_steps=500 ...] [--dry-run]

--dry-run checks the whole config and prints it resolved, without loading data or writing anything.
`python -m experiments.configs` lists the config files and their variants.

Exit codes (README.md, "Exit codes and errors"): 0 done (or already finished: the stored results are printed),
2 a user error (config, data, workdir; one `error:` line, no traceback), 3 training diverged, 4 a checkpoint
could not be saved, 130 / 143 interrupted by SIGINT (Ctrl-C) / SIGTERM (the step reached is saved; the message
says where a rerun resumes).
"""
import importlib.util
import os
import sys
from pathlib import Path

from absl import app, flags, logging
from ml_collections import config_flags

from experiments.cli import USER_ERROR, config_yaml, fail, flag_error, no_positional

FLAGS = flags.FLAGS
config_flags.DEFINE_config_file("config", None, "experiments/configs/<family>.py:<variant>", lock_config=True)
flags.DEFINE_string("workdir", None, "Run directory: checkpoints, metrics, results. Reuse it to resume.")
flags.DEFINE_bool("dry-run", False, "Check the config and print it resolved; load no data, write nothing.")
flags.mark_flags_as_required(["config"])

DIVERGED, SAVE_FAILED, INTERRUPTED = 3, 4, 130  # USER_ERROR (2): experiments/cli.py; SIGTERM: 128 + 15 = 143


def load_config(spec: str):
    """The ConfigDict named by 'path/to/family.py:variant' (as --config does); ValueError without a variant."""
    path, _, arg = spec.partition(":")
    if not arg:  # config_flags would call get_config() and silently train the family's first task
        from experiments.configs.__main__ import missing_variant

        raise ValueError(missing_variant(Path(path)))
    module_spec = importlib.util.spec_from_file_location("_config_module", path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module.get_config(arg)


def config_spec_problem(spec: str) -> str | None:
    """Why 'path.py[:variant]' cannot be loaded (missing file, unknown variant), else None."""
    path = spec.partition(":")[0]
    if not Path(path).is_file():
        configs = sorted(str(p) for p in Path("experiments/configs").glob("*.py")
                         if p.stem not in ("__init__", "__main__", "base"))
        return (f"--config {spec}: no config file {path}"
                + (f"; the config files are: {', '.join(configs)}" if configs else "")
                + " (list them and their variants with `python -m experiments.configs`)")
    try:
        load_config(spec)
    except ValueError as e:  # get_config's message (or load_config's) lists the variants that exist
        return str(e) if str(e).startswith("--config") else f"--config {spec}: {e}"
    return None


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
    specs = [a.split("=", 1)[1] for a in argv if a.startswith("--config=")]
    specs += [nxt for a, nxt in zip(argv, argv[1:]) if a == "--config"]
    if specs and (problem := config_spec_problem(specs[-1])):
        fail(problem)
    try:
        rest = FLAGS(argv)
    except (AttributeError, KeyError, ValueError, flags.Error) as e:
        if not specs:  # absl's "flag --config=None: Flag --config must have a value other than None."
            fail("--config is required: a config file and variant, e.g. --config experiments/configs/lru.py:"
                 "listops_smoke (`python -m experiments.configs` lists the config files and their variants)")
        fail(unknown_override(load_config(specs[-1]), argv) or flag_error(e))
    return no_positional(rest)


def dry_run(config, workdir: str | None) -> None:
    """Checks the config (and the workdir, if given) and prints it; no data is loaded, nothing is written."""
    from experiments import runlog, validation

    import lra

    validation.check_config(config)
    print(config_yaml(config), end="")
    try:
        data_root = lra.build.resolve_data_dir(config.data.get("data_dir"))
    except lra.DataError as e:
        fail(str(e))
    print(f"data folder root: {data_root}")
    if workdir:
        try:
            runlog.check_config(Path(workdir).absolute(), config.to_dict())
        except runlog.RunDirError as e:
            fail(str(e))
        state = ("a finished run: training would print its stored results"
                 if runlog.finished_results(Path(workdir), config.train.num_steps) else
                 "a run with this config: training would resume it" if (Path(workdir) / "config.json").exists()
                 else "no run yet: training would start one")
        print(f"workdir {workdir}: {state}")
    print("config is valid (sequence layer built and called abstractly); data and workdir were not touched")


def run(config, workdir: str):
    import lra
    from experiments import checkpointing, runlog, trainer, validation

    codes = {validation.ConfigError: USER_ERROR, lra.DataError: USER_ERROR, runlog.RunDirError: USER_ERROR,
             trainer.TrainingDiverged: DIVERGED, checkpointing.CheckpointSaveError: SAVE_FAILED,
             trainer.Interrupted: INTERRUPTED}
    try:
        trainer.train_and_evaluate(config, workdir)
    except tuple(codes) as e:
        sys.stdout.flush()
        if isinstance(e, trainer.Interrupted):
            fail(str(e), 128 + e.signum)  # the shell's convention for a process ended by a signal: 130, 143
        fail(str(e), next(code for kind, code in codes.items() if isinstance(e, kind)))
    except KeyboardInterrupt:  # before training started (data, model): nothing was written
        fail("interrupted before training started; nothing was written to the workdir.", INTERRUPTED)


def main(argv):
    del argv  # parse_flags refused positional arguments
    logging.set_verbosity(logging.WARNING)  # orbax logs every save at INFO
    # Imported in the functions above so that --help and flag errors stay fast.
    from experiments import validation

    try:
        if FLAGS["dry-run"].value:
            return dry_run(FLAGS.config, FLAGS.workdir)
        if not FLAGS.workdir:
            fail("--workdir is required (the run directory; rerun with the same one to resume)")
        run(FLAGS.config, FLAGS.workdir)
    except validation.ConfigError as e:
        fail(str(e))


def die_with_driver(environ=os.environ) -> None:
    """When experiments.reproduce started this trainer (LRA_DRIVER_PID, its pid, in the environment): on Linux, ask
    for SIGKILL when the parent dies (prctl PR_SET_PDEATHSIG), then exit at once if the parent is already gone (it
    died before the prctl: we were re-parented). The driver cannot do this itself between fork and exec: its
    preexec_fn is unsafe once JAX has started threads. Elsewhere (no prctl) this does nothing."""
    driver = environ.get("LRA_DRIVER_PID")
    if not driver or not sys.platform.startswith("linux"):
        return
    import ctypes
    import signal

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG = 1
    except (OSError, AttributeError):
        return
    if str(os.getppid()) != driver.strip():
        print(f"error: the driver (pid {driver}) that started this trainer has exited; nothing was done.",
              file=sys.stderr)
        os._exit(1)


if __name__ == "__main__":
    die_with_driver()
    try:
        app.run(main, flags_parser=parse_flags)
    except KeyboardInterrupt:  # during start-up (imports, flag parsing)
        print("error: interrupted before training started; nothing was written.", file=sys.stderr)
        os._exit(INTERRUPTED)
