"""Image (LRA sequential CIFAR-10): classify a 32x32 image read as a sequence of 1024 pixels in raster order.

Source: tensorflow-datasets `cifar10` (50,000 train, 10,000 test), read through tfds data sources
(lra/tfds_source.py). Splits, as LRA: train = the first 90% of tfds train (45,000; tfds's "train[:90%]"),
val = the last 10% (5,000; "train[90%:]"), test = tfds test (10,000).

Modes (every mode stores uint8 pixels; lra/cache.py):
- "grey_tokens" (LRA): grey levels 0-255 are tokens, vocab_size 256, inputs (n, 1024).
- "grey_real" (S4/S5): the same grey levels as one real channel (d_input 1), normalised at batch time with the
  train split's mean and std (S4 used the constants 122.6 / 61.0 on the 0-255 scale).
- "colour_real" (the LRU paper's sCIFAR): 1024 steps of 3 real channels (R, G, B), inputs (n, 1024, 3),
  normalised per channel with the train split's means and stds.
Grey conversion (grey_from_rgb) reproduces tf.image.rgb_to_grayscale on uint8 images, which LRA used.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np

from lra import tfds_source
from lra import options as opts
from lra.errors import DataError

N_CLASSES = 10
SPLITS = ("train", "val", "test")
TFDS_NAME = "cifar10"
MODES = ("grey_tokens", "grey_real", "colour_real")
SIDE, CHANNELS = 32, 3
LENGTH = SIDE * SIDE
# ITU-R 601 luma weights as tf.image.rgb_to_grayscale writes them.
TF_GREY_WEIGHTS = np.array([0.2989, 0.5870, 0.1140], np.float32)

OPTIONS = {"source": "tfds", "mode": "grey_tokens", "tfds_data_dir": None}


def grey_from_rgb(rgb: np.ndarray) -> np.ndarray:
    """uint8 (..., 3) -> uint8 (...): tf.image.rgb_to_grayscale of a uint8 image.

    TF converts to float32 x = rgb * (1/255), takes y = 0.2989 R + 0.5870 G + 0.1140 B, and converts back with
    tf.image.convert_image_dtype: saturate_cast(y * 255.5) (scale 255 + 0.5, then truncation). Computed here in
    float32 the same way; a different summation order could differ in the last float bit, so a pixel right at
    an integer boundary could in principle come out one level apart from TF's.
    """
    x = rgb.astype(np.float32) * np.float32(1 / 255)
    y = x @ TF_GREY_WEIGHTS
    return np.clip(y * np.float32(255.5), 0, 255).astype(np.uint8)


def make_options(**given) -> dict[str, Any]:
    """Validated, JSON-ready options; given: any of OPTIONS (mode: one of MODES). Unknown or invalid: DataError."""
    o = opts.resolve("Image", given, OPTIONS)
    opts.choice("Image", "source", o["source"], ("tfds",))
    return {"source": "tfds", "mode": opts.choice("Image", "mode", o["mode"], MODES),
            "tfds_data_dir": opts.folder(o["tfds_data_dir"])}


def dataset_name(options: dict[str, Any]) -> str:
    """Folder name: encodes everything that changes the arrays (not the tfds data dir)."""
    return f"image-cifar10-{options['mode'].replace('_', '-')}"


def command_args(options: dict[str, Any]) -> list[str]:
    """Arguments after `python -m lra.prepare image` that build these options."""
    args = ["--mode", options["mode"]]
    return args + (["--tfds-data-dir", options["tfds_data_dir"]] if options["tfds_data_dir"] else [])


def can_prepare(options: dict[str, Any]) -> str | None:
    """None if tfds already has cifar10 prepared (get_dataset never downloads), else why not."""
    return tfds_source.missing(TFDS_NAME, options["tfds_data_dir"])


def read_images(split: str, options: dict[str, Any], rebuild: str) -> tuple[np.ndarray, np.ndarray]:
    """(uint8 (n, 32, 32, 3) images, int32 (n,) labels) of one cifar10 split, in the data source's order."""
    source = tfds_source.data_source(TFDS_NAME, split, options["tfds_data_dir"], rebuild)
    n = len(source)
    images, labels = np.empty((n, SIDE, SIDE, CHANNELS), np.uint8), np.empty(n, np.int32)
    for i, example in enumerate(tfds_source.examples(source)):
        image = np.asarray(example["image"])
        if image.shape != (SIDE, SIDE, CHANNELS) or image.dtype != np.uint8:
            raise DataError(f"{TFDS_NAME} {split} example {i}: image {image.shape} {image.dtype}, "
                            f"expected ({SIDE}, {SIDE}, {CHANNELS}) uint8")
        images[i], labels[i] = image, int(example["label"])
    if n == 0 or labels.min() < 0 or labels.max() >= N_CLASSES:
        raise DataError(f"{TFDS_NAME} {split}: {n} examples, labels outside 0-{N_CLASSES - 1}")
    return images, labels


