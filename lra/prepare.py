"""Prepare a task into the cached format: ``python -m lra.prepare <task> ...``.

  python -m lra.prepare listops --generate [--size small|full] [--seed S] [--data-dir OUT] [--append-eos]
  python -m lra.prepare listops --release-dir DIR [--data-dir OUT] [--append-eos]
  python -m lra.prepare text [--encoding bytes|chars] [--max-len L] [--val-split test|train_holdout] ...
  python -m lra.prepare retrieval --release-dir DIR [--encoding bytes|chars] [--max-len L] [--malformed skip] ...
  python -m lra.prepare image [--mode grey_tokens|grey_real|colour_real] [--tfds-data-dir DIR]
  python -m lra.prepare pathfinder --generate [--size tiny|small|full] [--resolution 32|64|128|256] ...
  python -m lra.prepare pathfinder --release-dir DIR [--resolution R] [--difficulty D] [--encoding real|tokens]
  python -m lra.prepare pathx --generate [--size ...] | --release-dir DIR   (Pathfinder 128, its own task)
  python -m lra.prepare <task> --help                  every flag of a task
  python -m lra.prepare verify FOLDER                  full check (sha256 of every file) of a prepared folder
  python -m lra.prepare verify <task> <task options>   the same, for the folder those options name

The dataset lands in <data dir>/<name>, where the data dir is --data-dir, else $LRA_DATA_DIR, else
$XDG_CACHE_HOME/lra (default ~/.cache/lra), and the name encodes source and options. Preparation is
atomic and idempotent (a second run says it is already prepared, unless --force, or unless a source file's
sha256 no longer matches the manifest: then it is an error giving the --force command). The name does not encode
where the input came from: a folder prepared from another --release-dir (or --tfds-data-dir) than the one given,
as its manifest records, is an error (exit 2) that names both and gives the --force command rebuilding it from
the new one, or says to use another --data-dir to keep both; it is never reported as prepared. Bad or missing
data prints ``error: <message>`` (no traceback) and exits with status 2. ``verify`` prints ``OK <folder>`` and
exits 0, or lists the problems and the rebuild command and exits 1.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from lra import cache
from lra.build import corruption_message, prepare, resolve_data_dir
from lra.dataset import rebuild_command
from lra.errors import DataError
from lra.tasks import TASKS


def summary_lines(manifest: dict[str, Any]) -> list[str]:
    """Human-readable shapes and label distribution of a prepared dataset."""
    record = manifest["input"]
    if record["kind"] == "tokens":
        what = f"tokens, vocab_size {manifest['vocab_size']}"
    else:
        what = f"real inputs, d_input {record['d_input']} (stored uint8, mean {record['mean']}, std {record['std']})"
    lines = [f"{manifest['name']}: {what}, n_classes {manifest['n_classes']}, max_len {manifest['max_len']}"]
    for split, s in manifest["splits"].items():
        counts = s["label_counts"]
        second = (f", document 2 length {s['length2_min']}-{s['length2_max']} (mean {s['length2_mean']})"
                  if "length2_min" in s else "")
        lines.append(f"  {split}: {s['n']} examples, length {s['length_min']}-{s['length_max']} "
                     f"(mean {s['length_mean']}){second}, label counts {counts}, "
                     f"most frequent {max(counts) / s['n']:.1%}")
    return lines


def build_parser() -> argparse.ArgumentParser:
    """One sub-command per task (each task adds its own flags), and `verify`."""
    parser = argparse.ArgumentParser(prog="python -m lra.prepare", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="task", required=True, metavar="task")
    for name, module in TASKS.items():
        task_parser = sub.add_parser(name, help=(module.__doc__ or "").splitlines()[0])
        module.add_arguments(task_parser)
        task_parser.add_argument("--data-dir", help="root of the cache (default $LRA_DATA_DIR or ~/.cache/lra)")
        task_parser.add_argument("--force", action="store_true", help="rebuild even if already prepared")
    verify = sub.add_parser("verify", help="check every file of a prepared dataset against its manifest (sha256)",
                            description="verify FOLDER, or verify <task> <the task's prepare options>")
    verify.add_argument("target", nargs=argparse.REMAINDER, help="FOLDER, or a task name and its options")
    return parser


def verify_folder(target: list[str], parser: argparse.ArgumentParser) -> Path:
    """The folder that `verify` checks: a path, or the folder that `<task> <options>` prepare into."""
    if not target:
        parser.error("verify needs a FOLDER or a task and its options")
    if target[0] in TASKS:
        args = parser.parse_args(target)
        options = TASKS[args.task].options_from_args(args)
        return resolve_data_dir(args.data_dir) / TASKS[args.task].dataset_name(options)
    if len(target) > 1:
        parser.error(f"verify takes one FOLDER, or a task ({', '.join(TASKS)}) and its options; got {target}")
    return Path(target[0])


def verify(folder: Path) -> int:
    """Full check of a prepared folder: prints OK (status 0) or the problems and the rebuild command (status 1)."""
    if folder.exists() and not folder.is_dir():
        raise DataError(f"{folder} is a file, not a prepared dataset folder; give the folder that holds "
                        f"{cache.MANIFEST} (or verify <task> <options>)")
    if not folder.is_dir():
        raise DataError(f"{folder} is not a prepared dataset folder (it does not exist)")
    if not (folder / cache.MANIFEST).exists():
        raise DataError(f"{folder} is not a prepared dataset: it has no {cache.MANIFEST}. Give a folder that "
                        "`python -m lra.prepare <task> ...` made (it prints the folder), or prepare one with it")
    manifest, problems = cache.verify(folder, checksums=True)
    if not problems:
        splits, problems = cache.load_arrays(folder, manifest)
    if problems:
        print(corruption_message(folder, problems, rebuild_command(folder, manifest)), file=sys.stderr)
        return 1
    print(f"OK {folder}: {len(manifest['files'])} array files match their sizes, shapes, dtypes and sha256")
    return 0


def main(argv: list[str] | None = None) -> int:
    """CLI entry point; returns the exit status (2 for a DataError, printed without a traceback)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.task == "verify":
            return verify(verify_folder(args.target, parser))
        options = TASKS[args.task].options_from_args(args)
        target = prepare(args.task, options, args.data_dir, force=args.force)
        manifest, why = cache.read_manifest(target)
        if manifest is None:
            raise DataError(why)
        print("\n".join(summary_lines(manifest)))
    except DataError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        # build.prepare removed its temporary folder on the way out; a prepared dataset is never half-written.
        print("error: interrupted; nothing was written (an earlier prepared copy, if any, is unchanged). Rerun the "
              "same command to prepare it.", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
