"""Orbax checkpoints of the whole training state: model, optimizer, step (= data-iterator position), RNG counts.

Two managers in separate folders, so that keeping "the best" can never delete the checkpoint a resume needs:
  <workdir>/checkpoints/latest   the last `keep` saves, for resuming
  <workdir>/checkpoints/best     the best-by-validation save, for the final test evaluation
A checkpoint is the training-state pytree flattened to {"params.blocks.0....": array} (readable names, independent
of the pytree node classes of nnx/optax) plus a small JSON of loop bookkeeping. Orbax writes into a temporary folder
and renames it when complete, so a process killed mid-save leaves the previous checkpoint as the latest.

A save that fails (disk full, permissions, a path that is not a folder) raises CheckpointSaveError naming the last
complete checkpoint: at once when the step folder cannot be created (directories are created before save()
returns, not in orbax's background thread, whose failure otherwise leaves threads waiting ~5 minutes at exit),
and from the background write at the next poll() (the trainer polls at every log step) or wait().
"""
from __future__ import annotations

import contextlib
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


class CheckpointSaveError(RuntimeError):
    """A checkpoint could not be written; the message names it, the cause, and the last complete checkpoint."""


class Checkpoints:
    """The latest and best checkpoints of one run. read_only: for evaluation next to a running trainer (creates
    nothing, and never removes the temporary folder of a save in flight)."""

    def __init__(self, directory: Path, *, keep: int = 2, async_save: bool = True, read_only: bool = False):
        if keep < 1:
            raise ValueError(f"keep={keep}: at least one latest checkpoint must be kept, or a run cannot resume")
        directory = Path(directory).absolute()

        def manager(name, max_to_keep):
            options = ocp.CheckpointManagerOptions(
                max_to_keep=max_to_keep,
                create=not read_only,
                read_only=read_only,
                cleanup_tmp_directories=not read_only,  # leftovers of a save interrupted by a kill
                enable_async_checkpointing=async_save,
                async_options=ocp.AsyncOptions(create_directories_asynchronously=False),
            )
            return ocp.CheckpointManager(directory / name, options=options, item_names=("state", "meta"))

        self.latest = manager("latest", keep)
        self.best = manager("best", 1)
        self._pending = {}  # manager name -> step of the save in flight

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
        self._pending[which] = step
        with self._reporting(which):
            mngr.save(step, args=args)

    def poll(self) -> None:
        """Raise CheckpointSaveError if a background save has finished with an error (cheap; never blocks)."""
        for which in list(self._pending):
            if not getattr(self, which).is_saving_in_progress():
                self._finish(which)

    def last_complete_step(self, which: str = "latest") -> int | None:
        """Step of the newest checkpoint of `which` that is complete on disk (None when there is none)."""
        mngr = getattr(self, which)
        steps = [s for s in mngr.all_steps() if s != self._pending.get(which)]
        return max(steps) if steps else None

    def _finish(self, which: str) -> None:
        with self._reporting(which):
            getattr(self, which).wait_until_finished()
        self._pending.pop(which, None)

    @contextlib.contextmanager
    def _reporting(self, which: str):
        try:
            yield
        except Exception as e:  # orbax raises whatever the file system or tensorstore raised
            step = self._pending.pop(which, None)
            last = self.last_complete_step("latest")
            getattr(self, which).reload()  # forget the failed step, so close() does not wait for it again
            raise CheckpointSaveError(
                f"saving checkpoint {getattr(self, which).directory}/{step} failed: {type(e).__name__}: {e}\n"
                + (f"the last complete checkpoint is step {last} ({self.latest.directory}/{last}); a rerun of the "
                   "same command resumes from it" if last is not None else "no complete checkpoint exists yet")
                + " once the cause (disk space, permissions) is fixed."
            ) from e

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
        """Block until no save is in flight; CheckpointSaveError if one failed."""
        for which in ("best", "latest"):
            self._finish(which)

    def close(self) -> None:
        self.latest.close()
        self.best.close()


def read(directory: Path, which: str, like_state):
    """(state, meta) of the newest complete checkpoint in directory/which ('best' or 'latest'), read-only (safe
    next to a running trainer); None when there is none, also when the folder does not exist."""
    if not (Path(directory) / which).is_dir():
        return None
    ckpts = Checkpoints(directory, read_only=True)
    try:
        return ckpts.restore(which, like_state)
    finally:
        ckpts.close()
