"""Pathfinder (LRA): is there a path between the two circles? Release-layout reader and the task plug-in.

Images are grey PNGs in the LRA release layout, written identically by the offline generator
(lra/pathfinder_gen.py), so one reader serves both:

  <release_dir>/pathfinder<R>/<difficulty folder>/imgs/<j>/sample_<i>.png
  <release_dir>/pathfinder<R>/<difficulty folder>/metadata/<j>.npy   TEXT, one line per image, whitespace
      separated: field 0 = sub-folder (imgs/<j>), field 1 = file name, field 3 = label (0/1)

difficulty: easy = curv_baseline (contour length 6), intermediate = curv_contour_length_9, hard =
curv_contour_length_14 (LRA's choice, the default). A metadata line whose file is missing, an empty PNG (the
release has one: pathfinder32/curv_baseline/imgs/0/sample_172.png) and a PNG that cannot be decoded are skipped
and counted (manifest task_info.skipped, and one prepare log line; the undecodable files are listed in
task_info.unreadable_files). A second metadata line for an image already listed is dropped with one warning. A
PNG of the wrong size is a DataError naming the file: it means the folder is not the resolution asked for; so is
a PNG that is not 8-bit greyscale (16-bit, colour). A malformed metadata line is a DataError naming the file and
line.

Split: 80/10/10 of the readable images by a permutation seeded with `seed` (S4's convention: LRA's own code split
in file order), recorded in the manifest (counts, seed, sha256 of each split's file list). Each image is flattened
row-major to a sequence of R*R pixels stored as uint8. encoding "tokens": pixel values 0..255 are tokens (LRA,
vocab 256); "real": one real channel normalised at batch time with the train split's pixel mean and std (S4/S5).

Streaming: each split's inputs are written straight into <split>.inputs.npy (np.lib.format.open_memmap), filled
READ_CHUNK images at a time, so preparation holds at most READ_CHUNK decoded images in memory (plus one list of
file names and labels): 1024 x 128 x 128 bytes = 16 MiB for Path-X; pixel_stats adds STATS_CHUNK images as int64.
"""

from __future__ import annotations

import argparse
import hashlib
import math
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

from lra import options as opts
from lra import pathfinder_gen
from lra.errors import DataError

N_CLASSES = 2
SPLITS = ("train", "val", "test")
SPLIT_FRACTIONS = (0.8, 0.1, 0.1)
RESOLUTIONS = pathfinder_gen.RESOLUTIONS
DIFFICULTIES = tuple(pathfinder_gen.DIFFICULTY_FOLDERS)
ENCODINGS = ("tokens", "real")
SOURCES = ("generated", "release")
READ_CHUNK = 1024  # decoded images held in memory at once while preparing
VOCAB = [str(v) for v in range(256)]  # "tokens" encoding: a pixel's value is its token id


# ---------------------------------------------------------------------------------------------
# Reader
# ---------------------------------------------------------------------------------------------


def find_folder(release_dir: str | os.PathLike, resolution: int, difficulty: str) -> Path:
    """The difficulty folder (holding metadata/ and imgs/) under release_dir, which may be that folder itself
    (named as the difficulty asks), pathfinder<R>, or the unpacked archive above it. DataError listing where it
    looked otherwise."""
    root = Path(release_dir).expanduser()
    sub = Path(f"pathfinder{resolution}") / pathfinder_gen.DIFFICULTY_FOLDERS[difficulty]
    candidates = [root, root / sub.name, root / sub, root / "lra_release" / sub,
                  root / "lra_release" / "lra_release" / sub]
    for folder in candidates:
        if (folder / "metadata").is_dir() and folder.name == sub.name:
            return folder.resolve()
    raise DataError(f"{root}: no {sub}/metadata folder there (looked in {', '.join(str(c) for c in candidates)})")


def _metadata_files(folder: Path) -> list[Path]:
    """metadata/<j>.npy in numeric order of j (the release's order)."""
    files = [f for f in (folder / "metadata").iterdir() if f.suffix == ".npy" and not f.name.startswith(".")]
    return sorted(files, key=lambda f: (0, int(f.stem)) if f.stem.isdigit() else (1, f.stem))


