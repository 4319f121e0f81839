"""Text (IMDB through tfds data sources, mocked): encodings, vocabulary, validation splits, options.

tfds.testing.mock_data serves data sources without TensorFlow: with num_examples it generates random reviews
(USE_CODE policy); with as_data_source_fn it serves the hand-written reviews below.
"""

import contextlib
import logging
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow_datasets as tfds
from absl import logging as absl_logging

import lra
from lra import build, encoding, text
from lra.errors import DataError

REPO = Path(__file__).resolve().parents[1]

TRAIN = [("A great film, truly great!", 1), ("Awful. Just awful...", 0), ("Café noir: très bien.", 1),
         ("Not good; not bad.", 0), ("I loved it <br /> a lot", 1), ("meh", 0), ("Great acting, great plot.", 1),
         ("Bad bad bad.", 0), ("Wonderful ☺", 1), ("Terrible script", 0)]
TEST = [("Good, but long.", 1), ("Boring ☹", 0), ("ünïcödé review", 1)]


@contextlib.contextmanager
def imdb(train=TRAIN, test=TEST, as_bytes=False):
    """tfds mocked to serve these (text, label) reviews from tfds.data_source('imdb_reviews', split=...)."""
    def example(t, label):
        return {"text": t.encode() if as_bytes else t, "label": np.int64(label)}

    splits = {"train": [example(*r) for r in train], "test": [example(*r) for r in test]}

    def as_data_source(builder, split, **kwargs):
        assert builder.name == "imdb_reviews", builder.name
        return splits[split]

    with tfds.testing.mock_data(as_data_source_fn=as_data_source):
        yield


def rows(split):
    """The unpadded token ids of every example of a split."""
    return [split["inputs"][i, : split["lengths"][i]].tolist() for i in range(len(split["labels"]))]


@pytest.mark.parametrize("as_bytes", [False, True])
def test_bytes_encoding_is_utf8(tmp_path, as_bytes):
    with imdb(as_bytes=as_bytes):
        ds = lra.get_dataset("text", encoding="bytes", max_len=20, data_dir=tmp_path)
    assert ds.path.name == "text-imdb-bytes-20-valtest" and ds.vocab_size == 256 and ds.d_input is None
    train = ds.splits["train"]
    assert train["inputs"].dtype == np.uint8 and train["inputs"].shape == (len(TRAIN), 20)
    assert rows(train) == [list(t.encode("utf-8")[:20]) for t, _ in TRAIN]
    assert train["labels"].tolist() == [label for _, label in TRAIN]
    # val_split="test": validation is the test split.
    for key in ("inputs", "lengths", "labels"):
        assert np.array_equal(ds.splits["val"][key], ds.splits["test"][key])
    assert rows(ds.splits["test"]) == [list(t.encode("utf-8")[:20]) for t, _ in TEST]


def test_chars_encoding_with_train_vocabulary_min_freq_and_eos(tmp_path):
    with imdb():
        ds = lra.get_dataset("text", encoding="chars", max_len=12, min_freq=2, append_eos=True, data_dir=tmp_path)
    assert ds.path.name == "text-imdb-chars-12-minfreq2-valtest-eos"
    kept = [t[:11] for t, _ in TRAIN]  # 11 characters + <eos>
    counts = {}
    for t in kept:
        for ch in t:
            counts[ch] = counts.get(ch, 0) + 1
    chars = sorted(c for c, n in counts.items() if n >= 2)
    vocab = ds.manifest["vocabulary"]
    assert vocab == [encoding.PAD, encoding.UNK, encoding.EOS] + chars and ds.vocab_size == len(vocab)
    ids = {c: i for i, c in enumerate(vocab)}
    for got, t in zip(rows(ds.splits["test"]), [t for t, _ in TEST]):
        assert got == [ids.get(c, 1) for c in t[:11]] + [2]
    assert "☹" not in vocab and "☺" not in vocab  # once in train (and cut), never in the vocabulary


def test_vocabulary_is_deterministic_across_processes(tmp_path):
    # PYTHONHASHSEED changes set/dict iteration order of strings; the vocabulary must not change with it.
    script = ("import sys, lra, tests.test_text as t\n"
              "with t.imdb():\n"
              "    ds = lra.get_dataset('text', encoding='chars', max_len=64, min_freq=1, data_dir=sys.argv[1])\n"
              "print('\\x1f'.join(ds.manifest['vocabulary']))\n")
    outputs = []
    for seed in ("1", "2"):
        result = subprocess.run([sys.executable, "-c", script, str(tmp_path / seed)], cwd=REPO, capture_output=True,
                                text=True, timeout=120, env={**os.environ, "PYTHONHASHSEED": seed})
        assert result.returncode == 0, result.stderr[-2000:]
        outputs.append(result.stdout.strip().splitlines()[-1])
    assert outputs[0] == outputs[1] and len(outputs[0].split("\x1f")) > 10


