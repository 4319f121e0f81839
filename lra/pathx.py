"""Path-X (LRA): Pathfinder at 128 x 128 (sequences of 16,384 pixels) as its own task.

The same reader, generator and options as lra/pathfinder.py, without a resolution option (always 128).
Preparation streams (at most pathfinder.READ_CHUNK = 1024 decoded images, 16 MiB, in memory).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from lra import pathfinder

N_CLASSES = pathfinder.N_CLASSES
SPLITS = pathfinder.SPLITS
RESOLUTION = 128
OPTION_DEFAULTS = {k: v for k, v in pathfinder.OPTION_DEFAULTS.items() if k != "resolution"}


def make_options(**options) -> dict[str, Any]:
    """Validated options from exactly the keys of OPTION_DEFAULTS (experiments/configs/base.py DATA["pathx"])."""
    return pathfinder.resolve_options("pathx", options, OPTION_DEFAULTS)


def dataset_name(options: dict[str, Any]) -> str:
    return pathfinder.dataset_name(options, prefix="pathx")


def command_args(options: dict[str, Any]) -> list[str]:
    return pathfinder.command_args(options, with_resolution=False)


def can_prepare(options: dict[str, Any]) -> str | None:
    return pathfinder.can_prepare(options)


def build(options: dict[str, Any], out_dir: Path, log=print) -> dict[str, Any]:
    return pathfinder.build(options, out_dir, log)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    pathfinder.add_arguments(parser, with_resolution=False)


def options_from_args(args: argparse.Namespace) -> dict[str, Any]:
    common = dict(difficulty=args.difficulty, encoding=args.encoding, seed=args.seed)
    if args.generate:
        return make_options(source="generated", size=args.size, **common)
    return make_options(source="release", release_dir=args.release_dir, **common)
