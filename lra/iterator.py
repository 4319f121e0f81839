"""Deterministic, resumable batches: every training batch is a pure function of (seed, step).

Training: grain's ``MapDataset.range(n).shuffle(seed).repeat().batch(B)`` gives random access to
the index batch k = elements [k*B, (k+1)*B) of an endless stream of epochs, each a different
permutation of 0..n-1; batches run across epoch boundaries. Resuming at step k needs only k.
Evaluation: every example once, in order; the last batch is padded to B with copies of a real
example and marked ``valid=False``, so shapes stay fixed.

A batch is a dict of NumPy arrays: inputs (B, L) int32 tokens, or (B, L) / (B, L, C) float32 reals
normalised with the split's input_mean/input_std, lengths (B,) int32, labels (B,) int32, valid (B,)
bool; two-document splits (Retrieval) add inputs2 and lengths2. L is the dataset's max_len, or, with
``bucket_boundaries``, the smallest boundary that fits the longest sequence in the batch (capped at
max_len; each document gets its own), so only a few shapes compile.
"""

from __future__ import annotations

import itertools
from typing import Iterator, Mapping, Sequence

import numpy as np

Split = Mapping[str, np.ndarray]
Batch = dict[str, np.ndarray]


def _shuffle_seed(seed: int) -> int:
    """Scramble the user seed before grain sees it.

    grain shuffles epoch e with seed + e, so raw seeds s and s + 1 would share all but one epoch;
    hashing the seed first makes nearby seeds give unrelated streams.
    """
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    return int(np.random.SeedSequence(int(seed)).generate_state(1, np.uint32)[0])


def _check(split: Split, batch_size: int) -> int:
    """Number of examples in the split, after checking the arguments."""
    n = len(split["labels"])
    if n == 0:
        raise ValueError("the split has no examples")
    if batch_size <= 0:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    return n


def train_index_batches(n: int, batch_size: int, seed: int):
    """grain MapDataset whose element k is the int array of example indices of training batch k."""
    # Imported here so that `python -m lra.prepare` does not pay grain's import time.
    import grain

    return grain.MapDataset.range(n).shuffle(seed=_shuffle_seed(seed)).repeat().batch(batch_size)


def bucket_length(longest: int, max_len: int, bucket_boundaries: Sequence[int] | None) -> int:
    """Padded length of a batch whose longest sequence is `longest`."""
    if not bucket_boundaries:
        return max_len
    fitting = [b for b in bucket_boundaries if b >= longest]
    return min(min(fitting), max_len) if fitting else max_len


def model_inputs(split: Split, rows: np.ndarray) -> np.ndarray:
    """Stored inputs -> what the model takes: int32 tokens, or float32 (x - mean) / std for real-valued inputs
    (a split with "input_mean"/"input_std", (C,), which broadcast over the last axis of (B, L, C); C = 1 is (B, L))."""
    if "input_mean" in split:
        return (rows.astype(np.float32) - split["input_mean"]) / split["input_std"]
    return np.ascontiguousarray(rows, dtype=np.int32)


def gather(split: Split, indices: np.ndarray, valid: np.ndarray, bucket_boundaries=None) -> Batch:
    """The batch of the examples at `indices` (each document trimmed to its own bucket length if asked)."""
    batch = {}
    for suffix in ("", "2"):  # "2": the second document of two-document tasks (Retrieval)
        if "inputs" + suffix not in split:
            continue
        lengths = split["lengths" + suffix][indices]
        stored = split["inputs" + suffix]
        length = bucket_length(int(lengths.max()), stored.shape[1], bucket_boundaries)
        # Reading rows in file order is faster from a memory map; the batch keeps the requested order.
        order = np.argsort(indices, kind="stable")
        rows = np.empty((len(indices), length) + stored.shape[2:], stored.dtype)
        rows[order] = stored[indices[order], :length]
        batch["inputs" + suffix] = model_inputs(split, rows)
        batch["lengths" + suffix] = lengths.astype(np.int32)
    batch["labels"] = split["labels"][indices].astype(np.int32)
    batch["valid"] = valid
    return batch


def train_batch(split: Split, batch_size: int, seed: int, step: int, *, bucket_boundaries=None) -> Batch:
    """Training batch number `step` (0-based) of the seeded stream; a pure function of its arguments."""
    return next(train_batches(split, batch_size, seed, step, bucket_boundaries=bucket_boundaries))


