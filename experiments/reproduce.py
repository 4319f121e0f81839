"""Run a suite of (model, task, seed) into one results tree, then read it with `python -m experiments.table`.

  python -m experiments.reproduce --suite mini                  # `make run`: the CPU suite, about 20 minutes
  python -m experiments.reproduce --suite full --seeds 3 --runs-dir runs/full --dry-run
  python -m experiments.reproduce --suite ablation --models ladder:lru ladder:ring_init --tasks listops
  python -m experiments.reproduce --suite-file my_suite.json    # {"seeds": 1, "scale": "mini", "entries": [...]}

Each run is the trainer's own run directory, <runs-dir>/<family>-<variant>-seed<N> (or <name>-seed<N> for an
entry with a "name" override), trained by
`python -m experiments.train --config experiments/configs/<family>.py:<variant> --workdir ...` in a subprocess, so
a crash or divergence of one run does not stop the suite. Rerunning the same command skips finished runs
(results.json) and resumes interrupted ones from their latest checkpoint; a run that failed is retried. A run
directory that holds a run with another config than the entry's (a finished run: outside table.BOOKKEEPING; an
interrupted one: any key, as the trainer compares on resume) is never reused: it is listed as failed ("stale",
naming the keys) and left untouched; so is one whose JSON files cannot be read ("unreadable", naming the file and the
parse error). Failed runs are listed with their reason (trainer exit code 2: user or data
error; 3: divergence). Every entry's config is resolved and checked before anything runs: an unknown family,
variant or key, or a bad value, is an error (exit 2). In a built-in suite only, a family whose config file is not
written yet is listed as "not available" and not run (none is, at present).

Ctrl-C / SIGTERM: the driver asks the running trainer to stop (SIGINT: it stops at a step boundary), waits for it,
then exits 130 / 143 with its summary; a second Ctrl-C kills the trainer at once (SIGKILL; its last complete
checkpoint stays). The trainer runs in its own process group (a terminal's Ctrl-C reaches the driver only) and,
on Linux, dies with the driver (a parent-death SIGKILL) if the driver itself is killed.

Exit codes: 0 every run finished; 1 a run failed (or is stale or unreadable); 2 a usage error (bad flag, suite or entry config,
--runs-dir not a folder, another driver on the runs directory); 130 / 143 interrupted by SIGINT / SIGTERM.

Seeds: run N uses --config.seed=N --config.train.data_seed=N (init and data order). Scale: an entry whose
variant is a `_smoke` one is "mini" (small generated data, small model), else "full"; a suite or entry can say
otherwise. The driver writes run.json in each run directory and suite.json in the runs directory (see
experiments/runs.py), which the table reads.
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import fcntl
import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from experiments import runs as runs_lib
from experiments.runlog import write_json_atomic

REPO = Path(__file__).resolve().parent.parent
CONFIG_DIR = REPO / "experiments" / "configs"
TASKS = ("listops", "text", "retrieval", "image", "pathfinder", "pathx")
FAMILIES = ("transformer", "s4d", "s5", "lru")
LADDER_RUNGS = ("rnn_relu", "rnn_tanh", "rnn_lin", "real_imag", "exp", "stable_exp", "ring_init", "lru")

# Suites are plain data: entries are (family, variant) or (family, variant, {config override: value}).

# The mini suite's steps, sized from steps/s measured on the 2-core CPU (STEP_RATE_ESTIMATES), with one validation
# + one test pass per run (eval_every = num_steps; a checkpoint about every minute, _mini_checkpointing).
# The LRU runs at the S4D/S5 smoke width
# (32 wide, 2 layers; its own smoke config is 64 wide, 3 layers, 5x slower per step). Full attention over
# Pathfinder's 1024 pixels costs ~8 s per step on this CPU, so the Transformer gets 10 Pathfinder steps (with its
# evaluation of 800 images, ~3 min). `make run` from a fresh clone on the idle machine (session 4, 16m43s with the
# install) gave test accuracy: ListOps Transformer 22.9, S4D 51.5, S5 47.7, LRU 44.1 (majority 9.4); Pathfinder
# Transformer 54.25 (one class), S4D 65.0, S5 58.25, LRU 53.25 (chance: the classes are 54.25 / 45.75%); session 5
# (LRU Pathfinder bidirectional, max phase pi/10, below; fresh clone, loaded machine): the same, LRU Pathfinder 61.0.
# Earlier (session 2, 200 Pathfinder steps, load 6-7, 20m24s): Pathfinder S4D 60.5, LRU 54.8, S5 49.3.
# Pathfinder test sets have 400 images (binomial std 2.5 points at 50%); the majority class is 54.25% / 45.75%.
# Single runs of the Pathfinder entries with other settings (session 4, load 7-12; --config.seed=S
# --config.train.data_seed=S): S4D 200 steps seed 1 57.75%; S4D 600 steps seed 0 65.0% (val 60.75 / 58.0 / 64.0
# at steps 200 / 400 / 600); data.difficulty=easy is NOT easier here: S4D 200 steps 45.75%, 400 steps (batch 16)
# 48.75%; S5 200 steps at lr 0.01 (warmup 20) 48.0%, with the "glu" activation 48.75%; S5 400 steps (associative
# scan) 53.75% (val 51.0 at step 200, 58.5 at 400), 800 steps 56.0% (val 56.0, 58.5); LRU 400 steps (associative)
# 51.75% (val 49.75, 55.0), 800 steps 55.25% (val 54.25, 57.75). Their train accuracy starts to rise only after
# ~300 steps. No setting that fits this suite's ~20 minutes puts S5 and LRU clearly above chance yet (32 wide,
# 2 layers: S5 56.0%, LRU 55.25% after 800 steps).
# So S4D, S5 and LRU get 600 Pathfinder steps (~2.5 min each at the idle rates below), the most the ~20 minutes allow.
# The LRU at its Pathfinder config's settings (unidirectional, max phase 2pi) stayed at chance in `make run`
# (53.25%, session 4). Session 5, 600 steps, 32 wide, 2 layers, N=32, test % (val at steps 200/400/600; load 8-16):
#   bidirectional                                   57.75 (49.75 / 58.25 / 59.5)
#   + lr 1e-2, recurrent lr 1e-3, warmup 50, glu    54.0  (49.75 / 52.5 / 58.0)
#   bidirectional, batch 16, 1200 steps             57.75 (val 57.75 at 1000, 58.75 at 1200)
#   bidirectional + max phase pi/10                 61.0 seed 0 (51.5 / 49.75 / 58.0), 59.25 seed 1 (52.5 / 49.25 / 57.75)
#   the same with N=64                              val 56.25 / 49.5 / 59.25 (slower per step)
# So the mini LRU is bidirectional, as the mini S4D and S5 are (their papers' LRA settings), with the LRU paper's
# small-phase init (max phase pi/10, its Path-X setting; S4D-LegS's phases dt*pi*n are mostly below 0.3 here too):
# _MINI_LRU_PATHFINDER. Our choice for the CPU suite, not a published setting.
_MINI_STEPS = {("transformer", "listops"): 250, ("s4d", "listops"): 2000, ("s5", "listops"): 2000,
               ("lru", "listops"): 2000, ("transformer", "pathfinder"): 10, ("s4d", "pathfinder"): 600,
               ("s5", "pathfinder"): 600, ("lru", "pathfinder"): 600}
_MINI_LRU = {"model.d_model": 32, "model.layer_args.d_state": 32, "model.n_layers": 2}
_MINI_LRU_PATHFINDER = {"model.layer_args.bidirectional": True, "model.layer_args.max_phase": math.pi / 10}
# S5 and LRU Pathfinder runs of session 4 were slow (LRU < 0.05 steps/s) because reverse mode through the
# sequential scan was quadratic in L (fixed in scan/adjoint.py + methods.TANGENT_METHODS: one LRU layer's fwd+bwd
# at B=32, L=1024, N=32 went from 3.8 s to 0.04 s); the runs above used method "associative" as a workaround.
# Steps/s used to estimate a run that has not logged any step yet: (family, task, scale) -> (steps/s, source).
# Measured on the shared 2-core development CPU (noisy: up to 8 processes share it); "*" = any.
# Mini: the median metrics.jsonl steps_per_s of each run of a whole `make run` from a fresh clone on the idle
# 2-core CPU (session 4, 2026-11-30, load < 2, commit 44d6390: 16m43s with the install, the suite 15m04s), i.e.
# the suite's own settings (MINI_OVERRIDES); each run is
#   python -m experiments.train --config experiments/configs/<family>.py:<task>_smoke --workdir runs/mini/<name> \
#     [the entry's overrides]   (what `python -m experiments.reproduce --suite mini` runs)
_MINI_MEASURED = "measured in `make run`, idle 2-core CPU"
STEP_RATE_ESTIMATES = {
    ("transformer", "listops", "mini"): (5.7, _MINI_MEASURED),
    ("s4d", "listops", "mini"): (29.0, _MINI_MEASURED),
    ("s5", "listops", "mini"): (64.0, _MINI_MEASURED),
    ("lru", "listops", "mini"): (52.0, _MINI_MEASURED + " (32 wide, 2 layers)"),
    ("transformer", "pathfinder", "mini"): (0.12, _MINI_MEASURED + " (10 steps in 72 s)"),
    ("s4d", "pathfinder", "mini"): (4.5, _MINI_MEASURED),
    ("s5", "pathfinder", "mini"): (5.4, _MINI_MEASURED),
    # The bidirectional entry (session 5): 600 steps in 256 s of training time (results.json train_time_s) in the
    # idle fresh-clone `make run` of 73ac00d (README "What it costs").
    ("lru", "pathfinder", "mini"): (2.3, _MINI_MEASURED),
    ("*", "*", "mini"): (20.0, "guess: a mini run on a 2-core CPU"),
}
# Full and ablation suites: no accelerator was lent, so these are ESTIMATES for the 2-core CPU, not run times.
# Keys are (model, task, "full"), model = family or family:option (the ladder's rungs). Models whose step costs
# what another's does on the same task are measured once: the LRU rungs differ from the LRU only in how lambda is
# parameterised and initialised (the same diagonal complex scan and shapes), rnn_relu from rnn_tanh only in the
# pointwise nonlinearity of the same sequential dense scan.
SAME_COST = {**{f"ladder:{rung}": "lru" for rung in ("real_imag", "exp", "stable_exp", "ring_init", "lru")},
             "ladder:rnn_relu": "ladder:rnn_tanh"}
NOT_ESTIMATED = {
    ("transformer", "pathx"): "full attention over L=16,384 (a 16384^2 score matrix per head per example, 1 GiB in "
                              "float32) at the config's B=64 for 500k steps is out of a CPU's reach (one step of a "
                              "1-layer, 32-wide model took ~95 s here); the published result is FAIL (chance)",
}
# Each measured model: one train step and one eval step of its full config (random inputs of the task's full
# length and kind, experiments/benchmark.py task_input) at a small batch b on the shared 2-core development CPU, in
# process CPU seconds (all threads), scaled linearly to the config's batch B, plus the step's share of the run's
# evaluations (every eval_every steps over the validation set, once over the test set). The machine was loaded
# (1-minute load average 7-15.5 from other jobs, and up to 3 of these measurements ran at once to finish in the
# session), so these are loaded-machine estimates; CPU seconds depend far less on the load than wall seconds, which
# were 1.0-7.2x the CPU seconds here. Regenerate all of it (JSON with wall and CPU seconds, compile times, load; these
# lines printed at the end) with
#   python -m experiments.benchmark rates --reps 1 --out rates.json          (session 6, at commit d5e8933)
# Check of the method: LRU ListOps gives 1.24 CPU s at b=2, x 16 = 19.8 s at B=32, where one step at B=32 took
# 12.3 s wall on the idle machine (session 4, `python -m experiments.benchmark step --config
# experiments/configs/lru.py:listops --batch 32 --length 2000`, with that benchmark's LayerNorm + full GLU): on an
# idle 2-core machine expect roughly 0.6x these times. Linear scaling from b to B over-estimates where per-step
# overheads dominate (the dense RNN rungs' sequential scans). Hours per run: 1 seed; the suites run 3.
# (model, task): (b, train CPU s/step at b, CPU s/step at the config's B with its evaluation share, B)
FULL_MEASURED = {
    ("transformer", "listops"): (2, 27, 462.9, 32),
    ("transformer", "text"): (1, 33.8, 1250, 32),
    ("transformer", "retrieval"): (1, 32.8, 1761, 32),
    ("transformer", "image"): (2, 1.3, 167, 256),
    ("transformer", "pathfinder"): (2, 2.27, 582.6, 512),
    ("s4d", "listops"): (2, 1.64, 26.49, 32),
    ("s4d", "text"): (2, 3.5, 36.7, 16),
    ("s4d", "retrieval"): (2, 5.6, 185.1, 64),
    ("s4d", "image"): (2, 5.35, 142.3, 50),
    ("s4d", "pathfinder"): (2, 2.04, 71.37, 64),
    ("s4d", "pathx"): (2, 44.4, 382.3, 16),
    ("s5", "listops"): (2, 0.526, 13.2, 50),
    ("s5", "text"): (2, 4.72, 148.3, 50),
    ("s5", "retrieval"): (2, 5.72, 95.26, 32),
    ("s5", "image"): (2, 4.01, 103.4, 50),
    ("s5", "pathfinder"): (2, 1.01, 33.54, 64),
    ("s5", "pathx"): (2, 12.2, 203.1, 32),
    ("lru", "listops"): (2, 1.24, 19.9, 32),
    ("lru", "text"): (2, 4.13, 71.91, 32),
    ("lru", "retrieval"): (2, 5.96, 193.2, 64),
    ("lru", "image"): (2, 2.53, 65.22, 50),
    ("lru", "pathfinder"): (2, 0.657, 21.79, 64),
    ("lru", "pathx"): (2, 28.9, 471.9, 32),
    ("ladder:rnn_tanh", "listops"): (2, 1.65, 26.71, 32),
    ("ladder:rnn_tanh", "pathfinder"): (2, 0.906, 30.24, 64),
    ("ladder:rnn_lin", "listops"): (2, 0.922, 14.89, 32),
    ("ladder:rnn_lin", "pathfinder"): (2, 0.722, 24.42, 64),
}
STEP_RATE_ESTIMATES.update({(model, task, "full"): (1 / step_s, f"train step measured at B={b}: {b_s:.3g} CPU s on the "
                                                   f"loaded 2-core CPU, x {B}/{b}, + evaluation share")
                            for (model, task), (b, b_s, step_s, B) in FULL_MEASURED.items()})
STEP_RATE_ESTIMATES.update({(model, task, "full"): (STEP_RATE_ESTIMATES[(same, task, "full")][0],
                                                    f"as {same}: " + STEP_RATE_ESTIMATES[(same, task, "full")][1])
                            for model, same in SAME_COST.items() for (m, task) in FULL_MEASURED if m == same})
STEP_RATE_ESTIMATES.update({(model, task, "full"): (None, f"not estimated: {why}")
                            for (model, task), why in NOT_ESTIMATED.items()})
# Process start, data load, compile, one validation + one test pass. Mini: 8-12 s in the same `make run` (wall_time_s
# - train_time_s of results.json); full: estimate.
START_UP_S = {"mini": 12.0, "full": 60.0}
# Evaluation time beyond START_UP_S where it dominates: the Transformer's full attention over the 400 + 400
# Pathfinder-32 val/test images (the same `make run`: 175 s wall = 72 s training + ~15 s start-up + ~90 s of
# evaluation).
EVAL_S = {("transformer", "pathfinder", "mini"): 90.0}

# A mid-run checkpoint about every minute of training (the entry's steps/s estimate x 60), so that a kill -9 loses
# at most about a minute; validation stays once, at the end (eval_every = num_steps). Rounded down to a multiple of
# 50 so that checkpoints fall on log lines (the smoke configs log every 25 or 50 steps). A checkpoint of these small models cost ~0.1-1.6 s (wall time of the LRU ListOps entry's settings, 300 steps,
# checkpoint every 30 vs 300 steps, side by side on the loaded 2-core CPU: 149.7 vs 148.9 s, 196.7 vs 182.1 s).
MINI_CHECKPOINT_S = 60.0


def _mini_checkpointing(family: str, task: str, num_steps: int) -> dict:
    every = STEP_RATE_ESTIMATES[(family, task, "mini")][0] * MINI_CHECKPOINT_S
    if every >= 50:
        every = 50 * (every // 50)
    every = max(1, min(num_steps, round(every)))
    # Fewer steps than a log interval (the Transformer on Pathfinder: 7): log at each checkpoint too.
    return {"train.checkpoint_every": every, **({"train.log_every": every} if every < 50 else {})}


MINI_OVERRIDES = {
    (f, t): {"train.num_steps": n, "train.eval_every": n, **_mini_checkpointing(f, t, n),
             **({"optim.warmup_steps": 2} if n < 100 else {}), **(_MINI_LRU if f == "lru" else {}),
             **(_MINI_LRU_PATHFINDER if (f, t) == ("lru", "pathfinder") else {})}
    for (f, t), n in _MINI_STEPS.items()}
SUITES = {
    # What 2 CPU cores run in about 20 minutes: small generated ListOps and Pathfinder (MINI_OVERRIDES).
    "mini": dict(seeds=1, entries=[(f, f"{t}_smoke", MINI_OVERRIDES[(f, t)])
                                   for t in ("listops", "pathfinder") for f in FAMILIES]),
    # The LRA table (Tay et al. 2021; S4, S5 and LRU papers): every family on the six tasks, 3 seeds (the LRU
    # paper reports the mean of 3). Needs an accelerator and the LRA release data.
    "full": dict(seeds=3, entries=[(f, t) for f in FAMILIES for t in TASKS]),
    # The LRU paper's ladder (Orvieto et al. 2023, Tables 1-3) on the tasks where the paper reports every rung.
    "ablation": dict(seeds=3, entries=[("ladder", f"{t},{r}") for t in ("listops", "pathfinder")
                                       for r in LADDER_RUNGS]),
    # The same ladder on the CPU data (not part of `make run`).
    "ablation_mini": dict(seeds=1, entries=[("ladder", f"listops_smoke,{r}") for r in LADDER_RUNGS]),
}


@dataclasses.dataclass
class Run:
    name: str
    family: str
    variant: str
    task: str
    option: str | None
    seed: int
    scale: str
    overrides: dict
    suite: str
    entry: int = 0  # index of its entry in the suite (for error messages)

    @property
    def config_spec(self) -> str:
        return f"experiments/configs/{self.family}.py:{self.variant}"

    @property
    def model(self) -> str:
        return f"{self.family}:{self.option}" if self.option else self.family

    def config_args(self, data_dir: str | None) -> list[str]:
        """The trainer's --config.<key>=<value> overrides for this run."""
        overrides = {"seed": self.seed, "train.data_seed": self.seed, **self.overrides}
        if data_dir:
            overrides["data.data_dir"] = data_dir
        return [f"--config.{k}={v}" for k, v in overrides.items()]

    def command(self, workdir: Path, data_dir: str | None) -> list[str]:
        return [sys.executable, "-m", "experiments.train", "--config", self.config_spec, "--workdir", str(workdir),
                *self.config_args(data_dir)]

    def record(self) -> dict:
        return dict(name=self.name, family=self.family, variant=self.variant, task=self.task, option=self.option,
                    seed=self.seed, scale=self.scale, config=self.config_spec, overrides=self.overrides,
                    suite=self.suite)


