"""ListOps: evaluator, release-file reader, seeded offline generator, and the task plug-in.

An expression is a prefix tree of operators over digits, e.g. ``[MAX 2 9 [MIN 4 7 ] ]`` = 9.
Release files (``listops-1000/basic_{train,val,test}.tsv``) write every (left, right) pair of the
original binary tree in parentheses; the standard preprocessing, used here, deletes ``(`` and ``)``
and splits on whitespace. The generator writes the same format, so one reader serves both.

The task plug-in (used by ``lra.prepare`` and ``lra.get_dataset`` through ``lra.tasks.TASKS``) is
the block of functions at the end of this file.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
from pathlib import Path
from typing import Any

import numpy as np

from lra import options as opts
from lra.errors import DataError

# ---------------------------------------------------------------------------------------------
# Vocabulary
# ---------------------------------------------------------------------------------------------

DIGITS = ("0", "1", "2", "3", "4", "5", "6", "7", "8", "9")
OPERATORS = ("[MIN", "[MAX", "[MED", "[SM")
CLOSE = "]"
# LRA's own input pipeline renamed "]" to "X"; both spellings read as the same token.
CLOSE_ALIASES = ("]", "X")
PAD, EOS = "<pad>", "<eos>"

# Written out as a literal so token ids never depend on set or dict iteration order.
# pad=0 so right-padding with zeros is padding; no <unk>: an unknown token is a DataError.
# <eos> is always in the vocabulary (fixed vocab_size) and used only with append_eos=True,
# the S4/S5 convention of ending every sequence with an end token.
VOCAB = (
    PAD,
    "0", "1", "2", "3", "4", "5", "6", "7", "8", "9",
    "[MIN", "[MAX", "[MED", "[SM",
    "]",
    EOS,
)
TOKEN_IDS = {token: i for i, token in enumerate(VOCAB)}
TOKEN_IDS["X"] = TOKEN_IDS[CLOSE]
PAD_ID, EOS_ID = TOKEN_IDS[PAD], TOKEN_IDS[EOS]
N_CLASSES = 10
SPLITS = ("train", "val", "test")
HEADER = ("Source", "Target")


def strip_parentheses(expression: str) -> list[str]:
    """Tokens of an expression with the release format's parentheses deleted."""
    return expression.replace("(", " ").replace(")", " ").split()


# ---------------------------------------------------------------------------------------------
# Evaluator (the reference for labels; independent of the generator's vectorised evaluation)
# ---------------------------------------------------------------------------------------------


def apply_operator(operator: str, args: list[int]) -> int:
    """Value of one operator node; MED is int(np.median), i.e. floor of the middle pair's mean."""
    if operator == "[MIN":
        return min(args)
    if operator == "[MAX":
        return max(args)
    if operator == "[MED":
        return int(np.median(args))
    if operator == "[SM":
        return sum(args) % 10
    raise ValueError(f"unknown operator {operator!r}")


def evaluate(expression: str) -> int:
    """Value (0-9) of a ListOps expression, with or without the release format's parentheses.

    Iterative (an explicit stack) so that depth is not limited by Python's recursion limit.
    Raises ValueError for a malformed expression.
    """
    return evaluate_tokens(strip_parentheses(expression))


def evaluate_tokens(tokens: list[str]) -> int:
    """Value of an expression already split into tokens (parentheses removed); ValueError if malformed."""
    if not tokens:
        raise ValueError("empty expression")
    frames: list[tuple[str, list[int]]] = []  # open operators and the values of their arguments
    result: int | None = None
    for token in tokens:
        if result is not None:
            raise ValueError(f"token {token!r} after the end of the expression")
        if token in OPERATORS:
            frames.append((token, []))
            continue
        if token in DIGITS:
            value = int(token)
        elif token in CLOSE_ALIASES:
            if not frames:
                raise ValueError(f"{token!r} closes no operator")
            operator, args = frames.pop()
            if not args:
                raise ValueError(f"{operator} has no arguments")
            value = apply_operator(operator, args)
        else:
            raise ValueError(f"unknown token {token!r}")
        if frames:
            frames[-1][1].append(value)
        else:
            result = value
    if frames:
        raise ValueError(f"{len(frames)} operator(s) not closed")
    assert result is not None
    return result


