"""Fields shared by every model family's config. Each family file fills them and locks the result.

Sections map one-to-one onto the code that reads them:
  data   -> lra.get_dataset(**config.data)
  model  -> models.build_classifier(**config.model, ...)
  optim  -> experiments.optim.make_optimizer(config.optim, ...)
  train  -> the loop in experiments.trainer
"""
import math

import ml_collections

# Training-set sizes of the LRA tasks (../shared/reference/lra_data.md), to turn epochs into steps.
TRAIN_EXAMPLES = {"listops": 96_000}


def steps_for_epochs(task: str, epochs: int, batch_size: int) -> int:
    return epochs * math.ceil(TRAIN_EXAMPLES[task] / batch_size)


def base_config() -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    c.seed = 0  # model init and dropout; the data order has its own seed (train.data_seed)

    c.data = ml_collections.ConfigDict()
    c.data.task = "listops"
    c.data.source = "generated"  # "generated" (offline generator) or "release" (the LRA release files)
    c.data.size = "small"  # generated data: "small" (CPU) or "full" (the LRA procedure)
    c.data.seed = 0  # generator seed
    c.data.release_dir = ml_collections.config_dict.placeholder(str)
    c.data.append_eos = False  # S4/S5 convention: an end token after every sequence
    c.data.data_dir = ml_collections.config_dict.placeholder(str)  # else $LRA_DATA_DIR, else the user cache

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

    c.optim = ml_collections.ConfigDict()
    c.optim.lr = 1e-3
    c.optim.recurrent_lr_factor = 1.0
    c.optim.weight_decay = 0.05
    c.optim.warmup_steps = 0
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
    c.train.log_every = 50
    c.train.eval_every = 500
    c.train.checkpoint_every = 500
    c.train.keep_checkpoints = 2  # latest checkpoints kept; the best-by-validation one is kept separately
    c.train.async_checkpointing = True
    return c