def expand(suite: dict, name: str, seeds: int | None = None) -> list[Run]:
    """The runs of a suite: each entry x seeds 0..n-1 (entries first, so seed 0 of everything comes first)."""
    n_seeds = seeds if seeds is not None else suite.get("seeds", 1)
    out = []
    for i, entry in enumerate(suite["entries"]):
        if not (isinstance(entry, (list, tuple)) and len(entry) in (2, 3)):
            raise ValueError(f"suite {name!r} entry {i}: expected [family, variant] or [family, variant, "
                             f"{{overrides}}], got {entry!r}")
        family, variant, overrides = entry[0], entry[1], dict(entry[2]) if len(entry) == 3 else {}
        scale = overrides.pop("scale", None)  # an entry may state its scale ...
        label = overrides.pop("name", None)  # ... and its name (two entries of one variant need different ones)
        base, _, option = variant.partition(",")
        smoke = base.endswith("_smoke")
        task = base[: -len("_smoke")] if smoke else base
        scale = scale or suite.get("scale") or ("mini" if smoke else "full")
        if scale not in runs_lib.SCALES:
            raise ValueError(f"suite {name!r} entry {i}: scale {scale!r} is not one of {runs_lib.SCALES}")
        for seed in range(n_seeds):
            run_name = f"{label or family + '-' + variant.replace(',', '-')}-seed{seed}"
            if any(r.name == run_name for r in out):
                raise ValueError(f"suite {name!r} entry {i}: run name {run_name!r} is used twice; give the entry a "
                                 "distinct name: [family, variant, {\"name\": \"...\", ...}]")
            out.append(Run(run_name, family, variant, task, option or None, seed, scale, overrides, name, i))
    return out


