"""The cached format's contract (lra/cache.py, build.py, dataset.py, iterator.py) with toy task modules:
natural dtypes, the streaming "arrays" path, real-valued inputs normalised at batch time, two-document batches."""

import types

import numpy as np
import pytest

import lra
from lra import build, cache, iterator, tasks
from lra.errors import DataError

N_CLASSES = 3
MEAN, STD = [10.0, 20.0, 30.0], [2.0, 4.0, 5.0]


def quiet(message):
    """A log function that drops messages."""


def toy_task(build_fn):
    """A task module whose build is build_fn and whose options are {"variant": str}."""
    def make_options(**given):
        return {"variant": given.get("variant", "a")}

    return types.SimpleNamespace(
        N_CLASSES=N_CLASSES, SPLITS=("train", "val", "test"), make_options=make_options,
        dataset_name=lambda o: f"toy-{o['variant']}", command_args=lambda o: ["--variant", o["variant"]],
        can_prepare=lambda o: None, build=build_fn)


def pixels(n, length, channels, seed):
    return np.random.default_rng(seed).integers(0, 256, (n, length, channels), dtype=np.uint8)


def streaming_build(options, out_dir, log):
    """Writes its arrays straight into out_dir (as a large dataset would) and returns the memmaps."""
    arrays = {}
    for i, (split, n) in enumerate({"train": 7, "val": 3, "test": 4}.items()):
        inputs = cache.open_array(out_dir, split, "inputs", (n, 5, 3), np.uint8)
        inputs[:] = pixels(n, 5, 3, i)
        lengths = cache.open_array(out_dir, split, "lengths", (n,), np.int32)
        lengths[:] = 5
        labels = np.arange(n, dtype=np.int32) % N_CLASSES  # in memory: written by the cache
        arrays[split] = {"inputs": inputs, "lengths": lengths, "labels": labels}
    return {"arrays": arrays, "vocabulary": None, "n_classes": N_CLASSES, "info": {},
            "input": {"kind": "real", "d_input": 3, "mean": MEAN, "std": STD}}


def two_document_build(options, out_dir, log):
    """Token pairs of different lengths, vocabulary of 300 (so uint16 storage)."""
    rng = np.random.default_rng(0)
    arrays = {}
    for split, n in {"train": 6, "val": 2, "test": 2}.items():
        lengths, lengths2 = rng.integers(1, 9, n).astype(np.int32), rng.integers(1, 5, n).astype(np.int32)
        inputs, inputs2 = np.zeros((n, 8), np.uint16), np.zeros((n, 8), np.uint16)
        for row, row2, length, length2 in zip(inputs, inputs2, lengths, lengths2):
            row[:length], row2[:length2] = 299, 1
        arrays[split] = {"inputs": inputs, "lengths": lengths, "inputs2": inputs2, "lengths2": lengths2,
                         "labels": np.arange(n, dtype=np.int32) % 2}
    return {"arrays": arrays, "vocabulary": [f"t{i}" for i in range(300)], "n_classes": 2, "info": {},
            "input": {"kind": "tokens"}}


@pytest.fixture
def register(monkeypatch):
    def add(name, build_fn):
        monkeypatch.setitem(tasks.TASKS, name, toy_task(build_fn))
    return add


@pytest.mark.parametrize("vocab_size, dtype", [(2, np.uint8), (256, np.uint8), (257, np.uint16),
                                               (65536, np.uint16), (65537, np.int32)])
def test_token_dtype_is_the_smallest_that_holds_the_vocabulary(vocab_size, dtype):
    assert cache.token_dtype(vocab_size) == dtype
    assert np.iinfo(cache.token_dtype(vocab_size)).max >= vocab_size - 1


def test_streamed_files_are_not_rewritten_and_reals_are_normalised_at_batch_time(tmp_path, register, monkeypatch):
    register("toy", streaming_build)
    saved = []
    real_save = np.save
    monkeypatch.setattr(np, "save", lambda path, *a, **k: (saved.append(str(path)), real_save(path, *a, **k)))
    folder = build.prepare("toy", {"variant": "a"}, tmp_path, log=quiet)
    # Only the in-memory labels went through np.save; the memmapped inputs/lengths were kept as written.
    assert sorted(p.rsplit("/", 1)[1] for p in saved) == ["test.labels.npy", "train.labels.npy", "val.labels.npy"]
    ds = lra.get_dataset("toy", data_dir=tmp_path)
    assert ds.path == folder and ds.vocab_size is None and ds.d_input == 3 and ds.max_len == 5
    assert ds.manifest["input"] == {"kind": "real", "d_input": 3, "mean": MEAN, "std": STD}
    train = ds.splits["train"]
    assert isinstance(train["inputs"], np.memmap) and train["inputs"].dtype == np.uint8
    assert np.array_equal(train["inputs"], pixels(7, 5, 3, 0))
    for key, meta in ds.manifest["files"].items():
        assert meta["sha256"] == cache.sha256(folder / key)
    batch = lra.train_batch(train, 4, seed=0, step=2)
    assert batch["inputs"].dtype == np.float32 and batch["inputs"].shape == (4, 5, 3)
    # Labels do not identify rows (label = row % 3), so each batch row must match a normalised stored row.
    stored = np.asarray(train["inputs"], np.float32)
    expected = (stored - np.array(MEAN, np.float32)) / np.array(STD, np.float32)
    for row in batch["inputs"]:
        assert any(np.allclose(row, e) for e in expected)
    eval_batch = next(lra.eval_batches(ds.splits["val"], 8))
    expected_val = (pixels(3, 5, 3, 1).astype(np.float32) - MEAN) / STD
    np.testing.assert_allclose(eval_batch["inputs"][:3], expected_val, rtol=1e-6)
    assert eval_batch["valid"].tolist() == [True] * 3 + [False] * 5


