"""The LRA table of a runs directory, side by side with the published numbers.

  python -m experiments.table runs/mini [--format md|latex|csv] [--plot runs/mini/table.png]

Test accuracy (%) of the best-by-validation checkpoint, mean +- std (sample std, ddof=1) over the seeds that
finished, for each model x task, and the 6-task average. Conventions (printed with every table):
  - FAIL: a published FAIL did not beat chance; like the S4 paper (Gu et al., Table 4) it counts as 50 in averages.
    One of our runs that diverged (trainer exit code 3) on every seed is shown as FAIL and counted the same way.
  - A seed at chance level (results.json chance_level: not above the best constant predictor on test + 0.01) is
    kept in the mean and flagged.
  - A missing, unfinished or crashed run is shown as such, never as 0; an average over tasks with one missing is
    shown as incomplete. The per-task difference is only ever between two numbers: ours FAIL -> "FAIL", a published
    FAIL -> "pub. FAIL" (only the 6-task average uses FAIL = 50).
  - A run directory whose JSON files cannot be read is shown as "unreadable" in its cell, with the file and the
    parse error in a warning; the rest of the table is printed and the command exits 1.
  - Runs pooled in one cell must be seeds of one experiment: a cell whose runs' configs differ (beyond the seeds and
    bookkeeping, see BOOKKEEPING) or repeat a seed is flagged, with a warning naming the keys and the runs.
  - Scale is always labelled: "full" = the published configs; "mini" = smoke configs (small generated data, small
    models) whose numbers are NOT comparable to the published ones, so no difference is computed for them;
    "unlabelled" = a run directory not made by the suite driver (no run.json).
Published numbers: experiments/published/*.csv (with their citations).
"""
from __future__ import annotations

import argparse
import collections
import csv
import dataclasses
import io
import json
import math
import os
import sys
from pathlib import Path

import numpy as np

from experiments import runs as runs_lib

TASKS = ("listops", "text", "retrieval", "image", "pathfinder", "pathx")
TASK_TITLES = {"listops": "ListOps", "text": "Text", "retrieval": "Retrieval", "image": "Image",
               "pathfinder": "Pathfinder", "pathx": "Path-X"}
PUBLISHED_DIR = Path(__file__).resolve().parent / "published"
FAIL_VALUE = 50.0  # S4-paper convention for FAIL in averages
UNREADABLE = "unreadable"  # status of a run directory whose JSON files could not be parsed (see read_runs)
STALE = "stale"  # a run directory the suite driver found holding another config's run (runs.stale_runs)
LEFT_OUT = ("missing", "not available", UNREADABLE, STALE)  # statuses whose config is not a run of this cell

# Our config family -> the published row it reproduces: (model, variant) in published_results.csv.
PUBLISHED_ROWS = {
    "transformer": ("Transformer", "LRA baseline"),
    "s4d": ("S4D", "reproduced by LRU authors"),
    "s5": ("S5", "paper"),
    "lru": ("LRU", "paper (mean of 3 seeds)"),
}
# Ladder rung (ladder.py:<task>,<rung>) -> the start of its `step` in lru_ablations.csv (Orvieto et al. 2023).
LADDER_FAMILY = "ladder"
LADDER_ROWS = {
    "rnn_relu": "RNN-ReLU", "rnn_tanh": "RNN-Tanh", "rnn_lin": "RNN-Lin", "real_imag": "Lambda Real+Im",
    "exp": "Lambda Exp", "stable_exp": "Lambda Stable Exp", "ring_init": "+ Ring Init", "lru": "LRU",
}
# lru_ablations.csv column for each LRA task: the paper's image column is coloured sCIFAR (marked not comparable).
LADDER_COLUMNS = {"listops": "listops", "text": "text", "retrieval": "retrieval", "image": "scifar_colour",
                  "pathfinder": "pathfinder", "pathx": "pathx"}
SCALE_TITLES = {
    "full": "Full scale (the published configs)",
    "mini": "Mini scale (smoke configs: small generated data, small models, CPU) -- NOT comparable to the "
            "published full-scale numbers beside them",
    "unlabelled": "Unlabelled scale (run directories without run.json; not made by experiments.reproduce)",
}


# ------------------------------------------------------------------------------------------------ published data