def select(runs: list[Run], models=None, tasks=None) -> list[Run]:
    """Filter by --models (family or family:option) and --tasks; ValueError naming a model or task the suite has no
    run of, with the ones it has."""
    for flag, asked, has in (("--models", models, [name for r in runs for name in (r.family, r.model)]),
                             ("--tasks", tasks, [r.task for r in runs])):
        has = list(dict.fromkeys(has))
        if unknown := [x for x in asked or () if x not in has]:
            raise ValueError(f"{flag} {' '.join(unknown)}: this suite has no run of {'it' if len(unknown) == 1 else 'them'}"
                             f"; its {flag[2:]}: {', '.join(has)}")
    return [r for r in runs if (not models or r.family in models or r.model in models)
            and (not tasks or r.task in tasks)]


SUITE_FILE_KEYS = ("entries", "seeds", "scale")
SUITE_FILE_FORM = ('{"entries": [[family, variant] or [family, variant, {overrides}], ...], "seeds": N (optional, '
                   'a positive integer), "scale": "mini"|"full" (optional)}')


def _path_problem(what: str, value) -> str | None:
    """Why `value` cannot be part of a run directory's name (it must stay inside --runs-dir), else None."""
    if not isinstance(value, str) or not value:
        return f"{what} must be a non-empty string, got {json.dumps(value)}"
    if any(sep in value for sep in ("/", "\\", os.sep)) or ".." in value:
        return f"{what} {json.dumps(value)} contains a path separator or '..' (a run directory must stay inside " \
               "--runs-dir)"
    return None