def read_metadata(folder: str | os.PathLike, log=print) -> tuple[list[tuple[Path, int]], dict[str, int]]:
    """[(png path, label)] of every listed image whose file exists and is not empty, in metadata order, and
    counts of the skipped ones: {"missing": n, "empty": n, "duplicate": n}. DataError for a malformed line (file
    and line).

    A line naming an image already listed (same sub-folder and file) is dropped with one log line giving the
    count per metadata file: kept, the image would be read twice and could land in train and test at once (the
    release has no such line; a hand-made folder can). The same image listed with two labels is a DataError
    naming both lines.
    """
    folder = Path(folder)
    entries, skipped = [], {"missing": 0, "empty": 0, "duplicate": 0}
    first_line: dict[Path, tuple[Path, int, int]] = {}  # image -> (metadata file, line, label) of its first line
    duplicates: dict[str, int] = {}  # metadata file -> duplicate lines dropped
    files = _metadata_files(folder)
    if not files:
        raise DataError(f"{folder / 'metadata'}: no <j>.npy metadata files")
    for meta in files:
        try:
            text = meta.read_text(encoding="utf-8")
        except UnicodeDecodeError as e:
            raise DataError(f"{meta}: not a text metadata file ({e.reason} at byte {e.start})") from None
        for line_no, line in enumerate(text.splitlines(), start=1):
            fields = line.split()
            if not fields:
                continue
            if len(fields) < 4:
                raise DataError(f"{meta}, line {line_no}: expected at least 4 fields (folder, file, index, label), "
                                f"got {len(fields)}")
            try:
                label = int(float(fields[3]))
            except ValueError:
                raise DataError(f"{meta}, line {line_no}: label {fields[3]!r} is not a number") from None
            if label not in (0, 1) or float(fields[3]) != label:
                raise DataError(f"{meta}, line {line_no}: label {fields[3]!r} is not 0 or 1")
            path = folder / fields[0] / fields[1]
            if path in first_line:
                where, first_no, first_label = first_line[path]
                if first_label != label:
                    raise DataError(f"{meta}, line {line_no}: {fields[0]}/{fields[1]} has label {label}, but "
                                    f"{where}, line {first_no} gives it label {first_label}; keep one of the lines")
                duplicates[str(meta)] = duplicates.get(str(meta), 0) + 1
                continue
            first_line[path] = (meta, line_no, label)
            try:
                size = path.stat().st_size
            except FileNotFoundError:
                skipped["missing"] += 1
                continue
            if size == 0:
                skipped["empty"] += 1
                continue
            entries.append((path, label))
    if duplicates:
        skipped["duplicate"] = sum(duplicates.values())
        log(f"warning: dropped {skipped['duplicate']} metadata line(s) naming an image already listed (the first "
            f"line is kept): {', '.join(f'{name} ({n})' for name, n in duplicates.items())}")
    return entries, skipped


def read_png(path: Path, resolution: int) -> np.ndarray | None:
    """uint8 (R, R) grey pixels, or None if the file cannot be decoded.

    DataError naming the file if it is not R x R, or not 8-bit greyscale (PIL mode "L", what the release and the
    generator write; lra_data.md): converting a 16-bit or colour image would silently change its pixels (clip to
    255, mix channels), and such a file means the folder is not a Pathfinder release.
    """
    try:
        with Image.open(path) as img:
            img.load()
            if img.size != (resolution, resolution):
                raise DataError(f"{path}: image is {img.size[0]}x{img.size[1]}, expected {resolution}x{resolution} "
                                f"(is --resolution right for this folder?)")
            if img.mode != "L":
                raise DataError(f"{path}: a PNG of mode {img.mode} ({MODE_NAMES.get(img.mode, 'not 8-bit grey')}); "
                                "Pathfinder images are 8-bit greyscale (mode L), as in the LRA release. Convert "
                                "the folder's images to 8-bit grey (e.g. PIL's Image.convert('L')) if that is "
                                "what you mean")
            return np.asarray(img, dtype=np.uint8)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        return None


MODE_NAMES = {"1": "1-bit", "P": "palette colour", "LA": "grey with alpha", "RGB": "colour", "RGBA": "colour with alpha",
              "I": "32-bit integer", "I;16": "16-bit grey", "I;16B": "16-bit grey", "F": "32-bit float"}