@dataclasses.dataclass(frozen=True)
class Published:
    text: str  # as in the CSV: "60.2", "FAIL", "89.9*", "" (not reported)

    @property
    def fail(self) -> bool:
        return self.text == "FAIL"

    @property
    def comparable(self) -> bool:  # "*": another task (coloured sCIFAR), not LRA's
        return not self.text.endswith("*")

    @property
    def value(self) -> float | None:
        """The number used in averages and differences (FAIL -> 50); None if not reported."""
        if self.fail:
            return FAIL_VALUE
        return float(self.text.rstrip("*")) if self.text else None


def read_published_csv(path: Path) -> tuple[list[dict], list[str]]:
    """(rows as dicts of strings, the '#' comment lines: the citations and notes)."""
    lines = Path(path).read_text().splitlines()
    comments = [line.lstrip("# ").rstrip() for line in lines if line.startswith("#")]
    rows = list(csv.DictReader(line for line in lines if line.strip() and not line.startswith("#")))
    return rows, comments


def published_models(path: Path = PUBLISHED_DIR / "published_results.csv") -> tuple[dict, list[str]]:
    """{family: {task or 'avg_6task': Published}, '_label': ...} for the families in PUBLISHED_ROWS."""
    rows, comments = read_published_csv(path)
    out = {}
    for family, (model, variant) in PUBLISHED_ROWS.items():
        match = [r for r in rows if r["model"] == model and r["variant"] == variant]
        if len(match) != 1:
            raise ValueError(f"{path}: expected one row model={model!r} variant={variant!r}, found {len(match)}")
        r = match[0]
        out[family] = {k: Published(r[k].strip()) for k in (*TASKS, "avg_6task")}
        out[family]["_label"] = f"{model}, {variant} [{r['source']}]"
    return out, comments


def published_ladder(path: Path = PUBLISHED_DIR / "lru_ablations.csv") -> tuple[dict, list[str]]:
    """{rung: {task: Published}, '_label'} from the LRU paper's ladder (the first row whose step matches)."""
    rows, comments = read_published_csv(path)
    out = {}
    for rung, prefix in LADDER_ROWS.items():
        match = [r for r in rows if r["step"].startswith(prefix)]
        if not match:
            raise ValueError(f"{path}: no row whose step starts with {prefix!r} (rung {rung})")
        r = match[0]
        cells = {}
        for task, column in LADDER_COLUMNS.items():
            text = (r.get(column) or "").strip()
            cells[task] = Published(text + "*" if text and column == "scifar_colour" and text != "FAIL" else text)
        out[rung] = dict(cells, _label=f"{r['step']} [{r['table']}]")
    return out, comments


# -------------------------------------------------------------------------------------------------- our results


# Config keys that do not change what a run learns (the seeds, logging, checkpointing, where the data lives): runs
# that differ only in these are seeds of one experiment. Any other difference inside one cell is flagged.
BOOKKEEPING = ("seed", "train.data_seed", "train.log_every", "train.checkpoint_every", "train.keep_checkpoints",
               "train.async_checkpointing", "train.eval_batch_size", "data.data_dir", "data.release_dir",
               "data.tfds_data_dir")


def config_differences(run_list) -> dict[str, dict[str, list[str]]]:
    """{config key: {value (JSON): [run directories]}} for every key, outside BOOKKEEPING, whose value differs
    between the runs that have a config.json (a key missing from a run's config counts as the value "(absent)")."""
    as_json = lambda config: {key: json.dumps(value, sort_keys=True)
                              for key, value in runs_lib.flatten_config(config).items()}
    flat = {str(r.path): as_json(r.config) for r in run_list if r.config is not None and r.status not in LEFT_OUT}
    keys = sorted(set().union(*flat.values()) - set(BOOKKEEPING)) if flat else []
    out = {}
    for key in keys:
        by_value: dict = {}
        for name, cfg in flat.items():
            by_value.setdefault(cfg.get(key, "(absent)"), []).append(name)
        if len(by_value) > 1:
            out[key] = by_value
    return out