def load_suite_file(path) -> dict:
    """The suite in a JSON file, checked: ValueError naming the file, the key or entry and what to write."""
    try:
        suite = json.loads(Path(path).read_text())
    except (OSError, ValueError) as e:
        raise ValueError(f"--suite-file {path}: {e}") from None

    def bad(what):
        return ValueError(f"--suite-file {path}: {what}; expected {SUITE_FILE_FORM}")

    if not isinstance(suite, dict) or not isinstance(suite.get("entries"), list):
        raise bad("no \"entries\" list")
    if unknown := sorted(set(suite) - set(SUITE_FILE_KEYS)):
        raise bad(f"unknown key{'s' if len(unknown) > 1 else ''} {', '.join(map(json.dumps, unknown))} (the valid "
                  f"keys: {', '.join(SUITE_FILE_KEYS)})")
    seeds = suite.get("seeds", 1)
    if isinstance(seeds, bool) or not isinstance(seeds, int) or seeds < 1:
        raise bad(f"\"seeds\" must be a positive integer (the number of seeds per entry), got {json.dumps(seeds)}")
    for i, entry in enumerate(suite["entries"]):
        where = f"entry {i} {json.dumps(entry)}"
        if not (isinstance(entry, list) and len(entry) in (2, 3)):
            raise bad(f"{where} is not [family, variant] or [family, variant, {{overrides}}]")
        if len(entry) == 3 and not isinstance(entry[2], dict):
            raise bad(f"{where}: its overrides must be a JSON object {{\"section.key\": value, ...}}, got "
                      f"{json.dumps(entry[2])}")
        overrides = entry[2] if len(entry) == 3 else {}
        for what, value in (("family", entry[0]), ("variant", entry[1]),
                            *((("name", overrides["name"]),) if "name" in overrides else ())):
            if problem := _path_problem(what, value):
                raise bad(f"{where}: {problem}")
    return suite


# ---------------------------------------------------------------------------------------- availability, estimates


class NotWritten(Exception):
    """A family config file that does not exist (yet)."""


def resolve_config(run: Run, data_dir: str | None = None, check: bool = True):
    """The config the trainer will run for `run`: its config file and variant with the run's overrides, parsed by
    ml_collections exactly as experiments.train parses its command line; with check, also
    validation.check_config (sizes, ranges, the layer built abstractly).

    Raises NotWritten if the family's config file does not exist, ValueError (a message naming the variant, key
    or value, with what is valid) for any other problem."""
    from absl import flags
    from ml_collections import config_flags

    from experiments import validation
    from experiments.cli import flag_error
    from experiments.train import load_config, unknown_override

    path = CONFIG_DIR / f"{run.family}.py"
    if not path.is_file():
        raise NotWritten(f"{path.relative_to(REPO)} does not exist")
    spec = f"{path}:{run.variant}"
    try:
        base = load_config(spec)
    except Exception as e:  # noqa: BLE001 - get_config's message (it lists the variants) is the point
        raise ValueError(f"variant {run.variant!r} of {run.family}: {e}") from None
    argv = ["experiments.reproduce", "--config", spec, *run.config_args(data_dir)]
    flag_values = flags.FlagValues()
    config_flags.DEFINE_config_file("config", None, "", flag_values=flag_values, lock_config=True, sys_argv=argv)
    try:
        flag_values(argv)
    except (AttributeError, KeyError, ValueError, flags.Error) as e:
        raise ValueError(unknown_override(base, argv) or flag_error(e)) from None
    config = flag_values.config
    if check:
        validation.check_config(config)  # ConfigError is a ValueError
    return config