MIN_IMAGES = 10  # the smallest n whose rounded 80/10/10 split leaves no split empty


def split_indices(n: int, seed: int) -> dict[str, np.ndarray]:
    """80/10/10 of range(n) by a permutation seeded with `seed`; each split sorted (files read in order)."""
    order = np.random.default_rng([seed, 0x5917]).permutation(n)
    n_train, n_val = int(round(n * SPLIT_FRACTIONS[0])), int(round(n * SPLIT_FRACTIONS[1]))
    parts = np.split(order, [n_train, n_train + n_val])
    return {split: np.sort(part) for split, part in zip(SPLITS, parts)}


def write_split(path: Path, entries: list[tuple[Path, int]], resolution: int):
    """Decode `entries` into a new uint8 (n, R*R) file at `path`, READ_CHUNK images at a time.

    Returns (inputs opened read-only with mmap_mode='r', labels int32 (n,), the undecodable PNGs skipped).
    When some PNG cannot be decoded the file is rewritten without its row (again chunk by chunk).
    """
    L = resolution * resolution
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.uint8, shape=(len(entries), L))
    labels, row, bad = np.zeros(len(entries), np.int32), 0, []
    buf = np.empty((READ_CHUNK, L), np.uint8)
    for start in range(0, len(entries), READ_CHUNK):
        k = 0
        for png, label in entries[start:start + READ_CHUNK]:
            pixels = read_png(png, resolution)
            if pixels is None:
                bad.append(png)
                continue
            buf[k] = pixels.reshape(-1)
            labels[row + k] = label
            k += 1
        out[row:row + k] = buf[:k]
        out.flush()
        row += k
    del out
    if bad:  # rare: copy the filled rows into a file of the right length
        src = np.load(path, mmap_mode="r")
        tmp = path.with_name(path.name + ".tmp.npy")
        dst = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=(row, L))
        for start in range(0, row, READ_CHUNK):
            end = min(start + READ_CHUNK, row)
            dst[start:end] = src[start:end]
        dst.flush()
        del dst, src
        os.replace(tmp, path)
    return np.load(path, mmap_mode="r"), labels[:row], bad


STATS_CHUNK = 64  # images per histogram update: 64 x 16,384 pixels as intp = 8 MiB for Path-X


def pixel_stats(inputs: np.ndarray) -> tuple[float, float]:
    """Mean and standard deviation of all pixels of a non-empty uint8 (n, L) array: an exact histogram of the 256
    values (STATS_CHUNK images at a time, so memory stays bounded), then the two-pass moments from it."""
    counts = np.zeros(256, np.int64)
    for start in range(0, len(inputs), STATS_CHUNK):
        counts += np.bincount(np.asarray(inputs[start:start + STATS_CHUNK]).ravel(), minlength=256)
    values = np.arange(256, dtype=np.float64)
    mean = float(counts @ values / counts.sum())
    return mean, math.sqrt(float(counts @ (values - mean) ** 2 / counts.sum()))


SHOW_UNREADABLE = 5  # unreadable PNGs named in the prepare log (all of them go into the manifest)


def unreadable_message(pngs: list[Path], folder: Path) -> str:
    """One log line for the PNGs that did not decode: the count, the first SHOW_UNREADABLE, where the rest are."""
    shown = ", ".join(str(png.relative_to(folder)) for png in pngs[:SHOW_UNREADABLE])
    more = (f" ... and {len(pngs) - SHOW_UNREADABLE} more (all listed in the manifest's task_info.unreadable_files)"
            if len(pngs) > SHOW_UNREADABLE else "")
    return f"skipped {len(pngs)} PNG(s) that do not decode, in {folder}: {shown}{more}"


def _list_digest(entries: list[tuple[Path, int]], root: Path) -> str:
    """sha256 of the split's file list (paths relative to the difficulty folder, one per line)."""
    digest = hashlib.sha256()
    for png, label in entries:
        digest.update(f"{png.relative_to(root)} {label}\n".encode())
    return digest.hexdigest()


# ---------------------------------------------------------------------------------------------
# Task plug-in (shared by pathfinder and pathx; see lra/tasks.py)
# ---------------------------------------------------------------------------------------------