@dataclasses.dataclass
class Cell:
    """Our runs of one (scale, model, task)."""
    runs: list  # RunInfo, including expected-but-missing ones

    @property
    def accuracies(self) -> list[float]:
        return [100.0 * r.results["test_accuracy"] for r in self.runs if r.status == "done"]

    def count(self, status) -> int:
        return sum(r.status == status for r in self.runs)

    @property
    def n_diverged(self) -> int:
        return sum(r.status == "failed" and r.failure.get("kind") == runs_lib.DIVERGED for r in self.runs)

    @property
    def seeds(self) -> list[int]:
        """The distinct seeds this cell expects (a seed run in two directories counts once)."""
        return sorted({r.seed for r in self.runs})

    @property
    def seeds_done(self) -> list[int]:
        return sorted({r.seed for r in self.runs if r.status == "done"})

    def seeds_with(self, *statuses) -> list[int]:
        """Seeds that have a run in one of `statuses` and none that finished (for the 'not finished' notes)."""
        done = {r.seed for r in self.runs if r.status == "done"}
        return sorted({r.seed for r in self.runs if r.status in statuses} - done)

    @property
    def unreadable(self) -> list:
        return [r for r in self.runs if r.status == UNREADABLE]

    @property
    def stale(self) -> list:
        return [r for r in self.runs if r.status == STALE]

    @property
    def n_chance(self) -> int:
        return sum(r.chance_level for r in self.runs if r.status == "done")

    @property
    def mean(self) -> float | None:
        acc = self.accuracies
        return float(np.mean(acc)) if acc else None

    @property
    def std(self) -> float | None:
        acc = self.accuracies
        return float(np.std(acc, ddof=1)) if len(acc) > 1 else None

    @property
    def fail(self) -> bool:
        """Every run diverged (none finished, none pending; runs whose config is not available never will):
        FAIL, counted as 50 in averages."""
        possible = [r for r in self.runs if r.status != "not available"]
        return bool(possible) and not self.accuracies and self.n_diverged == len(possible)

    @property
    def value(self) -> float | None:
        """What averages use: the mean, FAIL -> 50, else None (missing)."""
        return FAIL_VALUE if self.fail else self.mean

    @property
    def repeated_seeds(self) -> list[int]:
        """Seeds that more than one run of this cell used (model init and data order both the same)."""
        uses = collections.Counter((r.seed, (r.config or {}).get("train", {}).get("data_seed")) for r in self.runs
                                   if r.status not in LEFT_OUT)
        return sorted({seed for (seed, _), n in uses.items() if n > 1})

    @property
    def mixed_configs(self) -> dict:
        return config_differences(self.runs)

    def warnings(self) -> list[str]:
        """Why this cell's mean is not a mean over seeds of one experiment ([] when it is)."""
        out = []
        mixed = self.mixed_configs
        if mixed:
            values = lambda by_value: "; ".join(v + ": " + ", ".join(names) for v, names in by_value.items())
            shown = [f"{key} ({values(by_value)})" for key, by_value in list(mixed.items())[:3]]
            more = f" and {len(mixed) - 3} more keys" if len(mixed) > 3 else ""
            out.append(f"its runs' configs differ in {', '.join(shown)}{more}: the mean mixes different settings; "
                       "put each setting in its own runs directory")
        if self.repeated_seeds:
            out.append(f"seed(s) {', '.join(map(str, self.repeated_seeds))} appear in more than one run: the std is "
                       "not over independent seeds")
        out += [f"run {r.path} is unreadable, left out: {r.failure['reason']}" for r in self.unreadable]
        out += [f"run {r.path} is stale, left out: {r.failure['reason']}" for r in self.stale]
        return out

    def status(self) -> str:
        if self.accuracies:
            return "done"
        if self.fail:
            return "FAIL"
        if self.runs and all(r.status == "not available" for r in self.runs):
            return "not available"
        if not self.runs or all(r.status in ("missing", "not available") for r in self.runs):
            return "missing"
        if self.count("failed"):
            return "failed"
        if self.unreadable:
            return UNREADABLE
        if self.stale and all(r.status in (STALE, "missing", "not available") for r in self.runs):
            return STALE
        return "incomplete"

    def text(self) -> str:
        """'mean ± std (n=seeds done/expected) [notes]', or the status where no run finished."""
        acc, status, seeds = self.accuracies, self.status(), self.seeds
        notes = []
        if acc:
            n_seeds = len(self.seeds_done)
            out = f"{self.mean:.2f}" + (f" ± {self.std:.2f}" if self.std is not None else "")
            if len(acc) > n_seeds:  # a seed finished in more than one directory: say runs and seeds apart
                out += f" (n={len(acc)} runs of {n_seeds}/{len(seeds)} seeds)"
            else:
                out += f" (n={n_seeds}" + (f"/{len(seeds)}" if n_seeds < len(seeds) else "") + ")"
            if self.n_chance:
                notes.append(f"{self.n_chance} at chance")
        else:
            out = {"FAIL": "FAIL (diverged)", "missing": "missing", "not available": "missing (config not available)",
                   "failed": "failed", "incomplete": "unfinished", UNREADABLE: UNREADABLE, STALE: STALE}[status]
        n_failed = self.count("failed")
        if n_failed and (acc or status == "failed"):
            kinds = sorted({r.failure.get("kind", "?") for r in self.runs if r.status == "failed"})
            notes.append(f"{n_failed} failed: {', '.join(kinds)}")
        if self.mixed_configs:
            notes.append("mixed configs")
        if self.repeated_seeds:
            notes.append("repeated seeds")
        pending = self.seeds_with("incomplete", "not started", "missing")
        if status == "incomplete":
            steps = [f"{r.step}/{r.num_steps}" for r in self.runs if r.status == "incomplete" and r.num_steps]
            notes.append(("step " + ", ".join(steps)) if steps else "not started")
        elif pending and status != "missing":
            notes.append(f"{len(pending)} not finished")
        unavailable = self.seeds_with("not available")
        if unavailable and status != "not available":
            notes.append(f"{len(unavailable)} not available")
        if self.unreadable and status != UNREADABLE:
            notes.append(f"{len(self.unreadable)} unreadable")
        if self.stale and status != STALE:
            notes.append(f"{len(self.stale)} stale")
        return out + (" [" + "; ".join(notes) + "]" if notes else "")


