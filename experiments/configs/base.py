"""Fields shared by every model family's config. Each family file fills them and locks the result.

Sections map one-to-one onto the code that reads them:
  data   -> lra.get_dataset(**config.data)   (task + that task's options; each task validates its own keys)
  model  -> models.build_classifier(**config.model, ...)
  optim  -> experiments.optim.make_optimizer(config.optim, ...)
  train  -> the loop in experiments.trainer

A family file's get_config(arg) takes "<task>" (published full-scale settings) or "<task>_smoke" (a CPU run of
about a minute), optionally followed by ",<option>" (e.g. the ladder's rung); `parse_variant` splits it.
"""
import math

import ml_collections

TASKS = ("listops", "text", "retrieval", "image", "pathfinder", "pathx")

# Training-set sizes of the LRA tasks (experiments/published/lra_data.md), to turn epochs into steps.
# Pathfinder / Path-X: 80% of 200,000 images.
TRAIN_EXAMPLES = {"listops": 96_000, "text": 25_000, "retrieval": 147_086, "image": 45_000,
                  "pathfinder": 160_000, "pathx": 160_000}
N_CLASSES = {"listops": 10, "text": 2, "retrieval": 2, "image": 10, "pathfinder": 2, "pathx": 2}

_placeholder = ml_collections.config_dict.placeholder

# Full-scale data options per task (keyword arguments of lra.get_dataset after `task`). The S4/S5/LRU
# preprocessing conventions are the defaults (experiments/published/lra_data.md, "Two preprocessing conventions");
# the Transformer config switches to the LRA originals.
DATA = {
    "listops": dict(source="release", release_dir=_placeholder(str), append_eos=False, size="full", seed=0),
    # lra/text.py: S4/S5 characters (train vocabulary, min_freq 15, <eos>; max_len counts the <eos>); LRA: bytes, 1000.
    "text": dict(source="tfds", encoding="chars", max_len=4096, val_split="test", min_freq=15, append_eos=True,
                 tfds_data_dir=_placeholder(str)),
    # lra/retrieval.py: S4/S5 characters (train vocabulary, every character kept), 4000 per document incl. <eos>.
    "retrieval": dict(source="release", release_dir=_placeholder(str), encoding="chars", max_len=4000,
                      append_eos=True, min_freq=1, malformed="stop"),
    # lra/image.py: grey_real (S4/S5), grey_tokens (LRA), colour_real (LRU's coloured sCIFAR).
    "image": dict(source="tfds", mode="grey_real", tfds_data_dir=_placeholder(str)),
    "pathfinder": dict(source="release", release_dir=_placeholder(str), resolution=32, difficulty="hard",
                       encoding="real", size="full", seed=0),
    "pathx": dict(source="release", release_dir=_placeholder(str), difficulty="hard", encoding="real",
                  size="full", seed=0),
}

# Smoke data: what a CPU can prepare offline in seconds. Text and Image read tfds data (downloaded once, or
# tfds.testing.mock_data in the tests); Retrieval reads release files (the tests write small ones).
SMOKE_DATA = {
    "listops": dict(source="generated", size="small", seed=0, release_dir=_placeholder(str), append_eos=False),
    "text": dict(DATA["text"], max_len=256),
    "retrieval": dict(DATA["retrieval"], max_len=256),
    "image": dict(DATA["image"]),
    "pathfinder": dict(DATA["pathfinder"], source="generated", size="small"),
    "pathx": dict(DATA["pathx"], source="generated", size="small"),
}


def steps_for_epochs(task: str, epochs: int, batch_size: int) -> int:
    return epochs * math.ceil(TRAIN_EXAMPLES[task] / batch_size)


def epoch_training(c: ml_collections.ConfigDict, task: str, epochs: int, batch_size: int,
                   checkpoint_every: int = 2_000) -> None:
    """The training section of a full-scale variant given in epochs (in place): `epochs` epochs at `batch_size`
    on the task's train-set size, one evaluation per epoch, checkpoints at least every `checkpoint_every` steps."""
    c.train.batch_size = batch_size
    c.train.num_steps = steps_for_epochs(task, epochs, batch_size)
    c.train.eval_every = steps_for_epochs(task, 1, batch_size)
    c.train.checkpoint_every = min(c.train.eval_every, checkpoint_every)
    c.train.log_every = 100