def to_sequences(images: np.ndarray, mode: str) -> np.ndarray:
    """uint8 (n, 32, 32, 3) -> uint8 (n, 1024) grey levels, or (n, 1024, 3) for colour_real; raster order."""
    if mode == "colour_real":
        return np.ascontiguousarray(images.reshape(len(images), LENGTH, CHANNELS))
    return grey_from_rgb(images).reshape(len(images), LENGTH)


def input_record(mode: str, train_inputs: np.ndarray) -> dict[str, Any]:
    """The cache's input record: tokens, or reals with the train split's per-channel mean and std (0-255 scale)."""
    if mode == "grey_tokens":
        return {"kind": "tokens"}
    pixels = train_inputs.reshape(-1, 1 if train_inputs.ndim == 2 else CHANNELS).astype(np.float64)
    std = pixels.std(axis=0)
    if np.any(std == 0):
        raise DataError(f"{TFDS_NAME} train: a channel is constant (std 0); cannot normalise")
    return {"kind": "real", "d_input": pixels.shape[1], "mean": pixels.mean(axis=0).round(6).tolist(),
            "std": std.round(6).tolist()}


def build(options: dict[str, Any], out_dir: Path, log=print) -> dict[str, Any]:
    """Read cifar10 through tfds, split train 90/10, convert to the mode's pixel sequences."""
    from lra.build import prepare_command  # here: lra.build imports this module through lra.tasks

    rebuild = prepare_command("image", command_args(options), out_dir.parent)
    train_images, train_labels = read_images("train", options, rebuild)
    test_images, test_labels = read_images("test", options, rebuild)
    n_train = len(train_images) * 9 // 10
    if n_train == len(train_images):
        raise DataError(f"{TFDS_NAME} train has {len(train_images)} examples: too few for a 90/10 train/val split")
    images = {"train": train_images[:n_train], "val": train_images[n_train:], "test": test_images}
    labels = {"train": train_labels[:n_train], "val": train_labels[n_train:], "test": test_labels}
    mode = options["mode"]
    log(f"converting {', '.join(f'{len(v)} {k}' for k, v in images.items())} images ({mode})")
    arrays = {}
    for split in SPLITS:
        inputs = to_sequences(images[split], mode)
        arrays[split] = {"inputs": inputs, "lengths": np.full(len(inputs), LENGTH, np.int32),
                         "labels": labels[split]}
    record = input_record(mode, arrays["train"]["inputs"])
    vocabulary = [str(v) for v in range(256)] if mode == "grey_tokens" else None
    info = {"tfds": {"name": TFDS_NAME, "data_dir": options["tfds_data_dir"]},
            "split": f"train = tfds train[:{n_train}] (90%), val = train[{n_train}:], test = tfds test",
            "pixels": "raster order (row by row)",
            "grey": None if mode == "colour_real" else
            "tf.image.rgb_to_grayscale on uint8: saturate_cast((0.2989 R + 0.5870 G + 0.1140 B) / 255 * 255.5)"}
    return {"arrays": arrays, "vocabulary": vocabulary, "input": record, "n_classes": N_CLASSES, "info": info}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Image flags of `python -m lra.prepare image`."""
    parser.add_argument("--mode", choices=MODES, default="grey_tokens",
                        help="grey_tokens (LRA, default), grey_real (S4/S5), colour_real (LRU sCIFAR)")
    parser.add_argument("--tfds-data-dir", help="tfds data dir (default: tfds's, ~/tensorflow_datasets)")


def options_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """Options from parsed CLI flags."""
    return make_options(mode=args.mode, tfds_data_dir=args.tfds_data_dir)
