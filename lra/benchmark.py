"""What loading a large cached dataset costs: `python -m lra.benchmark load --dir DIR [--n 200000] [--length 16384]`

Writes a synthetic Path-X-sized dataset (uint8 (n, length) inputs, split 80/10/10, through the streaming path:
lra.cache.open_array + write_dataset, which keeps the files as written) unless DIR already holds it, then measures
in fresh subprocesses, each side by side on the same files:
  - lra.load_dataset (memory-mapped, cheap checks): seconds, and the resident memory (VmRSS) it adds;
  - one training batch of 32 from it: seconds, and resident memory added;
  - the full check, cache.verify(checksums=True) (what `python -m lra.prepare verify` does): seconds;
  - reading every array into memory instead (np.load without mmap, the cache format before version 2): seconds
    and resident memory added.
Prints one JSON object. The files were just written, so they are (mostly) in the page cache: times are for warm
reads; a cold disk adds its read time to the full check and the full read, not to the memory-mapped load.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from lra import cache

SPLIT_FRACTIONS = {"train": 0.8, "val": 0.1, "test": 0.1}
CHUNK_ROWS = 4096


def make_dataset(folder: Path, n: int, length: int, seed: int = 0) -> None:
    """A synthetic real-valued (Path-X-like) dataset of uint8 inputs, written through the streaming path."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    splits = {}
    start = 0
    for split, fraction in SPLIT_FRACTIONS.items():
        rows = int(n * fraction)
        inputs = cache.open_array(folder, split, "inputs", (rows, length), np.uint8)
        for a in range(0, rows, CHUNK_ROWS):
            b = min(a + CHUNK_ROWS, rows)
            inputs[a:b] = rng.integers(0, 256, (b - a, length), dtype=np.uint8)
        inputs.flush()
        splits[split] = {"inputs": inputs, "lengths": np.full(rows, length, np.int32),
                         "labels": (np.arange(start, start + rows) % 2).astype(np.int32)}
        start += rows
    manifest = {"task": "synthetic", "name": folder.name, "options": {"n": n, "length": length},
                "prepare_args": [], "input": {"kind": "real", "d_input": 1, "mean": [127.5], "std": [73.9]},
                "vocabulary": None, "vocab_size": None, "n_classes": 2, "max_len": length,
                "splits": {s: cache.split_summary(a, 2) for s, a in splits.items()}, "sources": {}, "task_info": {}}
    cache.write_dataset(folder, splits, manifest)


_MEASURE = r"""
import json, sys, time
from pathlib import Path
import numpy as np

def rss():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024

import grain  # imported before measuring: the iterator imports it lazily, and its import is ~150 MB
import lra
from lra import cache
folder, what = Path(sys.argv[1]), sys.argv[2]
before = rss()
start = time.perf_counter()
if what == "load":
    ds = lra.load_dataset(folder)
    load_s, after_load = time.perf_counter() - start, rss()
    start = time.perf_counter()
    batch = lra.train_batch(ds.splits["train"], 32, seed=0, step=0)
    out = {"load_s": load_s, "load_rss_added_bytes": after_load - before,
           "batch_s": time.perf_counter() - start, "batch_rss_added_bytes": rss() - after_load,
           "batch_shape": list(batch["inputs"].shape), "batch_dtype": str(batch["inputs"].dtype)}
elif what == "verify":
    manifest, problems = cache.verify(folder, checksums=True)
    assert not problems, problems
    out = {"verify_s": time.perf_counter() - start}
else:
    manifest = json.loads((folder / "manifest.json").read_text())
    arrays = [np.load(folder / name) for name in manifest["files"]]
    out = {"full_read_s": time.perf_counter() - start, "full_read_rss_added_bytes": rss() - before}
print(json.dumps(out))
"""


def measure(folder: Path, what: str) -> dict:
    """Run one measurement in a fresh interpreter (so resident memory starts from a clean process)."""
    result = subprocess.run([sys.executable, "-c", _MEASURE, str(folder), what], capture_output=True, text=True,
                            check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lra.benchmark", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=["load"])
    parser.add_argument("--dir", required=True, help="folder for the synthetic dataset (kept for reruns)")
    parser.add_argument("--n", type=int, default=200_000)
    parser.add_argument("--length", type=int, default=16_384)
    parser.add_argument("--skip-full-read", action="store_true", help="do not read every array into memory")
    args = parser.parse_args(argv)
    folder = Path(args.dir)
    made_s = None
    if not (folder / cache.MANIFEST).exists():
        start = time.perf_counter()
        make_dataset(folder, args.n, args.length)
        made_s = time.perf_counter() - start
    manifest = json.loads((folder / cache.MANIFEST).read_text())
    size = sum(meta["bytes"] for meta in manifest["files"].values())
    out = {"n": args.n, "length": args.length, "dataset_bytes": size, "write_s": made_s,
           **measure(folder, "load"), **measure(folder, "verify")}
    if not args.skip_full_read:
        out.update(measure(folder, "full_read"))
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
