"""Selective SSM (Mamba-style; Gu & Dao 2023, "Mamba: Linear-Time Sequence Modeling with Selective State Spaces")
on LRA.

Mamba has NO published LRA numbers (its paper does not report LRA), so every per-task value below is a GUESS,
modelled on the S4D settings (layers, lr, epochs, warmup: experiments/published/hyperparameters.md, S4/S4D table)
and the LRU third-party settings (pre-norm BatchNorm, half-GLU, recurrent lr factor). Only the layer itself
(dt ~ logUniform[1e-3, 1e-1], S4D-Real A, conv k = 4, expand 2, dt rank ceil(H/16)) follows the paper.
Treat a full run as an experiment, not a reproduction.

  python -m experiments.train --config experiments/configs/selective.py:listops --workdir runs/selective_listops
      full scale; needs an accelerator. No published number to compare with.
  python -m experiments.train --config experiments/configs/selective.py:listops_smoke \
      --workdir runs/selective_listops_smoke
      generated small ListOps on a CPU, 3000 steps. Measured as written at commit 8ef203d: test accuracy 51.8%
      (majority class 9.4%; the LRU smoke, experiments/configs/lru.py: 47.0%), val 39.0 / 42.4 / 46.7 / 48.3 /
      48.6 / 49.2% at steps 500 ... 3000, train loss (mean of a 50-step window) 2.28 at step 50 -> 1.19 at 3000;
      35 min 55 s wall, measured under load average 4-8 on the 2 shared cores (time load-bound, accuracy not).

Variants: "<task>" or "<task>_smoke" for task in listops, text, retrieval, image, pathfinder, pathx.
Memory: the layer materialises the time-varying transition (B, L, E, N) in float32 per layer (E = expand * H),
e.g. Path-X with batch 16, H 128, expand 2, N 8: 16 * 16384 * 256 * 8 * 4 B = 2.1 GB per tensor per layer,
which is why the long tasks use a smaller batch and N here than S4D does.
"""
from experiments.configs import base

# GUESSES (no published Mamba LRA configs): task -> settings. Layers/lr/epochs/warmup follow S4D's table; H is
# S4D's halved where the expand-2 inner width would double the cost; N = 16 is Mamba's default state size.
FULL = {
    #            layers  H    N  expand  lr    rec_lr  wd    dropout batch epochs warmup_frac
    "listops":    (6, 128, 16, 2, 4e-3, 0.25, 0.05, 0.0, 32, 40, 0.1),
    "text":       (6, 128, 16, 2, 4e-3, 0.25, 0.05, 0.1, 16, 32, 0.1),
    "retrieval":  (6, 128, 16, 2, 4e-3, 0.25, 0.05, 0.0, 32, 20, 0.1),
    "image":      (6, 256, 16, 2, 4e-3, 0.25, 0.05, 0.1, 50, 200, 0.1),
    "pathfinder": (6, 128, 16, 2, 2e-3, 0.25, 0.05, 0.0, 64, 200, 0.1),
    "pathx":      (6, 128, 8, 2, 1e-3, 0.25, 0.05, 0.0, 16, 50, 0.1),
}

# Smoke: a small model that trains for a few minutes on 2 CPU cores (the LRU smoke's budget).
SMOKE = {
    #            layers H   N  expand lr    batch steps
    "listops":    (3, 64, 8, 1, 3e-3, 32, 3000),
    "text":       (2, 64, 8, 1, 3e-3, 16, 500),
    "retrieval":  (2, 64, 8, 1, 3e-3, 16, 500),
    "image":      (2, 64, 8, 1, 3e-3, 32, 500),
    "pathfinder": (2, 64, 8, 1, 3e-3, 32, 500),
    "pathx":      (2, 32, 4, 1, 3e-3, 8, 200),
}


def selective_args(*, d_state, expand):
    return dict(d_state=d_state, expand=expand, d_conv=4, dt_rank=None, dt_min=1e-3, dt_max=1e-1,
                scan_method="auto")


def full(task):
    layers, H, N, expand, lr, rec_lr, wd, dropout, batch, epochs, warmup_frac = FULL[task]
    c = base.base_config(task, smoke=False)
    c.model.layer = "selective"
    c.model.d_model, c.model.n_layers, c.model.dropout = H, layers, dropout
    c.model.layer_args.update(selective_args(d_state=N, expand=expand))
    c.optim.lr, c.optim.recurrent_lr_factor, c.optim.weight_decay = lr, rec_lr, wd
    base.epoch_training(c, task, epochs, batch, checkpoint_every=1_000)
    c.optim.warmup_steps = int(warmup_frac * c.train.num_steps)
    return c


def smoke(task):
    layers, H, N, expand, lr, batch, steps = SMOKE[task]
    c = base.base_config(task, smoke=True)
    c.model.layer = "selective"
    c.model.d_model, c.model.n_layers = H, layers
    c.model.layer_args.update(selective_args(d_state=N, expand=expand))
    c.optim.lr, c.optim.recurrent_lr_factor, c.optim.weight_decay = lr, 0.5, 0.05
    base.short_smoke_training(c, batch, steps)
    return c


def get_config(arg: str = "listops"):
    task, is_smoke, _ = base.parse_variant(arg, "selective.py")
    config = smoke(task) if is_smoke else full(task)
    config.lock()
    return config