def resolve_all(runs: list[Run], source: str, builtin: bool, data_dir: str | None):
    """({run name: resolved config}, {run name: why not available}) for every run; ValueError naming the source
    (suite file or built-in suite), the entry and the problem for any entry that cannot be run as written. Only a
    built-in suite may list a family whose config file is not written yet ("not available")."""
    configs, unavailable, checked = {}, {}, set()
    for run in runs:
        where = f"{source} entry {run.entry} ({run.family}, {run.variant})"
        try:
            configs[run.name] = resolve_config(run, data_dir, check=run.entry not in checked)
        except NotWritten as e:
            if not builtin:
                families = sorted(p.stem for p in CONFIG_DIR.glob("*.py")
                                  if p.stem not in ("__init__", "__main__", "base"))
                raise ValueError(f"{where}: {e}; the families are: {', '.join(families)} (`python -m experiments."
                                 f"configs` lists them and their variants). Fix the entry in {source}.") from None
            unavailable[run.name] = f"not available: {e} yet"
            continue
        except ValueError as e:
            raise ValueError(f"{where}: {e}. Fix the entry in {source}.") from None
        checked.add(run.entry)
    return configs, unavailable


def flat_config(config) -> dict:
    """A config (ConfigDict or config.json's dict) as {"section.key": value}, JSON-normalised, without the records
    config.json keeps beside the config (runlog.RECORD_KEYS)."""
    from experiments.runlog import RECORD_KEYS

    tree = config.to_dict() if hasattr(config, "to_dict") else config
    tree = json.loads(json.dumps({k: v for k, v in tree.items() if k not in RECORD_KEYS}))
    return runs_lib.flatten_config(tree)


def config_changes(stored: dict, resolved, finished: bool) -> list[str]:
    """'key: old -> new' for each key whose stored value (config.json) differs from the resolved config's. For a
    finished run, the table's BOOKKEEPING keys (logging, checkpointing, data paths) do not count, except the
    seeds (a run directory of another seed is another run); an interrupted run is compared on every key, as the
    trainer does before it resumes (experiments/runlog.py check_config)."""
    from experiments.table import BOOKKEEPING

    ignored = set(BOOKKEEPING) - {"seed", "train.data_seed"} if finished else set()
    old, new = flat_config(stored), flat_config(resolved)
    missing = "(absent)"
    return [f"{k}: {json.dumps(old.get(k, missing))} -> {json.dumps(new.get(k, missing))}"
            for k in sorted(old.keys() | new.keys()) if k not in ignored and old.get(k, missing) != new.get(k, missing)]


def stale_reason(run_dir: Path, info, resolved) -> str | None:
    """Why the run in run_dir must not be reused for this entry (its stored config differs), else None."""
    if info is None or info.config is None:
        return None
    finished = info.status == "done"
    changes = config_changes(info.config, resolved, finished)
    if not changes:
        return None
    shown = "; ".join(changes[:6]) + (f"; ... and {len(changes) - 6} more" if len(changes) > 6 else "")
    return (f"stale (config differs: {shown}): {run_dir} holds {'a finished' if finished else 'an unfinished'} run "
            "with another config than this suite's entry, so it is not reused; delete or move that run directory, "
            "or use another --runs-dir")


class Unreadable(ValueError):
    """A run directory whose JSON files cannot be read (the message says which file, the error and the fix)."""


def read_existing(run_dir: Path):
    """RunInfo of a run directory the trainer has started (config.json), else None. Unreadable if one of its JSON
    files cannot be parsed (the table shows such a run as "unreadable", experiments/table.py read_runs)."""
    if not (run_dir / "config.json").exists():
        return None
    fix = "move or delete that run directory"
    for name in (runs_lib.RUN_FILE, "config.json", "results.json", runs_lib.FAILURE_FILE):
        try:
            if (run_dir / name).exists():
                json.loads((run_dir / name).read_text())
        except (OSError, ValueError) as e:  # ValueError: JSONDecodeError, UnicodeDecodeError
            raise Unreadable(f"unreadable: {run_dir / name}: {e}; {fix}") from None
    try:
        return runs_lib.read_run(run_dir)
    except (ValueError, KeyError, TypeError) as e:  # valid JSON of the wrong shape
        raise Unreadable(f"unreadable: {run_dir}: {type(e).__name__}: {e}; {fix}") from None


def not_reusable(run_dir: Path, resolved) -> str | None:
    """Why the driver must not train in run_dir (its files are unreadable, or it holds another config's run)."""
    try:
        existing = read_existing(run_dir)
    except Unreadable as e:
        return str(e)
    return stale_reason(run_dir, existing, resolved)


def _count_blocked(blocked: dict) -> str:
    n_unreadable = sum(why.startswith("unreadable:") for why in blocked.values())
    return ", ".join(x for x in (f"{len(blocked) - n_unreadable} stale" if len(blocked) > n_unreadable else "",
                                 f"{n_unreadable} unreadable" if n_unreadable else "") if x)


