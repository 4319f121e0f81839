"""Length bucketing (lra/iterator.py bucketed_*): similar lengths per batch, deterministic, exactly resumable,
every example once per epoch, and at most len(boundaries) + 1 padded shapes."""
import itertools

import numpy as np
import pytest

from lra import iterator
from test_iterator import make_split

N, MAX_LEN, B, WINDOW = 96, 40, 8, 4  # an epoch = 12 steps = 3 windows of 4 batches
BOUNDARIES = (8, 16, 24, 32)


SPLIT = make_split(N, MAX_LEN)  # labels are the example indices (test_iterator.make_split)


def batches(start=0, n_steps=12, seed=3, window=WINDOW):
    stream = iterator.bucketed_train_batches(SPLIT, B, seed, start, bucket_boundaries=BOUNDARIES,
                                             window_batches=window)
    return list(itertools.islice(stream, n_steps))


def test_every_example_once_per_epoch():
    for epoch in range(2):
        labels = np.concatenate([b["labels"] for b in batches(start=12 * epoch)])
        assert np.array_equal(np.sort(labels), np.arange(N))


@pytest.mark.parametrize("start", [1, 5, 11, 13])
def test_resume_is_exact(start):
    """Starting at any step (mid-window too) gives the same batches as running from step 0."""
    from_zero, resumed = batches(0, start + 6)[start:], batches(start, 6)
    for a, b in zip(from_zero, resumed):
        for key in a:
            assert np.array_equal(a[key], b[key]), key


def test_deterministic_and_seeded():
    first, again, other = batches(seed=3), batches(seed=3), batches(seed=4)
    assert all(np.array_equal(a["labels"], b["labels"]) for a, b in zip(first, again))
    assert not all(np.array_equal(a["labels"], b["labels"]) for a, b in zip(first, other))


def test_batches_group_similar_lengths_and_use_few_shapes():
    bucketed = batches(n_steps=24)
    shapes = {b["inputs"].shape for b in bucketed}
    assert len(shapes) <= len(BOUNDARIES) + 1
    for b in bucketed:
        width = b["inputs"].shape[1]
        assert width == iterator.bucket_length(int(b["lengths"].max()), MAX_LEN, BOUNDARIES)
        rows = b["labels"]
        assert np.array_equal(b["inputs"], SPLIT["inputs"][rows, :width])  # nothing real was cut off
    # Sorting within windows: the padded total is well below random batches padded to the same boundaries.
    padded = sum(b["inputs"].size for b in bucketed)
    plain = itertools.islice(iterator.train_batches(SPLIT, B, 3, bucket_boundaries=BOUNDARIES), 24)
    assert padded < 0.85 * sum(b["inputs"].size for b in plain)


def test_eval_covers_every_example_once_with_valid_tail():
    split = make_split(n=21, max_len=MAX_LEN)
    seen = []
    for b in iterator.bucketed_eval_batches(split, B, bucket_boundaries=BOUNDARIES):
        assert b["inputs"].shape[0] == B and b["inputs"].shape[1] in BOUNDARIES + (MAX_LEN,)
        seen.append(b["labels"][b["valid"]])
    assert np.array_equal(np.sort(np.concatenate(seen)), np.arange(21))