def read_runs(runs_dir) -> list:
    """Every run directory under runs_dir, as runs.find_runs, except that a run whose results.json / failure.json
    (or one of run.json, config.json) cannot be read is kept, with status "unreadable" and the error as its
    failure reason, placed in its cell by whichever of run.json / config.json can be read. ValueError if neither."""
    try:
        return runs_lib.find_runs(runs_dir)
    except ValueError:
        pass  # at least one unreadable run directory: read them one by one (same directories as find_runs)
    runs_dir = Path(runs_dir)
    dirs = {p.parent for name in (runs_lib.RUN_FILE, "config.json") for p in runs_dir.rglob(name)
            if "checkpoints" not in p.relative_to(runs_dir).parts}
    return [_read_or_unreadable(d) for d in sorted(dirs)]


def _read_or_unreadable(path: Path):
    try:
        return runs_lib.read_run(path)
    except ValueError as error:
        reason = str(error)
    identity = {}
    for name in (runs_lib.RUN_FILE, "config.json"):
        try:
            identity[name] = json.loads((path / name).read_text())
        except (OSError, ValueError):
            continue
    if runs_lib.RUN_FILE in identity:
        run = identity[runs_lib.RUN_FILE]
        name, family, option, task, seed, scale = (run["name"], run["family"], run.get("option"), run["task"],
                                                   run["seed"], run["scale"])
    elif "config.json" in identity:
        config = identity["config.json"]
        name, family, option, task, seed, scale = (path.name, config["model"]["layer"], None, config["data"]["task"],
                                                   config["seed"], "unlabelled")
    else:
        raise ValueError(f"{reason} (and neither {runs_lib.RUN_FILE} nor config.json says which run it is)")
    return runs_lib.RunInfo(path=path, name=name, family=family, option=option, task=task, seed=int(seed),
                            scale=scale if scale in runs_lib.SCALES else "unlabelled", status=UNREADABLE,
                            failure=dict(kind=UNREADABLE, reason=reason), config=identity.get("config.json"))