# ---------------------------------------------------------------------------------------------
# Release-format reader
# ---------------------------------------------------------------------------------------------


def encode(tokens: list[str], *, append_eos: bool = False) -> list[int]:
    """Token ids of whitespace tokens (KeyError for an unknown token)."""
    ids = [TOKEN_IDS[t] for t in tokens]
    if append_eos:
        ids.append(EOS_ID)
    return ids


def decode(ids) -> str:
    """Readable text of token ids, padding dropped (for debugging and notebooks)."""
    return " ".join(VOCAB[int(i)] for i in ids if int(i) != PAD_ID)


def _parse_row(fields: list[str], path: Path, line_no: int, append_eos: bool):
    """(token ids, label) of one data row; DataError naming the file and line when malformed."""
    where = f"{path}, line {line_no}"
    if len(fields) != 2:
        raise DataError(f"{where}: expected 2 tab-separated columns (Source, Target), got {len(fields)}")
    source, target = fields
    try:
        label = int(target.strip())
    except ValueError:
        raise DataError(f"{where}: target {target!r} is not an integer") from None
    if not 0 <= label < N_CLASSES:
        raise DataError(f"{where}: target {label} is outside 0-{N_CLASSES - 1}")
    tokens = strip_parentheses(source)
    if not tokens:
        raise DataError(f"{where}: empty expression")
    try:
        ids = encode(tokens, append_eos=append_eos)
    except KeyError as e:
        raise DataError(f"{where}: unknown token {e.args[0]!r}") from None
    return ids, label


def read_split(path: str | os.PathLike, *, append_eos: bool = False,
               bad_rows: list | None = None) -> tuple[list[np.ndarray], np.ndarray]:
    """Read one ``basic_<split>.tsv`` file into (token id sequences, labels int32).

    Checks the ``Source<TAB>Target`` header, the column count, that targets are integers in 0-9,
    and that every token is in VOCAB. Blank lines are skipped (a trailing one is common).
    bad_rows: if a list, every row whose expression is malformed (unbalanced brackets, an operator
    without arguments) or whose label differs from the expression's value is also checked, and
    appended as (kind, "file, line N: why") with kind "malformed" or "label"; the row is kept.
    """
    path = Path(path)
    sequences, labels = [], []
    try:
        with open(path, encoding="utf-8") as f:
            for line_no, line in enumerate(f, start=1):
                fields = line.rstrip("\r\n").split("\t")
                if line_no == 1:
                    if tuple(x.strip() for x in fields) != HEADER:
                        raise DataError(f"{path}, line 1: expected the header 'Source<TAB>Target', got {line[:60]!r}")
                    continue
                if not line.strip():
                    continue
                ids, label = _parse_row(fields, path, line_no, append_eos)
                if bad_rows is not None:
                    problem = _check_value(fields[0], label)
                    if problem:
                        bad_rows.append((problem[0], f"{path}, line {line_no}: {problem[1]}"))
                sequences.append(np.asarray(ids, dtype=np.int32))
                labels.append(label)
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    return sequences, np.asarray(labels, dtype=np.int32)


def _check_value(source: str, label: int) -> tuple[str, str] | None:
    """("malformed" | "label", why) when the expression cannot be evaluated or disagrees with its label."""
    try:
        value = evaluate(source)
    except ValueError as e:
        return "malformed", f"malformed expression ({e})"
    if value != label:
        return "label", f"label {label} but the expression's value is {value}"
    return None


def write_tsv(path: str | os.PathLike, rows: list[tuple[str, int]]) -> None:
    """Write (expression, label) rows in the release format (header, tab, one row per line)."""
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        f.write("\t".join(HEADER) + "\n")
        for text, label in rows:
            f.write(f"{text}\t{label}\n")


