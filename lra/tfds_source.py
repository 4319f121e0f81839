"""Reading tensorflow-datasets (IMDB, CIFAR-10) as random-access data sources, without TensorFlow.

``tfds.data_source`` reads the array_record files of a prepared tfds dataset with NumPy decoding only, so the
core install (no TensorFlow) can read them. Downloading and preparing them the first time runs the tfds builders,
some of which need TensorFlow (CIFAR-10's reads its archive with tf.io.gfile and encodes PNGs with tf): that is
the `data` extra (``pip install -e '.[data]'``, tensorflow-cpu). Tests mock tfds with
``tfds.testing.mock_data``, which serves random examples through the same data-source API without TensorFlow.
"""

from __future__ import annotations

import contextlib
from typing import Any, Iterator, Sequence

from absl import logging as absl_logging

from lra.errors import DataError

EXTRA_HINT = "install the data extra (pip install -e '.[data]', which adds tensorflow-cpu for the tfds builders)"


@contextlib.contextmanager
def tfds_quiet():
    """Hide tfds's absl log warnings (e.g. "Variant folder ... has no dataset_info.json" when it looks for a
    dataset that is not there) while it runs: our DataError then says the one thing that matters, in one line.
    tfds's own download progress is printed, not logged, so a real download still shows it."""
    verbosity = absl_logging.get_verbosity()
    absl_logging.set_verbosity(absl_logging.ERROR)
    try:
        yield
    finally:
        absl_logging.set_verbosity(verbosity)


def data_source(name: str, split: str, data_dir: str | None, rebuild: str) -> Sequence[dict[str, Any]]:
    """The tfds random-access source of name/split (downloaded and prepared in array_record format if missing).

    Raises DataError with what to do when TensorFlow is needed and missing, the dataset was prepared in another
    file format, or the download fails (e.g. offline); rebuild is the prepare command to show.
    """
    import tensorflow_datasets as tfds  # here, not at module import: tfds takes a second to import

    try:
        with tfds_quiet():
            return tfds.data_source(name, split=split, data_dir=data_dir, download=True)
    except ModuleNotFoundError as e:
        raise DataError(f"tfds needs {e.name!r} to download and prepare {name}: {EXTRA_HINT}, then run:\n"
                        f"  {rebuild}") from None
    except NotImplementedError as e:  # prepared earlier as tfrecord (e.g. by tfds.load)
        raise DataError(f"tfds has {name} in a format without random access ({e}); give another tfds data dir "
                        f"(--tfds-data-dir), where it will be prepared as array_record:\n  {rebuild}") from None
    except Exception as e:  # network errors, checksum errors, ...: tfds raises many types
        raise DataError(f"tfds could not provide {name} split {split!r} ({type(e).__name__}: {e}); on a machine "
                        f"with internet, {EXTRA_HINT} and run:\n  {rebuild}") from None


def missing(name: str, data_dir: str | None) -> str | None:
    """None if tfds has `name` prepared (array_record) in data_dir, else why not (for lra.get_dataset, which does
    not download: the download runs the tfds builders, which may import TensorFlow, and that belongs in the
    separate `python -m lra.prepare` process, not in a trainer holding an accelerator)."""
    import tensorflow_datasets as tfds

    try:
        with tfds_quiet():
            tfds.data_source(name, split="train", data_dir=data_dir, download=False)
    except Exception as e:  # tfds reports an unprepared dataset as NotImplementedError, AssertionError, ...
        where = data_dir or "tfds's default data dir (~/tensorflow_datasets)"
        first_line = str(e).strip().splitlines()[0] if str(e).strip() else ""
        return (f"tfds has no prepared {name} (array_record) in {where} ({type(e).__name__}: {first_line}); "
                f"on a machine with internet, {EXTRA_HINT} and run the command below once (it downloads {name})")
    return None


def examples(source: Sequence[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Every example of a data source in index order (one by one: tfds's mock has no working __getitems__)."""
    for i in range(len(source)):
        yield source[i]


def as_text(value) -> str:
    """A tfds Text feature as str (data sources give bytes or str depending on the tfds version)."""
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if hasattr(value, "item"):  # a 0-d numpy array of bytes
        return as_text(value.item())
    return str(value)