def collect(runs_dir) -> dict:
    """{(scale, family, option): {task: Cell}} of the runs found in runs_dir plus those its suite.json expects."""
    stale = runs_lib.stale_runs(runs_dir)
    found = [dataclasses.replace(r, status=STALE, failure={"reason": stale[r.name]}) if r.name in stale else r
             for r in read_runs(runs_dir)]
    names = {r.name for r in found}
    everything = found + [r for r in runs_lib.expected_runs(runs_dir) if r.name not in names]
    groups: dict = {}
    for r in everything:
        groups.setdefault((r.scale, r.family, r.option), {}).setdefault(r.task, Cell([])).runs.append(r)
    return groups


def average(cells: dict) -> tuple[float | None, int]:
    """(mean over the 6 tasks of each cell's value, number of tasks with a value); mean None if incomplete."""
    values = [cells[t].value if t in cells else None for t in TASKS]
    have = [v for v in values if v is not None]
    return (float(np.mean(have)) if len(have) == len(TASKS) else None), len(have)


# ----------------------------------------------------------------------------------------------------- the table


@dataclasses.dataclass
class Row:
    model: str
    what: str  # "ours (mini, seeds 0-2)", "published (full scale)", "difference"
    cells: list[str]  # one per column


@dataclasses.dataclass
class Section:
    title: str
    columns: list[str]
    rows: list[Row]
    notes: list[str]


def _fmt(x: float | None, signed=False) -> str:
    if x is None:
        return "—"
    return f"{x:+.2f}" if signed else f"{x:.2f}"


def _model(key) -> str:
    """Row label of a group key (scale, family, option): "lru", "ladder:ring_init"."""
    return f"{key[1]}:{key[2]}" if key[2] else key[1]


def _family_order(keys) -> list:
    """The row order of the table, the CSV and the figure: the published families in PUBLISHED_ROWS order, then the
    others by name; the ladder's rungs in the paper's order (LADDER_ROWS), unknown options after them by name."""
    known, rungs = list(PUBLISHED_ROWS), list(LADDER_ROWS)
    rank = lambda seq, x: seq.index(x) if x in seq else len(seq)
    return sorted(keys, key=lambda k: (rank(known, k[1]), k[1],
                                       rank(rungs, k[2]) if k[1] == LADDER_FAMILY else 0, k[2] or ""))


def _published_cell(p: Published | None) -> str:
    if p is None or not p.text:
        return "—"
    return p.text


def _diff(ours: Cell | None, p: Published | None) -> str:
    """ours - published for one task, only between two numbers: a FAIL is never turned into 50 here (that
    convention is for the 6-task average only)."""
    if ours is not None and ours.fail:
        return "FAIL"
    if ours is None or ours.mean is None or p is None or p.value is None:
        return "—"
    if not p.comparable:
        return "n/c"
    if p.fail:
        return "pub. FAIL"
    return _fmt(ours.mean - p.value, signed=True)


def build_sections(groups: dict) -> list[Section]:
    published, pub_notes = published_models()
    ladder, ladder_notes = published_ladder()
    sections = []
    for scale in runs_lib.SCALES:
        for ladder_kind in (False, True):
            keys = [k for k in groups if k[0] == scale and (k[1] == LADDER_FAMILY) == ladder_kind]
            if not keys:
                continue
            columns = [TASK_TITLES[t] for t in TASKS] + ([] if ladder_kind else ["Avg (6 tasks)"])
            rows = []
            keys = _family_order(keys)
            for key in keys:
                _, family, option = key
                cells = groups[key]
                model = _model(key)
                seeds = sorted({r.seed for c in cells.values() for r in c.runs})
                ours = [cells[t].text() if t in cells else "missing" for t in TASKS]
                if not ladder_kind:
                    avg, n_tasks = average(cells)
                    ours.append(_fmt(avg) if avg is not None else f"incomplete ({n_tasks}/{len(TASKS)} tasks)")
                rows.append(Row(model, f"ours ({scale}, seeds {','.join(map(str, seeds))})", ours))
                pub = ladder.get(option) if ladder_kind else published.get(family)
                if pub is None:
                    rows.append(Row(model, "published", ["no published row"] + [""] * (len(columns) - 1)))
                    continue
                pub_cells = [_published_cell(pub[t]) for t in TASKS]
                if not ladder_kind:
                    pub_cells.append(_published_cell(pub["avg_6task"]))
                rows.append(Row(model, f"published (full scale): {pub['_label']}", pub_cells))
                if scale == "full":
                    diff = [_diff(cells.get(t), pub[t]) for t in TASKS]
                    if not ladder_kind:
                        avg, _ = average(cells)
                        diff.append(_fmt(avg - pub["avg_6task"].value, signed=True)
                                    if avg is not None and pub["avg_6task"].value is not None else "—")
                    rows.append(Row(model, "difference (ours - published)", diff))
            title = SCALE_TITLES[scale] + (": the LRU ablation ladder" if ladder_kind else "")
            warnings = [f"WARNING: {_model(k)} / {TASK_TITLES[t]}: {w}" for k in keys for t in TASKS if t in groups[k] for w in groups[k][t].warnings()]
            notes = warnings + conventions(scale) + ["Published: " + line for line in (ladder_notes if ladder_kind else pub_notes)]
            sections.append(Section(title, columns, rows, notes))
    return sections


