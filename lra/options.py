"""Checks shared by the tasks' ``make_options``: each task validates its own keyword options.

A task declares its options as a dict of defaults; ``resolve`` rejects any other key with a DataError that names it
and lists the valid ones (so a typo in a config's ``data`` section fails at start-up, not silently).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from lra.errors import DataError


def resolve(task: str, given: dict[str, Any], defaults: dict[str, Any]) -> dict[str, Any]:
    """defaults updated with given; DataError naming unknown keys and the valid ones."""
    unknown = [key for key in given if key not in defaults]
    if unknown:
        raise DataError(f"unknown {task} option(s) {', '.join(map(repr, unknown))}; "
                        f"valid options: {', '.join(defaults)}", option=unknown[0])
    return {**defaults, **given}


def choice(task: str, name: str, value: Any, choices: Iterable[Any]) -> Any:
    """value if it is one of choices, else DataError naming the option and the choices."""
    choices = tuple(choices)
    if value not in choices:
        raise DataError(f"unknown {task} {name} {value!r}; choose one of {', '.join(map(repr, choices))}",
                        option=name)
    return value


def integer(task: str, name: str, value: Any, minimum: int = 0) -> int:
    """value as int if it is an integer >= minimum (bools rejected), else DataError."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        bound = "a non-negative integer" if minimum == 0 else f"an integer >= {minimum}"
        raise DataError(f"{task} option {name} must be {bound}, got {value!r}", option=name)
    return int(value)


def flag(task: str, name: str, value: Any) -> bool:
    """value if it is a bool (0/1 accepted), else DataError."""
    if isinstance(value, (bool, np.bool_)) or value in (0, 1):
        return bool(value)
    raise DataError(f"{task} option {name} must be True or False, got {value!r}", option=name)


def folder(value: str | os.PathLike | None) -> str | None:
    """An absolute path string (or None) for the manifest."""
    return None if value is None else str(Path(value).expanduser().resolve())


def release_missing(what: str, release_dir: str | os.PathLike | None, find, where: str) -> str | None:
    """None if `find(release_dir)` locates the LRA release files of a task, else why not: the reason shown above
    the prepare command (`what`: the data's name, e.g. "ListOps"; `where`: the folder --release-dir should name)."""
    if release_dir is None:
        return (f"the {what} release data is not prepared; download lra_release.gz, unpack it, and run the command "
                f"below with --release-dir pointing at {where}")
    try:
        find(release_dir)
    except DataError as e:
        return str(e)
    return None


def find_release_files(release_dir: str | os.PathLike, subdirs: Iterable[str],
                       files: dict[str, str]) -> dict[str, Path]:
    """{split: resolved path} of `files` ({split: file name}) in the first folder release_dir/<subdir> (subdirs in
    order) that holds all of them; DataError naming the files and the folders looked in."""
    root = Path(release_dir)
    for sub in subdirs:
        paths = {split: root / sub / name for split, name in files.items()}
        if all(p.is_file() for p in paths.values()):
            return {split: p.resolve() for split, p in paths.items()}
    raise DataError(f"{root}: no {', '.join(files.values())} there (looked in {', '.join(subdirs)})")
