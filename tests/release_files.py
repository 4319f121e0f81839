"""Writers of small files in the exact LRA release formats, shared by the tests (import from a test module:
pytest puts tests/ on sys.path). The real releases cannot be downloaded on the development machine."""
from pathlib import Path

import numpy as np

from lra import retrieval


def write_aan(folder: Path, rows: dict, extra_lines: dict | None = None) -> Path:
    """new_aan_pairs.{train,eval,test}.tsv in the release format: no header, 5 tab-separated columns.

    rows: split ("train", "val", "test") -> list of (label, id1, id2, text1, text2) strings; extra_lines: split ->
    raw lines appended as they are (malformed rows). Returns folder.
    """
    folder.mkdir(parents=True, exist_ok=True)
    for split, name in retrieval.RELEASE_FILES.items():
        lines = ["\t".join(row) for row in rows[split]] + (extra_lines or {}).get(split, [])
        (folder / name).write_bytes(("\n".join(lines) + "\n").encode("utf-8"))
    return folder


def random_aan_rows(n_rows: int, seed: int = 0) -> dict:
    """Rows for write_aan: n_rows per split, labels alternating "0" / "1.0" (the release's labels are floats),
    texts of words with quotes and apostrophes (which are text in the release, not CSV quoting)."""
    rng = np.random.default_rng(seed)
    rows = {}
    for split in retrieval.RELEASE_FILES:
        rows[split] = []
        for i in range(n_rows):
            words = " ".join(rng.choice(["graph", "parse", '"tree"', "model's", "corpus."], 6))
            rows[split].append((["0", "1.0"][i % 2], f"id{i}", f"id{i + 1}", words, words[::-1]))
    return rows
