"""User errors and conveniences of the command line (experiments/train.py, validation.py, runlog.py, configs).

Every user error is one `error:` line naming the key or file and the fix, exit code 2, no traceback, and no run
directory left behind. The checks themselves are tested in-process; a few end-to-end runs of the CLI (each stops
before anything is compiled) check the wiring.
"""
import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from experiments import runlog, validation
from experiments.configs import lru

REPO = Path(__file__).resolve().parent.parent


def cli(*args, env=None, module="experiments.train"):
    e = dict(os.environ, JAX_PLATFORMS="cpu", **(env or {}))
    return subprocess.run([sys.executable, "-m", module, *args], cwd=REPO, env=e, capture_output=True, text=True,
                          timeout=300)


def assert_user_error(proc, *needles):
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-2000:])
    assert "Traceback" not in proc.stderr + proc.stdout, proc.stderr[-3000:]
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, proc.stderr
    for needle in needles:
        assert needle in proc.stderr, (needle, proc.stderr)


def smoke_config(**overrides):
    config = lru.get_config("listops_smoke")
    config.unlock()
    for key, value in overrides.items():
        node = config
        *parents, last = key.split(".")
        for p in parents:
            node = node[p]
        node[last] = value
    return config


# ------------------------------------------------------------------------------------------- validation (in-process)


@pytest.mark.parametrize("key", validation.TRAIN_COUNTS)
@pytest.mark.parametrize("value", [0, -3])
def test_every_count_and_interval_must_be_positive(key, value):
    with pytest.raises(validation.ConfigError, match=rf"config\.train\.{key}={value}: must be an integer >= 1"):
        validation.check_train(smoke_config(**{f"train.{key}": value}).train)


def test_keep_checkpoints_zero_explains_that_resume_needs_one():
    with pytest.raises(validation.ConfigError, match="could not resume"):
        validation.check_config(smoke_config(**{"train.keep_checkpoints": 0}))


def test_the_int32_step_counter_can_never_wrap():
    with pytest.raises(validation.ConfigError, match=r"2\*\*31 - 1"):
        validation.check_train(smoke_config(**{"train.num_steps": 2**31 - 1}).train)
    validation.check_train(smoke_config(**{"train.num_steps": 2**31 - 2}).train)  # the largest allowed


@pytest.mark.parametrize("key, value, needle", [
    ("optim.lr", -1e-3, "config.optim.lr=-0.001: must be a finite number > 0"),
    ("optim.lr", float("nan"), "config.optim.lr=nan"),
    ("optim.weight_decay", -0.1, "config.optim.weight_decay=-0.1"),
    ("optim.grad_clip", -1.0, "config.optim.grad_clip=-1.0: must be a finite number >= 0 (0 turns clipping off)"),
    ("optim.b2", 1.0, "config.optim.b2=1.0: must be in [0, 1)"),
    ("optim.warmup_steps", -1, "config.optim.warmup_steps=-1"),
    ("optim.warmup_steps", 3001, "warmup_steps=3001 is larger than config.train.num_steps=3000"),
    ("model.d_model", 0, "config.model.d_model=0"),
    ("model.dropout", 1.0, "config.model.dropout=1.0"),
])
def test_optimiser_and_model_values(key, value, needle):
    with pytest.raises(validation.ConfigError) as e:
        validation.check_config(smoke_config(**{key: value}))
    assert needle in str(e.value)


def test_warmup_equal_to_num_steps_is_allowed():
    validation.check_config(smoke_config(**{"optim.warmup_steps": 3000}))


@pytest.mark.parametrize("key, value, needle", [
    ("parameterization", "foo", "parameterization must be one of"),
    ("r_min", 0.95, "need 0 <= r_min < r_max <= 1"),
])
def test_layer_arguments_are_checked_by_building_the_layer_abstractly(key, value, needle):
    with pytest.raises(validation.ConfigError) as e:
        validation.check_config(smoke_config(**{f"model.layer_args.{key}": value}))
    message = str(e.value)
    assert message.startswith("config.model.layer_args are not valid for layer 'lru'") and needle in message
    assert f"{key}={value!r}" in message


