"""Checkpoint flattening and the latest/best managers (experiments/checkpointing.py)."""
import shutil
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from experiments import checkpointing


def example_state():
    return dict(
        step=jnp.array(3, jnp.int32),
        params={"w": jnp.arange(6.0).reshape(2, 3), "layers": [jnp.ones(2), jnp.zeros(1)]},
        key=jax.random.key(7),
    )


def test_flatten_names_are_dotted_paths_and_keys_become_data():
    flat = checkpointing.flatten(example_state())
    assert set(flat) == {"step", "params.w", "params.layers.0", "params.layers.1", "key"}
    assert flat["key"].dtype == jnp.uint32


def test_unflatten_inverts_flatten_including_prng_keys():
    state = example_state()
    back = checkpointing.unflatten(checkpointing.flatten(state), state)
    assert jax.tree.structure(back) == jax.tree.structure(state)
    np.testing.assert_array_equal(back["params"]["w"], state["params"]["w"])
    np.testing.assert_array_equal(jax.random.uniform(back["key"]), jax.random.uniform(state["key"]))


def test_latest_and_best_are_kept_apart(tmp_path):
    ckpts = checkpointing.Checkpoints(tmp_path, keep=1, async_save=True)
    state = example_state()
    ckpts.save("best", 3, state, {"step": 3, "best": True})
    for step in (3, 4, 5):
        state = dict(state, step=jnp.array(step, jnp.int32))
        ckpts.save("latest", step, state, {"step": step})
    ckpts.wait()
    assert ckpts.latest.all_steps() == [5]
    assert ckpts.best.all_steps() == [3]  # keeping one latest never deletes the best, and vice versa
    restored, meta = ckpts.restore("latest", example_state())
    assert int(restored["step"]) == 5 and meta == {"step": 5}
    best, best_meta = ckpts.restore("best", example_state())
    assert best_meta["best"] is True
    ckpts.close()


def test_restore_returns_none_without_checkpoints(tmp_path):
    ckpts = checkpointing.Checkpoints(tmp_path)
    assert ckpts.restore("latest", example_state()) is None
    ckpts.close()


def test_metadata_is_a_snapshot_taken_at_save(tmp_path):
    ckpts = checkpointing.Checkpoints(tmp_path, async_save=True)
    meta = {"step": 3, "best_step": 1}
    ckpts.save("latest", 3, example_state(), meta)
    meta["best_step"] = 999  # the trainer keeps updating its dict while the save runs in the background
    ckpts.wait()
    assert ckpts.restore("latest", example_state())[1] == {"step": 3, "best_step": 1}
    ckpts.close()


def test_a_save_starts_only_after_the_other_managers_save_is_on_disk(tmp_path):
    ckpts = checkpointing.Checkpoints(tmp_path, async_save=True)
    seen = []
    real_save = ckpts.latest.save

    def spy(step, **kwargs):
        seen.append(sorted(p.name for p in (tmp_path / "best").iterdir() if p.name.isdigit()))
        return real_save(step, **kwargs)

    ckpts.latest.save = spy
    big = dict(example_state(), params={"w": jnp.ones((512, 1024))})  # a save that takes a moment
    ckpts.save("best", 3, big, {"step": 3})
    ckpts.save("latest", 3, big, {"step": 3})
    assert seen == [["3"]]  # "best 3" was complete (renamed into place) before "latest 3" began
    ckpts.close()


def test_restore_rejects_a_state_whose_step_disagrees_with_its_metadata(tmp_path):
    ckpts = checkpointing.Checkpoints(tmp_path, async_save=False)
    ckpts.save("latest", 3, example_state(), {"step": 5})
    try:
        ckpts.restore("latest", example_state())
    except RuntimeError as e:
        assert "inconsistent" in str(e)
    else:
        raise AssertionError("an inconsistent checkpoint was restored")
    ckpts.close()


def test_a_failed_background_save_is_reported_at_the_next_poll_with_the_last_good_step(tmp_path):
    ckpts = checkpointing.Checkpoints(tmp_path, async_save=True)
    ckpts.save("latest", 1, example_state(), {"step": 1})
    ckpts.wait()
    # The metadata is serialised in orbax's background thread: an unserialisable value fails there.
    ckpts.save("latest", 3, example_state(), {"step": 3, "bad": object()})
    with pytest.raises(checkpointing.CheckpointSaveError) as failure:
        for _ in range(200):  # poll never blocks; the trainer calls it at every log step
            ckpts.poll()
            time.sleep(0.05)
    message = str(failure.value)
    assert "latest/3 failed" in message and "not JSON serializable" in message
    assert "last complete checkpoint is step 1" in message
    ckpts.close()


def test_a_save_that_cannot_create_its_folder_fails_at_once(tmp_path):
    ckpts = checkpointing.Checkpoints(tmp_path, async_save=True)
    ckpts.save("latest", 1, example_state(), {"step": 1})
    ckpts.wait()
    shutil.rmtree(tmp_path / "latest")
    (tmp_path / "latest").write_text("not a folder")  # as a full disk or a read-only mount would refuse it
    start = time.perf_counter()
    with pytest.raises(checkpointing.CheckpointSaveError, match="latest/3 failed: NotADirectoryError"):
        ckpts.save("latest", 3, example_state(), {"step": 3})
    ckpts.close()
    assert time.perf_counter() - start < 30  # orbax's background directory creation would wait ~5 min at exit


def test_keeping_no_latest_checkpoint_is_refused(tmp_path):
    with pytest.raises(ValueError, match="cannot resume"):
        checkpointing.Checkpoints(tmp_path, keep=0)