OPTION_DEFAULTS = {"source": "generated", "release_dir": None, "resolution": 32, "difficulty": "hard",
                   "encoding": "real", "size": "small", "seed": 0}


def make_options(**options) -> dict[str, Any]:
    """Validated, JSON-ready options from exactly the keys of OPTION_DEFAULTS (experiments/configs/base.py
    DATA["pathfinder"]); DataError naming an unknown key or bad value and the valid ones."""
    return resolve_options("pathfinder", options, OPTION_DEFAULTS)


def resolve_options(task: str, given: dict[str, Any], defaults: dict[str, Any]) -> dict[str, Any]:
    """Options of `task` (pathfinder, or pathx whose defaults lack resolution: it is always 128)."""
    o = opts.resolve(task, given, defaults)
    options = {"source": opts.choice(task, "source", o["source"], SOURCES),
               "resolution": opts.choice(task, "resolution", o["resolution"], RESOLUTIONS)
               if "resolution" in defaults else 128,
               "difficulty": opts.choice(task, "difficulty", o["difficulty"], DIFFICULTIES),
               "encoding": opts.choice(task, "encoding", o["encoding"], ENCODINGS),
               "seed": opts.integer(task, "seed", o["seed"])}
    if options["source"] == "generated":
        options["size"] = opts.choice(task, "size", o["size"], tuple(pathfinder_gen.SIZES))
    else:
        options["release_dir"] = opts.folder(o["release_dir"])
    return options


def dataset_name(options: dict[str, Any], prefix: str | None = None) -> str:
    """Folder name: everything that changes the arrays or their record (not the release path)."""
    prefix = prefix or f"pathfinder{options['resolution']}"
    source = f"generated-{options['size']}" if options["source"] == "generated" else "release"
    return f"{prefix}-{options['difficulty']}-{source}-seed{options['seed']}-{options['encoding']}"


def command_args(options: dict[str, Any], with_resolution: bool = True) -> list[str]:
    """Arguments after `python -m lra.prepare pathfinder` (or pathx) that build these options."""
    if options["source"] == "generated":
        args = ["--generate", "--size", options["size"]]
    else:
        args = ["--release-dir", options["release_dir"] or "PATH/TO/lra_release"]
    if with_resolution:
        args += ["--resolution", str(options["resolution"])]
    return args + ["--difficulty", options["difficulty"], "--encoding", options["encoding"],
                   "--seed", str(options["seed"])]


def can_prepare(options: dict[str, Any]) -> str | None:
    """None if build() can run unattended, else why not (shown above the prepare command)."""
    if options["source"] == "generated":
        return None
    return opts.release_missing(f"Pathfinder-{options['resolution']}", options["release_dir"],
                                lambda d: find_folder(d, options["resolution"], options["difficulty"]),
                                "the unpacked lra_release folder")