@pytest.mark.parametrize("family", ["lru", "s4d", "s5"])  # s4d's default conv mode never calls the scan
def test_an_unknown_scan_method_names_its_key_and_the_methods(family):
    import importlib

    config = importlib.import_module(f"experiments.configs.{family}").get_config("listops_smoke")
    config.model.layer_args.scan_method = "fast"
    with pytest.raises(validation.ConfigError) as e:
        validation.check_config(config)
    assert str(e.value).startswith("config.model.layer_args.scan_method='fast': must be one of auto, sequential, "
                                   "associative, chunked")


@pytest.mark.parametrize("key, value, message", [
    ("task", "foo", "config.data.task='foo': not a task; choose one of listops, text, retrieval, image, pathfinder"),
    ("source", "foo", "config.data.source='foo': unknown ListOps source 'foo'; choose one of 'generated', 'release'"),
    ("size", "huge", "config.data.size='huge': unknown ListOps size 'huge'; choose one of 'full', 'small'"),
    ("seed", -1, "config.data.seed=-1: ListOps option seed must be a non-negative integer"),
])
def test_data_options_are_checked_with_the_config_naming_the_key(key, value, message):
    """They were lra's messages without the config key, and only once training loaded data (fresh-clone review)."""
    with pytest.raises(validation.ConfigError) as e:
        validation.check_config(smoke_config(**{f"data.{key}": value}))
    assert str(e.value).startswith(message)


def test_a_bad_boolean_flag_is_a_sentence_not_a_tuple():
    from absl import flags

    from experiments.cli import flag_error

    values = flags.FlagValues()
    flags.DEFINE_bool("async_checkpointing", True, "", flag_values=values)
    with pytest.raises(flags.Error) as e:
        values(["prog", "--async_checkpointing=maybe"])
    assert flag_error(e.value) == "flag --async_checkpointing=maybe: a boolean flag takes true or false (also t/f, 1/0)"


def test_unknown_layer_argument_and_unknown_layer():
    config = smoke_config()
    config.model.layer_args["colour"] = "red"
    with pytest.raises(validation.ConfigError, match=r"config.model.layer_args.colour: layer 'lru' takes no such "
                       r"argument \(it takes: d_state, r_min, "):
        validation.check_config(config)
    with pytest.raises(validation.ConfigError, match="config.model.layer='lstm' is not a layer family"):
        validation.check_config(smoke_config(**{"model.layer": "lstm"}))


# The smallest layer_args each family builds with (the size under test is put on top).
MINIMAL_LAYER_ARGS = {"attention": dict(n_heads=2), "s5": dict(d_state=4)}


def size_cases():
    import models

    for layer, cls in sorted(models.LAYERS.items()):
        for key in validation._layer_parameters(cls):
            if key in validation.LAYER_SIZES:
                yield layer, key


def layer_model(layer, **layer_args):
    import ml_collections

    args = dict(MINIMAL_LAYER_ARGS.get(layer, dict(d_state=4)), **layer_args)
    return ml_collections.ConfigDict(dict(layer=layer, d_model=8, layer_args=args))


@pytest.mark.parametrize("layer, key", list(size_cases()))
def test_every_layer_size_must_be_a_positive_integer_named_by_its_key(layer, key):
    # Before: d_state=0 came out as "ZeroDivisionError: division by zero" from inside the constructor.
    for value in (0, -2, 2.5):
        with pytest.raises(validation.ConfigError) as e:
            validation.check_layer(layer_model(layer, **{key: value}))
        message = str(e.value)
        assert message.startswith(f"config.model.layer_args.{key}={value!r}: must be an integer >= 1"), message
        assert f"set --config.model.layer_args.{key}=<value>" in message and "Error" not in message


def test_every_size_argument_of_every_family_is_in_layer_sizes():
    # A new family's size argument (d_*, n_*, or an integer default) must be added to LAYER_SIZES to be checked.
    import models

    for layer, cls in models.LAYERS.items():
        for key, param in validation._layer_parameters(cls).items():
            default = param.default
            size_like = key.startswith(("d_", "n_")) or (isinstance(default, int) and not isinstance(default, bool))
            assert not size_like or key in validation.LAYER_SIZES, (layer, key)


