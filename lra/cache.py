"""The cached on-disk format shared by every task: one .npy per split and array, plus manifest.json.

A prepared dataset folder holds, per split, ``<split>.inputs.npy`` (right-padded with 0), ``<split>.lengths.npy``
(int32, (n,)), ``<split>.labels.npy`` (int32, (n,)), for two-document tasks (Retrieval) also ``<split>.inputs2.npy``
and ``<split>.lengths2.npy``, and ``manifest.json``, written last, which records the shape, dtype, byte size and
sha256 of every array file and the "input" record:

- tokens: inputs (n, L) in the smallest dtype that holds the vocabulary (uint8 if vocab_size <= 256, else uint16,
  else int32); the batch iterator widens them to int32.
- real: inputs stored as uint8 pixels, (n, L) for one channel or (n, L, C); the iterator normalises them to float32
  (x - mean) / std with the per-channel mean/std of the record.

Loading memory-maps the arrays (np.load(mmap_mode="r")) and checks only sizes, shapes and dtypes against the
manifest (cheap at any size); ``verify`` (``python -m lra.prepare verify``) also checks every sha256.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np


# 2: natural dtypes (uint8 tokens/pixels), the "input" record, two-document arrays, memory-mapped loading.
FORMAT_VERSION = 2
MANIFEST = "manifest.json"
ARRAY_KEYS = ("inputs", "lengths", "labels")
TWO_DOCUMENT_KEYS = ("inputs2", "lengths2")
PAD_ID = 0
REAL_STORAGE_DTYPE = np.dtype(np.uint8)


def array_file(split: str, key: str) -> str:
    """File name of one array of one split."""
    return f"{split}.{key}.npy"


def token_dtype(vocab_size: int) -> np.dtype:
    """The smallest dtype that holds token ids 0 .. vocab_size - 1."""
    if vocab_size <= 1 << 8:
        return np.dtype(np.uint8)
    if vocab_size <= 1 << 16:
        return np.dtype(np.uint16)
    return np.dtype(np.int32)


def sha256(path: str | os.PathLike) -> str:
    """Hex sha256 of a file, read in chunks (arrays can be GBs)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            digest.update(chunk)
    return digest.hexdigest()


def open_array(out_dir: Path, split: str, key: str, shape: tuple[int, ...], dtype) -> np.memmap:
    """A new, zero-filled .npy file in out_dir, memory-mapped for writing (streaming builds fill it in place and
    return it from build(); write_dataset then keeps the file instead of rewriting it)."""
    return np.lib.format.open_memmap(Path(out_dir) / array_file(split, key), mode="w+", dtype=dtype,
                                     shape=tuple(shape))


def pad_sequences(sequences: dict[str, list[np.ndarray]], labels: dict[str, np.ndarray], max_len: int | None = None,
                  dtype=np.int32):
    """Right-pad every split to one common max_len (so a model compiles once for all splits).

    max_len: the task's fixed length (e.g. a generator's bound), else the longest sequence.
    dtype: of the padded inputs (token_dtype(vocab_size)).
    Returns ({split: {'inputs', 'lengths', 'labels'}}, max_len).
    """
    longest = max(len(s) for seqs in sequences.values() for s in seqs)
    if max_len is None:
        max_len = longest
    elif longest > max_len:
        raise ValueError(f"a sequence of length {longest} does not fit max_len {max_len}")
    splits = {}
    for split, seqs in sequences.items():
        inputs = np.full((len(seqs), max_len), PAD_ID, dtype=dtype)
        lengths = np.fromiter((len(s) for s in seqs), dtype=np.int32, count=len(seqs))
        for row, seq in zip(inputs, seqs):
            row[: len(seq)] = seq
        splits[split] = {"inputs": inputs, "lengths": lengths, "labels": np.asarray(labels[split], np.int32)}
    return splits, max_len


def split_summary(arrays: dict[str, np.ndarray], n_classes: int) -> dict[str, Any]:
    """Size, label counts and sequence-length statistics of one split (for the manifest)."""
    summary: dict[str, Any] = {
        "n": int(len(arrays["labels"])),
        "label_counts": np.bincount(arrays["labels"], minlength=n_classes).tolist(),
    }
    for suffix in ("", "2"):
        if "lengths" + suffix in arrays:
            lengths = np.asarray(arrays["lengths" + suffix])
            summary.update({f"length{suffix}_min": int(lengths.min()), f"length{suffix}_max": int(lengths.max()),
                            f"length{suffix}_mean": round(float(lengths.mean()), 2)})
    return summary