def test_one_channel_reals_are_B_by_L():
    split = {"inputs": np.array([[0, 255], [51, 102]], np.uint8), "lengths": np.array([2, 2], np.int32),
             "labels": np.array([0, 1], np.int32), "input_mean": np.array([51.0], np.float32),
             "input_std": np.array([51.0], np.float32)}
    batch = next(lra.eval_batches(split, 2))
    assert batch["inputs"].dtype == np.float32
    np.testing.assert_allclose(batch["inputs"], [[-1.0, 4.0], [0.0, 1.0]])


def test_two_document_batches(tmp_path, register):
    register("pairs", two_document_build)
    ds = lra.get_dataset("pairs", data_dir=tmp_path)
    train = ds.splits["train"]
    assert train["inputs"].dtype == np.uint16 and train["inputs2"].dtype == np.uint16  # 300 tokens
    assert ds.vocab_size == 300 and ds.d_input is None
    assert ds.manifest["splits"]["train"]["length2_max"] == int(train["lengths2"].max())
    batch = lra.train_batch(train, 4, seed=1, step=0, bucket_boundaries=(2, 4, 8))
    assert batch.keys() == {"inputs", "lengths", "inputs2", "lengths2", "labels", "valid"}
    assert batch["inputs"].dtype == np.int32 and batch["inputs2"].dtype == np.int32
    # Each document is trimmed to its own bucket.
    assert batch["inputs"].shape[1] == iterator.bucket_length(int(batch["lengths"].max()), 8, (2, 4, 8))
    assert batch["inputs2"].shape[1] == iterator.bucket_length(int(batch["lengths2"].max()), 8, (2, 4, 8))
    for row, row2, length, length2 in zip(batch["inputs"], batch["inputs2"], batch["lengths"], batch["lengths2"]):
        assert np.all(row[:length] == 299) and not row[length:].any()
        assert np.all(row2[:length2] == 1) and not row2[length2:].any()


def test_gather_keeps_the_requested_order_from_a_memmap(tmp_path):
    np.save(tmp_path / "x.npy", np.arange(40, dtype=np.uint8).reshape(10, 4))
    split = {"inputs": np.load(tmp_path / "x.npy", mmap_mode="r"), "lengths": np.full(10, 4, np.int32),
             "labels": np.arange(10, dtype=np.int32)}
    indices = np.array([7, 2, 9, 2, 0])
    batch = iterator.gather(split, indices, np.ones(5, bool))
    assert np.array_equal(batch["inputs"], np.arange(40).reshape(10, 4)[indices])
    assert batch["labels"].tolist() == indices.tolist()


@pytest.mark.parametrize("bad, complaint", [
    (lambda a: a.update(inputs=a["inputs"].astype(np.int32)), "expected uint16"),
    (lambda a: a.update(lengths=a["lengths"].astype(np.int64)), "lengths must be int32"),
    (lambda a: a.pop("lengths2"), "expected"),
    (lambda a: a.update(labels=a["labels"][:-1]), "rows"),
])
def test_built_arrays_are_checked(tmp_path, register, bad, complaint):
    def broken_build(options, out_dir, log):
        built = two_document_build(options, out_dir, log)
        bad(built["arrays"]["val"])
        return built
    register("broken", broken_build)
    with pytest.raises(ValueError, match=complaint):
        build.prepare("broken", {"variant": "a"}, tmp_path, log=quiet)
    assert list(tmp_path.iterdir()) == []  # nothing half-written


def test_missing_input_record_is_an_error(tmp_path, register):
    register("norecord", lambda o, d, log: {k: v for k, v in two_document_build(o, d, log).items() if k != "input"})
    with pytest.raises(KeyError):
        build.prepare("norecord", {"variant": "a"}, tmp_path, log=quiet)
    with pytest.raises(ValueError, match="positive stds"):
        cache.check_input_record({"kind": "real", "d_input": 1, "mean": [0.0], "std": [0.0]}, None)
    with pytest.raises(ValueError, match="no vocabulary"):
        cache.check_input_record({"kind": "real", "d_input": 1, "mean": [0.0], "std": [1.0]}, ["a"])


def test_unknown_task_lists_known(tmp_path):
    with pytest.raises(DataError, match="known tasks: listops"):
        lra.get_dataset("nope", data_dir=tmp_path)
