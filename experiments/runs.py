"""Reading run directories: what a run is (model, task, seed, scale), how far it got, and its trained model.

A run directory is the trainer's (see experiments/runlog.py). The suite driver (experiments/reproduce.py) adds
  run.json      what the run is: {"name", "family", "variant", "task", "option", "seed", "scale", "config",
                "overrides", "suite"}; scale is "full" (the published settings) or "mini" (a smoke variant:
                small generated data, small model)
  failure.json  why the last attempt failed: {"kind", "exit_code", "reason"} (removed when a rerun succeeds)
and, in the runs directory itself, suite.json: the runs a suite expects (so that the table can show missing ones).

A run directory made by the trainer alone (no run.json) is read from config.json; its scale is "unlabelled",
never shown as full scale.

  info = runs.read_run("runs/mini/lru-listops_smoke-seed0")   # RunInfo: status, results, step, ...
  model, config, meta = runs.load_model(info.path, "best")    # the best-by-validation checkpoint, eval mode
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

SCALES = ("full", "mini", "unlabelled")
RUN_FILE, FAILURE_FILE, SUITE_FILE = "run.json", "failure.json", "suite.json"
# failure kinds (from the trainer's exit code: 2 = user or data error, 3 = divergence)
DIVERGED, USER_ERROR, CRASHED = "diverged", "user or data error", "crashed"


@dataclasses.dataclass
class RunInfo:
    path: Path
    name: str
    family: str  # config family file name, e.g. "lru", "ladder"
    option: str | None  # e.g. the ladder rung
    task: str
    seed: int
    scale: str  # one of SCALES
    status: str  # "done" | "failed" | "incomplete" | "not started" | "missing" | "not available" | "stale"
    results: dict | None = None
    failure: dict | None = None
    step: int = 0  # last logged training step
    num_steps: int | None = None
    config: dict | None = dataclasses.field(default=None, repr=False)  # config.json, None before the run starts

    @property
    def model(self) -> str:
        """Row label: the family, with its option ("ladder:ring_init")."""
        return f"{self.family}:{self.option}" if self.option else self.family

    @property
    def chance_level(self) -> bool:
        return bool(self.results and self.results.get("chance_level"))


def flatten_config(tree: dict, prefix: str = "") -> dict:
    """A nested config dict as {"section.key": value} (what config.json holds, flattened for comparing)."""
    out = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            out.update(flatten_config(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def _read_json(path: Path):
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not valid JSON ({e}); delete or fix the file") from None


def read_metrics(run_dir, split: str | None = None) -> list[dict]:
    """The records of <run_dir>/metrics.jsonl (of one split if given); a half-written last line is skipped."""
    path = Path(run_dir) / "metrics.jsonl"
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:  # a line a kill left half-written
            continue
        if split is None or record.get("split") == split:
            out.append(record)
    return out


def read_run(run_dir) -> RunInfo:
    """What the run in `run_dir` is and how far it got. ValueError if it has neither run.json nor config.json."""
    path = Path(run_dir)
    run = _read_json(path / RUN_FILE) if (path / RUN_FILE).exists() else None
    config = _read_json(path / "config.json") if (path / "config.json").exists() else None
    if run is None and config is None:
        raise ValueError(f"{path} is not a run directory (no {RUN_FILE} and no config.json)")
    if run is not None:
        family, option, task, seed, scale = run["family"], run.get("option"), run["task"], run["seed"], run["scale"]
        if scale not in SCALES:
            raise ValueError(f"{path / RUN_FILE}: scale {scale!r} is not one of {SCALES}")
    else:
        family, option = config["model"]["layer"], None
        task, seed, scale = config["data"]["task"], config["seed"], "unlabelled"
    results = _read_json(path / "results.json") if (path / "results.json").exists() else None
    failure = _read_json(path / FAILURE_FILE) if (path / FAILURE_FILE).exists() else None
    train = read_metrics(path, "train")
    step = train[-1]["step"] if train else 0
    num_steps = config["train"]["num_steps"] if config else None
    if results is not None:
        status, failure = "done", None
    elif failure is not None:
        status = "failed"
    else:
        status = "incomplete" if config is not None else "not started"
    return RunInfo(path=path, name=run["name"] if run else path.name, family=family, option=option, task=task,
                   seed=int(seed), scale=scale, status=status, results=results, failure=failure, step=step,
                   num_steps=num_steps, config=config)


def find_runs(runs_dir) -> list[RunInfo]:
    """Every run directory under runs_dir (one holding run.json or config.json), sorted by path."""
    runs_dir = Path(runs_dir)
    if runs_dir.exists() and not runs_dir.is_dir():
        raise FileNotFoundError(f"{runs_dir} is a file, not a runs directory (give the folder that holds the run "
                                "directories, e.g. runs/)")
    if not runs_dir.is_dir():
        raise FileNotFoundError(f"runs directory {runs_dir} does not exist")
    dirs = {p.parent for name in (RUN_FILE, "config.json") for p in runs_dir.rglob(name)
            if "checkpoints" not in p.relative_to(runs_dir).parts}
    return [read_run(d) for d in sorted(dirs)]


def expected_runs(runs_dir) -> list[RunInfo]:
    """The runs the suite in runs_dir expects (from suite.json), as status "missing" (or "not available": the
    config did not exist when the suite ran); [] without suite.json."""
    path = Path(runs_dir) / SUITE_FILE
    if not path.exists():
        return []
    return [RunInfo(path=Path(runs_dir) / r["name"], name=r["name"], family=r["family"], option=r.get("option"),
                    task=r["task"], seed=int(r["seed"]), scale=r["scale"],
                    status="missing" if r.get("available", True) else "not available")
            for r in _read_json(path)["runs"]]


def stale_runs(runs_dir) -> dict[str, str]:
    """{run name: why} for the run directories the suite driver found holding another config's run (suite.json
    "stale": the suite entry changed since that run; the driver does not reuse it); {} without suite.json."""
    path = Path(runs_dir) / SUITE_FILE
    if not path.exists():
        return {}
    return {r["name"]: r["stale"] for r in _read_json(path)["runs"] if r.get("stale")}


def latest_checkpoint_step(run_dir) -> int | None:
    """The step of the newest complete checkpoint in <run_dir>/checkpoints/latest (what a rerun resumes from).

    Orbax renames a checkpoint folder to its bare step number only once it is complete."""
    folder = Path(run_dir) / "checkpoints" / "latest"
    steps = [int(p.name) for p in folder.iterdir() if p.name.isdigit()] if folder.is_dir() else []
    return max(steps, default=None)


# --------------------------------------------------------------------------------------------- trained models


def load_config(run_dir):
    """The run's config (from config.json) as a locked ml_collections.ConfigDict."""
    import ml_collections

    path = Path(run_dir) / "config.json"
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist: the trainer has not started this run")
    config = ml_collections.ConfigDict(_read_json(path))
    config.lock()
    return config