# ---------------------------------------------------------------------------------------------
# Generator (the LRA procedure, seeded, vectorised over a batch of trees)
# ---------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class GeneratorParams:
    """LRA generator settings; lengths count operator, digit and ']' tokens, bounds are strict."""

    max_depth: int
    max_args: int
    min_length: int  # keep a tree only if min_length < length < max_length
    max_length: int
    n_train: int
    n_val: int
    n_test: int
    trees_per_batch: int = 8192  # part of the RNG stream: changing it changes the data

    @property
    def counts(self) -> dict[str, int]:
        return {"train": self.n_train, "val": self.n_val, "test": self.n_test}


SIZES = {
    # The LRA settings.
    "full": GeneratorParams(max_depth=10, max_args=10, min_length=500, max_length=2000,
                            n_train=96_000, n_val=2_000, n_test=2_000),
    # CPU-sized: shallow trees (depth <= 6, <= 5 arguments) of 11-127 tokens, so max_len is 127
    # (128 with eos). Nesting still matters (most examples have 2-4 levels), so it is ListOps,
    # not a bag of digits, yet small models learn it well above the majority class in minutes.
    "small": GeneratorParams(max_depth=6, max_args=5, min_length=10, max_length=128,
                             n_train=20_000, n_val=1_000, n_test=1_000),
}

# Text tokens of the release format; codes index this tuple (parentheses included).
_TEXT = ("(", ")") + DIGITS + OPERATORS + (CLOSE,)
_OPEN, _SHUT, _DIGIT0, _OP0, _END = 0, 1, 2, 2 + len(DIGITS), 2 + len(DIGITS) + len(OPERATORS)
P_OPERATOR = 0.25  # LRA: a node below max_depth is a leaf if r > 0.25, r ~ U[0, 1)


@dataclasses.dataclass
class _Level:
    """All nodes at one depth of a forest; children of a node are contiguous in the next level."""

    tree: np.ndarray  # tree id of each node
    parent: np.ndarray  # index of the parent in the previous level (-1 at the root level)
    is_op: np.ndarray
    op: np.ndarray  # operator index into OPERATORS (meaningful where is_op)
    digit: np.ndarray  # leaf value (meaningful where not is_op)
    n_children: np.ndarray  # 0 for leaves

    def select(self, keep: np.ndarray, parent_index: np.ndarray | None, tree_index: np.ndarray) -> _Level:
        parent = self.parent[keep] if parent_index is None else parent_index[self.parent[keep]]
        return _Level(tree_index[self.tree[keep]], parent, self.is_op[keep], self.op[keep],
                      self.digit[keep], self.n_children[keep])


def _grow_forest(rng: np.random.Generator, n_trees: int, max_depth: int, max_args: int) -> list[_Level]:
    """Grow n_trees LRA trees breadth-first, one vectorised draw per depth.

    The node draws are independent, so growing level by level gives the same distribution over
    trees as the original depth-first recursion (which also drew each operator after its children).
    """
    levels = []
    tree, parent = np.arange(n_trees), np.full(n_trees, -1)
    depth = 1
    while tree.size:
        m = tree.size
        is_op = rng.random(m) <= P_OPERATOR if depth < max_depth else np.zeros(m, bool)
        n_children = np.where(is_op, rng.integers(2, max_args + 1, m), 0)
        op, digit = rng.integers(0, len(OPERATORS), m), rng.integers(0, 10, m)
        levels.append(_Level(tree, parent, is_op, op, digit, n_children))
        parent = np.repeat(np.arange(m), n_children)
        tree = tree[parent]
        depth += 1
    return levels


def _tree_lengths(levels: list[_Level], n_trees: int) -> np.ndarray:
    """LRA length of every tree: one token per digit, two (operator and ']') per operator."""
    total = np.zeros(n_trees, np.int64)
    for level in levels:
        total += np.bincount(level.tree, weights=1 + level.is_op, minlength=n_trees).astype(np.int64)
    return total


def _keep_trees(levels: list[_Level], keep_tree: np.ndarray) -> list[_Level]:
    """The sub-forest of the kept trees, with parent and tree indices renumbered."""
    tree_index = np.cumsum(keep_tree) - 1
    out, parent_index = [], None
    for level in levels:
        keep = keep_tree[level.tree]
        if not keep.any():
            break
        out.append(level.select(keep, parent_index, tree_index))
        parent_index = np.cumsum(keep) - 1
    return out