def test_train_holdout_validation(tmp_path):
    with imdb():
        ds = lra.get_dataset("text", encoding="bytes", max_len=40, val_split="train_holdout", data_dir=tmp_path)
    held = text.holdout_indices(len(TRAIN))
    assert len(held) == 1 and ds.path.name.endswith("-valholdout")  # 10% of 10
    expected_val = [list(TRAIN[i][0].encode()[:40]) for i in held]
    expected_train = [list(t.encode()[:40]) for i, (t, _) in enumerate(TRAIN) if i not in held]
    assert rows(ds.splits["val"]) == expected_val and rows(ds.splits["train"]) == expected_train
    assert rows(ds.splits["test"]) == [list(t.encode()[:40]) for t, _ in TEST]
    big = text.holdout_indices(25_000)
    assert len(big) == 2_500 and len(set(big.tolist())) == 2_500 and np.array_equal(big, text.holdout_indices(25_000))


def test_random_mock_data_prepares(tmp_path):
    # The plain tfds mock (random reviews, as the trainer smoke test uses).
    with tfds.testing.mock_data(num_examples=12):
        ds = lra.get_dataset("text", encoding="chars", max_len=32, min_freq=1, append_eos=True, data_dir=tmp_path)
    assert len(ds.splits["train"]["labels"]) == 12 and ds.splits["train"]["inputs"].shape == (12, 32)
    assert set(ds.splits["train"]["labels"].tolist()) <= {0, 1}
    lengths = ds.splits["train"]["lengths"]
    assert np.all(ds.splits["train"]["inputs"][np.arange(12), lengths - 1] == 2)  # every review ends with <eos>


def test_nul_byte_is_an_error(tmp_path):
    with imdb(train=TRAIN + [("bad\0review", 0)]), pytest.raises(DataError, match="NUL byte"):
        lra.get_dataset("text", encoding="bytes", data_dir=tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_get_dataset_does_not_download_and_names_the_prepare_command(tmp_path, monkeypatch, caplog):
    # No tfds data in tfds_data_dir (and no mock): get_dataset must not download, and says what to run.
    downloads = []
    monkeypatch.setattr(tfds.core.DatasetBuilder, "download_and_prepare", lambda *a, **k: downloads.append(a))
    empty = tmp_path / "tfds"
    verbosity = absl_logging.get_verbosity()
    with pytest.raises(DataError) as error, caplog.at_level("DEBUG"):
        lra.get_dataset("text", encoding="chars", max_len=4096, min_freq=15, append_eos=True, tfds_data_dir=empty,
                        data_dir=tmp_path / "d")
    message = str(error.value)
    assert downloads == [] and "no prepared imdb_reviews" in message and ".[data]" in message
    # tfds's own warnings ("Variant folder ... has no dataset_info.json") no longer come before our error line.
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []
    assert absl_logging.get_verbosity() == verbosity
    assert (f"python -m lra.prepare text --encoding chars --max-len 4096 --val-split test --min-freq 15 "
            f"--append-eos --tfds-data-dir {empty} --data-dir {tmp_path / 'd'}") in message
    assert not (tmp_path / "d").exists() or list((tmp_path / "d").iterdir()) == []


def test_a_failing_download_is_a_data_error_with_the_command(tmp_path, monkeypatch):
    def offline(*args, **kwargs):
        raise ConnectionError("no network")

    monkeypatch.setattr(tfds, "data_source", offline)
    with pytest.raises(DataError) as error:  # what `python -m lra.prepare text` reports offline
        build.prepare("text", text.make_options(), tmp_path, log=lambda m: None)
    message = str(error.value)
    assert "ConnectionError: no network" in message and ".[data]" in message
    assert f"python -m lra.prepare text --encoding bytes --max-len 1000 --val-split test --data-dir {tmp_path}" in message
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("kwargs, complaint", [
    ({"encoding": "words"}, "unknown Text encoding 'words'"), ({"val_split": "val"}, "unknown Text val_split"),
    ({"max_len": 1}, "max_len must be an integer >= 2"), ({"source": "release"}, "unknown Text source"),
    ({"mode": "grey"}, "unknown Text option.*'mode'.*valid options: source, encoding, max_len"),
])
def test_bad_options(tmp_path, kwargs, complaint):
    with pytest.raises(DataError, match=complaint):
        lra.get_dataset("text", data_dir=tmp_path, **kwargs)
