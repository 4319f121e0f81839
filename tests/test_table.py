"""experiments/table.py on a synthetic runs directory (run.json + config.json + results.json written here)."""
import csv
import io
import json

import numpy as np
import pytest

from experiments import table

TASKS = table.TASKS


def write_run(runs_dir, family, task, seed, *, acc=None, scale="mini", option=None, chance=False, failure=None,
              steps=None, run_json=True):
    variant = task + ("_smoke" if scale == "mini" else "") + (f",{option}" if option else "")
    name = f"{family}-{variant.replace(',', '-')}-seed{seed}"
    d = runs_dir / name
    d.mkdir(parents=True)
    if run_json:
        (d / "run.json").write_text(json.dumps(dict(
            name=name, family=family, variant=variant, task=task, option=option, seed=seed, scale=scale,
            config=f"experiments/configs/{family}.py:{variant}", overrides=[], suite="test")))
    config = dict(seed=seed, data=dict(task=task), model=dict(layer=family), train=dict(num_steps=100, data_seed=seed))
    (d / "config.json").write_text(json.dumps(config))
    if acc is not None:
        (d / "results.json").write_text(json.dumps(dict(test_accuracy=acc, val_accuracy=acc, chance_level=chance)))
    if failure is not None:
        (d / "failure.json").write_text(json.dumps(dict(kind=failure, exit_code=3, reason="non-finite loss")))
    if steps is not None:
        (d / "metrics.jsonl").write_text(json.dumps(dict(step=steps, split="train", loss=1.0, steps_per_s=5.0)) + "\n")
    return d


def csv_rows(runs_dir):
    return {(r["scale"], r["model"], r["task"]): r for r in csv.DictReader(io.StringIO(table.render(runs_dir, "csv")))}


@pytest.fixture
def full_dir(tmp_path):
    """LRU at full scale on all six tasks (3 seeds on ListOps), one diverged Path-X seed pair: FAIL."""
    for seed, acc in enumerate([0.60, 0.62, 0.58]):
        write_run(tmp_path, "lru", "listops", seed, acc=acc, scale="full")
    for task, acc in zip(("text", "retrieval", "image", "pathfinder"), (0.89, 0.90, 0.88, 0.95)):
        write_run(tmp_path, "lru", task, 0, acc=acc, scale="full")
    write_run(tmp_path, "lru", "pathx", 0, failure="diverged", scale="full")
    write_run(tmp_path, "lru", "pathx", 1, failure="diverged", scale="full")
    return tmp_path


def test_published_data_is_read_with_fail_and_star():
    pub, notes = table.published_models()
    assert pub["lru"]["listops"].value == 60.2
    assert pub["transformer"]["pathx"].fail and pub["transformer"]["pathx"].value == 50.0
    assert not pub["lru"]["image"].comparable and pub["lru"]["image"].value == 89.0
    assert any("Orvieto" in n for n in notes), "the citations must travel with the numbers"
    # The published averages follow the convention the table states: FAIL counts as 50.
    tr = pub["transformer"]
    assert np.mean([tr[t].value for t in TASKS]) == pytest.approx(tr["avg_6task"].value, abs=0.01)
    ladder, _ = table.published_ladder()
    assert ladder["ring_init"]["pathfinder"].value == 94.4
    assert ladder["rnn_tanh"]["pathx"].fail and ladder["lru"]["listops"].value == 60.2
    assert ladder["real_imag"]["image"].text == "86.5*"


def test_mean_std_over_seeds_average_and_fail(full_dir):
    rows = csv_rows(full_dir)
    listops = rows[("full", "lru", "listops")]
    assert float(listops["mean"]) == pytest.approx(60.0)
    assert float(listops["std"]) == pytest.approx(np.std([60, 62, 58], ddof=1))
    assert listops["n_done"] == "3" and float(listops["difference"]) == pytest.approx(60.0 - 60.2)
    pathx = rows[("full", "lru", "pathx")]
    assert pathx["status"] == "FAIL" and float(pathx["value_for_average"]) == 50.0
    avg = rows[("full", "lru", "avg_6task")]
    assert float(avg["mean"]) == pytest.approx(np.mean([60.0, 89, 90, 88, 95, 50]))
    assert float(avg["difference"]) == pytest.approx(float(avg["mean"]) - 86.30)
    assert rows[("full", "lru", "image")]["difference"] == "n/c"  # LRU's published image is coloured sCIFAR

    md = table.render(full_dir, "md")
    assert "60.00 ± 2.00 (n=3)" in md and "FAIL (diverged)" in md
    assert "difference (ours - published)" in md and "-0.20" in md
    assert "counts as 50" in md and "Orvieto" in md