def check_input_record(record: dict[str, Any], vocabulary) -> dict[str, Any]:
    """The "input" record of a build, checked: {"kind": "tokens"} or {"kind": "real", "d_input", "mean", "std"}."""
    kind = record.get("kind")
    if kind == "tokens":
        if vocabulary is None:
            raise ValueError("token inputs need a vocabulary")
        return {"kind": "tokens"}
    if kind == "real":
        if vocabulary is not None:
            raise ValueError("real-valued inputs have no vocabulary (build must return vocabulary=None)")
        d_input = int(record["d_input"])
        mean, std = [float(x) for x in record["mean"]], [float(x) for x in record["std"]]
        if len(mean) != d_input or len(std) != d_input or min(std) <= 0:
            raise ValueError(f"input record needs {d_input} means and {d_input} positive stds, got {record}")
        return {"kind": "real", "d_input": d_input, "mean": mean, "std": std}
    raise ValueError(f"input kind must be 'tokens' or 'real', got {record!r}")


def check_arrays(splits: dict[str, dict[str, np.ndarray]], record: dict[str, Any], vocab_size: int | None) -> int:
    """Check the keys, dtypes and shapes of built arrays; returns their common padded length (max_len)."""
    max_len = None
    for split, arrays in splits.items():
        keys = set(arrays)
        if keys != set(ARRAY_KEYS) and keys != set(ARRAY_KEYS + TWO_DOCUMENT_KEYS):
            raise ValueError(f"split {split}: arrays {sorted(keys)}; expected {ARRAY_KEYS} (+ {TWO_DOCUMENT_KEYS})")
        n = len(arrays["labels"])
        for key in keys:
            if len(arrays[key]) != n:
                raise ValueError(f"split {split}: {key} has {len(arrays[key])} rows, labels {n}")
        for key in ("lengths", "labels", "lengths2"):
            if key in arrays and arrays[key].dtype != np.int32:
                raise ValueError(f"split {split}: {key} must be int32, got {arrays[key].dtype}")
        for key in ("inputs", "inputs2"):
            if key not in arrays:
                continue
            x = arrays[key]
            if record["kind"] == "tokens":
                expected, ndim = token_dtype(vocab_size), (2,)
            else:
                expected, ndim = REAL_STORAGE_DTYPE, (2,) if record["d_input"] == 1 else (3,)
            if x.dtype != expected or x.ndim not in ndim:
                raise ValueError(f"split {split}: {key} is {x.dtype} {x.shape}; expected {expected} with "
                                 f"{ndim[0]} dims for {record['kind']} inputs")
            if record["kind"] == "real" and x.ndim == 3 and x.shape[2] != record["d_input"]:
                raise ValueError(f"split {split}: {key} has {x.shape[2]} channels, d_input {record['d_input']}")
            if max_len is not None and x.shape[1] != max_len:
                raise ValueError(f"split {split}: {key} is padded to {x.shape[1]}, another array to {max_len}")
            max_len = x.shape[1]
    return int(max_len)


def _is_file_array(array: np.ndarray, path: Path) -> bool:
    """True if array is the whole array stored in the .npy file at path (a memmap of it), so it is already written."""
    if not isinstance(array, np.memmap) or array.filename is None or not path.exists():
        return False
    if Path(array.filename).resolve() != path.resolve():
        return False
    stored = np.load(path, mmap_mode="r")
    return array.offset == stored.offset and array.shape == stored.shape and array.dtype == stored.dtype


def write_dataset(out_dir: Path, splits: dict[str, dict[str, np.ndarray]], manifest: dict[str, Any]) -> dict:
    """Write the arrays (except those already memory-mapped from their own file in out_dir), then the manifest
    (last, so a folder without one is known incomplete)."""
    files = {}
    for split, arrays in splits.items():
        for key in ARRAY_KEYS + TWO_DOCUMENT_KEYS:
            if key not in arrays:
                continue
            name = array_file(split, key)
            path = out_dir / name
            array = arrays[key]
            if _is_file_array(array, path):
                if array.mode != "r":
                    array.flush()
            else:
                np.save(path, np.asarray(array), allow_pickle=False)
            files[name] = {"sha256": sha256(path), "bytes": path.stat().st_size,
                           "shape": list(array.shape), "dtype": str(array.dtype)}
    manifest = {**manifest, "format_version": FORMAT_VERSION, "files": files}
    with open(out_dir / MANIFEST, "w", encoding="utf-8") as f:
        json.dump(manifest, f, indent=1)
        f.write("\n")
    return manifest


