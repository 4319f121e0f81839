"""The cached on-disk format shared by every task: one .npy per split and array, plus manifest.json.

A prepared dataset folder holds ``<split>.inputs.npy`` (int32, (n, max_len), right-padded with 0),
``<split>.lengths.npy`` (int32, (n,)), ``<split>.labels.npy`` (int32, (n,)) and ``manifest.json``,
written last, which records shapes, dtypes, byte sizes and sha256 of every array file. A folder is
trusted only if all of that matches; anything else is reported as corrupted.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
ARRAY_KEYS = ("inputs", "lengths", "labels")
PAD_ID = 0


def array_file(split: str, key: str) -> str:
    """File name of one array of one split."""
    return f"{split}.{key}.npy"


def sha256(path: str | os.PathLike) -> str:
    """Hex sha256 of a file, read in chunks (arrays can be GBs)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            digest.update(chunk)
    return digest.hexdigest()


def pad_sequences(sequences: dict[str, list[np.ndarray]], labels: dict[str, np.ndarray], max_len: int | None = None):
    """Right-pad every split to one common max_len (so a model compiles once for all splits).

    max_len: the task's fixed length (e.g. a generator's bound), else the longest sequence.
    Returns ({split: {'inputs', 'lengths', 'labels'}}, max_len).
    """
    longest = max(len(s) for seqs in sequences.values() for s in seqs)
    if max_len is None:
        max_len = longest
    elif longest > max_len:
        raise ValueError(f"a sequence of length {longest} does not fit max_len {max_len}")
    splits = {}
    for split, seqs in sequences.items():
        inputs = np.full((len(seqs), max_len), PAD_ID, dtype=np.int32)
        lengths = np.fromiter((len(s) for s in seqs), dtype=np.int32, count=len(seqs))
        for row, seq in zip(inputs, seqs):
            row[: len(seq)] = seq
        splits[split] = {"inputs": inputs, "lengths": lengths, "labels": np.asarray(labels[split], np.int32)}
    return splits, max_len


def split_summary(arrays: dict[str, np.ndarray], n_classes: int) -> dict[str, Any]:
    """Size, label counts and sequence-length statistics of one split (for the manifest)."""
    lengths = arrays["lengths"]
    return {
        "n": int(len(lengths)),
        "label_counts": np.bincount(arrays["labels"], minlength=n_classes).tolist(),
        "length_min": int(lengths.min()),
        "length_max": int(lengths.max()),
        "length_mean": round(float(lengths.mean()), 2),
    }


def write_dataset(out_dir: Path, splits: dict[str, dict[str, np.ndarray]], manifest: dict[str, Any]) -> dict:
    """Write the arrays, then the manifest (last, so a folder without one is known incomplete)."""
    files = {}
    for split, arrays in splits.items():
        for key in ARRAY_KEYS:
            name = array_file(split, key)
            np.save(out_dir / name, arrays[key], allow_pickle=False)
            files[name] = {"sha256": sha256(out_dir / name), "bytes": (out_dir / name).stat().st_size,
                           "shape": list(arrays[key].shape), "dtype": str(arrays[key].dtype)}
    manifest = {**manifest, "format_version": FORMAT_VERSION, "files": files}
    with open(out_dir / MANIFEST, "w", encoding="utf-8") as f:
        json.dump(manifest, f, indent=1)
        f.write("\n")
    return manifest


def read_manifest(folder: Path) -> tuple[dict[str, Any] | None, str | None]:
    """(manifest, None), or (None, why it cannot be used)."""
    path = folder / MANIFEST
    try:
        with open(path, encoding="utf-8") as f:
            manifest = json.load(f)
    except FileNotFoundError:
        return None, f"{path} is missing (preparation did not finish)"
    except (OSError, ValueError) as e:
        return None, f"{path} is unreadable ({e})"
    if not isinstance(manifest, dict) or manifest.get("format_version") != FORMAT_VERSION:
        return None, f"{path}: format_version is not {FORMAT_VERSION}"
    return manifest, None


def check_files(folder: Path, manifest: dict[str, Any]) -> list[str]:
    """Problems with the array files (missing, truncated, checksum mismatch); [] if all good."""
    problems = []
    for name, meta in manifest["files"].items():
        path = folder / name
        if not path.is_file():
            problems.append(f"{path} is missing")
        elif path.stat().st_size != meta["bytes"]:
            problems.append(f"{path} has {path.stat().st_size} bytes, expected {meta['bytes']} (truncated?)")
        elif sha256(path) != meta["sha256"]:
            problems.append(f"{path} fails its sha256 checksum")
    return problems


def load_arrays(folder: Path, manifest: dict[str, Any]) -> tuple[dict[str, dict[str, np.ndarray]], list[str]]:
    """Arrays of every split, and problems found while loading (shape or dtype not as recorded)."""
    splits: dict[str, dict[str, np.ndarray]] = {}
    problems = []
    for name, meta in manifest["files"].items():
        split, key, _ = name.split(".")
        try:
            array = np.load(folder / name, allow_pickle=False)
        except (OSError, ValueError) as e:
            problems.append(f"{folder / name} cannot be read as an array ({e})")
            continue
        if list(array.shape) != meta["shape"] or str(array.dtype) != meta["dtype"]:
            problems.append(f"{folder / name} has shape {array.shape} {array.dtype}, "
                            f"expected {tuple(meta['shape'])} {meta['dtype']}")
        splits.setdefault(split, {})[key] = array
    return splits, problems


def verify(folder: Path) -> tuple[dict[str, Any] | None, list[str]]:
    """(manifest, problems) of a prepared folder; problems == [] means it can be trusted."""
    manifest, why = read_manifest(folder)
    if manifest is None:
        return None, [why]
    return manifest, check_files(folder, manifest)
