"""Preparation as a library (the CLI is lra/prepare.py): build a task into the cached format.

The dataset lands in <data dir>/<name>, where the data dir is --data-dir, else $LRA_DATA_DIR, else
$XDG_CACHE_HOME/lra (default ~/.cache/lra), and the name encodes source and options. Preparation is
atomic (built in a temporary folder beside the target, then renamed into place) and idempotent
(a second run says it is already prepared, unless --force).

The name encodes what changes the arrays, not where the input came from (a release folder, a tfds data dir): the
manifest records that in its options. A prepared folder whose recorded source differs from the one asked for
(`source_mismatch`) is an error, not "already prepared" and not a silent rebuild: the message names both and
gives the --force command that rebuilds it from the new source (a rebuild would replace data that existing runs
recorded, so it is the user's call), or says to use another data dir to keep both. The same holds for a source
file whose content changed since preparation (its sha256 differs from the one the manifest recorded): a second
prepare reports it with the --force command instead of "already prepared".
"""

from __future__ import annotations

import os
import secrets
import shlex
import shutil
import time
from pathlib import Path
from typing import Any, Callable

from lra import cache
from lra.errors import DataError
from lra.tasks import TASKS


def default_data_dir() -> Path:
    """$LRA_DATA_DIR, else the user's cache directory ($XDG_CACHE_HOME or ~/.cache) / lra."""
    if os.environ.get("LRA_DATA_DIR"):
        return Path(os.environ["LRA_DATA_DIR"]).expanduser().resolve()
    cache_home = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return (Path(cache_home) / "lra").expanduser().resolve()


def resolve_data_dir(data_dir: str | os.PathLike | None = None) -> Path:
    """The data dir to use: the argument if given, else default_data_dir().

    DataError if it (or the first of its parents that exists) is a file: the cache could never be created there.
    """
    path = Path(data_dir).expanduser().resolve() if data_dir else default_data_dir()
    existing = next((p for p in (path, *path.parents) if p.exists()), None)
    if existing is not None and not existing.is_dir():
        source = ("the data dir (--data-dir / config.data.data_dir)" if data_dir else
                  "$LRA_DATA_DIR" if os.environ.get("LRA_DATA_DIR") else "the cache dir ($XDG_CACHE_HOME/lra)")
        raise DataError(f"{source} is {path}, but {existing} is a file, not a folder; point it at a folder "
                        "(it is created if missing)")
    return path


def task_module(task: str):
    """The module of a task name (DataError naming the known tasks otherwise)."""
    if task not in TASKS:
        raise DataError(f"unknown task {task!r}; known tasks: {', '.join(TASKS)}")
    return TASKS[task]


def prepare_command(task: str, args: list[str], data_dir: Path, force: bool = False) -> str:
    """The exact shell command that (re)builds a dataset."""
    words = ["python", "-m", "lra.prepare", task, *args, "--data-dir", str(data_dir)]
    return " ".join(shlex.quote(w) for w in words) + (" --force" if force else "")


def corruption_message(folder: Path, problems: list[str], rebuild: str) -> str:
    """The error text for a cache that fails its manifest checks (or was made by an older format version)."""
    listed = "\n  ".join(problems)
    what = "is in an old cache format" if any("format version" in p for p in problems) else "is corrupted"
    return f"the cached dataset {folder} {what}:\n  {listed}\nrebuild it with:\n  {rebuild}"


def source_mismatch(folder: Path, manifest: dict[str, Any], options: dict[str, Any], rebuild: str,
                    from_config: bool = False) -> str | None:
    """Why a prepared folder does not hold the data `options` ask for: its manifest records another source (option
    "source", or a "*_dir" option: where the input was read from). None if they agree; an option asked as None
    (not given) agrees with anything. from_config: the options came from a training config (the advice names
    config keys instead of prepare's flags)."""
    recorded = manifest.get("options") or {}
    differ = [(k, recorded.get(k), v) for k, v in options.items()
              if (k == "source" or k.endswith("_dir")) and v is not None and recorded.get(k) != v]
    if not differ:
        return None
    was = ", ".join(f"{k}={old if old is not None else '(the default)'}" for k, old, _ in differ)
    asked = ", ".join(f"{k}={new}" for k, _, new in differ)
    keep = (f"or leave {' and '.join(f'config.data.{k}' for k, _, _ in differ)} unset to use the prepared data, "
            "or keep both by pointing config.data.data_dir (or $LRA_DATA_DIR) at another data dir" if from_config
            else "or keep both by preparing into another data dir (--data-dir DIR)")
    return (f"{folder} was prepared from {was}, not from {asked} (the folder name records what the arrays are, "
            f"not where they came from).\nrebuild it from {asked} (replaces it) with:\n  {rebuild}\n{keep}")