def build(options: dict[str, Any], out_dir: Path, log=print) -> dict[str, Any]:
    """Generate (or find) the PNGs, read them into uint8 split arrays written in place (streaming), and return
    them with the input record (see the module docstring)."""
    R, difficulty, seed = options["resolution"], options["difficulty"], options["seed"]
    info: dict[str, Any] = {"layout": "pathfinder<R>/<difficulty folder>/imgs/<j>/sample_<i>.png + metadata/<j>.npy",
                            "difficulty_folder": pathfinder_gen.DIFFICULTY_FOLDERS[difficulty],
                            "pixels": "row-major, uint8"}
    source_root = out_dir / "source"
    if options["source"] == "generated":
        params = pathfinder_gen.lra_params(R, difficulty)
        n = pathfinder_gen.SIZES[options["size"]][R]
        folder = pathfinder_gen.generate(source_root, params, n, seed, difficulty=difficulty, log=log)
        info["generator"] = {"procedure": "Linsley et al. 2018 with LRA parameters (lra/pathfinder_gen.py)",
                             "seed": seed, "n_images": n, "chunk_size": pathfinder_gen.chunk_size(R),
                             **{k: v for k, v in vars(params).items()}}
    else:
        folder = find_folder(options["release_dir"], R, difficulty)
        log(f"reading {folder}")
        info["release_folder"] = str(folder)
    entries, skipped = read_metadata(folder, log)
    if not entries:
        raise DataError(f"{folder}: no readable images listed in metadata/")
    if len(entries) < MIN_IMAGES:
        raise DataError(f"{folder}: {len(entries)} image(s) listed in metadata/, too few for the 80/10/10 split "
                        f"(every split needs one: at least {MIN_IMAGES})")
    parts = split_indices(len(entries), seed)
    arrays, undecodable, record = {}, [], {}
    for split in SPLITS:
        split_entries = [entries[i] for i in parts[split]]
        inputs, labels, bad = write_split(out_dir / f"{split}.inputs.npy", split_entries, R)
        undecodable += bad
        arrays[split] = {"inputs": inputs, "labels": labels,
                         "lengths": np.full(len(labels), R * R, np.int32)}
        record[split] = {"n": len(labels), "files_sha256": _list_digest(split_entries, folder)}
    skipped["unreadable"] = len(undecodable)
    if undecodable:
        log(unreadable_message(sorted(undecodable), folder))
    if empty := [split for split in SPLITS if not len(arrays[split]["labels"])]:
        raise DataError(f"{folder}: the {'/'.join(empty)} split(s) got no readable image ({len(entries)} listed, "
                        f"{len(undecodable)} could not be decoded; see the skipped files above)")
    info["skipped"] = skipped
    if undecodable:
        info["unreadable_files"] = [str(png.relative_to(folder)) for png in sorted(undecodable)]
    info["split"] = {"method": "seeded permutation of the readable images, 80/10/10", "seed": seed,
                     "fractions": list(SPLIT_FRACTIONS), **record}
    log(f"read {sum(len(a['labels']) for a in arrays.values())} images; skipped {skipped['missing']} missing, "
        f"{skipped['empty']} empty, {skipped['unreadable']} unreadable, {skipped['duplicate']} duplicate")
    if options["encoding"] == "tokens":
        vocabulary, input_record = list(VOCAB), {"kind": "tokens"}
    else:
        mean, std = pixel_stats(arrays["train"]["inputs"])
        vocabulary, input_record = None, {"kind": "real", "d_input": 1, "mean": [float(mean)], "std": [float(std)]}
    if options["source"] == "generated" and options["size"] == "full":
        shutil.rmtree(source_root)  # 200k PNGs: regenerable from the seed, not worth their disk blocks
        info["generated_pngs"] = "removed after reading (regenerate with the same seed)"
    return {"arrays": arrays, "vocabulary": vocabulary, "n_classes": N_CLASSES, "input": input_record,
            "info": info}


def add_arguments(parser: argparse.ArgumentParser, with_resolution: bool = True) -> None:
    """Flags of `python -m lra.prepare pathfinder` (and pathx, without --resolution)."""
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--release-dir", help="unpacked lra_release (or its pathfinder<R> or difficulty folder)")
    source.add_argument("--generate", action="store_true", help="generate offline (Linsley et al. 2018, seeded)")
    if with_resolution:
        parser.add_argument("--resolution", type=int, choices=RESOLUTIONS, default=32, help="image side (default 32)")
    parser.add_argument("--difficulty", choices=DIFFICULTIES, default="hard",
                        help="contour length 6 / 9 / 14 (default hard, as LRA)")
    parser.add_argument("--encoding", choices=ENCODINGS, default="real",
                        help="tokens: pixels as tokens, vocab 256 (LRA); real: normalised (S4/S5, default)")
    sizes = pathfinder_gen.SIZES
    resolutions = RESOLUTIONS if with_resolution else (128,)
    per_size = "; ".join(f"{size} " + ", ".join(f"{sizes[size][r]:,}" + (f" at {r}" if with_resolution else "")
                                                  for r in resolutions) for size in sizes)
    parser.add_argument("--size", choices=sorted(sizes), default="small",
                        help=f"how many images to generate (default small): {per_size}")
    parser.add_argument("--seed", type=int, default=0, help="generator and split seed (default 0)")


def options_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """Options from parsed CLI flags."""
    common = dict(difficulty=args.difficulty, encoding=args.encoding, seed=args.seed, resolution=args.resolution)
    if args.generate:
        return make_options(source="generated", size=args.size, **common)
    return make_options(source="release", release_dir=args.release_dir, **common)
