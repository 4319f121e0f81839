"""Retrieval (LRA "document matching" on the ACL Anthology Network): does paper 1 cite paper 2?

Release files (lra_release/lra_release/tsv_data/new_aan_pairs.{train,eval,test}.tsv): no header; one pair per
line, five tab-separated columns: label (a float written "0", "1" or "1.0"), id1, id2, text1, text2. Quotes are
ordinary text characters (LRA read the files with quote handling off); a tab always separates columns.
LRA keeps the first 10,000 bytes of each text, then encodes and truncates to max_len (4000). The splits are
train <- train.tsv, val <- eval.tsv, test <- test.tsv (147,086 / 18,090 / 17,437 pairs in the release).

Each example is two documents: inputs/lengths and inputs2/lengths2, for the dual-encoder head
(models/classifier.py DualClassifier). The arrays are written straight into the cache folder (two passes over
each file: count, then encode), so memory stays small at the full 2 x 147k x 4000 size.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from lra import cache, encoding
from lra import options as opts
from lra.errors import DataError

N_CLASSES = 2
SPLITS = ("train", "val", "test")
RELEASE_FILES = {"train": "new_aan_pairs.train.tsv", "val": "new_aan_pairs.eval.tsv",
                 "test": "new_aan_pairs.test.tsv"}
# Where the TSVs may sit under --release-dir: the folder itself or the unpacked archive above it.
_RELEASE_SUBDIRS = (".", "tsv_data", "lra_release/tsv_data", "lra_release/lra_release/tsv_data")
LRA_TEXT_BYTES = 10_000  # LRA keeps this many bytes of each text before encoding
N_COLUMNS = 5
MALFORMED = ("stop", "skip")

OPTIONS = {"source": "release", "release_dir": None, "encoding": "bytes", "max_len": 4000, "append_eos": False,
           "min_freq": 1, "malformed": "stop"}


# ---------------------------------------------------------------------------------------------
# Reader
# ---------------------------------------------------------------------------------------------


def parse_row(line: bytes) -> tuple[int, bytes, bytes]:
    """(label, text1, text2) of one line (without its line ending); ValueError saying what is wrong."""
    fields = line.split(b"\t")
    if len(fields) != N_COLUMNS:
        raise ValueError(f"expected {N_COLUMNS} tab-separated columns (label, id1, id2, text1, text2), "
                         f"got {len(fields)}")
    try:
        value = float(fields[0].decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        raise ValueError(f"label {fields[0][:20].decode(errors='replace')!r} is not a number") from None
    if value not in (0.0, 1.0):
        raise ValueError(f"label {fields[0][:20].decode(errors='replace')!r} is not 0 or 1")
    text1, text2 = fields[3][:LRA_TEXT_BYTES], fields[4][:LRA_TEXT_BYTES]
    for name, text in (("text1", text1), ("text2", text2)):
        if b"\0" in text:  # corrupt text; also, byte 0 is the padding id of the bytes encoding
            raise ValueError(f"{name} has a NUL byte at byte {text.find(bytes(1))}")
    return int(value), text1, text2


def read_rows(path: Path, malformed: str = "stop", skipped: list[int] | None = None
              ) -> Iterator[tuple[int, int, bytes, bytes]]:
    """(line number, label, text1, text2) of every row of a release TSV (blank lines are skipped).

    malformed="stop": a bad row raises DataError naming the file and 1-based line; "skip": it is left out and
    its line number appended to `skipped`.
    """
    try:
        f = open(path, "rb")
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    with f:
        for line_no, line in enumerate(f, start=1):
            line = line.rstrip(b"\n").rstrip(b"\r")
            if not line.strip():
                continue
            try:
                label, text1, text2 = parse_row(line)
            except ValueError as e:
                if malformed == "stop":
                    raise DataError(f"{path}, line {line_no}: {e} (`--malformed skip`, or config.data.malformed="
                                    "'skip' in training, leaves such rows out)") from None
                if skipped is not None:
                    skipped.append(line_no)
                continue
            yield line_no, label, text1, text2


def find_release_files(release_dir: str | os.PathLike) -> dict[str, Path]:
    """Paths of new_aan_pairs.{train,eval,test}.tsv under release_dir (or its tsv_data folder)."""
    return opts.find_release_files(release_dir, _RELEASE_SUBDIRS, RELEASE_FILES)


# ---------------------------------------------------------------------------------------------
# Task plug-in
# ---------------------------------------------------------------------------------------------


def make_options(**given) -> dict[str, Any]:
    """Validated, JSON-ready options; given: any of OPTIONS. Unknown or invalid: DataError.

    encoding "bytes" (LRA) | "chars" (S4/S5: train-set character vocabulary with min_freq); max_len per document
    (<eos> included); malformed "stop" (default: DataError at the first bad row) | "skip" (count and leave out).
    """
    o = opts.resolve("Retrieval", given, OPTIONS)
    opts.choice("Retrieval", "source", o["source"], ("release",))
    enc = opts.choice("Retrieval", "encoding", o["encoding"], encoding.ENCODINGS)
    result = {"source": "release", "release_dir": opts.folder(o["release_dir"]), "encoding": enc,
              "max_len": opts.integer("Retrieval", "max_len", o["max_len"], minimum=2),
              "append_eos": opts.flag("Retrieval", "append_eos", o["append_eos"]),
              "malformed": opts.choice("Retrieval", "malformed", o["malformed"], MALFORMED)}
    if enc == "chars":
        result["min_freq"] = opts.integer("Retrieval", "min_freq", o["min_freq"], minimum=1)
    return result


def dataset_name(options: dict[str, Any]) -> str:
    """Folder name: encodes everything that changes the arrays (not the release path)."""
    name = f"retrieval-release-{options['encoding']}-{options['max_len']}"
    if options["encoding"] == "chars":
        name += f"-minfreq{options['min_freq']}"
    return name + ("-eos" if options["append_eos"] else "") + ("-skipbad" if options["malformed"] == "skip" else "")


def command_args(options: dict[str, Any]) -> list[str]:
    """Arguments after `python -m lra.prepare retrieval` that build these options."""
    args = ["--release-dir", options["release_dir"] or "PATH/TO/lra_release/lra_release/tsv_data",
            "--encoding", options["encoding"], "--max-len", str(options["max_len"])]
    if options["encoding"] == "chars":
        args += ["--min-freq", str(options["min_freq"])]
    if options["append_eos"]:
        args.append("--append-eos")
    if options["malformed"] != "stop":
        args += ["--malformed", options["malformed"]]
    return args


def can_prepare(options: dict[str, Any]) -> str | None:
    """None if build() can run unattended, else why not (shown above the prepare command)."""
    return opts.release_missing("Retrieval (AAN)", options["release_dir"], find_release_files,
                                "lra_release/lra_release/tsv_data")


def _encoder(options: dict[str, Any], paths: dict[str, Path], log):
    """(encode(raw text bytes) -> int32 ids, vocabulary list, vocabulary info) for the options."""
    max_len, eos = options["max_len"], options["append_eos"]
    if options["encoding"] == "bytes":
        return (lambda raw: encoding.encode_bytes(raw, max_len, eos)), encoding.byte_vocabulary(eos), {
            "encoding": "bytes: token id = byte value (UTF-8), 0 = <pad>" + (", 256 = <eos>" if eos else "")}
    log(f"counting characters in {paths['train']}")
    texts = (encoding.truncate_chars(text.decode("utf-8", errors="replace"), max_len, eos)
             for _, _, text1, text2 in read_rows(paths["train"], options["malformed"]) for text in (text1, text2))
    vocab = encoding.CharVocabulary(encoding.count_chars(texts), options["min_freq"])
    encode = lambda raw: vocab.encode(raw.decode("utf-8", errors="replace"), max_len, eos)
    return encode, vocab.tokens, {"encoding": "chars: UTF-8 decoded (invalid bytes -> U+FFFD), train vocabulary",
                                  **vocab.info()}


def _write_split(path: Path, split: str, options: dict[str, Any], encode, dtype, out_dir: Path, log):
    """Count the rows, then encode them straight into memory-mapped arrays; returns (arrays, skipped lines)."""
    skipped: list[int] = []
    n = sum(1 for _ in read_rows(path, options["malformed"], skipped))
    if n == 0:
        raise DataError(f"{path}: no examples")
    log(f"{split}: encoding {n} pairs from {path}" + (f" ({len(skipped)} malformed rows skipped)" if skipped else ""))
    max_len = options["max_len"]
    arrays = {key: cache.open_array(out_dir, split, key, (n, max_len), dtype) for key in ("inputs", "inputs2")}
    arrays.update({key: cache.open_array(out_dir, split, key, (n,), np.int32) for key in ("lengths", "lengths2")})
    labels = np.empty(n, np.int32)
    for i, (line_no, label, text1, text2) in enumerate(read_rows(path, options["malformed"])):
        for suffix, raw in (("", text1), ("2", text2)):
            ids = encode(raw)
            arrays["inputs" + suffix][i, : len(ids)] = ids
            arrays["lengths" + suffix][i] = len(ids)
        labels[i] = label
    for array in arrays.values():
        array.flush()
    arrays["labels"] = labels
    return arrays, skipped


def build(options: dict[str, Any], out_dir: Path, log=print) -> dict[str, Any]:
    """Read the three release TSVs into two-document arrays in out_dir; return them with vocabulary and info."""
    paths = find_release_files(options["release_dir"])
    log(f"reading {paths['train'].parent}")
    encode, vocabulary, vocab_info = _encoder(options, paths, log)
    dtype = cache.token_dtype(len(vocabulary))
    splits, skipped = {}, {}
    for split in SPLITS:
        splits[split], lines = _write_split(paths[split], split, options, encode, dtype, out_dir, log)
        skipped[split] = {"count": len(lines), "first_lines": lines[:20]}
    info = {**vocab_info, "truncation": f"first {LRA_TEXT_BYTES} bytes of each text, then max_len tokens "
                                        "per document (<eos> included)",
            "malformed_rows_skipped": skipped, "source_files": {split: str(p) for split, p in paths.items()}}
    return {"arrays": splits, "vocabulary": vocabulary, "input": {"kind": "tokens"}, "n_classes": N_CLASSES,
            "info": info}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Retrieval flags of `python -m lra.prepare retrieval`."""
    parser.add_argument("--release-dir", required=True,
                        help="folder with new_aan_pairs.{train,eval,test}.tsv (or lra_release above it)")
    parser.add_argument("--encoding", choices=encoding.ENCODINGS, default=OPTIONS["encoding"],
                        help="bytes (LRA, default) or chars (S4/S5: train character vocabulary)")
    parser.add_argument("--max-len", type=int, default=OPTIONS["max_len"],
                        help="tokens per document, <eos> included (default 4000)")
    parser.add_argument("--min-freq", type=int, default=OPTIONS["min_freq"],
                        help="chars: keep characters seen at least this often in train (default 1)")
    parser.add_argument("--append-eos", action="store_true", help="end every document with <eos> (S4/S5)")
    parser.add_argument("--malformed", choices=MALFORMED, default="stop",
                        help="a malformed row stops preparation (default) or is skipped and counted")


def options_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """Options from parsed CLI flags."""
    return make_options(release_dir=args.release_dir, encoding=args.encoding, max_len=args.max_len,
                        min_freq=args.min_freq, append_eos=args.append_eos, malformed=args.malformed)
