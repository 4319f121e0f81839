"""Text (LRA byte-level text classification): IMDB movie reviews, positive or negative.

Source: tensorflow-datasets `imdb_reviews` (plain_text: 25,000 train and 25,000 test reviews, label 0 = neg,
1 = pos), read through tfds data sources (lra/tfds_source.py), as LRA loaded it with tfds.
Encodings (lra/encoding.py): "bytes" (LRA: UTF-8 bytes, max_len 1000 in the LRA code, 4K in the paper) or "chars"
(S4/S5: characters with a train vocabulary, min_freq 15, <eos> appended, max_len 4096).
Validation: val_split "test" (LRA and S4/S5: the test set doubles as validation) or "train_holdout" (a fixed 10% of
train, chosen by a permutation seeded with HOLDOUT_SEED, held out of train; test stays untouched).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np

from lra import encoding, tfds_source
from lra import options as opts
from lra.errors import DataError

N_CLASSES = 2
SPLITS = ("train", "val", "test")
TFDS_NAME = "imdb_reviews"
VAL_SPLITS = ("test", "train_holdout")
HOLDOUT_FRACTION = 0.1
HOLDOUT_SEED = 0

OPTIONS = {"source": "tfds", "encoding": "bytes", "max_len": 1000, "val_split": "test", "min_freq": 15,
           "append_eos": False, "tfds_data_dir": None}


def make_options(**given) -> dict[str, Any]:
    """Validated, JSON-ready options; given: any of OPTIONS. Unknown or invalid: DataError.

    max_len: tokens per review, <eos> included (LRA code 1000, LRA paper 4000, S4/S5 4096; any length >= 2).
    min_freq: chars only. tfds_data_dir: where tfds keeps imdb_reviews (None: tfds's default, ~/tensorflow_datasets).
    """
    o = opts.resolve("Text", given, OPTIONS)
    opts.choice("Text", "source", o["source"], ("tfds",))
    enc = opts.choice("Text", "encoding", o["encoding"], encoding.ENCODINGS)
    result = {"source": "tfds", "encoding": enc, "max_len": opts.integer("Text", "max_len", o["max_len"], minimum=2),
              "val_split": opts.choice("Text", "val_split", o["val_split"], VAL_SPLITS),
              "append_eos": opts.flag("Text", "append_eos", o["append_eos"]),
              "tfds_data_dir": opts.folder(o["tfds_data_dir"])}
    if enc == "chars":
        result["min_freq"] = opts.integer("Text", "min_freq", o["min_freq"], minimum=1)
    return result


def dataset_name(options: dict[str, Any]) -> str:
    """Folder name: encodes everything that changes the arrays (not the tfds data dir)."""
    name = f"text-imdb-{options['encoding']}-{options['max_len']}"
    if options["encoding"] == "chars":
        name += f"-minfreq{options['min_freq']}"
    name += "-valtest" if options["val_split"] == "test" else "-valholdout"
    return name + ("-eos" if options["append_eos"] else "")


def command_args(options: dict[str, Any]) -> list[str]:
    """Arguments after `python -m lra.prepare text` that build these options."""
    args = ["--encoding", options["encoding"], "--max-len", str(options["max_len"]),
            "--val-split", options["val_split"]]
    if options["encoding"] == "chars":
        args += ["--min-freq", str(options["min_freq"])]
    if options["append_eos"]:
        args.append("--append-eos")
    if options["tfds_data_dir"]:
        args += ["--tfds-data-dir", options["tfds_data_dir"]]
    return args


def can_prepare(options: dict[str, Any]) -> str | None:
    """None if tfds already has imdb_reviews prepared (get_dataset never downloads), else why not."""
    return tfds_source.missing(TFDS_NAME, options["tfds_data_dir"])


def holdout_indices(n: int) -> np.ndarray:
    """Sorted indices of the train examples held out for validation (val_split="train_holdout")."""
    n_holdout = max(1, round(HOLDOUT_FRACTION * n))
    return np.sort(np.random.default_rng(HOLDOUT_SEED).permutation(n)[:n_holdout])


def read_reviews(split: str, options: dict[str, Any], rebuild: str) -> tuple[list[str], np.ndarray]:
    """(texts, labels int32) of one imdb_reviews split, in the data source's order."""
    source = tfds_source.data_source(TFDS_NAME, split, options["tfds_data_dir"], rebuild)
    texts, labels = [], []
    for example in tfds_source.examples(source):
        texts.append(tfds_source.as_text(example["text"]))
        labels.append(int(example["label"]))
    labels = np.asarray(labels, np.int32)
    if not texts or labels.min() < 0 or labels.max() >= N_CLASSES:
        raise DataError(f"{TFDS_NAME} {split}: {len(texts)} examples, labels {sorted(set(labels.tolist()))} "
                        f"(expected 0 and 1)")
    return texts, labels


def _encoder(options: dict[str, Any], train_texts: list[str]):
    """(encode(text) -> int32 ids, vocabulary, info)."""
    max_len, eos = options["max_len"], options["append_eos"]
    if options["encoding"] == "bytes":
        return (lambda t: encoding.encode_bytes(t.encode("utf-8"), max_len, eos)), encoding.byte_vocabulary(eos), {
            "encoding": "bytes: token id = byte value (UTF-8), 0 = <pad>" + (", 256 = <eos>" if eos else "")}
    counts = encoding.count_chars(encoding.truncate_chars(t, max_len, eos) for t in train_texts)
    vocab = encoding.CharVocabulary(counts, options["min_freq"])
    return (lambda t: vocab.encode(t, max_len, eos)), vocab.tokens, {
        "encoding": "chars: Unicode characters, vocabulary from the (truncated) train reviews", **vocab.info()}


def build(options: dict[str, Any], out_dir: Path, log=print) -> dict[str, Any]:
    """Read imdb_reviews train/test through tfds, encode, split validation; token sequences for the cache."""
    from lra.build import prepare_command  # here: lra.build imports this module through lra.tasks

    rebuild = prepare_command("text", command_args(options), out_dir.parent)  # out_dir is a temp folder in the root
    train_texts, train_labels = read_reviews("train", options, rebuild)
    test_texts, test_labels = read_reviews("test", options, rebuild)
    info: dict[str, Any] = {"tfds": {"name": TFDS_NAME, "data_dir": options["tfds_data_dir"]}}
    if options["val_split"] == "train_holdout":
        held = holdout_indices(len(train_texts))
        keep = np.setdiff1d(np.arange(len(train_texts)), held)
        val_texts, val_labels = [train_texts[i] for i in held], train_labels[held]
        train_texts, train_labels = [train_texts[i] for i in keep], train_labels[keep]
        info["validation"] = (f"{len(held)} train reviews held out: np.random.default_rng({HOLDOUT_SEED})"
                              f".permutation(n)[:{len(held)}]")
    else:
        val_texts, val_labels = test_texts, test_labels
        info["validation"] = "the test split (as LRA and S4/S5 do)"
    encode, vocabulary, vocab_info = _encoder(options, train_texts)
    info.update(vocab_info)
    log(f"encoding {len(train_texts)} / {len(val_texts)} / {len(test_texts)} reviews ({options['encoding']})")
    texts = {"train": train_texts, "val": val_texts, "test": test_texts}
    labels = {"train": train_labels, "val": val_labels, "test": test_labels}
    sequences = {}
    for split in SPLITS:
        try:
            sequences[split] = [encode(t) for t in texts[split]]
        except ValueError as e:  # a NUL byte (bytes encoding)
            raise DataError(f"{TFDS_NAME} {split}: {e}") from None
    return {"sequences": sequences, "labels": labels, "max_len": options["max_len"], "vocabulary": vocabulary,
            "input": {"kind": "tokens"}, "n_classes": N_CLASSES, "info": info}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Text flags of `python -m lra.prepare text`."""
    parser.add_argument("--encoding", choices=encoding.ENCODINGS, default=OPTIONS["encoding"],
                        help="bytes (LRA, default) or chars (S4/S5: train character vocabulary)")
    parser.add_argument("--max-len", type=int, default=OPTIONS["max_len"],
                        help="tokens per review, <eos> included (LRA code 1000, default; S4/S5 4096)")
    parser.add_argument("--val-split", choices=VAL_SPLITS, default="test",
                        help="validation on the test split (LRA, default) or on 10%% held out of train")
    parser.add_argument("--min-freq", type=int, default=OPTIONS["min_freq"],
                        help="chars: keep characters seen at least this often in train (default 15)")
    parser.add_argument("--append-eos", action="store_true", help="end every review with <eos> (S4/S5)")
    parser.add_argument("--tfds-data-dir", help="tfds data dir (default: tfds's, ~/tensorflow_datasets)")


def options_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """Options from parsed CLI flags."""
    return make_options(encoding=args.encoding, max_len=args.max_len, val_split=args.val_split,
                        min_freq=args.min_freq, append_eos=args.append_eos, tfds_data_dir=args.tfds_data_dir)