@pytest.mark.parametrize("layer, key, value, needle", [
    ("lru", "max_phase", -0.5, "must be a number in [0, 2*pi]"),
    ("rotation", "max_phase", 7.0, "must be a number in [0, 2*pi]"),
    ("s5", "dt_min", 0.0, "must be a finite number > 0"),
    ("s4d", "dt_max", -0.1, "must be a finite number > 0"),
])
def test_ranged_layer_arguments_are_named_with_their_range(layer, key, value, needle):
    with pytest.raises(validation.ConfigError) as e:
        validation.check_layer(layer_model(layer, **{key: value}))
    assert str(e.value).startswith(f"config.model.layer_args.{key}={value!r}: {needle}"), str(e.value)


@pytest.mark.parametrize("family, layer, owner, config_file", [
    ("lru", "s5", "'lru'", "experiments/configs/s5.py"),
    ("s5", "attention", "'s5'", "experiments/configs/transformer.py"),  # the file whose model.layer is attention
    ("transformer", "lru", "'attention'", "experiments/configs/lru.py"),
])
def test_switching_model_layer_alone_explains_that_layer_args_belong_to_the_family(family, layer, owner,
                                                                                  config_file):
    import importlib

    config = importlib.import_module(f"experiments.configs.{family}").get_config("listops")
    config.unlock()
    config.model.layer = layer
    with pytest.raises(validation.ConfigError) as e:
        validation.check_config(config)
    message = str(e.value)
    assert f"layer {layer!r} takes no such argument" in message and f"the arguments of {owner}" in message
    assert f"--config.model.layer={layer} alone does not switch family" in message
    assert f"use its config file: --config {config_file}:<variant>" in message and "TypeError" not in message


@pytest.mark.parametrize("boundaries", [(512, 256), (256, 256, 512), (0, 256), (128.0, 256)])
def test_bucket_boundaries_must_be_increasing_positive_integers(boundaries):
    with pytest.raises(validation.ConfigError) as e:
        validation.check_train(smoke_config(**{"train.bucket_boundaries": boundaries}).train)
    assert str(e.value).startswith(f"config.train.bucket_boundaries={boundaries!r}: must be () or a strictly "
                                   "increasing tuple of integers >= 1")
    for fine in ((), (64, 128, 256)):
        validation.check_train(smoke_config(**{"train.bucket_boundaries": fine}).train)


def test_a_config_file_without_variant_lists_the_variants():
    from experiments.configs.__main__ import missing_variant

    message = missing_variant(REPO / "experiments/configs/lru.py")
    assert "names no variant: use --config" in message and f"one of: {', '.join(lru.VARIANTS)}" in message
    message = missing_variant(REPO / "experiments/configs/ladder.py")
    assert "listops_smoke" in message and "(then ,<option>; options: rnn_relu" in message


def test_every_family_lists_the_options_it_accepts_and_parses_like_the_others(monkeypatch):
    """Each config file parses its variant with base.parse_variant, and the options it passes there are its OPTIONS
    (what `python -m experiments.configs` lists; s4d.py's inits were accepted but not listed); a family without
    options names the bad option and says it takes none (lru.py used to call it an unknown variant)."""
    from experiments.configs import __main__ as lister
    from experiments.configs import base

    seen = []
    parse = base.parse_variant
    monkeypatch.setattr(base, "parse_variant", lambda arg, family, options=(): seen.append(tuple(options))
                        or parse(arg, family, options))
    for path in lister.family_files():
        module, seen[:] = lister.load(path), []
        options = tuple(getattr(module, "OPTIONS", ()))
        module.get_config("listops_smoke" + (f",{options[-1]}" if options else ""))
        # seen[0]: the file's own call (ladder.py then builds on lru.py's get_config)
        assert seen[:1] == [options], f"{path.name}: parse_variant got options {seen}, OPTIONS lists {options}"
        if not options:
            with pytest.raises(ValueError, match=f"unknown option 'bogus' .* for {path.name}; this family takes none"):
                module.get_config("listops,bogus")


