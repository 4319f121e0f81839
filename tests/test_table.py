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


def test_broken_run_json_shows_the_run_unreadable_and_names_the_file(tmp_path):
    d = write_run(tmp_path, "lru", "listops", 0, acc=0.5)
    (d / "run.json").write_text("{not json")
    md = table.render(tmp_path)  # placed by its config.json (so: unlabelled scale), shown as unreadable
    assert "| unreadable |" in md and f"{d / 'run.json'}: not valid JSON" in md
    (d / "config.json").write_text("{not json either")
    with pytest.raises(ValueError, match="run.json"):  # nothing says which run it is
        table.render(tmp_path)


def test_difference_of_a_fail_is_fail_not_a_number(tmp_path):
    # S5 at full scale: every ListOps seed diverged. The S4 convention (FAIL = 50) is for the 6-task average only;
    # the per-task difference was 50 - 62.15 = -12.15.
    for seed in range(2):
        write_run(tmp_path, "s5", "listops", seed, failure="diverged", scale="full")
    for task in TASKS[1:]:
        write_run(tmp_path, "s5", task, 0, acc=0.8, scale="full")
    write_run(tmp_path, "transformer", "pathx", 0, acc=0.55, scale="full")  # published: FAIL
    rows = csv_rows(tmp_path)
    assert rows[("full", "s5", "listops")]["difference"] == "FAIL"
    assert rows[("full", "transformer", "pathx")]["difference"] == "pub. FAIL"
    avg = rows[("full", "s5", "avg_6task")]  # the average keeps FAIL = 50
    assert float(avg["mean"]) == pytest.approx(np.mean([50, 80, 80, 80, 80, 80]))
    md = table.render(tmp_path, "md")
    diff_row = next(line for line in md.splitlines() if line.startswith("| s5 | difference"))
    assert diff_row.split(" | ")[2] == "FAIL" and "-12.15" not in md
    assert "never computed from a FAIL" in md


def ladder_cells_dir(root):
    """Ladder rungs written in alphabetical order; lru at chance, ring_init with a repeated seed, exp with mixed
    configs (two plain trainer runs at different learning rates)."""
    for rung in ("exp", "lru", "real_imag", "ring_init", "rnn_lin", "rnn_relu"):
        write_run(root, "ladder", "listops", 0, acc=0.3 if rung == "lru" else 0.5, scale="full", option=rung,
                  chance=rung == "lru")
    write_run(root / "copy", "ladder", "listops", 0, acc=0.52, scale="full", option="ring_init")
    d = write_run(root, "ladder", "listops", 1, acc=0.5, scale="full", option="exp")
    config = json.loads((d / "config.json").read_text())
    (d / "config.json").write_text(json.dumps(dict(config, optim=dict(lr=0.1))))
    return root


def test_figure_uses_the_table_order_and_marks_flagged_cells(tmp_path):
    from matplotlib.container import BarContainer

    groups = table.collect(ladder_cells_dir(tmp_path))
    fig = table.figure(groups)
    ax = fig.axes[0]
    bars = [c for c in ax.containers if isinstance(c, BarContainer)]
    order = ["rnn_relu", "rnn_lin", "real_imag", "exp", "ring_init", "lru"]  # LADDER_ROWS order, not a-z
    assert [c.get_label() for c in bars] == [f"ladder:{r} (ours, full)" for r in order]
    md = table.render(tmp_path, "md")
    assert sorted(order, key=lambda r: md.index(f"| ladder:{r} | ours")) == order  # the table: the same order
    hatch = {r: c.patches[0].get_hatch() for r, c in zip(order, bars)}
    assert hatch == {"rnn_relu": None, "rnn_lin": None, "real_imag": None, "exp": table.HATCHES["mixed configs"],
                     "ring_init": table.HATCHES["repeated seeds"], "lru": table.HATCHES["at chance"]}
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert {"at chance", "mixed configs", "repeated seeds", "published (full scale)"} <= set(legend)
    import matplotlib.pyplot as plt
    plt.close(fig)


