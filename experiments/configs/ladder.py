"""The LRU paper's ablation ladder (Orvieto et al. 2023, Tables 1-3; rows in experiments/published/lru_ablations.csv):
the same 6-layer network (norm -> recurrence -> GLU -> skip) and the same training settings on every rung, only the
recurrence changes, from a dense tanh RNN to the LRU.

  python -m experiments.train --config experiments/configs/ladder.py:listops,rnn_tanh --workdir runs/ladder_tanh
  python -m experiments.train --config experiments/configs/ladder.py:listops_smoke,rnn_tanh --workdir runs/smoke
      lru.py:listops_smoke with a dense tanh RNN. As shipped (3000 steps, commit 27f34bc, session 5): test
      accuracy 49.0% (val 28.8 / 39.0 / 43.6 / 43.5 / 44.7 / 45.6 at steps 500 ... 3000; train loss 2.26 at step
      50 -> 1.35; majority class 9.4%), 5m57s wall under load ~5. The LRU smoke (lru.py:listops_smoke) measured
      47.0% (its docstring): at this scale the tanh RNN keeps up with the LRU; the paper's gap (Table 1: 43.9
      vs 60.2) is at full scale.

Variants: "<task>[_smoke],<rung>" for every task in base.TASKS; rungs (paper row it reproduces, ListOps accuracy):

  rung        layer  what changes                                              paper row (table: ListOps %)
  rnn_relu    rnn    h = relu(A h + B u), A dense, Glorot                      T1 RNN-ReLU (dense): 37.6
  rnn_tanh    rnn    h = tanh(A h + B u)                                       T1 RNN-Tanh (dense): 43.9
  rnn_lin     rnn    h = A h + B u (dense linear; the `dense` scan operator),  T1 RNN-Lin (dense) = T2 Dense A: 50.4
                     A's spectral radius capped at 1 at init (max_radius)
  real_imag   lru    diagonal complex lambda stored as (Re, Im), |lambda|^2 ~ U[0, 1], phase ~ U[0, 2pi]
                     (uniform on the unit disk); no gamma                      T2 Lambda Real+Im: 58.8
  exp         lru    lambda = exp(-nu + i theta), same init                    T2 Lambda Exp: 60.5
  stable_exp  lru    lambda = exp(-exp(nu_log) + i exp(theta_log)), same init  T2 Lambda Stable Exp: 59.4
  ring_init   lru    + |lambda| on the task's ring [r_min, r_max]              T2 + Ring Init: 59.4
  lru         lru    + gamma normalisation (+ max phase pi/10 on Path-X)       T3 LRU: 60.2

Every rung is the LRU config of the task (experiments/configs/lru.py, where it has that variant) with only
model.layer / model.layer_args changed. The dense RNNs keep the LRU's state size N (d_state), direction and
recurrent learning rate (their A and B are recurrent parameters, as the LRU's lambda and B).
The image rungs use the LRU config's data: coloured sequential CIFAR (colour_real), the paper's Image column.

rnn_lin's max_radius=1.0 is our choice, not the paper's (models/rnn.py): a Glorot A's spectral radius is above 1 at
finite N (1.13 at N=64, seed 0), its linear state grows as radius^L, and without the cap
  python -m experiments.train --config experiments/configs/ladder.py:pathfinder_smoke,rnn_lin --workdir W \
      --config.train.num_steps=3 --config.optim.warmup_steps=0 --config.data.size=tiny --config.train.batch_size=8
was non-finite at step 1 (L=1024); with the cap and the config's warmup (--config.optim.warmup_past_end=True in
place of warmup_steps=0) it was finite for the 3 steps (loss 0.70 at step 3). The paper's text (Sec. 3.2) has the
eigenvalues in the unit disk and RNN-Lin training on sCIFAR (L=1024), so the cap is that disk.
"""
import math

import ml_collections

from experiments.configs import base, lru

UNIT_DISK = dict(r_min=0.0, r_max=1.0, max_phase=2 * math.pi)  # |lambda|^2 ~ U[0, 1]: uniform on the unit disk

# rung -> (paper rows as (table, step) of lru_ablations.csv, the layer, what it sets on top of the task's LRU).
RUNGS = {
    "rnn_relu": ([("T1", "RNN-ReLU (dense)")], "rnn", dict(nonlinearity="relu")),
    "rnn_tanh": ([("T1", "RNN-Tanh (dense)")], "rnn", dict(nonlinearity="tanh")),
    # max_radius: Glorot A rescaled into the unit disk at init where its spectral radius exceeds 1 (our choice).
    "rnn_lin": ([("T1", "RNN-Lin (dense)"), ("T2", "Dense A")], "rnn", dict(nonlinearity="linear", max_radius=1.0)),
    "real_imag": ([("T2", "Lambda Real+Im (diagonal complex; uniform on unit disk)")], "lru",
                  dict(parameterization="real_imag", gamma_norm=False, **UNIT_DISK)),
    "exp": ([("T2", "Lambda Exp  lambda=exp(-nu+i*theta)")], "lru",
            dict(parameterization="exp", gamma_norm=False, **UNIT_DISK)),
    "stable_exp": ([("T2", "Lambda Stable Exp  lambda=exp(-exp(nu_log)+i*theta)")], "lru",
                   dict(parameterization="stable_exp", gamma_norm=False, **UNIT_DISK)),
    # The task's ring (r_min, r_max kept from the LRU config); the phase is still U[0, 2pi].
    "ring_init": ([("T2", "+ Ring Init (|lambda| uniform on ring [r_min r_max])")], "lru",
                  dict(parameterization="stable_exp", gamma_norm=False, max_phase=2 * math.pi)),
    "lru": ([("T3", "LRU")], "lru", dict()),  # the LRU config itself
}

def lru_config(task: str, smoke: bool) -> ml_collections.ConfigDict:
    """The task's LRU config (unlocked), experiments/configs/lru.py: every rung starts from it."""
    return lru.get_config(f"{task}_smoke" if smoke else task).unlock()


def rung_layer(layer_args: dict, rung: str) -> tuple[str, dict]:
    """(model.layer, model.layer_args) of a rung, from the task's LRU layer_args."""
    _, layer, change = RUNGS[rung]
    if layer == "rnn":
        return "rnn", dict(d_state=layer_args["d_state"], bidirectional=layer_args["bidirectional"],
                           scan_method=layer_args["scan_method"], **change)
    return "lru", {**layer_args, **change}


OPTIONS = tuple(RUNGS)  # what `python -m experiments.configs` lists as ',<option>'


def get_config(arg: str = "listops,lru"):
    task, smoke, rung = base.parse_variant(arg, "ladder.py", options=tuple(RUNGS))
    if rung is None:
        raise ValueError(f"ladder.py needs a rung: '{arg},<rung>' with rung in {', '.join(RUNGS)}")
    c = lru_config(task, smoke)
    layer, args = rung_layer(c.model.layer_args.to_dict(), rung)
    c.model.layer = layer
    c.model.layer_args = ml_collections.ConfigDict(args)
    c.lock()
    return c
