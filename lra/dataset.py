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
from lra.build import corruption_message, prepare, prepare_command, resolve_data_dir, task_module


@dataclasses.dataclass(frozen=True, eq=False)
class Dataset:
    """A prepared dataset in memory.

    splits: {'train'|'val'|'test': {'inputs': int32 (n, max_len) right-padded with 0,
                                    'lengths': int32 (n,), 'labels': int32 (n,)}}
    manifest: the folder's manifest.json (options, vocabulary, label counts, checksums, ...).
    """

    splits: dict[str, dict[str, np.ndarray]]
    manifest: dict[str, Any]
    path: Path

    @property
    def vocab_size(self) -> int:
        return int(self.manifest["vocab_size"])

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
    """Load a prepared folder after checking it against its manifest (sizes, sha256, shapes).

    A corrupted folder raises DataError listing the problems and the command that rebuilds it.
    """
    folder = Path(folder)
    manifest, problems = cache.verify(folder)
    if manifest is not None and rebuild is None:
        rebuild = prepare_command(manifest["task"], manifest["prepare_args"], folder.parent, force=True)
    if not problems:
        splits, problems = cache.load_arrays(folder, manifest)
    if problems:
        rebuild = rebuild or "the `python -m lra.prepare ...` command that made it, with --force"
        raise DataError(corruption_message(folder, problems, rebuild))
    return Dataset(splits=splits, manifest=manifest, path=folder)


def get_dataset(task: str = "listops", *, source: str = "generated", size: str = "small", seed: int = 0,
                release_dir: str | os.PathLike | None = None, append_eos: bool = False,
                data_dir: str | os.PathLike | None = None) -> Dataset:
    """The dataset for these options, preparing it first when that needs no outside data.

    Generated variants (and release data when release_dir holds the files) are prepared on first
    use; otherwise a missing dataset raises DataError with the exact prepare command to run.
    """
    module = task_module(task)
    options = module.make_options(source=source, size=size, seed=seed, release_dir=release_dir,
                                  append_eos=append_eos)
    root = resolve_data_dir(data_dir)
    folder = root / module.dataset_name(options)
    if not folder.exists():
        why = module.can_prepare(options)
        if why is not None:
            command = prepare_command(task, module.command_args(options), root)
            raise DataError(f"{folder} does not exist: {why}\nprepare it with:\n  {command}")
        prepare(task, options, root, log=lambda message: print(f"lra: {message}", file=sys.stderr))
    return load_dataset(folder, rebuild=prepare_command(task, module.command_args(options), root, force=True))