def test_counts_with_a_duplicated_seed_and_a_missing_one(tmp_path):
    # The suite expects seeds 0 and 1; seed 0 finished in two directories (a copy), seed 1 never ran.
    write_run(tmp_path, "lru", "listops", 0, acc=0.5)
    write_run(tmp_path / "copy", "lru", "listops", 0, acc=0.5)
    expected = [dict(name=f"lru-listops_smoke-seed{s}", family="lru", task="listops", seed=s, scale="mini")
                for s in range(2)]
    (tmp_path / "suite.json").write_text(json.dumps(dict(runs=expected)))
    md = table.render(tmp_path, "md")
    assert "50.00 ± 0.00 (n=2 runs of 1/2 seeds) [repeated seeds; 1 not finished]" in md  # was (n=2/3)
    row = csv_rows(tmp_path)[("mini", "lru", "listops")]
    assert (row["n_done"], row["n_expected"], row["n_runs"]) == ("1", "2", "2")


def test_diverged_run_plus_unavailable_ones_is_fail_and_says_so(tmp_path):
    write_run(tmp_path, "s5", "listops", 0, failure="diverged")
    expected = [dict(name=f"s5-listops_smoke-seed{s}", family="s5", task="listops", seed=s, scale="mini",
                     available=s == 0) for s in range(3)]
    (tmp_path / "suite.json").write_text(json.dumps(dict(runs=expected)))
    assert "| FAIL (diverged) [2 not available] |" in table.render(tmp_path, "md")
    row = csv_rows(tmp_path)[("mini", "s5", "listops")]
    assert row["status"] == "FAIL" and float(row["value_for_average"]) == 50.0


def test_a_corrupt_results_json_is_shown_unreadable_and_the_rest_printed(full_dir, capsys):
    bad = full_dir / "lru-listops-seed2" / "results.json"
    bad.write_text('{"test_accuracy": 0.5')  # cut short
    assert table.main([str(full_dir)]) == 1  # the table is printed, the exit status says something is wrong
    out, err = capsys.readouterr()
    assert "61.00 ± 1.41 (n=2/3) [1 unreadable]" in out and "89.00" in out  # the rest of the table is there
    warning = next(line for line in out.splitlines() if "unreadable, left out" in line)
    assert str(bad) in warning and "not valid JSON" in warning
    assert "1 run directory is unreadable" in err and str(bad.parent) in err
    (full_dir / "lru-text-seed0" / "results.json").write_text("[")  # the only run of its cell
    assert csv_rows(full_dir)[("full", "lru", "text")]["status"] == "unreadable"


def test_cli_piped_into_head_exits_quietly(full_dir):
    import subprocess
    import sys
    from pathlib import Path

    proc = subprocess.Popen([sys.executable, "-m", "experiments.table", str(full_dir)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, cwd=Path(table.__file__).resolve().parent.parent)
    proc.stdout.close()  # the reader (`head`) has gone before the table is printed
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 0 and err == "", err


def test_a_run_the_driver_found_stale_is_left_out_and_said(tmp_path):
    """suite.json's "stale" (the driver found another config's run under an entry's name): its old result is not
    shown as the entry's; the cell says stale and a warning gives the driver's reason."""
    write_run(tmp_path, "lru", "listops", 0, acc=0.331)
    write_run(tmp_path, "lru", "listops", 1, acc=0.45)
    reason = "stale (config differs: model.d_model: 16 -> 32): delete or move that run directory"
    runs = [dict(name=f"lru-listops_smoke-seed{s}", family="lru", option=None, task="listops", seed=s, scale="mini",
                 available=True, why_not=None, stale=reason if s == 0 else None) for s in (0, 1)]
    (tmp_path / "suite.json").write_text(json.dumps(dict(runs=runs)))
    out = table.render(tmp_path, "md")
    assert "45.00 (n=1/2) [1 stale]" in out and "33.10" not in out
    assert "lru-listops_smoke-seed0 is stale, left out: " + reason in out
    assert "mixed configs" not in out
    # Every seed stale: the cell is 'stale', not a number and not 'missing'.
    runs[1]["stale"] = reason
    (tmp_path / "suite.json").write_text(json.dumps(dict(runs=runs)))
    row = csv_rows(tmp_path)[("mini", "lru", "listops")]
    assert row["status"] == "stale" and row["mean"] == ""


def test_plot_into_a_path_under_a_file_is_one_line(tmp_path, capsys):
    write_run(tmp_path / "runs", "lru", "listops", 0, acc=0.5)
    (tmp_path / "afile").write_text("")
    assert table.main([str(tmp_path / "runs"), "--plot", str(tmp_path / "afile" / "x.png")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --plot ") and "give another path" in err and err.count("\n") == 1