def read_manifest(folder: Path, *, any_version: bool = False) -> tuple[dict[str, Any] | None, str | None]:
    """(manifest, None), or (None, why it cannot be used). any_version: accept another format version's manifest
    (to read what an older prepare recorded, e.g. its prepare command)."""
    path = folder / MANIFEST
    try:
        with open(path, encoding="utf-8") as f:
            manifest = json.load(f)
    except FileNotFoundError:
        return None, f"{path} is missing (preparation did not finish)"
    except (OSError, ValueError) as e:
        return None, f"{path} is unreadable ({e})"
    if not isinstance(manifest, dict):
        return None, f"{path} is not a manifest"
    version = manifest.get("format_version")
    if version != FORMAT_VERSION and not any_version:
        return None, (f"{path}: cache format version {version}, this code reads version {FORMAT_VERSION} "
                      f"(an older prepare made it)")
    return manifest, None


def is_old_format(folder: Path) -> bool:
    """True if folder holds a readable manifest written by another cache format version."""
    manifest, _ = read_manifest(folder, any_version=True)
    return manifest is not None and manifest.get("format_version") != FORMAT_VERSION


def changed_sources(folder: Path, manifest: dict[str, Any]) -> list[str]:
    """The recorded source files (manifest "sources": path and sha256 at preparation) whose content now differs.

    A relative path lives inside the dataset folder. A source that no longer exists is not a change: the
    prepared arrays stay usable after the release files are deleted or moved.
    """
    changed = []
    for record in (manifest.get("sources") or {}).values():
        path = Path(record["path"])
        path = path if path.is_absolute() else folder / path
        if path.is_file() and sha256(path) != record["sha256"]:
            changed.append(str(path))
    return changed


def check_files(folder: Path, manifest: dict[str, Any], *, checksums: bool = True) -> list[str]:
    """Problems with the array files (missing, wrong size, and with checksums=True sha256); [] if all good."""
    problems = []
    for name, meta in manifest["files"].items():
        path = folder / name
        if not path.is_file():
            problems.append(f"{path} is missing")
        elif path.stat().st_size != meta["bytes"]:
            problems.append(f"{path} has {path.stat().st_size} bytes, expected {meta['bytes']} (truncated?)")
        elif checksums and sha256(path) != meta["sha256"]:
            problems.append(f"{path} fails its sha256 checksum")
    return problems


def load_arrays(folder: Path, manifest: dict[str, Any]) -> tuple[dict[str, dict[str, np.ndarray]], list[str]]:
    """Arrays of every split, memory-mapped read-only, and problems found (shape or dtype not as recorded).

    For real-valued inputs each split also gets "input_mean" and "input_std" (float32, (C,)): the iterator
    normalises with them.
    """
    splits: dict[str, dict[str, np.ndarray]] = {}
    problems = []
    for name, meta in manifest["files"].items():
        split, key, _ = name.split(".")
        try:
            array = np.load(folder / name, mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError) as e:
            problems.append(f"{folder / name} cannot be read as an array ({e})")
            continue
        if list(array.shape) != meta["shape"] or str(array.dtype) != meta["dtype"]:
            problems.append(f"{folder / name} has shape {array.shape} {array.dtype}, "
                            f"expected {tuple(meta['shape'])} {meta['dtype']}")
        splits.setdefault(split, {})[key] = array
    record = manifest["input"]
    if record["kind"] == "real":
        for arrays in splits.values():
            arrays["input_mean"] = np.asarray(record["mean"], np.float32)
            arrays["input_std"] = np.asarray(record["std"], np.float32)
    return splits, problems


def verify(folder: Path, *, checksums: bool = True) -> tuple[dict[str, Any] | None, list[str]]:
    """(manifest, problems) of a prepared folder; problems == [] means it can be trusted.

    checksums=False is the cheap check done at every load (manifest, file presence and sizes); the default also
    compares every file's sha256 (reads every byte: seconds per GB).
    """
    manifest, why = read_manifest(folder)
    if manifest is None:
        return None, [why]
    return manifest, check_files(folder, manifest, checksums=checksums)

