"""The tasks the data package knows: a plain dict from task name to its module.

  listops (lra/listops.py), text (lra/text.py, IMDB), retrieval (lra/retrieval.py, AAN), image (lra/image.py,
  CIFAR-10), pathfinder (lra/pathfinder.py, Pathfinder at 32/64/128/256), pathx (lra/pathx.py, Pathfinder at 128)

A task module provides (see lra/listops.py for the reference implementation):
  N_CLASSES, SPLITS
  make_options(**options) -> dict                    its own keyword options (DATA[task] keys in configs/base.py),
                                                     validated, JSON-ready; unknown/invalid -> DataError (lra.options)
  dataset_name(options) -> str                       cache folder name, encodes the options
  command_args(options) -> list[str]                 `python -m lra.prepare <task> <args>` that builds them
  can_prepare(options) -> str | None                 None, or why get_dataset cannot prepare unattended
  build(options, out_dir, log) -> dict               "vocabulary" (list[str] | None for real inputs), "n_classes",
                                                     "info", "input" ({"kind": "tokens"} | {"kind": "real", "d_input",
                                                     "mean", "std"}) and either "sequences" + "labels" (+ "max_len"),
                                                     padded by lra.cache, or "arrays" {split: {key: ndarray}} already
                                                     padded (memmaps of out_dir/<split>.<key>.npy are not rewritten)
  add_arguments(parser), options_from_args(args)     its CLI flags
Adding a task = writing such a module and adding one line here.
"""

from lra import image, listops, pathfinder, pathx, retrieval, text

TASKS = {
    "listops": listops,
    "text": text,
    "retrieval": retrieval,
    "image": image,
    "pathfinder": pathfinder,
    "pathx": pathx,
}