def measured_rate(run_dir: Path) -> float | None:
    """Median steps/s of the last logged training windows of a run (None if it logged none)."""
    rates = [r["steps_per_s"] for r in runs_lib.read_metrics(run_dir, "train")[-5:] if r.get("steps_per_s")]
    return sorted(rates)[len(rates) // 2] if rates else None


def size_differences(run: Run, config) -> list[str]:
    """The model, batch and data keys in which `config` (the run's) differs from the mini suite's entry of the same
    family and task, whose steps/s STEP_RATE_ESTIMATES states ([] if the run is not a mini run of such an entry)."""
    if config is None or run.scale != "mini" or (run.family, run.task) not in MINI_OVERRIDES:
        return []
    entry = Run("mini", run.family, f"{run.task}_smoke", run.task, None, run.seed, "mini",
                MINI_OVERRIDES[(run.family, run.task)], "mini")
    ref, own = flat_config(resolve_config(entry, check=False)), flat_config(config)
    paths = ("data.data_dir", "data.release_dir", "data.tfds_data_dir")
    return [f"{k} {json.dumps(own.get(k))} (the entry's {json.dumps(ref.get(k))})"
            for k in sorted(ref.keys() | own.keys())
            if (k.startswith(("model.", "data.")) or k == "train.batch_size") and k not in paths
            and ref.get(k) != own.get(k)]


def estimate(run: Run, run_dir: Path, num_steps: int, rates: dict, config=None) -> tuple[float | None, str]:
    """(seconds left, how it was estimated) for a run; config: its resolved config (to say when a stated
    steps/s was measured at another size)."""
    done_steps = 0
    try:
        info = read_existing(run_dir)
    except Unreadable:
        return None, "unreadable"
    if info is not None:
        if info.status == "done":
            return 0.0, "finished"
        # The logged step can be older than the newest checkpoint (log_every > the steps run): resumes from there.
        done_steps = max(info.step, runs_lib.latest_checkpoint_step(run_dir) or 0)
    rate, source = measured_rate(run_dir), "measured steps/s of this run"
    if rate is None and (run.family, run.task, run.scale) in rates:
        rate, source = rates[(run.family, run.task, run.scale)], "measured steps/s of another seed in this suite"
    if rate is None:
        for key in ((run.model, run.task, run.scale), (run.family, run.task, run.scale), (run.family, "*", run.scale),
                    ("*", "*", run.scale)):
            if key in STEP_RATE_ESTIMATES:
                rate, source = STEP_RATE_ESTIMATES[key]
                if rate is None:
                    return None, source  # "not estimated: why"
                source = f"estimate ({source})"
                if key == (run.family, run.task, run.scale) and (differs := size_differences(run, config)):
                    # The stated rate (and its label) is of the built-in entry, not of this run's size.
                    source = (f"estimate: the steps/s stated for the mini suite's {run.family} {run.task} entry; "
                              f"this run differs: {', '.join(differs[:3])}{', ...' if len(differs) > 3 else ''}")
                break
    if rate is None:
        return None, f"unknown (no measured or stated steps/s for {run.family} {run.task} at {run.scale} scale)"
    fixed_s = START_UP_S[run.scale if run.scale in START_UP_S else "full"] + EVAL_S.get(
        (run.family, run.task, run.scale), 0.0)
    return (num_steps - done_steps) / rate + fixed_s, f"{rate:.3g} steps/s, {source}"


def fmt_s(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    seconds = int(round(seconds))
    h, rem = divmod(seconds, 3600)
    if h >= 48:  # full-scale CPU estimates run to years: days (and years) read better than 531937h
        days = seconds / 86400
        return f"{days:,.0f} days" + (f" ({days / 365.25:,.1f} years)" if days >= 365.25 else "")
    return f"{h}h{rem // 60:02d}m" if h else f"{rem // 60}m{rem % 60:02d}s"


# --------------------------------------------------------------------------------------------------- running


DRIVER_PID_ENV = "LRA_DRIVER_PID"  # the trainer dies with this process (experiments/train.py die_with_driver)


class Busy(Exception):
    """Another driver holds the runs directory."""


@contextlib.contextmanager
def lock(runs_dir: Path):
    """One driver per runs directory (Busy otherwise); the lock file also names the running trainer's pid."""
    path = runs_dir / ".reproduce.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise Busy(f"another experiments.reproduce is running on {runs_dir} ({path} is locked); wait for it or "
                   "stop it first") from None
    def set_lock(**info):  # {"driver": pid, "run": name, "trainer": pid} while a trainer runs
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(dict(driver=os.getpid(), **info)).encode(), 0)

    try:
        set_lock()
        yield set_lock
    finally:
        os.close(fd)


class StopOnSignal:
    """While installed (a context manager, main thread only): the first SIGINT/SIGTERM is remembered and forwarded
    to the running trainer as SIGINT (it stops at a step boundary, its own Ctrl-C); a second one kills the trainer
    at once (SIGKILL). Without a trainer, the driver stops before the next run."""

    def __init__(self):
        self.signum = None
        self.proc = None  # the running trainer (subprocess.Popen)

    def __enter__(self):
        self._previous = {sig: signal.signal(sig, self._handle) for sig in (signal.SIGINT, signal.SIGTERM)}
        return self

    def __exit__(self, *exc):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)

    @property
    def exit_code(self) -> int:
        return 128 + self.signum

    def _handle(self, signum, frame):
        alive = self.proc is not None and self.proc.poll() is None
        if self.signum is None:
            self.signum = signum
            if alive:
                print(f"\n{signal.Signals(signum).name}: asking the trainer (pid {self.proc.pid}) to stop at a step "
                      "boundary; waiting for it (press Ctrl-C again to kill it at once)", file=sys.stderr, flush=True)
                self.proc.send_signal(signal.SIGINT)
        elif alive:
            print(f"\n{signal.Signals(signum).name} again: killing the trainer (pid {self.proc.pid}) at once; its last "
                  "complete checkpoint stays", file=sys.stderr, flush=True)
            self.proc.kill()


def failure_of(returncode: int, log_path: Path) -> dict:
    """failure.json for a trainer exit code, with the last error of its log as the reason (the `error:` line and
    the lines that continue it, e.g. the command an error says to run)."""
    lines = log_path.read_text(errors="replace").splitlines() if log_path.exists() else []
    starts = [i for i, line in enumerate(lines) if line.startswith("error:")]
    if starts:
        end = starts[-1] + 1
        while end < len(lines) and end - starts[-1] < 20 and lines[end].strip() and not lines[end].startswith("==="):
            end += 1
        last = "\n".join(lines[starts[-1]:end])
    else:
        last = next((line for line in reversed(lines) if line.strip()), "(no output)")
    if returncode == 3:
        kind = runs_lib.DIVERGED
    elif returncode == 2:
        kind = runs_lib.USER_ERROR
    else:
        kind = runs_lib.CRASHED
        if returncode < 0:
            last = f"killed by signal {-returncode} ({signal.Signals(-returncode).name}); {last}"
    return dict(kind=kind, exit_code=returncode, reason=last[:2000], log=str(log_path))


class FreshProgress:
    """The training step of the trainer's current session, from metrics.jsonl: never a step an earlier session
    logged (a resumed trainer first rewrites the file without them, os.replace: a new inode) and never backwards."""

    def __init__(self, run_dir: Path):
        self.path = run_dir / "metrics.jsonl"
        self.stale_inode = self.path.stat().st_ino if self.path.exists() else None
        self.step = -1

    def update(self):
        """The newest train record of this session if its step is past the last one returned, else None."""
        try:
            inode = self.path.stat().st_ino
        except FileNotFoundError:
            return None
        if inode == self.stale_inode:
            return None
        records = runs_lib.read_metrics(self.path.parent, "train")
        if not records or records[-1]["step"] <= self.step:
            return None
        self.step = records[-1]["step"]
        return records[-1]


