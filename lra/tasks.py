"""The tasks the data package knows: a plain dict from task name to its module.

A task module provides (see lra/listops.py for the reference implementation):
  N_CLASSES, SPLITS
  make_options(**get_dataset_kwargs) -> dict        validated, JSON-ready options
  dataset_name(options) -> str                       cache folder name, encodes the options
  command_args(options) -> list[str]                 `python -m lra.prepare <task> <args>` that builds them
  can_prepare(options) -> str | None                 None, or why get_dataset cannot prepare unattended
  build(options, out_dir, log) -> dict               sequences/labels per split, vocabulary, n_classes, info
  add_arguments(parser), options_from_args(args)     its CLI flags
Adding a task = writing such a module and adding one line here.
"""

from lra import listops, pathfinder, pathx

TASKS = {
    "listops": listops,
    "pathfinder": pathfinder,
    "pathx": pathx,
}