@pytest.mark.parametrize("module, argv", [
    ("experiments.reproduce", ["foo", "--suite", "mini", "--dry-run"]),
    ("experiments.table", ["runs", "stray"]),
    ("experiments.benchmark", ["step", "stray"]),
])
def test_argparse_entry_points_refuse_a_stray_argument_in_one_line(module, argv, capsys):
    import importlib

    with pytest.raises(SystemExit) as e:
        importlib.import_module(module).main(argv)
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert err.splitlines()[-1].endswith("error: unrecognized arguments: " + argv[1 if module != "experiments.reproduce"
                                                                                  else 0])


def test_every_shipped_config_and_variant_is_valid():
    """Every family file x variant (x option): the config-level checks (the layer itself is built per family in
    the family tests; building 160 full-size layers here would cost a minute)."""
    from experiments.configs import __main__ as listing
    checked = 0
    for path in listing.family_files():
        module = listing.load(path)
        for variant in listing.variants(module):
            for option in getattr(module, "OPTIONS", [None]):
                config = module.get_config(variant if option is None else f"{variant},{option}")
                validation.check_train(config.train)
                validation.check_optim(config.optim, config.train.num_steps)
                validation.check_model_sizes(config.model)
                args = config.model.layer_args.to_dict()
                validation.check_layer_arg_names(config.model.layer, args)
                validation.check_layer_arg_values(config.model.layer, args)
                checked += 1
    assert checked > 100
    validation.check_config(lru.get_config("listops"))  # and one end to end, with the abstract layer build


def test_a_published_warmup_past_the_end_is_allowed_only_when_declared():
    from experiments.configs import transformer
    config = transformer.get_config("retrieval")
    assert config.optim.warmup_steps > config.train.num_steps and config.optim.warmup_past_end
    validation.check_optim(config.optim, config.train.num_steps)
    config.optim.warmup_past_end = False
    with pytest.raises(validation.ConfigError, match="warmup_past_end"):
        validation.check_optim(config.optim, config.train.num_steps)


# ----------------------------------------------------------------------------------------- run directory (in-process)


def test_a_workdir_lock_names_the_holder_and_dies_with_it(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; from pathlib import Path; "
                               "from experiments import runlog; runlog.WorkdirLock(Path(sys.argv[1])); "
                               "print('locked', flush=True); time.sleep(600)", str(tmp_path)],
                              cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(runlog.RunDirError, match=rf"in use by another trainer \(PID {holder.pid}\)"):
            runlog.WorkdirLock(tmp_path)
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    runlog.WorkdirLock(tmp_path).release()  # a killed holder leaves nothing stuck


def test_a_resumed_log_drops_test_rows_of_a_cut_off_final_evaluation(tmp_path):
    lines = [{"step": 10, "split": "train", "loss": 1.0}, {"step": 20, "split": "val", "accuracy": 0.5},
             {"step": 20, "split": "test", "accuracy": 0.4}, {"step": 30, "split": "train", "loss": 0.5}]
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    log = runlog.MetricsLog(tmp_path, resume_step=20)
    log.close()
    kept = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert kept == lines[:2]


def test_changing_num_steps_of_a_run_is_refused_with_the_reason(tmp_path):
    config = smoke_config()
    (tmp_path / "config.json").write_text(json.dumps({**config.to_dict(), "dataset": {"folder": "/x"}}))
    runlog.check_config(tmp_path, config.to_dict())  # the same config (the data record is not compared)
    with pytest.raises(runlog.RunDirError, match="learning-rate schedule"):
        runlog.check_config(tmp_path, smoke_config(**{"train.num_steps": 6000}).to_dict())
    with pytest.raises(runlog.RunDirError) as e:  # many keys: the first 8 named, the rest counted
        runlog.check_config(tmp_path, smoke_config(**{f"optim.{k}": 0.5 for k in ("lr", "b1", "b2", "eps",
                                                      "weight_decay", "grad_clip", "recurrent_lr_factor",
                                                      "final_lr_factor")}, seed=7, **{"train.log_every": 7, "train.eval_every": 7}).to_dict())
    assert "optim.b1: 0.9 -> 0.5" in str(e.value) and ", ... and 2 more)." in str(e.value)  # 10 keys differ


