"""Eigenvalues of the (discrete-time) recurrence of every recurrent layer of a model.

For a diagonal linear recurrence x_k = lambda * x_{k-1} + ..., the eigenvalues are the lambda themselves; an input
is forgotten like |lambda|^k, so a mode remembers about 1 / (1 - |lambda|) steps (its effective memory, Orvieto
et al. 2023, Sec. 3: eigenvalues near the unit circle are what long-range tasks need). Continuous-time SSMs
(S4D, S5) have eigenvalues exp(dt * A) after zero-order-hold discretisation (Gu et al. 2022 "On the
Parameterization and Initialization of Diagonal SSMs"; Smith et al. 2023, Sec. 2), see `zoh`.

A layer family plugs in with one function in SPECTRA, keyed by its name in models.LAYERS:
    SPECTRA["s4d"] = lambda layer: zoh(layer.A(), layer.dt())     # (N,) complex, discrete time
"""
from __future__ import annotations

import numpy as np
from flax import nnx

import models


def zoh(A, dt):
    """Zero-order-hold eigenvalues exp(dt * A) of a diagonal continuous-time state matrix.

    A: (..., N) complex (or real), dt: broadcastable to A (e.g. (H, 1) per channel). Returns complex128 numpy.
    """
    return np.exp(np.asarray(dt) * np.asarray(A).astype(np.complex128))


def lru_eigenvalues(layer) -> np.ndarray:
    """The LRU's lambda (models/lru.py), (S,) with S = N, or 2N for a bidirectional layer ([forward, backward])."""
    return np.asarray(layer.lam())


def s4d_eigenvalues(layer) -> np.ndarray:
    """S4D's Abar = exp(dt A) (ZOH), (H, N/2): its discretize() returns (dt A, Abar, Bbar)."""
    return np.asarray(layer.discretize()[1])


def s5_eigenvalues(layer) -> np.ndarray:
    """S5's Lambda_bar (P/2,), ZOH or bilinear as the layer is configured: its discrete() returns (Lambda_bar, B_bar)."""
    return np.asarray(layer.discrete()[0])


# LAYERS name -> (layer -> its discrete-time eigenvalues). An entry is used only for a family registered in
# models.LAYERS; the s4d and s5 entries were written against those families' branch (discretize(), discrete())
# and are checked by tests/test_spectrum.py (one step with zero input multiplies the state by them) once merged.
# Not here: the dense RNN rungs (models/rnn.py): eig(A) is only the linearisation at h = 0 of a non-linear RNN.
SPECTRA = {"lru": lru_eigenvalues, "s4d": s4d_eigenvalues, "s5": s5_eigenvalues}


def family_of(layer) -> str | None:
    """The models.LAYERS name of a layer's class, None if it is not a registered family."""
    return next((name for name, cls in models.LAYERS.items() if type(layer) is cls), None)


def recurrent_layers(model: nnx.Module) -> list[tuple[str, nnx.Module]]:
    """[(path, layer)] of every layer of a family in SPECTRA, in graph order (block 0 first)."""
    out = []
    for path, node in nnx.iter_graph(model):
        if isinstance(node, nnx.Module) and family_of(node) in SPECTRA:
            out.append(("/".join(map(str, path)), node))
    return out


def eigenvalues(model: nnx.Module) -> dict[str, np.ndarray]:
    """{layer path: eigenvalues (flattened, complex128)} for every recurrent layer of `model`.

    ValueError if the model has a recurrent layer (one with a step mode) of a family without an entry in SPECTRA,
    or no recurrent layer at all (e.g. a Transformer), so that a missing family is never silently skipped.
    """
    missing = sorted({family_of(n) for _, n in nnx.iter_graph(model) if isinstance(n, nnx.Module)
                      and family_of(n) and family_of(n) not in SPECTRA and hasattr(n, "step")})
    if missing:
        raise ValueError(f"no eigenvalue function for layer families {missing}: add one to models.spectrum.SPECTRA")
    layers = recurrent_layers(model)
    if not layers:
        raise ValueError("the model has no recurrent layer with an eigenvalue function in models.spectrum.SPECTRA")
    return {path: np.asarray(SPECTRA[family_of(layer)](layer), np.complex128).ravel() for path, layer in layers}


def effective_memory(lam) -> np.ndarray:
    """1 / (1 - |lambda|) in steps (inf on or outside the unit circle)."""
    r = np.abs(np.asarray(lam))
    with np.errstate(divide="ignore"):
        return np.where(r < 1.0, 1.0 / (1.0 - np.minimum(r, 1.0)), np.inf)


def summary(lam, near: float = 0.99, length: int | None = None) -> dict:
    """Statistics of one set of eigenvalues: count, |lambda| quantiles, how many are near the unit circle
    (|lambda| >= near), unstable (|lambda| >= 1), and, given a sequence length, how many remember at least that
    many steps (effective memory >= length)."""
    lam = np.asarray(lam).ravel()
    r = np.abs(lam)
    out = dict(n=int(lam.size), abs_min=float(r.min()), abs_median=float(np.median(r)), abs_max=float(r.max()),
               near_unit_circle=int((r >= near).sum()), unstable=int((r >= 1.0).sum()),
               median_memory_steps=float(np.median(effective_memory(lam))))
    if length is not None:
        out[f"memory_at_least_{length}"] = int((effective_memory(lam) >= length).sum())
    return out
