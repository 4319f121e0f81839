"""What a run directory records: config, package versions, code revision, metrics, results.

Layout of <workdir>, all written only once training starts (a run that fails before leaves nothing behind):
  config.json      the full config, plus "dataset": the resolved data folder and the sha256 of its manifest.json
                   (a rerun with a different config on the same workdir is refused)
  environment.json package versions, python, jax backend and devices, code revision and a dirty-tree flag
  .lock            held (fcntl.flock) by the trainer using the workdir; the kernel releases it when that
                   process ends, however it ends, so a killed run never leaves the workdir locked
  metrics.jsonl    one JSON object per log/eval event: {"step", "split", ...}
  tensorboard/     the same scalars as TensorBoard event files
  checkpoints/     see experiments.checkpointing
  results.json     final numbers, written atomically at the end (read by the results table)
"""
from __future__ import annotations

import fcntl
import importlib.metadata
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import jax

from experiments.runs import flatten_config

PACKAGES = ("jax", "jaxlib", "flax", "optax", "orbax-checkpoint", "grain", "ml-collections", "numpy")


def write_json_atomic(path: Path, obj) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)


class RunDirError(Exception):
    """The workdir cannot be used as asked: in use by another trainer, or holding a run with another config."""


def git_state() -> tuple[str, bool | None]:
    """(commit of the code, whether the working tree has uncommitted changes); ("unknown ...", None) outside git."""
    repo = Path(__file__).resolve().parent.parent
    try:
        rev = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True, check=True)
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=repo, capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)", None
    return rev.stdout.strip(), bool(dirty.stdout.strip())


def code_revision() -> str:
    rev, dirty = git_state()
    return rev + ("+uncommitted changes" if dirty else "")


def environment() -> dict:
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return dict(
        packages=versions,
        python=sys.version.split()[0],
        platform=platform.platform(),
        backend=jax.default_backend(),
        devices=[str(d) for d in jax.devices()],
        revision=code_revision(),
        dirty=git_state()[1],  # True: the code had uncommitted changes, `revision` alone does not reproduce it
    )


RECORD_KEYS = ("dataset",)  # keys config.json holds beside the config itself (not compared on resume)


def _config_changes(old: dict, new: dict) -> list[str]:
    old = flatten_config({k: v for k, v in old.items() if k not in RECORD_KEYS})
    new = flatten_config(json.loads(json.dumps(new)))
    return sorted(k for k in old.keys() | new.keys() if old.get(k) != new.get(k))


def check_config(workdir: Path, config_dict: dict) -> None:
    """RunDirError if workdir holds a run with another config (reads only; nothing is written)."""
    path = workdir / "config.json"
    if not path.exists():
        return
    old = json.loads(path.read_text())
    changed = _config_changes(old, config_dict)
    if not changed:
        return
    flat_old, flat_new = flatten_config(old), flatten_config(json.loads(json.dumps(config_dict)))
    old_layer, new_layer = flat_old.get("model.layer"), flat_new.get("model.layer")
    if old_layer != new_layer and None not in (old_layer, new_layer):
        # Another family: its ~30 differing keys (layer_args, optim, ...) would say nothing more.
        others = len(changed) - 1
        raise RunDirError(f"{workdir} holds a run of another model family (model.layer {old_layer!r}, this config "
                          f"{new_layer!r}; other config keys that differ: {others}). Start this run in a new "
                          "--workdir.")
    shown = ", ".join(f"{k}: {flat_old.get(k)!r} -> {flat_new.get(k)!r}" for k in changed[:SHOW_CHANGES])
    more = f", ... and {len(changed) - SHOW_CHANGES} more" if len(changed) > SHOW_CHANGES else ""
    why = ""
    if "train.num_steps" in changed:
        why = (" Extending (or shortening) a run is refused: the learning-rate schedule (warmup, then cosine decay "
               "to optim.final_lr_factor * lr at train.num_steps) was laid out for the old num_steps, and the "
               "steps already taken followed it, so the longer run would match neither schedule. Train the new "
               "length in a new --workdir.")
    raise RunDirError(f"{workdir} holds a run with another config ({shown}{more})." + (why or (
        " Resume it with the same config, or start the new run in a new --workdir.")))


SHOW_CHANGES = 8  # differing config keys named in the error (the rest are counted)


def finished_results(workdir: Path, num_steps: int) -> dict | None:
    """The stored results.json of a finished run of num_steps steps, else None."""
    path = workdir / "results.json"
    if not path.exists():
        return None
    results = json.loads(path.read_text())
    return results if results.get("step") == num_steps else None


def record_config(workdir: Path, config_dict: dict, dataset: dict) -> None:
    """Writes config.json (config + the dataset record) when training starts; on resume, warns if the data
    changed since. dataset: {"folder", "manifest_sha256", ...}."""
    path = workdir / "config.json"
    if path.exists():
        recorded = json.loads(path.read_text()).get("dataset") or {}
        if recorded.get("manifest_sha256") not in (None, dataset.get("manifest_sha256")):
            print(f"WARNING: the data changed since this run started: {recorded.get('folder')} (manifest sha256 "
                  f"{recorded['manifest_sha256'][:12]}...) is now {dataset.get('folder')} "
                  f"({dataset['manifest_sha256'][:12]}...); config.json keeps the first record.", file=sys.stderr)
        return
    write_json_atomic(path, {**json.loads(json.dumps(config_dict)), "dataset": dataset})


def stored_config(workdir: Path) -> dict:
    """config.json without the records kept beside the config (the dict a ConfigDict can be built from)."""
    return {k: v for k, v in json.loads((workdir / "config.json").read_text()).items() if k not in RECORD_KEYS}