def test_rerunning_a_workdir_with_another_family_says_so_in_one_line(tmp_path):
    """It listed ~30 differing keys and the num_steps paragraph (fresh-clone review)."""
    from experiments.configs import s5

    (tmp_path / "config.json").write_text(json.dumps(smoke_config().to_dict()))
    other = s5.get_config("listops_smoke")
    other.train.num_steps += 1
    n_other = len(runlog._config_changes(json.loads(json.dumps(smoke_config().to_dict())), other.to_dict())) - 1
    with pytest.raises(runlog.RunDirError) as e:
        runlog.check_config(tmp_path, other.to_dict())
    assert str(e.value) == (f"{tmp_path} holds a run of another model family (model.layer 'lru', this config 's5'; "
                            f"other config keys that differ: {n_other}). Start this run in a new --workdir.")


def test_progress_line_has_elapsed_and_eta_and_long_evaluations_report():
    stream = io.StringIO()
    progress = runlog.Progress(100, stream=stream)
    progress.start_pace(0)
    time.sleep(0.05)
    progress.update(50, dict(steps_per_s=10.0, loss=1.0, accuracy=0.5), elapsed_s=3725)
    line = stream.getvalue()
    assert "elapsed 1h02m05s" in line and "ETA 0s" in line
    progress.EVAL_EVERY_S = 0.0
    assert list(progress.batches(iter(range(3)), 3, "evaluating val")) == [0, 1, 2]
    assert "evaluating val: 1/3 batches" in stream.getvalue() and "left" in stream.getvalue()


# -------------------------------------------------------------------------------------------- the CLI, end to end


@pytest.mark.parametrize("spec, needle", [
    ("experiments/configs/lru.py:listop", "unknown variant 'listop' for lru.py; choose one of: listops"),
    ("experiments/configs/s4.py:listops", "no config file experiments/configs/s4.py"),
])
def test_config_file_and_variant_errors(tmp_path, spec, needle):
    proc = cli("--config", spec, "--workdir", str(tmp_path / "run"))
    assert_user_error(proc, needle)
    assert not (tmp_path / "run").exists()


def test_absl_entry_points_answer_stray_arguments_bad_flags_and_missing_variants_in_one_line(tmp_path):
    run, afile = tmp_path / "run", tmp_path / "afile"
    afile.write_text("")
    cases = [  # (module, argv, needles); none of these imports jax
        ("experiments.train", ["foo", "--config", "experiments/configs/lru.py:listops_smoke", "--workdir", str(run)],
         ["unexpected argument 'foo': this command takes only --flags"]),
        ("experiments.train", ["--config", "experiments/configs/lru.py", "--workdir", str(run)],
         ["--config experiments/configs/lru.py names no variant", "one of: listops, listops_smoke, text"]),
        ("experiments.train", ["--workdir", str(run)], ["--config is required", "python -m experiments.configs"]),
        ("experiments.train", ["--config", "experiments/configs/lru.py:listops_smoke", "--workdir", str(run),
                               "--config.train.async_checkpointing=maybe"],
         ["flag --config.train.async_checkpointing=maybe: a boolean flag takes true or false"]),
        ("experiments.evaluate", ["--checkpoint", "bogus"], [f"--checkpoint=bogus: {REPO / 'bogus'} does not exist"]),
        ("experiments.evaluate", ["--workdir", str(run), "stray"], ["unexpected argument 'stray'"]),
        ("experiments.evaluate", ["--workdir", str(run), "--split", "dev"],
         ["flag --split=dev: value should be one of <train|val|test>"]),
        ("experiments.evaluate", ["--workdir", str(run)], [f"--workdir {run} does not exist"]),
        ("experiments.evaluate", ["--workdir", str(afile)], [f"--workdir {afile} is a file, not a run directory"]),
    ]
    for module, argv, needles in cases:
        assert_user_error(cli(*argv, module=module), *needles)
    assert not run.exists()
    # A checkpoint's folder names its run: the error is then about that run's missing config.json.
    (tmp_path / "other" / "checkpoints" / "latest").mkdir(parents=True)
    proc = cli("--checkpoint", str(tmp_path / "other" / "checkpoints" / "latest"), module="experiments.evaluate")
    assert_user_error(proc, f"{tmp_path / 'other'} has no config.json")


