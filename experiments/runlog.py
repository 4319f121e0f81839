"""What a run directory records: config, package versions, code revision, metrics, results.

Layout of <workdir>:
  config.json      the full config (a rerun with a different config on the same workdir is refused)
  environment.json package versions, python, jax backend and devices, code revision
  metrics.jsonl    one JSON object per log/eval event: {"step", "split", ...}
  tensorboard/     the same scalars as TensorBoard event files
  checkpoints/     see experiments.checkpointing
  results.json     final numbers, written atomically at the end (read by the results table)
"""
from __future__ import annotations

import importlib.metadata
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import jax

PACKAGES = ("jax", "jaxlib", "flax", "optax", "orbax-checkpoint", "grain", "ml-collections", "numpy")


def write_json_atomic(path: Path, obj) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)


def code_revision() -> str:
    repo = Path(__file__).resolve().parent.parent
    try:
        rev = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True, check=True)
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=repo, capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"
    return rev.stdout.strip() + ("+uncommitted changes" if dirty.stdout.strip() else "")


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
    )


def _flatten_dict(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flatten_dict(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def record_config(workdir: Path, config_dict: dict) -> None:
    """Writes config.json, or checks that a resumed run uses the same config."""
    path = workdir / "config.json"
    if path.exists():
        old = _flatten_dict(json.loads(path.read_text()))
        new = _flatten_dict(json.loads(json.dumps(config_dict)))
        changed = sorted(k for k in old.keys() | new.keys() if old.get(k) != new.get(k))
        if changed:
            detail = ", ".join(f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in changed)
            raise SystemExit(
                f"error: {workdir} holds a run with another config ({detail}). "
                "Resume it with the same config, or start the new run in a new --workdir."
            )
        return
    write_json_atomic(path, config_dict)


def _step_of(line: str) -> float:
    """The step of a metrics.jsonl line; infinity for a line a kill left half-written (so it is dropped)."""
    try:
        return json.loads(line)["step"]
    except (json.JSONDecodeError, KeyError):
        return float("inf")


class MetricsLog:
    """metrics.jsonl plus TensorBoard. On resume, events after the restored step are dropped."""

    def __init__(self, workdir: Path, *, resume_step: int):
        self.path = workdir / "metrics.jsonl"
        if self.path.exists():
            kept = [line for line in self.path.read_text().splitlines() if _step_of(line) <= resume_step]
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


class Progress:
    """One console line per log event: step, steps/s, loss, accuracy (redrawn in place on a terminal)."""

    def __init__(self, total_steps: int, stream=sys.stdout):
        self.total = total_steps
        self.stream = stream
        self.tty = stream.isatty()

    def update(self, step: int, values: dict) -> None:
        width = 20
        done = int(width * step / max(self.total, 1))
        bar = "#" * done + "." * (width - done)
        text = (
            f"step {step:>7d}/{self.total} [{bar}] {values['steps_per_s']:6.2f} steps/s "
            f"loss {values['loss']:.4f} acc {values['accuracy']:.3f}"
        )
        self.stream.write(("\r" + text) if self.tty else (text + "\n"))
        self.stream.flush()

    def message(self, text: str) -> None:
        self.stream.write(("\n" if self.tty else "") + text + "\n")
        self.stream.flush()


class Timer:
    def __init__(self):
        self.t0 = time.perf_counter()

    def lap(self) -> float:
        """Seconds since the last lap (or creation)."""
        now = time.perf_counter()
        elapsed, self.t0 = now - self.t0, now
        return elapsed
