"""Checkpoint flattening and the latest/best managers (experiments/checkpointing.py)."""
import jax
import jax.numpy as jnp
import numpy as np

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
    ckpts.save("best", 1, state, {"step": 1, "best": True})
    for step in (1, 2, 3):
        state = dict(state, step=jnp.array(step, jnp.int32))
        ckpts.save("latest", step, state, {"step": step})
    ckpts.wait()
    assert ckpts.latest.all_steps() == [3]
    assert ckpts.best.all_steps() == [1]  # keeping one latest never deletes the best, and vice versa
    restored, meta = ckpts.restore("latest", example_state())
    assert int(restored["step"]) == 3 and meta == {"step": 3}
    best, best_meta = ckpts.restore("best", example_state())
    assert best_meta["best"] is True
    ckpts.close()


def test_restore_returns_none_without_checkpoints(tmp_path):
    ckpts = checkpointing.Checkpoints(tmp_path)
    assert ckpts.restore("latest", example_state()) is None
    ckpts.close()