def run_one(run: Run, run_dir: Path, data_dir, set_lock, progress_every: float, num_steps: int, eta_after,
            stop: StopOnSignal) -> tuple:
    """Trains one run in a subprocess (resuming it if it has a checkpoint); returns (RunInfo after, seconds).
    If the driver was asked to stop (stop.signum) the run is left as it is (no failure.json: a rerun resumes it)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    write_json_atomic(run_dir / runs_lib.RUN_FILE, run.record())
    log_path = run_dir / "train.log"
    start = time.monotonic()
    progress = FreshProgress(run_dir)
    with log_path.open("a") as log:
        log.write(f"\n=== experiments.reproduce {time.strftime('%Y-%m-%d %H:%M:%S')}: "
                  f"{' '.join(run.command(run_dir, data_dir))}\n")
        log.flush()
        # Its own process group: a terminal's Ctrl-C reaches the driver only, which forwards it once. No preexec_fn
        # (unsafe in a process with threads, and JAX has started some): the trainer itself asks for a parent-death
        # SIGKILL when DRIVER_PID_ENV names its parent (experiments/train.py die_with_driver).
        stop.proc = subprocess.Popen(run.command(run_dir, data_dir), cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
                                     env=dict(os.environ, PYTHONUNBUFFERED="1", **{DRIVER_PID_ENV: str(os.getpid())}),
                                     process_group=0)
        set_lock(run=run.name, trainer=stop.proc.pid)
        if stop.signum is not None:  # the signal came while the trainer was being started
            stop.proc.send_signal(signal.SIGINT)
        last_report = start
        while True:
            try:
                returncode = stop.proc.wait(timeout=min(progress_every, 5.0))
                break
            except subprocess.TimeoutExpired:
                pass
            now = time.monotonic()
            if now - last_report >= progress_every and stop.signum is None:
                if record := progress.update():
                    step, rate = record["step"], record.get("steps_per_s") or 0.0
                    left = (num_steps - step) / rate if rate else None
                    print(f"    step {step}/{num_steps}, {rate:.1f} steps/s; this run ~{fmt_s(left)} left, "
                          f"suite ~{fmt_s(None if left is None else left + eta_after())} left", flush=True)
                last_report = now
    stop.proc = None
    set_lock()
    info = runs_lib.read_run(run_dir)
    if returncode == 0 and info.status == "done":
        (run_dir / runs_lib.FAILURE_FILE).unlink(missing_ok=True)
    elif stop.signum is None:
        if returncode == 0:
            returncode = 1  # exited without results.json: count it as a crash
        write_json_atomic(run_dir / runs_lib.FAILURE_FILE, failure_of(returncode, log_path))
        info = runs_lib.read_run(run_dir)
    return info, time.monotonic() - start


def describe(info) -> str:
    if info.status == "done":
        r = info.results
        # The chance level (the best constant predictor on test: what CHANCE LEVEL compares with); results.json
        # files written before it was recorded have the majority class of the train labels only.
        key, label = next(((k, lab) for k, lab in (("chance_accuracy", "chance"),
                                                   ("majority_class_test_accuracy", "majority class"))
                           if r.get(k) is not None), (None, None))
        text = f"test {100 * r['test_accuracy']:.2f}% (val {100 * r['val_accuracy']:.2f}%" + \
            (f", {label} {100 * r[key]:.1f}%)" if key else ")")
        return text + ("  CHANCE LEVEL: did not learn the task" if info.chance_level else "")
    if info.status == "failed":
        return f"FAILED ({info.failure['kind']}, exit code {info.failure['exit_code']}): {info.failure['reason']}"
    return info.status


def write_suite_json(runs_dir: Path, runs: list[Run], unavailable: dict, stale: dict) -> None:
    """suite.json: the runs this suite expects; "stale": why a run directory of that name holds another config's
    run (the driver does not reuse it; its results are not this entry's)."""
    records = [dict(run.record(), available=run.name not in unavailable, why_not=unavailable.get(run.name),
                    stale=stale.get(run.name)) for run in runs]
    write_json_atomic(runs_dir / runs_lib.SUITE_FILE, dict(runs=records))


def positive_seconds(text: str) -> float:
    value = float(text)
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"must be a number of seconds > 0, got {text}")
    return value


def main(argv=None) -> int:
    try:
        return _main(argv)
    except KeyboardInterrupt:  # Ctrl-C before the suite runs (resolving the configs takes seconds); nothing was run
        print("\ninterrupted (SIGINT) during start-up; nothing was run", file=sys.stderr, flush=True)
        return 128 + signal.SIGINT