def test_missing_task_makes_the_average_incomplete_not_zero(tmp_path):
    write_run(tmp_path, "lru", "listops", 0, acc=0.5, scale="full")
    rows = csv_rows(tmp_path)
    assert rows[("full", "lru", "text")]["status"] == "missing" and rows[("full", "lru", "text")]["mean"] == ""
    avg = rows[("full", "lru", "avg_6task")]
    assert avg["status"] == "incomplete (1/6 tasks)" and avg["mean"] == ""
    md = table.render(tmp_path, "md")
    assert "incomplete (1/6 tasks)" in md and "| missing |" in md


def test_expected_runs_from_suite_json_and_partial_seeds(tmp_path):
    write_run(tmp_path, "lru", "listops", 0, acc=0.5)
    write_run(tmp_path, "lru", "listops", 1, steps=40)  # interrupted
    expected = [dict(name=f"lru-listops_smoke-seed{s}", family="lru", task="listops", seed=s, scale="mini")
                for s in range(3)]
    expected.append(dict(name="s4d-pathfinder_smoke-seed0", family="s4d", task="pathfinder", seed=0, scale="mini"))
    expected.append(dict(name="s5-listops_smoke-seed0", family="s5", task="listops", seed=0, scale="mini",
                         available=False))
    (tmp_path / "suite.json").write_text(json.dumps(dict(runs=expected)))
    rows = csv_rows(tmp_path)
    lst = rows[("mini", "lru", "listops")]
    assert lst["n_done"] == "1" and lst["n_expected"] == "3" and lst["std"] == ""
    assert rows[("mini", "s4d", "pathfinder")]["status"] == "missing"
    assert rows[("mini", "s5", "listops")]["status"] == "not available"
    md = table.render(tmp_path, "md")
    assert "50.00 (n=1/3) [2 not finished]" in md and "missing (config not available)" in md


def test_failed_and_chance_runs_are_shown(tmp_path):
    write_run(tmp_path, "lru", "listops", 0, acc=0.5)
    write_run(tmp_path, "lru", "listops", 1, acc=0.1, chance=True)
    write_run(tmp_path, "lru", "listops", 2, failure="user or data error")
    write_run(tmp_path, "lru", "pathfinder", 0, failure="user or data error")
    md = table.render(tmp_path, "md")
    assert "30.00 ± 28.28 (n=2/3) [1 at chance; 1 failed: user or data error]" in md
    rows = csv_rows(tmp_path)
    # A crash or data error is not a model FAIL: the task is missing from the average.
    assert rows[("mini", "lru", "pathfinder")]["status"] == "failed"
    assert rows[("mini", "lru", "pathfinder")]["value_for_average"] == ""
    assert rows[("mini", "lru", "listops")]["n_chance"] == "1"