def prepare(task: str, options: dict[str, Any], data_dir: str | os.PathLike | None = None, *,
            force: bool = False, log: Callable[[str], None] = print) -> Path:
    """Build the dataset for (task, options) unless a valid one is already there; return its folder."""
    module = task_module(task)
    root = resolve_data_dir(data_dir)
    target = root / module.dataset_name(options)
    rebuild = prepare_command(task, module.command_args(options), root, force=True)
    if target.exists() and not force:
        manifest, problems = cache.verify(target)  # with checksums: an explicit prepare may take the time
        if problems:
            raise DataError(corruption_message(target, problems, rebuild))
        if mismatch := source_mismatch(target, manifest, options, rebuild):
            raise DataError(mismatch)
        if changed := cache.changed_sources(target, manifest):
            raise DataError(f"{target} was prepared from {', '.join(changed)}, which changed since (its sha256 "
                            f"differs from the one the manifest recorded).\nrebuild it from the current file"
                            f"{'s' if len(changed) > 1 else ''} (replaces it) with:\n  {rebuild}\n"
                            "or keep both by preparing into another data dir (--data-dir DIR)")
        log(f"already prepared and verified: {target} (use --force to rebuild)")
        return target
    root.mkdir(parents=True, exist_ok=True)
    _remove_abandoned(root, target.name, log)
    # A hidden, unique sibling of the target: same file system, so the final rename is atomic.
    tmp = root / f".{target.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}"
    tmp.mkdir()
    try:
        start = time.perf_counter()
        _build_into(tmp, task, module, options, log)
        _move_into_place(tmp, target, force, log)
        log(f"prepared {target} in {time.perf_counter() - start:.1f} s")
    finally:
        # Whatever went wrong, leave nothing half-written (after success tmp no longer exists).
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


def _remove_abandoned(root: Path, name: str, log) -> None:
    """Remove .<name>.tmp-PID-* / .<name>.old-PID-* folders of a prepare that was killed (SIGKILL skips its
    cleanup): those whose PID no longer runs. A live PID may be a concurrent prepare, so its folder stays."""
    for path in root.glob(f".{name}.*"):
        kind, _, rest = path.name[len(name) + 2:].partition("-")
        pid = rest.split("-", 1)[0]
        if kind in ("tmp", "old") and pid.isdigit() and not _pid_alive(int(pid)):
            shutil.rmtree(path, ignore_errors=True)
            log(f"removed {path}, left by a prepare that was killed")


def _build_into(out_dir: Path, task: str, module, options: dict[str, Any], log) -> dict[str, Any]:
    """Build the task's data, pad it (or take its arrays), and write arrays + manifest into out_dir."""
    built = module.build(options, out_dir, log)
    vocabulary = None if built["vocabulary"] is None else [str(t) for t in built["vocabulary"]]
    vocab_size = None if vocabulary is None else len(vocabulary)
    record = cache.check_input_record(built["input"], vocabulary)
    if "arrays" in built:
        splits = built["arrays"]
    else:
        splits, _ = cache.pad_sequences(built["sequences"], built["labels"], built.get("max_len"),
                                        dtype=cache.token_dtype(vocab_size))
    max_len = cache.check_arrays(splits, record, vocab_size)
    info = dict(built["info"])
    sources = info.pop("source_files", {})
    manifest = {
        "task": task,
        "name": module.dataset_name(options),
        "options": options,
        "prepare_args": module.command_args(options),
        "input": record,
        "vocabulary": vocabulary,
        "vocab_size": vocab_size,
        "n_classes": built["n_classes"],
        "max_len": max_len,
        "splits": {split: cache.split_summary(arrays, built["n_classes"]) for split, arrays in splits.items()},
        "sources": {split: _source_record(Path(p), out_dir) for split, p in sources.items()},
        "task_info": info,
    }
    return cache.write_dataset(out_dir, splits, manifest)


def _source_record(path: Path, out_dir: Path) -> dict[str, str]:
    """Provenance of an input file: its path (relative if it lives in the dataset) and sha256."""
    shown = path.relative_to(out_dir) if path.is_relative_to(out_dir) else path
    return {"path": str(shown), "sha256": cache.sha256(path)}


def _move_into_place(tmp: Path, target: Path, force: bool, log) -> None:
    """Atomically publish tmp as target (the old target, if forced, is removed only afterwards)."""
    old = None
    if target.exists() and force:
        old = target.parent / f".{target.name}.old-{os.getpid()}-{secrets.token_hex(4)}"
        os.rename(target, old)
    try:
        os.rename(tmp, target)
    except OSError:
        if (target / cache.MANIFEST).exists():
            # Another process published the same dataset first; theirs is as good as ours.
            log(f"{target} was prepared concurrently by another process; using it")
        else:
            if old is not None:
                os.rename(old, target)  # put the previous dataset back rather than lose it
            raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