def _main(argv) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m experiments.reproduce", description=__doc__.split("\n")[0],
        epilog="exit codes:\n  0        every run finished\n  1        a run failed or is stale (each listed with "
               "its reason)\n  2        a usage error: a flag, the suite file or an entry's config, --runs-dir, "
               "another driver\n           on the runs directory (nothing was run)\n  130/143  interrupted by "
               "SIGINT/SIGTERM (the running trainer is stopped first; rerun to resume)",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--suite", choices=sorted(SUITES))
    which.add_argument("--suite-file", help="a JSON suite: {\"entries\": [[family, variant, {overrides}], ...], "
                                            "\"seeds\": N, \"scale\": \"mini\"|\"full\"}")
    parser.add_argument("--models", nargs="+", help="only these families (or family:option, e.g. ladder:lru)")
    parser.add_argument("--tasks", nargs="+", choices=TASKS, help="only these tasks")
    parser.add_argument("--seeds", type=int, help="seeds 0..N-1 of each entry (default: the suite's)")
    parser.add_argument("--runs-dir", help="results tree (default: runs/<suite>)")
    parser.add_argument("--data-dir", help="LRA data cache passed to every run (else $LRA_DATA_DIR, else ~/.cache/lra)")
    parser.add_argument("--dry-run", action="store_true", help="list the runs, their configs and estimated times")
    parser.add_argument("--progress-every", type=positive_seconds, default=30.0,
                        help="seconds between progress lines (> 0)")
    args = parser.parse_args(argv)
    if args.seeds is not None and args.seeds < 1:
        parser.error("--seeds must be >= 1")

    try:
        suite_name = args.suite or Path(args.suite_file).stem
        suite = SUITES[args.suite] if args.suite else load_suite_file(args.suite_file)
        runs = select(expand(suite, suite_name, args.seeds), args.models, args.tasks)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if not runs:
        together = (f" is of --models {' '.join(args.models)} on --tasks {' '.join(args.tasks)} (each exists, not "
                    "together; --dry-run without them lists the suite's runs)" if args.models and args.tasks else
                    " (it has no entries)")
        print(f"error: no run of suite {suite_name}{together}", file=sys.stderr)
        return 2
    runs_dir = Path(args.runs_dir or REPO / "runs" / suite_name).absolute()
    blocking = next((p for p in (runs_dir, *runs_dir.parents) if p.exists() and not p.is_dir()), None)
    if blocking is not None:
        print(f"error: --runs-dir {runs_dir}: {blocking} is a file, not a folder; give another --runs-dir",
              file=sys.stderr)
        return 2
    try:
        source = f"--suite-file {args.suite_file}" if args.suite_file else f"suite {args.suite}"
        configs, unavailable = resolve_all(runs, source, builtin=not args.suite_file, data_dir=args.data_dir)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    steps = {name: int(config.train.num_steps) for name, config in configs.items()}

    rates: dict = {}
    stale, estimates = {}, {}
    for run in runs:
        if run.name in unavailable:
            continue
        run_dir = runs_dir / run.name
        if why := not_reusable(run_dir, configs[run.name]):
            stale[run.name] = why
        else:
            estimates[run.name] = estimate(run, run_dir, steps[run.name], rates, configs[run.name])

    print(f"suite {suite_name}: {len(runs)} runs in {runs_dir} ({len(unavailable)} not available"
          + (f", {_count_blocked(stale)}" if stale else "") + ")")
    for run in runs:
        if run.name in unavailable or run.name in stale:
            print(f"  {run.name:<44s} {unavailable.get(run.name) or stale[run.name]}")
            continue
        seconds, how = estimates[run.name]
        info = read_existing(runs_dir / run.name)
        ckpt = runs_lib.latest_checkpoint_step(runs_dir / run.name)
        state = "finished" if info and info.status == "done" else \
            (f"resumes at step {ckpt}/{steps[run.name]}" if ckpt else f"{steps[run.name]} steps")
        extra = " ".join(f"--config.{k}={v}" for k, v in run.overrides.items())
        print(f"  {run.name:<44s} {run.config_spec} {extra} [{run.scale}] {state}; ~{fmt_s(seconds)} ({how})")
    known = [s for s, _ in estimates.values() if s is not None]
    n_unknown = sum(s is None for s, _ in estimates.values())
    print(f"estimated time: ~{fmt_s(sum(known))}" + (f" plus {n_unknown} runs not estimated (see each run)"
                                                      if n_unknown else ""))
    if args.dry_run:
        return 0

    try:
        runs_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        print(f"error: --runs-dir {runs_dir}: cannot create it ({e.strerror or e}); give another --runs-dir",
              file=sys.stderr)
        return 2
    try:
        with lock(runs_dir) as set_lock, StopOnSignal() as stop:
            write_suite_json(runs_dir, runs, unavailable,
                             {n: why for n, why in stale.items() if not why.startswith("unreadable:")})
            return run_suite(runs, runs_dir, steps, configs, unavailable, rates, args, set_lock, stop)
    except Busy as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


def run_suite(runs, runs_dir, steps, configs, unavailable, rates, args, set_lock, stop) -> int:
    todo = [r for r in runs if r.name not in unavailable]
    results, stale, t0, interrupted = {}, {}, time.monotonic(), None

    def eta_after(i):  # estimated seconds of the runs after todo[i], refreshed with measured rates
        total = 0.0
        for run in todo[i + 1:]:
            seconds, _ = estimate(run, runs_dir / run.name, steps[run.name], rates, configs[run.name])
            total += seconds or 0.0
        return total

    for i, run in enumerate(todo):
        if stop.signum is not None:
            break
        run_dir = runs_dir / run.name
        if why := not_reusable(run_dir, configs[run.name]):
            stale[run.name] = why
            print(f"[{i + 1}/{len(todo)}] {run.name}: NOT RUN, {why}", flush=True)
            continue
        existing = read_existing(run_dir)
        if existing is not None and existing.status == "done":
            results[run.name] = existing
            print(f"[{i + 1}/{len(todo)}] {run.name}: finished before, skipped: {describe(existing)}", flush=True)
            continue
        seconds, how = estimate(run, run_dir, steps[run.name], rates, configs[run.name])
        resume = ""
        if existing is not None:
            ckpt = runs_lib.latest_checkpoint_step(run_dir)
            resume = f", resuming from its checkpoint at step {ckpt}" if ckpt else \
                f", restarting (no complete checkpoint; it had logged step {existing.step})"
        n_done = sum(r.status == "done" for r in results.values())
        print(f"[{i + 1}/{len(todo)}] {run.name}: {run.config_spec}{resume}; ~{fmt_s(seconds)} ({how}); "
              f"{n_done}/{len(todo)} runs done, suite ~{fmt_s((seconds or 0) + eta_after(i))} left", flush=True)
        info, wall_s = run_one(run, run_dir, args.data_dir, set_lock, progress_every=args.progress_every,
                               num_steps=steps[run.name], eta_after=lambda: eta_after(i), stop=stop)
        rate = measured_rate(run_dir)
        if rate:
            rates[(run.family, run.task, run.scale)] = rate
        if stop.signum is not None and info.status != "done":
            ckpt = runs_lib.latest_checkpoint_step(run_dir)
            interrupted = (f"{run.name} stopped at step {max(info.step, ckpt or 0)}; a rerun resumes it from "
                           + (f"its checkpoint at step {ckpt}" if ckpt else "step 0 (no complete checkpoint)"))
            break
        results[run.name] = info
        print(f"    {run.name}: {describe(info)} [{fmt_s(wall_s)}]", flush=True)

    failed = [n for n, i in results.items() if i.status != "done"]
    chance = [n for n, i in results.items() if i.status == "done" and i.chance_level]
    n_done = len(results) - len(failed)
    if stop.signum is not None:
        print(f"\ninterrupted ({signal.Signals(stop.signum).name})"
              + (f": {interrupted}" if interrupted else " between runs") + "; rerun the same command to go on",
              file=sys.stderr, flush=True)
    print(f"\nsuite {'stopped' if stop.signum is not None else 'finished'} after {fmt_s(time.monotonic() - t0)}: "
          f"{n_done}/{len(todo)} runs done, {len(failed) + len(stale)} failed"
          + (f" ({_count_blocked(stale)})" if stale else "") + f", {len(chance)} at chance level, "
          f"{len(unavailable)} not available")
    for name in failed:
        print(f"  FAILED       {name}: {describe(results[name])}  (log: {runs_dir / name / 'train.log'})")
    for name, why in stale.items():
        print(f"  FAILED       {name}: {why}")
    for name in chance:
        print(f"  CHANCE LEVEL {name}: {describe(results[name])}")
    for name, why in unavailable.items():
        print(f"  NOT RUN      {name}: {why}")
    print(f"table: python -m experiments.table {runs_dir}")
    if stop.signum is not None:
        return stop.exit_code
    return 1 if failed or stale else 0


if __name__ == "__main__":
    sys.exit(main())