def ssm_smoke_training(c: ml_collections.ConfigDict, task: str, listops_steps: int = 1000) -> None:
    """The training section of the S4D and S5 smoke variants (in place): ListOps timed on a CPU, other tasks
    300 steps (not timed on a CPU yet), Path-X (16,384 steps per sequence) fewer and smaller batches."""
    c.optim.warmup_steps = 50
    c.train.update(batch_size=32, eval_batch_size=128, num_steps=listops_steps if task == "listops" else 300,
                   eval_every=250, checkpoint_every=250, log_every=25)
    if task == "pathx":
        c.train.update(batch_size=8, eval_batch_size=16, num_steps=100, eval_every=50, checkpoint_every=50,
                       log_every=10)
        c.optim.warmup_steps = 10


def short_smoke_training(c: ml_collections.ConfigDict, batch: int, steps: int) -> None:
    """The training section of the selective and rotation smoke variants (in place): `steps` steps at `batch`,
    warmup a 30th of the run, evaluation and checkpoints 6 times per run, eval batches 4x larger."""
    c.optim.warmup_steps = steps // 30
    c.train.update(batch_size=batch, eval_batch_size=4 * batch, num_steps=steps,
                   eval_every=max(steps // 6, 1), checkpoint_every=max(steps // 6, 1), log_every=50)


def parse_variant(arg: str, family: str, options=()) -> tuple[str, bool, str | None]:
    """'<task>[_smoke][,<option>]' -> (task, smoke, option); ValueError listing what exists otherwise."""
    name, _, option = arg.partition(",")
    smoke = name.endswith("_smoke")
    task = name[: -len("_smoke")] if smoke else name
    known = ", ".join(f"{t}, {t}_smoke" for t in TASKS)
    if task not in TASKS:
        raise ValueError(f"unknown variant {arg!r} for {family}; choose one of: {known}"
                         + (f" (then ,<option> with option in {', '.join(options)})" if options else ""))
    if option and option not in options:
        raise ValueError(f"unknown option {option!r} in {arg!r} for {family}; "
                         + (f"choose one of: {', '.join(options)}" if options else "this family takes none"))
    return task, smoke, option or None


def base_config(task: str = "listops", smoke: bool = False) -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    c.seed = 0  # model init and dropout; the data order has its own seed (train.data_seed)

    c.data = ml_collections.ConfigDict()
    c.data.task = task
    c.data.update((SMOKE_DATA if smoke else DATA)[task])
    c.data.data_dir = _placeholder(str)  # else $LRA_DATA_DIR, else the user cache

    c.model = ml_collections.ConfigDict()
    c.model.layer = "lru"  # a key of models.LAYERS
    c.model.layer_args = ml_collections.ConfigDict()  # keyword arguments of that layer class
    c.model.d_model = 128
    c.model.n_layers = 6
    c.model.norm = "batch"
    c.model.prenorm = True
    c.model.activation = "half_glu2"
    c.model.dropout = 0.0
    c.model.pooling = "mean"
    # flax convention (running = momentum * running + (1 - momentum) * batch; flax's default 0.99). A PyTorch
    # momentum m is 1 - m here: PyTorch's default 0.1 (the S4 code is PyTorch) is 0.9. S5's code is JAX/flax, so
    # its value (0.9, given by the reference for Pathfinder only) is already in this convention.
    c.model.bn_momentum = 0.99
    # "bfloat16": activations and matmuls in bfloat16, parameters, norms, recurrences and their state in float32.
    c.model.dtype = "float32"

    c.optim = ml_collections.ConfigDict()
    c.optim.lr = 1e-3
    c.optim.recurrent_lr_factor = 1.0
    c.optim.weight_decay = 0.05
    c.optim.schedule = "cosine"  # experiments.optim.SCHEDULES: cosine | rsqrt (LRA Transformer) | constant
    c.optim.warmup_steps = 0
    c.optim.warmup_past_end = False  # True: warmup_steps > num_steps is intended (else a config error)
    c.optim.final_lr_factor = 0.0
    c.optim.b1 = 0.9
    c.optim.b2 = 0.999
    c.optim.eps = 1e-8
    c.optim.grad_clip = 1.0

    c.train = ml_collections.ConfigDict()
    c.train.batch_size = 32
    c.train.eval_batch_size = 64
    c.train.num_steps = 1000
    c.train.data_seed = 0
    # Length bucketing: e.g. (256, 512, 1024, 1536) pads each batch (of similar lengths, lra/iterator.py) to the
    # smallest boundary that fits instead of the task's max_len; () pads every batch to max_len.
    c.train.bucket_boundaries = ()
    c.train.log_every = 50
    c.train.eval_every = 500
    c.train.checkpoint_every = 500
    c.train.keep_checkpoints = 2  # latest checkpoints kept; the best-by-validation one is kept separately
    c.train.async_checkpointing = True
    return c