class WorkdirLock:
    """An exclusive lock on <workdir>/.lock for one trainer; RunDirError naming the holder's PID otherwise.

    fcntl.flock locks belong to the open file, so the kernel drops the lock when the process exits or is
    killed: a stale .lock file never blocks a rerun. The file is never deleted (that would race).
    """

    def __init__(self, workdir: Path):
        self.path = workdir / ".lock"
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(self._fd, 64, 0).decode(errors="replace").strip() or "unknown"
            os.close(self._fd)
            raise RunDirError(f"{workdir} is in use by another trainer (PID {holder}). Wait for it to finish, "
                              f"stop it (kill {holder}; a rerun resumes), or use another --workdir.") from None
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, f"{os.getpid()}\n".encode(), 0)

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # releases the flock
            self._fd = None


def _step_of(line: str) -> float:
    """The step of a metrics.jsonl line; infinity for a line a kill left half-written (so it is dropped)."""
    try:
        return json.loads(line)["step"]
    except (json.JSONDecodeError, KeyError):
        return float("inf")


def _split_of(line: str) -> str | None:
    try:
        return json.loads(line).get("split")
    except json.JSONDecodeError:
        return None


class MetricsLog:
    """metrics.jsonl plus TensorBoard. On resume, events after the restored step are dropped."""

    def __init__(self, workdir: Path, *, resume_step: int):
        self.path = workdir / "metrics.jsonl"
        if self.path.exists():
            # Test rows are written once, at the very end: any there belong to a final evaluation that was cut off.
            kept = [line for line in self.path.read_text().splitlines()
                    if _step_of(line) <= resume_step and _split_of(line) != "test"]
            tmp = self.path.with_name("metrics.jsonl.tmp")
            tmp.write_text("".join(line + "\n" for line in kept))
            os.replace(tmp, self.path)
        self._file = self.path.open("a")
        from tensorboardX import SummaryWriter  # light: protobuf only, no TensorFlow

        # purge_step hides events a killed session wrote after the step this run resumes from.
        self._tb = SummaryWriter(str(workdir / "tensorboard"), purge_step=resume_step + 1)

    def write(self, step: int, split: str, values: dict) -> None:
        record = {"step": int(step), "split": split, **{k: float(v) for k, v in values.items()}}
        self._file.write(json.dumps(record) + "\n")
        self._file.flush()
        for k, v in values.items():
            self._tb.add_scalar(f"{split}/{k}", float(v), int(step))

    def close(self) -> None:
        self._file.close()
        self._tb.close()


def format_duration(seconds: float) -> str:
    """3725 -> '1h02m05s', 65 -> '1m05s', 7.2 -> '7s'."""
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}h{m:02d}m{s:02d}s" if h else (f"{m}m{s:02d}s" if m else f"{s}s")


class Progress:
    """Console progress: one line per log event (step, steps/s, loss, accuracy, elapsed, ETA), and the progress
    of long evaluations. Redrawn in place on a terminal, one line per event otherwise.

    Elapsed is the run's wall time over all its sessions; the ETA extrapolates this session's pace since its
    first (compiling) step, evaluation and checkpointing included.
    """

    EVAL_EVERY_S = 5.0  # an evaluation reports its progress at most this often, and only if it lasts longer

    def __init__(self, total_steps: int, stream=sys.stdout):
        self.total = total_steps
        self.stream = stream
        self.tty = stream.isatty()
        self._pace_start = None  # (time, step) when this session's timed steps began

    def start_pace(self, step: int) -> None:
        self._pace_start = (time.perf_counter(), step)

    def eta_s(self, step: int) -> float | None:
        if self._pace_start is None or step <= self._pace_start[1]:
            return None
        t0, step0 = self._pace_start
        return (time.perf_counter() - t0) / (step - step0) * (self.total - step)

    def update(self, step: int, values: dict, elapsed_s: float | None = None) -> None:
        width = 20
        done = int(width * step / max(self.total, 1))
        bar = "#" * done + "." * (width - done)
        text = (
            f"step {step:>7d}/{self.total} [{bar}] {values['steps_per_s']:6.2f} steps/s "
            f"loss {values['loss']:.4f} acc {values['accuracy']:.3f}"
        )
        if elapsed_s is not None:
            text += f"  elapsed {format_duration(elapsed_s)}"
        eta = self.eta_s(step)
        if eta is not None:
            text += f"  ETA {format_duration(eta)}"
        self.stream.write(("\r" + text) if self.tty else (text + "\n"))
        self.stream.flush()

    def message(self, text: str) -> None:
        self.stream.write(("\n" if self.tty else "") + text + "\n")
        self.stream.flush()

    def batches(self, iterable, total: int, what: str):
        """Yields from iterable; reports 'what: i/total batches' when it takes longer than EVAL_EVERY_S."""
        start = last = time.perf_counter()
        for i, item in enumerate(iterable, start=1):
            yield item
            now = time.perf_counter()
            if now - last >= self.EVAL_EVERY_S and i < total:
                last = now
                pace = (now - start) / i
                self.message(f"  {what}: {i}/{total} batches, {format_duration(now - start)} elapsed, "
                             f"~{format_duration(pace * (total - i))} left")


class Timer:
    def __init__(self):
        self.t0 = time.perf_counter()

    def lap(self) -> float:
        """Seconds since the last lap (or creation)."""
        now = time.perf_counter()
        elapsed, self.t0 = now - self.t0, now
        return elapsed