def load_model(run_dir, checkpoint: str = "best", dataset=None):
    """The run's model in eval mode: (model, config, meta).

    checkpoint: "best" (best by validation, what results.json's test accuracy is of), "latest", or "init" (the
      model the run started from: the trainer's build_model with the run's seed; meta is None).
    dataset: the run's lra.Dataset, else loaded from config.data (it gives vocab and class counts).
    Reads the trainer's own orbax checkpoints (experiments.checkpointing); FileNotFoundError if there is none.
    """
    import lra
    from flax import nnx

    from experiments import checkpointing, optim, trainer

    config = load_config(run_dir)
    dataset = dataset if dataset is not None else lra.get_dataset(**config.data.to_dict())
    model = trainer.build_model(config, dataset)
    if checkpoint == "init":
        model.eval()
        return model, config, None
    if checkpoint not in ("best", "latest"):
        raise ValueError(f"checkpoint must be 'best', 'latest' or 'init', got {checkpoint!r}")
    tx = optim.make_optimizer(config.optim, optim.param_labels(model), total_steps=config.train.num_steps)
    _, eval_graphdef, like_state = trainer.init_state(model, tx)
    restored = checkpointing.read(Path(run_dir) / "checkpoints", checkpoint, like_state)
    if restored is None:
        raise FileNotFoundError(f"{Path(run_dir) / 'checkpoints' / checkpoint} holds no checkpoint")
    state, meta = restored
    return nnx.merge(eval_graphdef, state["params"], state["rest"]), config, meta
