"""Loading API for the trainer: ``lra.get_dataset(...) -> Dataset``."""

from __future__ import annotations

import dataclasses
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

from lra import cache
from lra.errors import DataError
from lra.build import (corruption_message, prepare, prepare_command, resolve_data_dir, source_mismatch,
                       task_module)


@dataclasses.dataclass(frozen=True, eq=False)
class Dataset:
    """A prepared dataset, memory-mapped from its folder.

    splits: {'train'|'val'|'test': {'inputs': (n, max_len) tokens (uint8/uint16/int32, right-padded with 0) or
                                              uint8 pixels (n, L) / (n, L, C) for real-valued inputs,
                                    'lengths': int32 (n,), 'labels': int32 (n,),
                                    two-document tasks: 'inputs2', 'lengths2' (the second document),
                                    real-valued inputs: 'input_mean', 'input_std' float32 (C,)}}
    The arrays are read-only np.memmap views of the .npy files: nothing is read until used. The batch iterator
    (lra.train_batches / eval_batches) turns them into int32 tokens or normalised float32 reals.
    manifest: the folder's manifest.json (options, input record, vocabulary, label counts, checksums, ...).
    """

    splits: dict[str, dict[str, np.ndarray]]
    manifest: dict[str, Any]
    path: Path

    @property
    def vocab_size(self) -> int | None:
        """Number of token ids (the embedding size); None for real-valued inputs."""
        return None if self.manifest["vocab_size"] is None else int(self.manifest["vocab_size"])

    @property
    def d_input(self) -> int | None:
        """Channels of real-valued inputs (the linear encoder's input size); None for tokens."""
        record = self.manifest["input"]
        return int(record["d_input"]) if record["kind"] == "real" else None

    @property
    def n_classes(self) -> int:
        return int(self.manifest["n_classes"])

    @property
    def max_len(self) -> int:
        return int(self.manifest["max_len"])

    def majority_class_accuracy(self, split: str) -> float:
        """Accuracy on `split` of always predicting the most frequent TRAIN label (ties: lowest)."""
        train_counts = np.bincount(self.splits["train"]["labels"], minlength=self.n_classes)
        return float(np.mean(self.splits[split]["labels"] == int(np.argmax(train_counts))))


def load_dataset(folder: str | os.PathLike, *, rebuild: str | None = None) -> Dataset:
    """Memory-map a prepared folder after the cheap checks against its manifest (format version, file sizes,
    shapes, dtypes; no checksums: `python -m lra.prepare verify <folder>` does those).

    A corrupted or old-format folder raises DataError listing the problems and the command that rebuilds it.
    """
    folder = Path(folder)
    manifest, problems = cache.verify(folder, checksums=False)
    if rebuild is None:
        rebuild = rebuild_command(folder, manifest)
    if not problems:
        splits, problems = cache.load_arrays(folder, manifest)
    if problems:
        raise DataError(corruption_message(folder, problems, rebuild))
    return Dataset(splits=splits, manifest=manifest, path=folder)


def rebuild_command(folder: Path, manifest: dict[str, Any] | None) -> str:
    """The prepare command that rebuilds folder, from its manifest (even an old-format one) when readable."""
    if manifest is None:
        manifest, _ = cache.read_manifest(folder, any_version=True)
    if isinstance(manifest, dict) and "task" in manifest and "prepare_args" in manifest:
        return prepare_command(manifest["task"], manifest["prepare_args"], folder.parent, force=True)
    return "the `python -m lra.prepare ...` command that made it, with --force"


def get_dataset(task: str, *, data_dir: str | os.PathLike | None = None, **options) -> Dataset:
    """The dataset of `task` with these options, preparing it first when that needs no outside data.

    options: the task's own keyword options (the keys of experiments/configs/base.py DATA[task]); an unknown or
    invalid one raises DataError naming it and the valid ones. Variants that can be built unattended (generated
    data, release files that are there, tfds data already downloaded) are prepared on first use; otherwise a
    missing dataset raises DataError with the exact prepare command to run. A generated dataset in an old cache
    format is regenerated (with a message); any other old-format or corrupted one raises DataError with the
    command that rebuilds it.
    """
    module = task_module(task)
    options = module.make_options(**options)
    root = resolve_data_dir(data_dir)
    folder = root / module.dataset_name(options)
    log = lambda message: print(f"lra: {message}", file=sys.stderr)
    if options.get("source") == "generated" and folder.exists() and cache.is_old_format(folder):
        # Generated data is a function of its options (seeded), so an old-format copy is rebuilt rather than
        # failing the run: this code cannot read it, and nothing else is lost.
        log(f"{folder} is in an old cache format; regenerating it")
        prepare(task, options, root, force=True, log=log)
    if not folder.exists():
        why = module.can_prepare(options)
        if why is not None:
            command = prepare_command(task, module.command_args(options), root)
            if options.get("source") == "release" and options.get("release_dir") is None:
                # The likely mistake is the unset option, not the cache: say that first.
                raise DataError(f"config.data.release_dir (release_dir=) is not set and {root} has no prepared "
                                f"{folder.name}: {why}\nprepare it once with:\n  {command}\nor set "
                                "--config.data.release_dir to the unpacked release (it is then prepared on first use)")
            raise DataError(f"{folder} does not exist: {why}\nprepare it with:\n  {command}")
        prepare(task, options, root, log=log)
    rebuild = prepare_command(task, module.command_args(options), root, force=True)
    dataset = load_dataset(folder, rebuild=rebuild)
    if mismatch := source_mismatch(folder, dataset.manifest, options, rebuild, from_config=True):
        raise DataError(mismatch)
    return dataset
