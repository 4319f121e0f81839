"""Every run of the full and ablation suites has a time estimate from a measured step time, labelled as an
estimate, or says why not (experiments/reproduce.py STEP_RATE_ESTIMATES; experiments/benchmark.py `rates`)."""
import math

import pytest

from experiments import benchmark, reproduce


def _runs(suite):
    return reproduce.expand(reproduce.SUITES[suite], suite, seeds=1)


@pytest.mark.parametrize("suite", ["full", "ablation"])
def test_every_run_has_a_labelled_estimate_or_a_reason(suite, tmp_path):
    not_estimated = set()
    runs = _runs(suite)
    configs, unavailable = reproduce.resolve_all(runs, f"suite {suite}", builtin=True, data_dir=None)
    assert not unavailable, unavailable
    for run in runs:
        config = configs[run.name]
        seconds, how = reproduce.estimate(run, tmp_path / run.name, config.train.num_steps, {}, config)
        if seconds is None:
            assert how.startswith("not estimated: ") and len(how) > 40, f"{run.name}: {how!r}"
            not_estimated.add((run.model, run.task))
        else:
            # a measured step at a small batch, scaled to the config's, and called an estimate
            assert "estimate (" in how and "measured at B=" in how and "CPU" in how, f"{run.name}: {how!r}"
            assert seconds > reproduce.START_UP_S["full"], f"{run.name}: {seconds}"
    assert not_estimated == {k for k in reproduce.NOT_ESTIMATED if k in {(r.model, r.task) for r in _runs(suite)}}


def test_measured_table_covers_the_suites_and_is_consistent():
    cases = benchmark.rate_cases(["full", "ablation"])
    assert set(cases) == {(r.model, r.task) for s in ("full", "ablation") for r in _runs(s)}
    for model, task in cases:
        measured_as = reproduce.SAME_COST.get(model, model)
        assert (measured_as, task) in reproduce.FULL_MEASURED or (model, task) in reproduce.NOT_ESTIMATED, \
            f"{model} {task}: no measurement (rerun `python -m experiments.benchmark rates`)"
    for (model, task), (b, b_s, step_s, B) in reproduce.FULL_MEASURED.items():
        # the scaled step plus a non-negative evaluation share, and B the config's batch
        assert step_s >= b_s * B / b * 0.999, (model, task)
        assert B == benchmark.load_config(str(reproduce.REPO / cases[(model, task)])).train.batch_size, (model, task)


def test_task_input_is_each_tasks_full_size_input():
    def task_in(spec):
        return benchmark.task_input(benchmark.load_config(str(reproduce.CONFIG_DIR / spec)))

    assert task_in("transformer.py:pathx") == dict(length=16384, vocab_size=256, d_input=None, dual=False, n_classes=2)
    assert task_in("lru.py:image") == dict(length=1024, vocab_size=None, d_input=3, dual=False, n_classes=10)
    assert task_in("s4d.py:image")["d_input"] == 1 and task_in("transformer.py:image")["vocab_size"] == 256
    assert task_in("lru.py:retrieval") == dict(length=4000, vocab_size=256, d_input=None, dual=True, n_classes=2)
    assert task_in("s5.py:text")["length"] == 4096 and task_in("lru.py:listops")["length"] == 2000


def test_bench_rate_scales_the_measured_step_to_the_configs_batch(monkeypatch):
    seen = {}

    def fake_bench_step(config, batch_size, length, reps, **task_in):
        seen.update(batch_size=batch_size, length=length, **task_in)
        return dict(train_step_s=2.0, eval_step_s=0.5, train_step_cpu_s=3.0, eval_step_cpu_s=1.0,
                    train_compile_and_first_step_s=9.0, eval_compile_s=4.0, peak_rss_bytes=1)

    monkeypatch.setattr(benchmark, "bench_step", fake_bench_step)
    r = benchmark.bench_rate(str(reproduce.CONFIG_DIR / "lru.py:retrieval"), 2, 1)
    assert seen == dict(batch_size=2, length=4000, vocab_size=256, n_classes=2, d_input=None, dual=True)
    # lru.py:retrieval: B=64, 100k steps, eval every 5000 -> 20 validations of 18,090 pairs + 1 test of 17,437
    evals_examples = 20 * 18_090 + 17_437
    assert r["evaluations"] == 20 and r["train_step_s_scaled"] == pytest.approx(2.0 * 64 / 2)
    assert r["step_s_with_eval"] == pytest.approx(2.0 * 64 / 2 + evals_examples * 0.5 / 2 / 100_000)
    assert r["step_cpu_s_with_eval"] == pytest.approx(3.0 * 64 / 2 + evals_examples * 1.0 / 2 / 100_000)
    assert r["run_hours"] == pytest.approx(r["step_s_with_eval"] * 100_000 / 3600)


def test_bench_step_runs_real_two_document_inputs():
    """One tiny compile of both input paths that `rates` adds (real (B, L, C) inputs, Retrieval's two documents)."""
    config = benchmark.apply_settings(benchmark.load_config(str(reproduce.CONFIG_DIR / "lru.py:retrieval_smoke")),
                                      ["model.d_model=8", "model.n_layers=1", "model.layer_args.d_state=4"])
    r = benchmark.bench_step(config, 2, 8, 1, n_classes=2, d_input=3, dual=True)
    assert r["train_tokens_per_s"] == pytest.approx(2 * 8 * 2 / r["train_step_s"])
    assert r["train_step_cpu_s"] > 0 and r["eval_step_cpu_s"] > 0 and math.isfinite(r["final_loss"])
