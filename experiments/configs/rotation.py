"""Rotation RNN (models/rotation.py: the LRU in real arithmetic on the 'rotation' scan operator) on LRA.

No published numbers exist for this layer. Its model class and init are the LRU's (Orvieto et al. 2023), so the
full-scale settings below are the LRU's THIRD-PARTY per-task values (experiments/published/hyperparameters.md, "LRU":
written by someone other than the LRU authors), with N 2x2 blocks where the LRU has N complex states (the same
number of real state variables, 2N). Path-X is bidirectional as in the second third-party Path-X run.

  python -m experiments.train --config experiments/configs/rotation.py:listops --workdir runs/rotation_listops
      full scale; needs an accelerator.
  python -m experiments.train --config experiments/configs/rotation.py:listops_smoke \
      --workdir runs/rotation_listops_smoke
      generated small ListOps: measured 46.3% test accuracy (val 46.5%, majority class 9.4%) after 3000 steps,
      43 minutes of training on 2 heavily shared CPU cores (the LRU smoke measured 47.0%).

Variants: "<task>" or "<task>_smoke" for task in listops, text, retrieval, image, pathfinder, pathx.
"""
import math

from experiments.configs import base

# THIRD-PARTY LRU values (see the docstring). task -> settings.
FULL = {
    #            layers  H    N   r_min  r_max   max_phase     lr    rec_lr wd   dropout batch epochs warmup bidir
    "listops":    (6, 128, 256, 0.0, 0.9, 2 * math.pi, 3e-3, 0.5, 0.05, 0.0, 32, 30, 12_000, False),
    "text":       (6, 256, 192, 0.5, 0.9, 2 * math.pi, 4e-3, 0.1, 0.05, 0.1, 32, 64, 5_000, False),
    "retrieval":  (6, 128, 256, 0.5, 0.9, 2 * math.pi, 2e-3, 0.5, 0.05, 0.1, 64, 40, 5_000, False),
    "image":      (6, 512, 384, 0.9, 0.999, 2 * math.pi, 5e-3, 0.25, 0.05, 0.1, 50, 200, 18_000, False),
    "pathfinder": (6, 192, 256, 0.9, 0.999, 2 * math.pi, 4e-3, 0.25, 0.05, 0.0, 64, 200, 50_000, False),
    "pathx":      (6, 128, 256, 0.999, 0.9999, 0.1 * math.pi, 2e-3, 0.25, 0.05, 0.0, 32, 50, 25_000, True),
}

# Smoke: a small model that trains for a few minutes on 2 CPU cores; the ring follows the full task's.
SMOKE = {
    #            layers H   N   batch steps
    "listops":    (3, 64, 64, 32, 3000),
    "text":       (2, 64, 32, 16, 500),
    "retrieval":  (2, 64, 32, 16, 500),
    "image":      (2, 64, 32, 32, 500),
    "pathfinder": (2, 64, 32, 32, 500),
    "pathx":      (2, 32, 16, 8, 200),
}


def rotation_args(*, d_state, r_min, r_max, max_phase, bidirectional):
    return dict(d_state=d_state, r_min=r_min, r_max=r_max, max_phase=max_phase, bidirectional=bidirectional,
                scan_method="auto")


def full(task):
    layers, H, N, r_min, r_max, max_phase, lr, rec_lr, wd, dropout, batch, epochs, warmup, bidir = FULL[task]
    c = base.base_config(task, smoke=False)
    c.model.layer = "rotation"
    c.model.d_model, c.model.n_layers, c.model.dropout = H, layers, dropout
    c.model.layer_args.update(rotation_args(d_state=N, r_min=r_min, r_max=r_max, max_phase=max_phase,
                                            bidirectional=bidir))
    c.optim.lr, c.optim.recurrent_lr_factor, c.optim.weight_decay = lr, rec_lr, wd
    base.epoch_training(c, task, epochs, batch, checkpoint_every=1_000)
    c.optim.warmup_steps = warmup
    return c


def smoke(task):
    layers, H, N, batch, steps = SMOKE[task]
    _, _, _, r_min, r_max, max_phase, lr, rec_lr, wd, _, _, _, _, bidir = FULL[task]
    c = base.base_config(task, smoke=True)
    c.model.layer = "rotation"
    c.model.d_model, c.model.n_layers = H, layers
    c.model.layer_args.update(rotation_args(d_state=N, r_min=r_min, r_max=r_max, max_phase=max_phase,
                                            bidirectional=bidir))
    c.optim.lr, c.optim.recurrent_lr_factor, c.optim.weight_decay = lr, rec_lr, wd
    base.short_smoke_training(c, batch, steps)
    return c


def get_config(arg: str = "listops"):
    task, is_smoke, _ = base.parse_variant(arg, "rotation.py")
    config = smoke(task) if is_smoke else full(task)
    config.lock()
    return config