def conventions(scale: str) -> list[str]:
    notes = [
        "Test accuracy (%) of the best-by-validation checkpoint; mean ± sample std over seeds (n = seeds finished"
        "/expected).",
        f"FAIL counts as {FAIL_VALUE:g} in the 6-task averages (the S4-paper convention); ours is FAIL when every "
        "seed diverged. A per-task difference is never computed from a FAIL: 'FAIL' (ours) / 'pub. FAIL'.",
        "'at chance': a seed not above the best constant predictor on test + 1 point (kept in the mean); "
        "'missing'/'unfinished'/'failed' are "
        "not counted as 0: an average with such a task is shown as incomplete. 'unfinished': no results.json yet "
        "(running, interrupted, or stopped outside the suite driver, e.g. a diverged `experiments.train` run). "
        "'stale': a run directory holding another config's run (the suite entry changed since; the driver does not "
        "reuse it): left out, with the differing keys in a warning.",
        "'*' / 'n/c': the published column is coloured sequential CIFAR, not LRA's grayscale Image (not comparable).",
    ]
    if scale != "full":
        notes.insert(0, f"SCALE: our numbers are {scale} scale; the published ones are full scale, so no "
                        "difference is computed.")
    return notes


# --------------------------------------------------------------------------------------------------- rendering


def render_md(sections: list[Section]) -> str:
    out = []
    for s in sections:
        out += [f"## {s.title}", "", "| model | row | " + " | ".join(s.columns) + " |",
                "|" + "---|" * (len(s.columns) + 2)]
        out += [f"| {r.model} | {r.what} | " + " | ".join(c.replace("|", "/") for c in r.cells) + " |"
                for r in s.rows]
        out += [""] + [f"- {n}" for n in s.notes] + [""]
    return "\n".join(out)


_LATEX_ESCAPES = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                  "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}


def latex_escape(text: str) -> str:
    text = "".join(_LATEX_ESCAPES.get(ch, ch) for ch in text)
    return text.replace("±", r"$\pm$").replace("—", "--")


def render_latex(sections: list[Section]) -> str:
    out = []
    for s in sections:
        out += [f"% {latex_escape(s.title)}", r"\begin{table}[t]", r"\centering", r"\small",
                r"\begin{tabular}{ll" + "l" * len(s.columns) + "}", r"\toprule",
                " & ".join(["Model", "Row", *map(latex_escape, s.columns)]) + r" \\", r"\midrule"]
        out += [" & ".join(latex_escape(c) for c in (r.model, r.what, *r.cells)) + r" \\" for r in s.rows]
        out += [r"\bottomrule", r"\end{tabular}", r"\caption{" + latex_escape(s.title) + ". "
                + latex_escape(" ".join(s.notes[:4])) + "}", r"\end{table}", ""]
    return "\n".join(out)


CSV_FIELDS = ("scale", "model", "task", "status", "n_done", "n_expected", "n_runs", "n_failed", "n_chance", "mean", "std",
              "value_for_average", "published", "published_row", "difference", "runs", "warnings")


