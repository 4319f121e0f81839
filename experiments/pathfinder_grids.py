"""Draw the Pathfinder figures of lra/README.md: generated samples as the task sees them (read back from the
release layout by lra.pathfinder and stored in the cache), 8 of each label per resolution.

  python -m experiments.pathfinder_grids [--out lra/docs]
"""
import argparse
import tempfile
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import lra  # noqa: E402


def grid(task: str, data_dir: Path, out: Path, per_label: int = 8) -> Path:
    ds = lra.get_dataset(task, source="generated", size="tiny", encoding="tokens", data_dir=data_dir)
    R = int(round(ds.max_len ** 0.5))
    inputs, labels = ds.splits["train"]["inputs"], ds.splits["train"]["labels"]
    fig, axes = plt.subplots(2, per_label, figsize=(per_label * 1.3, 3.0), dpi=100)
    for row, label in enumerate((1, 0)):
        for col, i in enumerate(np.flatnonzero(labels == label)[:per_label]):
            ax = axes[row, col]
            ax.imshow(np.asarray(inputs[i]).reshape(R, R), cmap="gray", vmin=0, vmax=255, interpolation="nearest")
            ax.set_xticks([]), ax.set_yticks([])
        axes[row, 0].set_ylabel(f"label {label}\n({'connected' if label else 'not connected'})", fontsize=8)
    fig.suptitle(f"{task} {R}x{R}, generated (hard, seed 0), read back from the release layout", fontsize=9)
    fig.tight_layout()
    path = out / f"{task}{R}_samples.png"
    fig.savefig(path)
    plt.close(fig)
    return path


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default=str(Path(__file__).parent.parent / "lra" / "docs"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for task in ("pathfinder", "pathx"):
            path = grid(task, Path(tmp), Path(args.out))
            print(path, path.stat().st_size, "bytes")


if __name__ == "__main__":
    main()