def test_invalid_values_stop_before_anything_is_built(tmp_path):
    proc = cli("--config", "experiments/configs/lru.py:listops_smoke", "--workdir", str(tmp_path / "run"),
               "--config.train.eval_every=0")
    assert_user_error(proc, "config.train.eval_every=0: must be an integer >= 1")
    # A layer's own check (r_min > r_max, ...) takes the same path; it is tested in-process above.
    proc = cli("--config", "experiments/configs/lru.py:listops", "--workdir", str(tmp_path / "run"),
               "--config.model.layer=s5")
    assert_user_error(proc, "layer_args belong to the config file's family",
                      "--config experiments/configs/s5.py:<variant>")
    assert "TypeError" not in proc.stderr
    assert not (tmp_path / "run").exists()


def test_a_data_dir_that_is_a_file(tmp_path):
    (tmp_path / "data").write_text("")
    proc = cli("--config", "experiments/configs/lru.py:listops_smoke", "--workdir", str(tmp_path / "run"),
               env={"LRA_DATA_DIR": str(tmp_path / "data")})
    assert_user_error(proc, "$LRA_DATA_DIR is", "is a file, not a folder")
    assert not (tmp_path / "run").exists()


def test_a_second_trainer_on_a_workdir_in_use_is_refused(tmp_path):
    lock = runlog.WorkdirLock(tmp_path)
    try:
        proc = cli("--config", "experiments/configs/lru.py:listops_smoke", "--workdir", str(tmp_path))
    finally:
        lock.release()
    assert_user_error(proc, f"is in use by another trainer (PID {os.getpid()})")
    assert not (tmp_path / "config.json").exists()


def test_the_config_listing_gives_each_title_whole(capsys):
    """The transformer's title wraps in its docstring and was cut after 'Efficient' (fresh-clone review)."""
    import importlib

    assert importlib.import_module("experiments.configs.__main__").main() == 0
    titles = {line.split()[0]: line.split("  ", 1)[1] for line in capsys.readouterr().out.splitlines()
              if line.startswith("experiments/configs/") or line.startswith(str(REPO))}
    assert len(titles) >= 7 and all(title.endswith(".") for title in titles.values()), titles
    transformer = next(title for path, title in titles.items() if path.endswith("transformer.py"))
    assert '"Long Range Arena: A Benchmark for Efficient Transformers"), at the LRA code' in transformer


def test_list_configs_and_dry_run(tmp_path):
    listing = cli(module="experiments.configs")
    assert listing.returncode == 0 and "experiments/configs/lru.py" in listing.stdout
    assert "variants: listops, listops_smoke" in listing.stdout
    proc = cli("--config", "experiments/configs/lru.py:listops_smoke", "--dry-run", "--config.optim.lr=0.002")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "lr: 0.002" in proc.stdout and "config is valid" in proc.stdout
    assert "  bucket_boundaries: []\n" in proc.stdout and "!!python" not in proc.stdout  # tuples as plain lists
    proc = cli("--config", "experiments/configs/lru.py:listops_smoke", "--dry-run", "--config.optim.lr=-1")
    assert_user_error(proc, "config.optim.lr=-1.0")
    (tmp_path / "config.json").write_text(json.dumps({"seed": 1}))
    proc = cli("--config", "experiments/configs/lru.py:listops_smoke", "--dry-run", "--workdir", str(tmp_path))
    assert_user_error(proc, "holds a run with another config")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json"]  # a dry run writes nothing


def test_an_unknown_schedule_is_a_config_error():
    with pytest.raises(validation.ConfigError, match="config.optim.schedule='linear': must be one of cosine"):
        validation.check_config(smoke_config(**{"optim.schedule": "linear"}))


def test_a_workdir_that_is_a_file_is_a_run_dir_error(tmp_path):
    from experiments import runlog, trainer

    (tmp_path / "afile").write_text("")
    for workdir in (tmp_path / "afile", tmp_path / "afile" / "run"):
        with pytest.raises(runlog.RunDirError, match="is a file, not a folder"):
            trainer.train_and_evaluate(smoke_config(), workdir)
