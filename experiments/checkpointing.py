"""Orbax checkpoints of the whole training state: model, optimizer, step (= data-iterator position), RNG counts.

Two managers in separate folders, so that keeping "the best" can never delete the checkpoint a resume needs:
  <workdir>/checkpoints/latest   the last `keep` saves, for resuming
  <workdir>/checkpoints/best     the best-by-validation save, for the final test evaluation
A checkpoint is the training-state pytree flattened to {"params.blocks.0....": array} (readable names, independent
of the pytree node classes of nnx/optax) plus a small JSON of loop bookkeeping. Orbax writes into a temporary folder
and renames it when complete, so a process killed mid-save leaves the previous checkpoint as the latest.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import jax
import orbax.checkpoint as ocp


def _key_name(entry) -> str:
    for attr in ("key", "name", "idx"):
        if hasattr(entry, attr):
            return str(getattr(entry, attr))
    raise TypeError(f"unsupported pytree key {entry!r}")


def _is_prng_key(x) -> bool:
    return hasattr(x, "dtype") and jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key)


def flatten(tree) -> dict[str, Any]:
    """{dotted path: leaf}; typed PRNG keys become their raw uint32 data (orbax stores plain arrays)."""
    flat = {}
    for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
        name = ".".join(_key_name(k) for k in path)
        if name in flat:
            raise ValueError(f"two leaves flatten to the same checkpoint name {name!r}")
        flat[name] = jax.random.key_data(leaf) if _is_prng_key(leaf) else leaf
    return flat


def unflatten(flat: dict[str, Any], like):
    """Inverse of flatten, with the structure (and PRNG key types) of `like`."""
    paths_leaves, treedef = jax.tree_util.tree_flatten_with_path(like)
    leaves = []
    for path, ref in paths_leaves:
        value = flat[".".join(_key_name(k) for k in path)]
        leaves.append(jax.random.wrap_key_data(value, impl=jax.random.key_impl(ref)) if _is_prng_key(ref) else value)
    return jax.tree_util.tree_unflatten(treedef, leaves)


def _abstract(flat_like: dict[str, Any]) -> dict[str, jax.ShapeDtypeStruct]:
    # Restoring onto shardings taken from the live state lets a run resume on another device count.
    return {
        k: jax.ShapeDtypeStruct(v.shape, v.dtype, sharding=getattr(v, "sharding", None)) for k, v in flat_like.items()
    }


class Checkpoints:
    """The latest and best checkpoints of one run."""

    def __init__(self, directory: Path, *, keep: int = 2, async_save: bool = True):
        directory = Path(directory).absolute()

        def manager(name, max_to_keep):
            options = ocp.CheckpointManagerOptions(
                max_to_keep=max_to_keep,
                create=True,
                cleanup_tmp_directories=True,  # leftovers of a save interrupted by a kill
                enable_async_checkpointing=async_save,
            )
            return ocp.CheckpointManager(directory / name, options=options, item_names=("state", "meta"))

        self.latest = manager("latest", keep)
        self.best = manager("best", 1)

    def save(self, which: str, step: int, state, meta: dict) -> None:
        # One save in flight across BOTH managers: "best S" is complete on disk before "latest S" starts, so a
        # kill can never leave a latest checkpoint that names a best one that was not written. It also
        # surfaces a failed async save here rather than losing it.
        self.wait()
        mngr = getattr(self, which)
        if step in mngr.all_steps():
            # Re-reached after a resume from an older latest checkpoint; training is deterministic, so the
            # checkpoint already there holds the same values.
            return
        # JsonSave serialises when the background save commits: give it a snapshot, not the caller's live dict.
        args = ocp.args.Composite(state=ocp.args.StandardSave(flatten(state)), meta=ocp.args.JsonSave(dict(meta)))
        mngr.save(step, args=args)

    def restore(self, which: str, like_state):
        """(state, meta) of the newest checkpoint in `which`, or None when there is none."""
        mngr = getattr(self, which)
        mngr.wait_until_finished()
        step = mngr.latest_step()
        if step is None:
            return None
        args = ocp.args.Composite(
            state=ocp.args.StandardRestore(_abstract(flatten(like_state))), meta=ocp.args.JsonRestore()
        )
        restored = mngr.restore(step, args=args)
        state, meta = unflatten(restored.state, like_state), dict(restored.meta)
        if "step" in state and int(state["step"]) != meta.get("step", step):
            raise RuntimeError(f"checkpoint {mngr.directory}/{step} is inconsistent: state step "
                               f"{int(state['step'])}, metadata step {meta.get('step')}")
        return state, meta

    def wait(self) -> None:
        self.latest.wait_until_finished()
        self.best.wait_until_finished()

    def close(self) -> None:
        self.latest.close()
        self.best.close()