def test_runs_with_different_configs_or_repeated_seeds_are_flagged(tmp_path):
    # Two plain `experiments.train` runs of the LRU on ListOps at different learning rates, and a third that repeats
    # the first's seed: the table must not present their mean as a mean over seeds of one experiment.
    for name, seed, lr, log_every in (("a", 0, 1e-3, 10), ("b", 1, 3e-3, 50), ("c", 0, 1e-3, 50)):
        d = write_run(tmp_path / name, "lru", "listops", seed, acc=0.4, run_json=False)
        config = json.loads((d / "config.json").read_text())
        config.update(optim=dict(lr=lr), train=dict(config["train"], log_every=log_every))
        (d / "config.json").write_text(json.dumps(config))
    md = table.render(tmp_path, "md")
    assert "[mixed configs; repeated seeds]" in md
    warning = next(line for line in md.splitlines() if line.startswith("- WARNING: lru / ListOps"))
    run = lambda name, seed: str(tmp_path / name / f"lru-listops_smoke-seed{seed}")
    assert f"optim.lr (0.001: {run('a', 0)}, {run('c', 0)}; 0.003: {run('b', 1)})" in warning
    assert "log_every" not in warning, "bookkeeping keys are not a difference between experiments"
    assert "seed(s) 0 appear in more than one run" in md
    assert "optim.lr" in csv_rows(tmp_path)[("unlabelled", "lru", "listops")]["warnings"]
    # Seeds of one experiment (differing only in seed, data_seed and bookkeeping) raise no warning.
    clean = tmp_path / "clean"
    for seed in range(2):
        write_run(clean, "lru", "listops", seed, acc=0.4)
    assert "WARNING" not in table.render(clean, "md") and csv_rows(clean)[("mini", "lru", "listops")]["warnings"] == ""


def test_scale_is_labelled_and_mini_never_compared_as_full(tmp_path):
    write_run(tmp_path, "lru", "listops", 0, acc=0.47, scale="mini")
    d = write_run(tmp_path / "plain", "lru", "listops", 0, acc=0.40, run_json=False)
    md = table.render(tmp_path, "md")
    mini = md.split("## ")[1]
    assert mini.startswith("Mini scale") and "NOT comparable" in mini
    assert "ours (mini, seeds 0)" in mini and "published (full scale)" in mini
    assert "difference (ours" not in mini and "SCALE: our numbers are mini scale" in mini
    unlabelled = md.split("## ")[2]
    assert unlabelled.startswith("Unlabelled scale") and "40.00" in unlabelled
    rows = csv_rows(tmp_path)
    assert rows[("mini", "lru", "listops")]["difference"] == "" and ("full", "lru", "listops") not in rows
    assert rows[("unlabelled", "lru", "listops")]["runs"] == d.name


def test_ladder_section_beside_the_paper(tmp_path):
    for rung, acc in (("ring_init", 0.55), ("rnn_tanh", 0.40), ("lru", 0.58)):
        write_run(tmp_path, "ladder", "listops", 0, acc=acc, scale="full", option=rung)
    md = table.render(tmp_path, "md")
    section = md.split("## ")[1]
    assert "ablation ladder" in section
    # Rungs in the paper's order, each beside its published row.
    assert section.index("ladder:rnn_tanh") < section.index("ladder:ring_init") < section.index("ladder:lru")
    assert "+ Ring Init" in section and "59.4" in section
    assert "-4.40" in section  # 55.0 - 59.4
    rows = csv_rows(tmp_path)
    assert rows[("full", "ladder:rnn_tanh", "listops")]["published"] == "43.9"


def test_latex_and_csv_formats(full_dir):
    tex = table.render(full_dir, "latex")
    assert r"\begin{tabular}" in tex and r"$\pm$" in tex and tex.count(r"\end{table}") == 1
    assert "Path-X" in tex and "%" not in tex.replace(r"\%", "").split("\n", 1)[1].replace("% ", "")
    rows = list(csv.DictReader(io.StringIO(table.render(full_dir, "csv"))))
    assert list(rows[0]) == list(table.CSV_FIELDS)
    assert len(rows) == 7  # six tasks + the average


def test_plot_and_cli(full_dir, tmp_path, capsys):
    out = tmp_path / "fig" / "table.png"
    assert table.main([str(full_dir), "--format", "md", "--plot", str(out)]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 10_000
    assert f"figure: {out}" in capsys.readouterr().out
    assert table.main([str(tmp_path / "nowhere")]) == 2
    assert "does not exist" in capsys.readouterr().err
    (tmp_path / "afile").write_text("")
    assert table.main([str(tmp_path / "afile")]) == 2
    assert capsys.readouterr().err.startswith(f"error: {tmp_path / 'afile'} is a file, not a runs directory")


def test_broken_run_json_names_the_file(tmp_path):
    d = write_run(tmp_path, "lru", "listops", 0, acc=0.5)
    (d / "run.json").write_text("{not json")
    with pytest.raises(ValueError, match="run.json"):
        table.render(tmp_path)