def render_csv(groups: dict) -> str:
    """Long format, one row per (scale, model, task) plus an avg_6task row per model; empty = not available.
    n_done / n_expected count distinct seeds; n_runs the finished runs in the mean (more than n_done when a seed
    finished in more than one directory)."""
    published, _ = published_models()
    ladder, _ = published_ladder()
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CSV_FIELDS, lineterminator="\n")
    writer.writeheader()
    num = lambda x: "" if x is None else f"{x:.4f}"
    for key in _family_order(groups):
        scale, family, option = key
        cells = groups[key]
        pub = ladder.get(option) if family == LADDER_FAMILY else published.get(family)
        model = _model(key)
        for task in TASKS:
            c = cells.get(task, Cell([]))
            p = pub[task] if pub else None
            writer.writerow(dict(
                scale=scale, model=model, task=task, status=c.status(),
                n_done=len(c.seeds_done), n_expected=len(c.seeds),
                n_runs=len(c.accuracies), n_failed=c.count("failed"), n_chance=c.n_chance, mean=num(c.mean),
                std=num(c.std), value_for_average=num(c.value), published=p.text if p else "",
                published_row=pub["_label"] if pub else "",
                difference=_diff(c, p).replace("—", "") if scale == "full" and p else "",
                runs=" ".join(r.name for r in c.runs), warnings=" | ".join(c.warnings())))
        if family != LADDER_FAMILY:
            avg, n_tasks = average(cells)
            p = pub["avg_6task"] if pub else None
            writer.writerow(dict(
                scale=scale, model=model, task="avg_6task",
                status="done" if avg is not None else f"incomplete ({n_tasks}/{len(TASKS)} tasks)",
                mean=num(avg), value_for_average=num(avg), published=p.text if p else "",
                published_row=pub["_label"] if pub else "",
                difference=num(avg - p.value) if scale == "full" and avg is not None and p and p.value is not None
                else ""))
    return buf.getvalue()


def render(runs_dir, fmt: str = "md") -> str:
    return render_groups(collect(runs_dir), fmt, runs_dir)


def render_groups(groups: dict, fmt: str = "md", runs_dir="") -> str:
    if not groups:
        raise ValueError(f"{runs_dir} holds no run directories (run.json or config.json)")
    if fmt == "csv":
        return render_csv(groups)
    sections = build_sections(groups)
    return {"md": render_md, "latex": render_latex}[fmt](sections)


# ------------------------------------------------------------------------------------------------------ figure

# Cell flags drawn as bar hatching (the table's notes of the same names), with a legend entry each when used.
HATCHES = {"at chance": "..", "mixed configs": "//", "repeated seeds": "xx"}


def cell_flags(cell: Cell) -> list[str]:
    """The HATCHES keys that apply to a cell (what its table text notes)."""
    return [flag for flag, on in (("at chance", cell.n_chance), ("mixed configs", cell.mixed_configs),
                                  ("repeated seeds", cell.repeated_seeds)) if on]


