"""Image (CIFAR-10 through tfds data sources, mocked): grey conversion, modes, the 90/10 split, normalisation."""

import contextlib

import numpy as np
import pytest
import tensorflow_datasets as tfds

import lra
from lra import image
from lra.errors import DataError

N_TRAIN, N_TEST = 20, 6


def make_images(n, seed):
    rng = np.random.default_rng(seed)
    return [{"id": f"img{i}", "image": rng.integers(0, 256, (32, 32, 3), dtype=np.uint8),
             "label": np.int64(i % 10)} for i in range(n)]


SPLITS = {"train": make_images(N_TRAIN, 0), "test": make_images(N_TEST, 1)}


@contextlib.contextmanager
def cifar(splits=SPLITS):
    """tfds mocked to serve these examples from tfds.data_source('cifar10', split=...)."""
    def as_data_source(builder, split, **kwargs):
        assert builder.name == "cifar10", builder.name
        return splits[split]

    with tfds.testing.mock_data(as_data_source_fn=as_data_source):
        yield


def stack(examples):
    return np.stack([e["image"] for e in examples])


@pytest.mark.parametrize("rgb, grey", [
    # floor((w . rgb / 255) * 255.5) with TF's weights 0.2989, 0.5870, 0.1140, worked out by hand:
    ((255, 255, 255), 255),  # 0.9999 * 255.5 = 255.47
    ((255, 0, 0), 76),  # 0.2989 * 255.5 = 76.37
    ((0, 255, 0), 149),  # 0.5870 * 255.5 = 149.98
    ((0, 0, 255), 29),  # 0.1140 * 255.5 = 29.13
    ((0, 0, 0), 0),
    ((100, 150, 200), 141),  # (29.89 + 88.05 + 22.8) / 255 * 255.5 = 141.02
])
def test_grey_matches_tf_rgb_to_grayscale_formula(rgb, grey):
    assert image.grey_from_rgb(np.array(rgb, np.uint8)) == grey
    assert image.grey_from_rgb(np.array([[rgb, rgb]], np.uint8)).tolist() == [[grey, grey]]


def test_grey_tokens_split_and_raster_order(tmp_path):
    with cifar():
        ds = lra.get_dataset("image", mode="grey_tokens", data_dir=tmp_path)
    assert ds.path.name == "image-cifar10-grey-tokens" and ds.vocab_size == 256 and ds.d_input is None
    assert ds.max_len == 1024 and ds.n_classes == 10
    n_train = N_TRAIN * 9 // 10  # 18 of 20, as tfds's train[:90%]
    train_images, test_images = stack(SPLITS["train"]), stack(SPLITS["test"])
    expected = {"train": train_images[:n_train], "val": train_images[n_train:], "test": test_images}
    labels = {"train": np.arange(n_train) % 10, "val": np.arange(n_train, N_TRAIN) % 10, "test": np.arange(N_TEST) % 10}
    for split, images in expected.items():
        arrays = ds.splits[split]
        assert arrays["inputs"].dtype == np.uint8 and arrays["inputs"].shape == (len(images), 1024)
        assert isinstance(arrays["inputs"], np.memmap)
        grey = image.grey_from_rgb(images)
        for r, c in [(0, 0), (0, 31), (1, 0), (17, 5), (31, 31)]:
            assert np.array_equal(arrays["inputs"][:, r * 32 + c], grey[:, r, c])  # row by row
        assert np.array_equal(arrays["labels"], labels[split]) and np.all(arrays["lengths"] == 1024)
    batch = lra.train_batch(ds.splits["train"], 4, seed=0, step=0)
    assert batch["inputs"].dtype == np.int32 and batch["inputs"].max() < 256


def test_grey_real_is_normalised_with_train_statistics(tmp_path):
    with cifar():
        ds = lra.get_dataset("image", mode="grey_real", data_dir=tmp_path)
    assert ds.vocab_size is None and ds.d_input == 1
    grey = image.grey_from_rgb(stack(SPLITS["train"])[:18]).astype(np.float64)
    record = ds.manifest["input"]
    assert record["kind"] == "real" and record["d_input"] == 1
    np.testing.assert_allclose(record["mean"], [grey.mean()], atol=1e-5)
    np.testing.assert_allclose(record["std"], [grey.std()], atol=1e-5)
    batch = next(lra.eval_batches(ds.splits["val"], 2))
    assert batch["inputs"].dtype == np.float32 and batch["inputs"].shape == (2, 1024)
    val_grey = image.grey_from_rgb(stack(SPLITS["train"])[18:]).reshape(2, 1024)
    np.testing.assert_allclose(batch["inputs"], (val_grey - record["mean"][0]) / record["std"][0], rtol=1e-5)


def test_colour_real_has_three_channels(tmp_path):
    with cifar():
        ds = lra.get_dataset("image", mode="colour_real", data_dir=tmp_path)
    assert ds.d_input == 3 and ds.vocab_size is None and ds.max_len == 1024
    train = ds.splits["train"]
    assert train["inputs"].shape == (18, 1024, 3) and train["inputs"].dtype == np.uint8
    images = stack(SPLITS["train"])[:18]
    assert np.array_equal(train["inputs"], images.reshape(18, 1024, 3))
    record = ds.manifest["input"]
    pixels = images.reshape(-1, 3).astype(np.float64)
    np.testing.assert_allclose(record["mean"], pixels.mean(0), atol=1e-5)
    np.testing.assert_allclose(record["std"], pixels.std(0), atol=1e-5)
    batch = lra.train_batch(train, 5, seed=0, step=0)
    assert batch["inputs"].shape == (5, 1024, 3) and batch["inputs"].dtype == np.float32
    # Every batch row is a normalised stored image.
    normalised = (train["inputs"].astype(np.float32) - np.float32(record["mean"])) / np.float32(record["std"])
    for row in batch["inputs"]:
        assert any(np.allclose(row, n, atol=1e-5) for n in normalised)


def test_random_mock_data_prepares(tmp_path):
    with tfds.testing.mock_data(num_examples=10):
        ds = lra.get_dataset("image", mode="grey_real", data_dir=tmp_path)
    assert [len(ds.splits[s]["labels"]) for s in ("train", "val", "test")] == [9, 1, 10]


def test_bad_images_and_options(tmp_path):
    bad = {"train": [dict(e, image=e["image"][:16]) for e in SPLITS["train"]], "test": SPLITS["test"]}
    with cifar(bad), pytest.raises(DataError, match=r"image \(16, 32, 3\) uint8, expected \(32, 32, 3\)"):
        lra.get_dataset("image", data_dir=tmp_path)
    with pytest.raises(DataError, match="unknown Image mode 'rgb'"):
        lra.get_dataset("image", mode="rgb", data_dir=tmp_path)
    with pytest.raises(DataError, match="unknown Image option.*'encoding'.*valid options: source, mode, tfds_data_dir"):
        lra.get_dataset("image", encoding="bytes", data_dir=tmp_path)