def train_batches(split: Split, batch_size: int, seed: int, start_step: int = 0, *,
                  bucket_boundaries=None) -> Iterator[Batch]:
    """Endless training batches start_step, start_step + 1, ... (same as train_batch for each step)."""
    n = _check(split, batch_size)
    if start_step < 0:
        raise ValueError(f"step must be non-negative, got {start_step}")
    index_batches = train_index_batches(n, batch_size, seed)
    valid = np.ones(batch_size, bool)
    for step in itertools.count(start_step):
        yield gather(split, np.asarray(index_batches[step]), valid.copy(), bucket_boundaries)


def num_eval_batches(split: Split, batch_size: int) -> int:
    """Number of batches eval_batches yields."""
    return -(-_check(split, batch_size) // batch_size)


def eval_batches(split: Split, batch_size: int, *, bucket_boundaries=None) -> Iterator[Batch]:
    """Every example exactly once, in order; the padded tail of the last batch has valid=False."""
    n = _check(split, batch_size)
    for start in range(0, n, batch_size):
        real = np.arange(start, min(start + batch_size, n))
        # Pad with copies of a real example (not zeros) so that padding rows have a valid
        # length and a model's masked pooling never divides by zero on them.
        indices = np.concatenate([real, np.full(batch_size - real.size, real[0])])
        yield gather(split, indices, np.arange(batch_size) < real.size, bucket_boundaries)


# ------------------------------------------------------------------------------ length bucketing (sorted windows)
# Batches of similar length, still a pure function of (seed, step): the seeded example stream above is cut into
# windows of `window_batches` batches; inside a window the examples are sorted by length and cut into batches,
# and the window's batches are visited in a seeded random order. A window holds exactly the examples the
# unbucketed stream would give in those steps, so every example still appears once per epoch's worth of steps
# (exactly once when the epoch is a whole number of windows), and resuming at a step needs only the step.

SORT_WINDOW_BATCHES = 64  # batches per sorting window: wider = more similar lengths, less mixing across a window


def _sort_key(split: Split, indices: np.ndarray) -> np.ndarray:
    """Length that decides the padded size (the longer document for two-document tasks)."""
    lengths = split["lengths"][indices]
    return np.maximum(lengths, split["lengths2"][indices]) if "lengths2" in split else lengths


def bucketed_window(split: Split, index_batches, batch_size: int, seed: int, window: int,
                    window_batches: int) -> np.ndarray:
    """(window_batches, batch_size) example indices of sorting window `window`, rows in the order they are used."""
    first = window * window_batches
    indices = np.concatenate([np.asarray(index_batches[k]) for k in range(first, first + window_batches)])
    by_length = indices[np.argsort(_sort_key(split, indices), kind="stable")].reshape(window_batches, batch_size)
    order = np.random.default_rng([_shuffle_seed(seed), window]).permutation(window_batches)
    return by_length[order]


def bucketed_train_batches(split: Split, batch_size: int, seed: int, start_step: int = 0, *, bucket_boundaries,
                           window_batches: int = SORT_WINDOW_BATCHES) -> Iterator[Batch]:
    """Endless length-bucketed training batches start_step, start_step + 1, ...: each batch holds examples of
    similar length, padded to the smallest of `bucket_boundaries` that fits (so at most len(boundaries) + 1
    shapes compile). Batch k is a pure function of (split, batch_size, seed, k, boundaries, window_batches)."""
    n = _check(split, batch_size)
    if start_step < 0:
        raise ValueError(f"step must be non-negative, got {start_step}")
    if window_batches < 1:
        raise ValueError(f"window_batches must be >= 1, got {window_batches}")
    index_batches = train_index_batches(n, batch_size, seed)
    window, rows = None, None
    for step in itertools.count(start_step):
        if step // window_batches != window:
            window = step // window_batches
            rows = bucketed_window(split, index_batches, batch_size, seed, window, window_batches)
        yield gather(split, rows[step % window_batches], np.ones(batch_size, bool), bucket_boundaries)


def bucketed_eval_batches(split: Split, batch_size: int, *, bucket_boundaries) -> Iterator[Batch]:
    """Every example exactly once, in order of length (a fixed order), padded per batch to a bucket boundary;
    the padded tail of the last batch has valid=False (copies of a real example, as in eval_batches)."""
    n = _check(split, batch_size)
    by_length = np.argsort(_sort_key(split, np.arange(n)), kind="stable")
    for start in range(0, n, batch_size):
        real = by_length[start:start + batch_size]
        indices = np.concatenate([real, np.full(batch_size - real.size, real[0])])
        yield gather(split, indices, np.arange(batch_size) < real.size, bucket_boundaries)