def _first_child(level: _Level) -> np.ndarray:
    """Index in the next level of each node's first child (children are contiguous)."""
    return np.cumsum(level.n_children) - level.n_children


def _values_and_sizes(levels: list[_Level]) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Bottom-up: value of every node, and its size in release-format text tokens.

    An operator with k children is written '(' * (k+1), op, then each child followed by ')',
    then '] )': 2k + 4 tokens of its own plus its children's.
    """
    values, sizes = [None] * len(levels), [None] * len(levels)
    for d in reversed(range(len(levels))):
        level = levels[d]
        value = level.digit.copy()
        size = np.ones(level.tree.size, np.int64)
        if d + 1 < len(levels):
            child, child_value = levels[d + 1], values[d + 1]
            size += (2 * level.n_children + 3) * level.is_op
            size += np.bincount(child.parent, weights=sizes[d + 1], minlength=level.tree.size).astype(np.int64)
            ops = np.flatnonzero(level.is_op)
            value[ops] = _operator_values(level, ops, child.parent, child_value)
        values[d], sizes[d] = value, size
    return values, sizes


def _operator_values(level: _Level, ops: np.ndarray, child_parent: np.ndarray, child_value: np.ndarray):
    """Values of the operator nodes `ops` from their children's values (grouped reductions)."""
    starts = _first_child(level)[ops]
    k = level.n_children[ops]
    lo = np.minimum.reduceat(child_value, starts)
    hi = np.maximum.reduceat(child_value, starts)
    total = np.add.reduceat(child_value, starts) % 10
    # Median: sort values within each parent's group (lexsort keeps the groups in place).
    ordered = child_value[np.lexsort((child_value, child_parent))]
    median = (ordered[starts + (k - 1) // 2] + ordered[starts + k // 2]) // 2
    return np.choose(level.op[ops], [lo, hi, median, total])


def _render(levels: list[_Level], sizes: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Text-token codes of all trees laid end to end, and each tree's start offset.

    Top-down positions: child j of an operator at p starts at p + (k+1) + 1 + sum_{i<j}(size_i + 1).
    Every position that is not written explicitly is an opening parenthesis.
    """
    root_size = sizes[0]
    pos = np.cumsum(root_size) - root_size
    buf = np.full(int(root_size.sum()), _OPEN, np.int8)
    for d, level in enumerate(levels):
        size, is_op = sizes[d], level.is_op
        buf[pos[~is_op]] = _DIGIT0 + level.digit[~is_op]
        p, s, k = pos[is_op], size[is_op], level.n_children[is_op]
        buf[p + k + 1] = _OP0 + level.op[is_op]
        buf[p + s - 2], buf[p + s - 1] = _END, _SHUT
        if d + 1 < len(levels):
            child, child_size = levels[d + 1], sizes[d + 1]
            step = np.cumsum(child_size + 1) - (child_size + 1)  # exclusive, across the level
            step -= step[_first_child(level)[child.parent]]  # ... within each parent's group
            child_pos = pos[child.parent] + level.n_children[child.parent] + 2 + step
            buf[child_pos + child_size] = _SHUT
            pos = child_pos
    return buf, np.cumsum(root_size) - root_size


def _texts(buf: np.ndarray, starts: np.ndarray) -> list[str]:
    """Release-format strings of the trees in a rendered buffer."""
    ends = np.append(starts[1:], buf.size)
    codes = buf.tolist()
    return [" ".join([_TEXT[c] for c in codes[a:b]]) for a, b in zip(starts.tolist(), ends.tolist())]


def generate_batch(rng: np.random.Generator, params: GeneratorParams) -> list[tuple[str, int]]:
    """(release-format text, value) of the kept trees among one batch of freshly grown trees."""
    levels = _grow_forest(rng, params.trees_per_batch, params.max_depth, params.max_args)
    lengths = _tree_lengths(levels, params.trees_per_batch)
    keep = (lengths > params.min_length) & (lengths < params.max_length)
    if not keep.any():
        return []
    levels = _keep_trees(levels, keep)
    values, sizes = _values_and_sizes(levels)
    buf, starts = _render(levels, sizes)
    return list(zip(_texts(buf, starts), values[0].tolist()))


def generate(params: GeneratorParams, seed: int) -> dict[str, list[tuple[str, int]]]:
    """Seeded LRA ListOps: unique expressions split train/val/test in generation order.

    Deduplication keeps the first occurrence (dict insertion order, never set order), so the
    data and the split are a pure function of (params, seed).
    """
    rng = np.random.default_rng(seed)
    need = params.n_train + params.n_val + params.n_test
    unique: dict[str, int] = {}
    while len(unique) < need:
        for text, value in generate_batch(rng, params):
            unique.setdefault(text, value)
            if len(unique) == need:
                break
    rows = list(unique.items())
    a, b = params.n_train, params.n_train + params.n_val
    return {"train": rows[:a], "val": rows[a:b], "test": rows[b:need]}


# ---------------------------------------------------------------------------------------------
# Task plug-in: how lra.prepare / lra.get_dataset build and name ListOps datasets
# ---------------------------------------------------------------------------------------------

RELEASE_FILES = {split: f"basic_{split}.tsv" for split in SPLITS}
# Where the TSVs may sit under --release-dir: the folder itself or the unpacked archive above it.
_RELEASE_SUBDIRS = (".", "listops-1000", "lra_release/listops-1000", "lra_release/lra_release/listops-1000")


OPTIONS = {"source": "generated", "size": "small", "seed": 0, "release_dir": None, "append_eos": False,
           "bad_rows": "error"}
BAD_ROWS = ("error", "warn")  # what to do with release rows that are malformed or whose label is wrong


def make_options(**given) -> dict[str, Any]:
    """Validated, JSON-ready options (what the folder name and manifest record).

    given: any of OPTIONS (source "generated" | "release", size, seed, release_dir, append_eos, bad_rows); size
    and seed matter only for generated data, release_dir and bad_rows only for release data. Unknown or invalid:
    DataError.
    bad_rows (release only): "error" refuses release files with malformed expressions or labels that differ
    from the expression's value; "warn" keeps those rows as released, prints their count, and records them
    in the manifest (task_info.bad_rows). It does not change the arrays of a clean release, so it is not
    part of the folder name.
    """
    o = opts.resolve("ListOps", given, OPTIONS)
    source = opts.choice("ListOps", "source", o["source"], ("generated", "release"))
    append_eos = opts.flag("ListOps", "append_eos", o["append_eos"])
    if source == "generated":
        size = opts.choice("ListOps", "size", o["size"], sorted(SIZES))
        seed = opts.integer("ListOps", "seed", o["seed"])
        return {"source": source, "size": size, "seed": seed, "append_eos": append_eos}
    bad_rows = opts.choice("ListOps", "bad_rows", o["bad_rows"], BAD_ROWS)
    options = {"source": source, "release_dir": opts.folder(o["release_dir"]), "append_eos": append_eos}
    return options if bad_rows == "error" else {**options, "bad_rows": bad_rows}


def dataset_name(options: dict[str, Any]) -> str:
    """Folder name: encodes everything that changes the arrays (not the release path)."""
    if options["source"] == "generated":
        name = f"listops-generated-{options['size']}-seed{options['seed']}"
    else:
        name = "listops-release"
    return name + ("-eos" if options["append_eos"] else "")


def command_args(options: dict[str, Any]) -> list[str]:
    """Arguments after `python -m lra.prepare listops` that build these options."""
    if options["source"] == "generated":
        args = ["--generate", "--size", options["size"], "--seed", str(options["seed"])]
    else:
        args = ["--release-dir", options["release_dir"] or "PATH/TO/lra_release/listops-1000"]
        if options.get("bad_rows", "error") != "error":
            args += ["--bad-rows", options["bad_rows"]]
    return args + (["--append-eos"] if options["append_eos"] else [])


def can_prepare(options: dict[str, Any]) -> str | None:
    """None if build() can run unattended, else why not (shown above the prepare command)."""
    if options["source"] == "generated":
        return None
    return opts.release_missing("ListOps", options["release_dir"], find_release_files, "listops-1000")


def find_release_files(release_dir: str | os.PathLike) -> dict[str, Path]:
    """Paths of basic_{train,val,test}.tsv under release_dir (or its listops-1000 folder)."""
    return opts.find_release_files(release_dir, _RELEASE_SUBDIRS, RELEASE_FILES)


def build(options: dict[str, Any], out_dir: Path, log=print) -> dict[str, Any]:
    """Read (or generate, then read) the TSVs; return token sequences, labels and manifest info.

    Generated TSVs are written into out_dir/source/ and kept, so the exact text is inspectable.
    """
    info: dict[str, Any] = {"tokenization": "delete '(' and ')', split on whitespace; 'X' read as ']'"}
    if options["source"] == "generated":
        params = SIZES[options["size"]]
        rows = generate(params, options["seed"])
        (out_dir / "source").mkdir()
        paths = {split: out_dir / "source" / RELEASE_FILES[split] for split in SPLITS}
        for split in SPLITS:
            write_tsv(paths[split], rows[split])
        info["generator"] = {"procedure": "LRA ListOps (seeded numpy, breadth-first)",
                             "seed": options["seed"], **dataclasses.asdict(params)}
    else:
        paths = find_release_files(options["release_dir"])
        log(f"reading {paths['train'].parent}")
    # Generated data pads to its bound (a fixed shape per size, like LRA's 2000); release data to
    # its longest sequence.
    max_len = None
    if options["source"] == "generated":
        max_len = SIZES[options["size"]].max_length - 1 + int(options["append_eos"])
    sequences, labels = {}, {}
    # Release rows are checked against their value (generated ones are correct by construction).
    bad = [] if options["source"] == "release" else None
    for split in SPLITS:
        sequences[split], labels[split] = read_split(paths[split], append_eos=options["append_eos"], bad_rows=bad)
        if not len(labels[split]):
            raise DataError(f"{paths[split]}: no examples")
    if bad:
        info["bad_rows"] = _report_bad_rows(bad, options.get("bad_rows", "error"), log)
    info["source_files"] = {split: str(p) for split, p in paths.items()}
    return {"sequences": sequences, "labels": labels, "vocabulary": list(VOCAB), "input": {"kind": "tokens"},
            "n_classes": N_CLASSES, "max_len": max_len, "info": info}


def _report_bad_rows(bad: list[tuple[str, str]], mode: str, log) -> dict[str, Any]:
    """DataError (mode "error") or a logged warning (mode "warn") counting malformed and mislabelled rows."""
    malformed = sum(kind == "malformed" for kind, _ in bad)
    summary = (f"{malformed} release row(s) with a malformed expression (e.g. unbalanced brackets) and "
               f"{len(bad) - malformed} whose label differs from the expression's value")
    examples = [where for _, where in bad[:5]]
    if mode == "error":
        raise DataError(f"{summary}:\n  " + "\n  ".join(examples)
                        + ("\n  ..." if len(bad) > 5 else "")
                        + "\nfix the files, or keep these rows as released with --bad-rows warn")
    log(f"WARNING: {summary}, kept as released (--bad-rows warn); first: {examples[0]}")
    return {"malformed": malformed, "label_mismatch": len(bad) - malformed, "examples": examples}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """ListOps flags of `python -m lra.prepare listops`."""
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--release-dir", help="folder with basic_{train,val,test}.tsv (or lra_release above it)")
    source.add_argument("--generate", action="store_true", help="generate with the LRA procedure (seeded)")
    parser.add_argument("--size", choices=sorted(SIZES), default="small", help="generated size (default small)")
    parser.add_argument("--seed", type=int, default=0, help="generator seed (default 0)")
    parser.add_argument("--append-eos", action="store_true", help="end every sequence with <eos> (S4/S5)")
    parser.add_argument("--bad-rows", choices=BAD_ROWS, default="error",
                        help="release rows with a malformed expression or a label that differs from the "
                             "expression's value: refuse the files (error, default) or keep them and warn")


def options_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """Options from parsed CLI flags."""
    if args.generate:
        return make_options(source="generated", size=args.size, seed=args.seed, append_eos=args.append_eos)
    return make_options(source="release", release_dir=args.release_dir, append_eos=args.append_eos,
                        bad_rows=args.bad_rows)
