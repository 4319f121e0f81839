"""Parameter kinds that carry their optimiser group from where they are created.

The trainer's optax label function selects on these types (not on names), so a new layer gets the right
treatment by choosing the right kind when it creates a parameter.
"""
import numbers

from flax import nnx


def check_size(family: str, name: str, value, none_ok: bool = False) -> None:
    """ValueError naming `name` unless `value` is an integer >= 1 (or None, if none_ok): the size arguments of the
    layer constructors (state sizes, heads, expansion, ranks), checked before they reach a division or a shape."""
    if none_ok and value is None:
        return
    if not (isinstance(value, numbers.Integral) and not isinstance(value, bool) and value >= 1):
        raise ValueError(f"{family} {name} must be an integer >= 1{' or None' if none_ok else ''}; got {value!r}")


class RecurrentParam(nnx.Param):
    """A parameter of the recurrence itself (LRU: nu_log, theta_log, gamma_log, B_re, B_im; SSM: A, dt, B).

    These are sensitive to large steps (they set the eigenvalues of the recurrence), so the trainer gives them
    their own, usually smaller, learning rate and no weight decay (Orvieto et al. 2023, Sec. 3 and App. D).
    A subclass of nnx.Param, so filters on nnx.Param (gradients, counting) still include it.
    """
