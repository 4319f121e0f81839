"""S5 (Smith, Warrington, Linderman 2023, "Simplified State Space Layers for Sequence Modeling") on LRA.

  python -m experiments.train --config experiments/configs/s5.py:listops --workdir runs/s5_listops
      full scale; needs an accelerator. Published test accuracy (%), S5 paper
      (experiments/published/published_results.csv): ListOps 62.15, Text 89.31, Retrieval 91.40, Image 88.00,
      Pathfinder 95.33, Path-X 98.58.
  python -m experiments.train --config experiments/configs/s5.py:listops_smoke --workdir runs/s5_listops_smoke
      generated small ListOps, a 2-layer S5: measured 35.9% test accuracy (majority class 9.4%) after 1000
      steps (train loss 2.31 at step 25 -> 1.79 at step 1000). Time: 188 s training + 82 s compiling on the shared
      2-core dev machine under a load average of ~20 (other jobs), so expect less on an idle machine.
  Other <task>_smoke variants: the same small model for 300 steps (Path-X: 100 steps of batch 8); not timed and
      no accuracy measured yet.

Variants: "<task>" and "<task>_smoke" for every task in base.TASKS.
Other settings: --config.model.layer_args.discretization=bilinear, --config.model.layer_args.C_init=complex_normal.

Known differences from the S5 code's optimiser groups (not expressible with models.RecurrentParam, which means
"SSM lr, no weight decay"): S5 gives B the SSM lr *with* weight decay, trains its BatchNorm parameters at the SSM
lr, and decays D; its ListOps script (opt_config=BfastandCdecay) trains B at the global lr. Here Lambda, B and
log_dt are RecurrentParam, C is decayed, D and the norms are not.
"""
from experiments.configs import base

# S5 official run scripts (experiments/published/hyperparameters.md, S5 table); lr = lr_factor * ssm_lr there.
# (n_layers, H, P, J, ssm_lr, lr, weight_decay, dropout, batch, epochs, warmup epochs)
PUBLISHED = {
    "listops": (8, 128, 16, 8, 1e-3, 3e-3, 0.04, 0.0, 50, 40, 1),
    "text": (6, 256, 192, 12, 1e-3, 4e-3, 0.07, 0.1, 50, 35, 0),
    "retrieval": (6, 128, 256, 16, 1e-3, 2e-3, 0.05, 0.0, 32, 20, 1),
    "image": (6, 512, 384, 3, 1e-3, 4.5e-3, 0.07, 0.1, 50, 250, 1),
    "pathfinder": (6, 192, 256, 8, 9e-4, 4.5e-3, 0.03, 0.05, 64, 200, 1),
    "pathx": (6, 128, 256, 16, 6e-4, 1.8e-3, 0.06, 0.0, 32, 75, 1),
}


def s5_args(task, *, d_state, blocks):
    return dict(
        d_state=d_state,
        blocks=blocks,
        discretization="zoh",  # reference: ZOH in all runs
        # Path-X: complex normal (reference). Others: lecun_normal — NOT in our reference table; it is what copies
        # of the S5 run scripts pass (--C_init=lecun_normal), unverified against the original repository.
        C_init="complex_normal" if task == "pathx" else "lecun_normal",
        dt_min=1e-4 if task == "pathx" else 1e-3,  # reference: dt ~ logUniform[1e-3, 1e-1], Path-X dt_min 1e-4
        dt_max=1e-1,
        # Reference: "one global dt" for Text and Retrieval. In the S5 code that is --dt_global, which moves log_dt
        # out of the SSM optimiser group (global lr); it does not tie the dt values (models/s5.py).
        dt_global=task in ("text", "retrieval"),
        clip_eigs=task == "image",  # reference: eigenvalue real part clipped <= -1e-4 on Image
        bidirectional=True,  # reference: all bidirectional
        scan_method="auto",
    )


def common(c):
    c.model.layer = "s5"
    c.model.norm = "batch"  # reference: batch norm, pre-norm, mean pooling
    c.model.prenorm = True
    c.model.pooling = "mean"
    # S5's code is flax: its momentum is in our convention. Reference: 0.9 on Pathfinder; the other tasks' value is
    # not in the reference table, so 0.9 there is GUESSED (Pathfinder's, unverified against the run scripts).
    c.model.bn_momentum = 0.9
    # Reference: half-GLU variant 2 on ListOps and Text; the other tasks' scripts are not in our reference table
    # (copies of them pass --activation_fn=half_glu2 too), so half_glu2 everywhere.
    c.model.activation = "half_glu2"
    c.optim.final_lr_factor = 0.0  # cosine annealing to 0 (S5's default lr_min = 0), after linear warmup
    return c


def full(task):
    n_layers, H, P, J, ssm_lr, lr, wd, dropout, batch, epochs, warmup_epochs = PUBLISHED[task]
    c = common(base.base_config(task))
    c.model.update(d_model=H, n_layers=n_layers, dropout=dropout)
    c.model.layer_args.update(s5_args(task, d_state=P, blocks=J))
    c.optim.lr = lr
    c.optim.recurrent_lr_factor = ssm_lr / lr
    c.optim.weight_decay = wd
    c.optim.warmup_steps = base.steps_for_epochs(task, warmup_epochs, batch)
    base.epoch_training(c, task, epochs, batch)
    return c


def smoke(task):
    # A CPU run of about a minute: small widths, few layers, a short cosine schedule. Our choice, not published.
    c = common(base.base_config(task, smoke=True))
    c.model.update(d_model=32, n_layers=2, dropout=0.0)
    c.model.layer_args.update(s5_args(task, d_state=16, blocks=2))
    c.optim.lr = 4e-3
    c.optim.recurrent_lr_factor = 0.25
    c.optim.weight_decay = 0.05
    base.ssm_smoke_training(c, task)
    return c


def get_config(arg: str = "listops"):
    task, is_smoke, _ = base.parse_variant(arg, "s5.py")
    config = (smoke if is_smoke else full)(task)
    config.lock()
    return config