def figure(groups: dict, runs_dir=""):
    """The matplotlib Figure of `groups` (see plot): bars in the table's row order (_family_order), flagged cells
    hatched (HATCHES). Each bar container's label is '<model> (ours, <scale>)'."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    published, _ = published_models()
    ladder, _ = published_ladder()
    panels = [(scale, lad) for scale in runs_lib.SCALES for lad in (False, True)
              if any(k[0] == scale and (k[1] == LADDER_FAMILY) == lad for k in groups)]
    if not panels:
        raise ValueError(f"{runs_dir} holds no run directories")
    fig, axes = plt.subplots(len(panels), 1, figsize=(11, 3.6 * len(panels)), squeeze=False)
    for ax, (scale, lad) in zip(axes[:, 0], panels):
        keys = [k for k in _family_order(groups) if k[0] == scale and (k[1] == LADDER_FAMILY) == lad]
        tasks = [t for t in TASKS if any(t in groups[k] for k in keys)]  # the tasks this panel's suite has
        width = 0.8 / len(keys)
        used_flags = set()
        for i, key in enumerate(keys):
            cells = groups[key]
            xs = np.arange(len(tasks)) + (i - (len(keys) - 1) / 2) * width
            means = [cells[t].mean if t in cells and cells[t].mean is not None else np.nan for t in tasks]
            stds = [cells[t].std if t in cells and cells[t].std is not None else 0.0 for t in tasks]
            bars = ax.bar(xs, means, width * 0.9, yerr=stds, capsize=2, label=f"{_model(key)} (ours, {scale})")
            for bar, t in zip(bars.patches, tasks):
                flags = cell_flags(cells[t]) if t in cells else []
                if flags:
                    bar.set_hatch("".join(HATCHES[f] for f in flags))
                    bar.set_edgecolor("black")
                    used_flags.update(flags)
            pub = ladder.get(key[2]) if lad else published.get(key[1])
            for x, t, m, sd in zip(xs, tasks, means, stds):
                status = cells[t].status() if t in cells else "missing"
                text = f"{m:.1f}" if not np.isnan(m) else status
                ax.text(x, (0 if np.isnan(m) else m + sd) + 1.5, text, ha="center", fontsize=6, va="bottom")
                p = pub[t] if pub else None
                if p is not None and p.value is not None and p.comparable:
                    ax.plot([x - width * 0.45, x + width * 0.45], [p.value, p.value], color="black", lw=2)
                    if p.fail:
                        ax.text(x, p.value + 1, "F", ha="center", fontsize=7)
        ax.plot([], [], color="black", lw=2, label="published (full scale)")
        handles, _ = ax.get_legend_handles_labels()
        handles += [Patch(facecolor="white", edgecolor="black", hatch=HATCHES[f], label=f)
                    for f in HATCHES if f in used_flags]
        ax.legend(handles=handles, fontsize=7, ncol=2, loc="upper left")
        ax.set_xticks(np.arange(len(tasks)), [TASK_TITLES[t] for t in tasks])
        ax.set_ylabel("test accuracy (%)")
        ax.set_ylim(0, 100)
        ax.set_title(SCALE_TITLES[scale].split(" -- ")[0] + (" -- LRU ablation ladder" if lad else ""), fontsize=9)
    fig.tight_layout()
    return fig


def plot(runs_dir, out_path, groups: dict | None = None) -> Path:
    """A PNG per runs directory: accuracy per task per model (bars labelled with the mean, seed std as error bars;
    FAIL / missing / failed / unreadable written where there is no bar; cells at chance, with mixed configs or
    repeated seeds hatched, see HATCHES), one panel per scale (and one for the ladder) over the tasks that panel's
    runs cover, in the table's row order, published full-scale values marked with black ticks (FAIL at 50, 'F')."""
    import matplotlib.pyplot as plt

    fig = figure(collect(runs_dir) if groups is None else groups, runs_dir)
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_name(out_path.stem + ".tmp" + out_path.suffix)
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    os.replace(tmp, out_path)
    return out_path


def main(argv=None) -> int:
    """0: done; 1: the table was printed but some run directories are unreadable (named in its warnings);
    2: no table (no runs directory, no runs, a bad option)."""
    parser = argparse.ArgumentParser(prog="python -m experiments.table", description=__doc__.split("\n")[0])
    parser.add_argument("runs_dir", help="a runs directory (e.g. runs/mini, made by experiments.reproduce)")
    parser.add_argument("--format", choices=("md", "latex", "csv"), default="md")
    parser.add_argument("--plot", metavar="OUT.png", help="also write the figure there")
    args = parser.parse_args(argv)
    try:
        groups = collect(args.runs_dir)
        text = render_groups(groups, args.format, args.runs_dir)
        figure_path = plot(args.runs_dir, args.plot, groups) if args.plot else None
    except (FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except OSError as e:  # --plot into a folder that cannot be made or written (a file on the path, permissions)
        print(f"error: --plot {args.plot}: cannot write the figure there ({e.strerror}); give another path",
              file=sys.stderr)
        return 2
    unreadable = [r.path for cells in groups.values() for c in cells.values() for r in c.unreadable]
    try:
        print(text)
        if figure_path:
            print(f"figure: {figure_path}")
        sys.stdout.flush()
    except BrokenPipeError:  # `table RUNS | head`: the reader has gone; stop quietly (Python docs, signal module)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # so the exit flush cannot raise again
        return 1 if unreadable else 0
    if unreadable:
        print(f"error: {len(unreadable)} run director{'y is' if len(unreadable) == 1 else 'ies are'} unreadable "
              f"(shown as such in the table; see its warnings): {', '.join(map(str, unreadable))}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
