"""The batch iterator: a pure function of (seed, step), resumable, epoch-complete, fixed shapes."""

import itertools

import numpy as np
import pytest

import lra
from lra import iterator

N, MAX_LEN = 103, 24  # N is prime, so batches never line up with epoch boundaries


def make_split(n=N, max_len=MAX_LEN, seed=0):
    """A synthetic split whose labels are the example indices (so batches reveal what they hold)."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, max_len + 1, n).astype(np.int32)
    inputs = np.zeros((n, max_len), np.int32)
    for i, length in enumerate(lengths):
        inputs[i, :length] = i + 1
    return {"inputs": inputs, "lengths": lengths, "labels": np.arange(n, dtype=np.int32)}


SPLIT = make_split()


def stream(batch_size, seed, n_steps, start=0):
    """Example indices of training batches start .. start + n_steps - 1, concatenated."""
    batches = itertools.islice(lra.train_batches(SPLIT, batch_size, seed, start), n_steps)
    return np.concatenate([b["labels"] for b in batches])


def test_same_seed_and_step_same_batch():
    a = lra.train_batch(SPLIT, 16, seed=3, step=7)
    b = lra.train_batch(SPLIT, 16, seed=3, step=7)
    assert a.keys() == {"inputs", "lengths", "labels", "valid"}
    for key in a:
        assert np.array_equal(a[key], b[key])
    assert not np.array_equal(a["labels"], lra.train_batch(SPLIT, 16, seed=4, step=7)["labels"])
    assert not np.array_equal(a["labels"], lra.train_batch(SPLIT, 16, seed=3, step=8)["labels"])


def test_batch_shapes_and_dtypes():
    batch = lra.train_batch(SPLIT, 8, seed=0, step=0)
    assert batch["inputs"].shape == (8, MAX_LEN) and batch["inputs"].dtype == np.int32
    assert batch["lengths"].dtype == np.int32 and batch["labels"].dtype == np.int32
    assert batch["valid"].dtype == bool and batch["valid"].all()
    # Each row is the example its label names (inputs, lengths and labels stay aligned).
    for row, length, index in zip(batch["inputs"], batch["lengths"], batch["labels"]):
        assert length == SPLIT["lengths"][index] and np.array_equal(row, SPLIT["inputs"][index])


@pytest.mark.parametrize("start", [0, 1, 12, 40])
def test_resume_equals_skip(start):
    from_zero = itertools.islice(lra.train_batches(SPLIT, 10, seed=1), start, start + 5)
    resumed = itertools.islice(lra.train_batches(SPLIT, 10, seed=1, start_step=start), 5)
    for step, (a, b) in enumerate(zip(from_zero, resumed), start=start):
        assert np.array_equal(a["inputs"], b["inputs"]) and np.array_equal(a["labels"], b["labels"])
        assert np.array_equal(a["labels"], lra.train_batch(SPLIT, 10, seed=1, step=step)["labels"])


@pytest.mark.parametrize("batch_size", [10, 103, 7])
def test_each_epoch_is_a_fresh_permutation(batch_size):
    n_epochs = 4
    n_steps = -(-n_epochs * N // batch_size)
    order = stream(batch_size, seed=2, n_steps=n_steps)[: n_epochs * N]
    epochs = order.reshape(n_epochs, N)
    for epoch in epochs:
        assert sorted(epoch.tolist()) == list(range(N))  # every example exactly once
    assert len({tuple(e) for e in epochs}) == n_epochs  # each epoch a different order
    assert not np.array_equal(epochs[0], np.arange(N))  # and actually shuffled


def test_batches_cross_epoch_boundaries():
    # Batch 10 of size 10 over 103 examples holds the last 3 of epoch 0 and the first 7 of epoch 1.
    order = stream(10, seed=0, n_steps=21)
    batch = lra.train_batch(SPLIT, 10, seed=0, step=10)["labels"]
    assert np.array_equal(batch, order[100:110])
    assert set(order[:100]) | set(batch[:3]) == set(range(N))


def test_nearby_seeds_give_unrelated_epochs():
    # grain reseeds epoch e with seed + e; the seed is hashed first so seed 1 is not seed 0 shifted.
    epoch1_of_seed0 = stream(N, seed=0, n_steps=2)[N:]
    epoch0_of_seed1 = stream(N, seed=1, n_steps=1)
    assert not np.array_equal(epoch1_of_seed0, epoch0_of_seed1)


@pytest.mark.parametrize("batch_size", [1, 10, 103, 128])
def test_eval_covers_every_example_once_in_order(batch_size):
    batches = list(lra.eval_batches(SPLIT, batch_size))
    assert len(batches) == lra.num_eval_batches(SPLIT, batch_size) == -(-N // batch_size)
    for b in batches:
        assert b["inputs"].shape == (batch_size, MAX_LEN) and b["labels"].shape == (batch_size,)
    valid = np.concatenate([b["valid"] for b in batches])
    labels = np.concatenate([b["labels"] for b in batches])
    assert np.array_equal(labels[valid], np.arange(N))
    n_pad = batch_size * len(batches) - N
    assert valid.sum() == N and not valid[N:].any() and valid[:N].all()
    last = batches[-1]
    padded = ~last["valid"]
    assert padded.sum() == n_pad
    # Padding rows copy a real example, so their lengths are valid for masked pooling.
    assert np.all(last["lengths"][padded] >= 1)


@pytest.mark.parametrize("boundaries", [(8, 16), (4, 12, 20, 64), (30,)])
def test_bucketing_trims_to_smallest_fitting_boundary(boundaries):
    allowed = {min(b, MAX_LEN) for b in boundaries} | {MAX_LEN}
    batches = [lra.train_batch(SPLIT, 4, seed=0, step=s, bucket_boundaries=boundaries) for s in range(40)]
    batches += list(lra.eval_batches(SPLIT, 4, bucket_boundaries=boundaries))
    for b in batches:
        width = b["inputs"].shape[1]
        longest = b["lengths"].max()
        assert width in allowed and width >= longest
        assert width == iterator.bucket_length(int(longest), MAX_LEN, boundaries)
        assert not any(longest <= bound < width for bound in boundaries)  # smallest that fits
    full = lra.train_batch(SPLIT, 4, seed=0, step=3)
    trimmed = lra.train_batch(SPLIT, 4, seed=0, step=3, bucket_boundaries=boundaries)
    width = trimmed["inputs"].shape[1]
    assert np.array_equal(trimmed["inputs"], full["inputs"][:, :width]) and not full["inputs"][:, width:].any()
    assert len({b["inputs"].shape for b in batches}) <= len(allowed)


def test_bucket_length_rules():
    assert iterator.bucket_length(10, 100, None) == 100
    assert iterator.bucket_length(10, 100, (16, 32)) == 16
    assert iterator.bucket_length(16, 100, (16, 32)) == 16
    assert iterator.bucket_length(33, 100, (16, 32)) == 100
    assert iterator.bucket_length(50, 60, (16, 64)) == 60  # capped at the stored width


@pytest.mark.parametrize(
    "call",
    [lambda: lra.train_batch(SPLIT, 0, 0, 0), lambda: lra.train_batch(SPLIT, 4, -1, 0),
     lambda: lra.train_batch(SPLIT, 4, 0, -1), lambda: next(lra.eval_batches(make_split(n=0), 4))],
)
def test_bad_arguments(call):
    with pytest.raises(ValueError):
        call()


def test_on_a_prepared_dataset(tmp_path):
    ds = lra.get_dataset("listops", size="small", seed=0, data_dir=tmp_path)
    batch = lra.train_batch(ds.splits["train"], 32, seed=0, step=1000)
    assert batch["inputs"].shape == (32, ds.max_len)
    assert np.all((0 <= batch["labels"]) & (batch["labels"] < ds.n_classes))
    assert batch["inputs"].max() < ds.vocab_size
