"""Prepare a task into the cached format: ``python -m lra.prepare <task> ...``.

  python -m lra.prepare listops --generate [--size small|full] [--seed S] [--data-dir OUT] [--append-eos]
  python -m lra.prepare listops --release-dir DIR [--data-dir OUT] [--append-eos]

The dataset lands in <data dir>/<name>, where the data dir is --data-dir, else $LRA_DATA_DIR, else
$XDG_CACHE_HOME/lra (default ~/.cache/lra), and the name encodes source and options. Preparation is
atomic and idempotent (a second run says it is already prepared, unless --force). Bad or missing
data prints ``error: <message>`` (no traceback) and exits with status 2.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from lra import cache
from lra.build import prepare
from lra.errors import DataError
from lra.tasks import TASKS


def summary_lines(manifest: dict[str, Any]) -> list[str]:
    """Human-readable shapes and label distribution of a prepared dataset."""
    lines = [f"{manifest['name']}: vocab_size {manifest['vocab_size']}, n_classes {manifest['n_classes']}, "
             f"max_len {manifest['max_len']}"]
    for split, s in manifest["splits"].items():
        counts = s["label_counts"]
        lines.append(f"  {split}: {s['n']} examples, length {s['length_min']}-{s['length_max']} "
                     f"(mean {s['length_mean']}), label counts {counts}, "
                     f"most frequent {max(counts) / s['n']:.1%}")
    return lines


def build_parser() -> argparse.ArgumentParser:
    """One sub-command per task; each task adds its own flags."""
    parser = argparse.ArgumentParser(prog="python -m lra.prepare", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="task", required=True, metavar="task")
    for name, module in TASKS.items():
        task_parser = sub.add_parser(name, help=(module.__doc__ or "").splitlines()[0])
        module.add_arguments(task_parser)
        task_parser.add_argument("--data-dir", help="root of the cache (default $LRA_DATA_DIR or ~/.cache/lra)")
        task_parser.add_argument("--force", action="store_true", help="rebuild even if already prepared")
    return parser


def main(argv: list[str] | None = None) -> int:
    """CLI entry point; returns the exit status (2 for a DataError, printed without a traceback)."""
    args = build_parser().parse_args(argv)
    try:
        options = TASKS[args.task].options_from_args(args)
        target = prepare(args.task, options, args.data_dir, force=args.force)
        manifest, why = cache.read_manifest(target)
        if manifest is None:
            raise DataError(why)
        print("\n".join(summary_lines(manifest)))
    except DataError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
