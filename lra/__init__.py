"""Long Range Arena data: task readers and generators, the cached format, and the batch iterator.

  ds = lra.get_dataset("listops", source="generated", size="small", seed=0)
  batch = lra.train_batch(ds.splits["train"], batch_size=32, seed=0, step=0)
  for batch in lra.eval_batches(ds.splits["val"], batch_size=64): ...

Prepare data from the command line with ``python -m lra.prepare <task> ...`` (see lra/prepare.py).
"""

from lra.dataset import Dataset, get_dataset, load_dataset
from lra.errors import DataError
from lra.iterator import eval_batches, num_eval_batches, train_batch, train_batches
from lra.build import default_data_dir, prepare
from lra.tasks import TASKS

__all__ = [
    "TASKS",
    "DataError",
    "Dataset",
    "default_data_dir",
    "eval_batches",
    "get_dataset",
    "load_dataset",
    "num_eval_batches",
    "prepare",
    "train_batch",
    "train_batches",
]
