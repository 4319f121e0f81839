"""Preparation, the cached format and the loading API: CLI, atomicity, idempotency, corruption."""

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import lra
from lra import build, cache, listops
from lra.errors import DataError

REPO = Path(__file__).resolve().parents[1]

RELEASE_ROWS = {
    "train": [("( ( ( [MAX 2 ) 9 ) ] )", 9), ("( ( ( [MIN 4 ) 7 ) ] )", 4), ("( ( ( [SM 5 ) 3 ) ] )", 8),
              ("( ( ( [MIN 1 ) 7 ) ] )", 1), ("( ( ( ( [MED 1 ) 4 ) 8 ) ] )", 4)],
    "val": [("( ( ( [MAX 4 ) 1 ) ] )", 4), ("( ( ( ( [MAX 2 ) 9 ) ( ( ( [MIN 4 ) 7 ) ] ) ) ] )", 9)],
    "test": [("( ( ( [SM 4 ) 4 ) ] )", 8), ("7", 7), ("( ( ( [MIN 4 ) 1 ) ] )", 1)],
}


def write_release(folder: Path, rows=RELEASE_ROWS) -> Path:
    """A listops-1000 folder in the release format (header, parentheses, CRLF like csv.writer)."""
    folder.mkdir(parents=True, exist_ok=True)
    for split, split_rows in rows.items():
        lines = ["Source\tTarget"] + [f"{text}\t{label}" for text, label in split_rows]
        (folder / f"basic_{split}.tsv").write_text("\r\n".join(lines) + "\r\n", encoding="utf-8")
    return folder


def run_cli(*args, env_extra=None):
    env = {**os.environ, "PYTHONPATH": str(REPO), **(env_extra or {})}
    return subprocess.run([sys.executable, "-m", "lra.prepare", *args], capture_output=True, text=True,
                          cwd=REPO, env=env, timeout=120)


def quiet(message):
    """A log function that drops messages."""


def test_cli_generate_then_no_op(tmp_path):
    first = run_cli("listops", "--generate", "--size", "small", "--seed", "2", "--data-dir", str(tmp_path))
    assert first.returncode == 0, first.stderr
    folder = tmp_path / "listops-generated-small-seed2"
    assert (folder / "manifest.json").is_file()
    assert "label counts" in first.stdout and "train: 20000 examples" in first.stdout
    stamp = (folder / "train.inputs.npy").stat().st_mtime_ns
    second = run_cli("listops", "--generate", "--size", "small", "--seed", "2", "--data-dir", str(tmp_path))
    assert second.returncode == 0 and "already prepared" in second.stdout
    assert (folder / "train.inputs.npy").stat().st_mtime_ns == stamp
    assert sorted(p.name for p in tmp_path.iterdir()) == [folder.name]  # no temp dirs left


def test_cli_bad_release_row_exits_2_without_traceback(tmp_path):
    release = write_release(tmp_path / "listops-1000")
    with open(release / "basic_val.tsv", "a", encoding="utf-8") as f:
        f.write("[MAX 1 2 ]\tnine\r\n")
    data = tmp_path / "data"
    result = run_cli("listops", "--release-dir", str(release), "--data-dir", str(data))
    assert result.returncode == 2
    assert result.stderr.startswith("error: ") and "Traceback" not in result.stderr
    assert f"{release / 'basic_val.tsv'}, line 4" in result.stderr and "not an integer" in result.stderr
    assert not data.exists() or list(data.iterdir()) == []  # nothing half-written


def test_cli_missing_release_exits_2(tmp_path):
    result = run_cli("listops", "--release-dir", str(tmp_path / "absent"), "--data-dir", str(tmp_path / "d"))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "basic_train.tsv" in result.stderr


def test_release_dataset_arrays_and_manifest(tmp_path):
    # --release-dir may point at the unpacked archive above listops-1000.
    write_release(tmp_path / "lra_release" / "listops-1000")
    folder = build.prepare("listops", listops.make_options(source="release", release_dir=tmp_path),
                           tmp_path / "data", log=quiet)
    assert folder.name == "listops-release"
    ds = lra.load_dataset(folder)
    m = ds.manifest
    assert m["task"] == "listops" and m["format_version"] == cache.FORMAT_VERSION
    assert m["input"] == {"kind": "tokens"} and ds.d_input is None
    assert m["vocabulary"] == list(listops.VOCAB) and ds.vocab_size == len(listops.VOCAB)
    assert ds.n_classes == 10 and ds.max_len == 8  # the longest release row, [MAX 2 9 [MIN 4 7 ] ]
    for split, rows in RELEASE_ROWS.items():
        arrays = ds.splits[split]
        # Tokens are stored in the smallest dtype that holds the vocabulary (17 ids: uint8), memory-mapped.
        assert arrays["inputs"].shape == (len(rows), 8) and arrays["inputs"].dtype == np.uint8
        assert arrays["lengths"].dtype == np.int32 and arrays["labels"].dtype == np.int32
        for key, array in arrays.items():
            assert isinstance(array, np.memmap) and array.mode == "r", key
            assert Path(array.filename).resolve() == (folder / f"{split}.{key}.npy").resolve()
        assert arrays["labels"].tolist() == [label for _, label in rows]
        assert arrays["lengths"].tolist() == [len(listops.strip_parentheses(t)) for t, _ in rows]
        for row, length in zip(arrays["inputs"], arrays["lengths"]):
            assert np.all(row[length:] == 0) and np.all(row[:length] != 0)
        assert m["splits"][split]["label_counts"] == np.bincount(arrays["labels"], minlength=10).tolist()
    for name, meta in m["files"].items():
        assert meta["sha256"] == cache.sha256(folder / name)
    assert m["sources"]["train"]["sha256"] == cache.sha256(tmp_path / "lra_release/listops-1000/basic_train.tsv")
    assert json.loads((folder / "manifest.json").read_text()) == m


def test_majority_class_accuracy_uses_train_labels(tmp_path):
    release = write_release(tmp_path / "listops-1000")
    ds = lra.get_dataset("listops", source="release", release_dir=release, data_dir=tmp_path / "data")
    # Train labels 9, 4, 8, 1, 4: the majority class is 4.
    assert ds.majority_class_accuracy("train") == pytest.approx(2 / 5)
    assert ds.majority_class_accuracy("val") == pytest.approx(1 / 2)
    assert ds.majority_class_accuracy("test") == 0.0


@pytest.mark.parametrize("task, name", [("listops", "listops-release"), ("retrieval", "retrieval-release-bytes-4000"),
                                        ("pathfinder", "pathfinder32-hard-release-seed0-real"),
                                        ("pathx", "pathx-hard-release-seed0-real")])
def test_missing_release_dataset_says_release_dir_is_unset_and_prints_prepare_command(tmp_path, task, name):
    """The unset option comes first (it was reported as a missing cache folder; fresh-clone review)."""
    with pytest.raises(DataError) as error:
        lra.get_dataset(task, source="release", data_dir=tmp_path)
    message = str(error.value)
    assert message.startswith(f"config.data.release_dir (release_dir=) is not set and {tmp_path} has no prepared "
                              f"{name}: ")
    assert f"python -m lra.prepare {task} --release-dir PATH/TO/lra_release" in message
    assert "or set --config.data.release_dir" in message
    if task == "listops":
        assert f"--release-dir PATH/TO/lra_release/listops-1000 --data-dir {tmp_path}" in message
    with pytest.raises(DataError, match=f"^{tmp_path / name} does not exist: "):  # a release_dir without the files
        lra.get_dataset(task, source="release", release_dir=tmp_path / "absent", data_dir=tmp_path)


def test_generated_dataset_prepares_on_first_use_with_eos(tmp_path):
    plain = lra.get_dataset("listops", source="generated", size="small", seed=0, data_dir=tmp_path)
    eos = lra.get_dataset("listops", size="small", seed=0, append_eos=True, data_dir=tmp_path)
    assert eos.path.name == "listops-generated-small-seed0-eos" and eos.manifest["options"]["append_eos"]
    assert plain.max_len == listops.SIZES["small"].max_length - 1 and eos.max_len == plain.max_len + 1
    a, b = plain.splits["val"], eos.splits["val"]
    assert np.array_equal(b["lengths"], a["lengths"] + 1)
    assert np.all(b["inputs"][np.arange(len(b["lengths"])), b["lengths"] - 1] == listops.EOS_ID)
    assert np.array_equal(b["labels"], a["labels"])
    # Labels of the generated TSVs agree with the evaluator, and the manifest counts them.
    rows = (plain.path / "source" / "basic_val.tsv").read_text().splitlines()[1:]
    assert [listops.evaluate(r.split("\t")[0]) for r in rows] == a["labels"].tolist()
    assert plain.manifest["splits"]["train"]["label_counts"] == np.bincount(plain.splits["train"]["labels"]).tolist()
    assert sum(plain.manifest["splits"]["train"]["label_counts"]) == listops.SIZES["small"].n_train


def test_generation_same_seed_identical_files(tmp_path):
    options = listops.make_options(size="small", seed=5)
    one = build.prepare("listops", options, tmp_path / "a", log=quiet)
    two = build.prepare("listops", options, tmp_path / "b", log=quiet)
    other = build.prepare("listops", listops.make_options(size="small", seed=6), tmp_path / "a", log=quiet)
    for name in ["source/basic_train.tsv", "train.inputs.npy", "test.labels.npy"]:
        assert (one / name).read_bytes() == (two / name).read_bytes()
        assert (one / name).read_bytes() != (other / name).read_bytes()


def test_prepare_is_idempotent_and_force_rebuilds(tmp_path):
    options = listops.make_options(source="release", release_dir=write_release(tmp_path / "rel"))
    messages = []
    folder = build.prepare("listops", options, tmp_path / "data", log=messages.append)
    stamp = (folder / "manifest.json").stat().st_mtime_ns
    assert build.prepare("listops", options, tmp_path / "data", log=messages.append) == folder
    assert messages[-1].startswith("already prepared") and (folder / "manifest.json").stat().st_mtime_ns == stamp
    # An edited source file (its sha256 is in the manifest) is reported, not "already prepared", and not rebuilt.
    with open(tmp_path / "rel" / "basic_val.tsv", "a", encoding="utf-8") as f:
        f.write("( ( ( [MAX 2 ) 8 ) ] )\t8\r\n")
    with pytest.raises(DataError, match=r"(?s)basic_val.tsv, which changed since .*--force") as error:
        build.prepare("listops", options, tmp_path / "data", log=messages.append)
    assert "basic_train.tsv" not in str(error.value) and (folder / "manifest.json").stat().st_mtime_ns == stamp
    (folder / "val.labels.npy").write_bytes(b"garbage")
    build.prepare("listops", options, tmp_path / "data", force=True, log=quiet)
    assert lra.load_dataset(folder).splits["val"]["labels"].tolist() == [4, 9, 8]
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == ["listops-release"]


def test_failed_preparation_leaves_nothing(tmp_path, monkeypatch):
    options = listops.make_options(size="small", seed=0)

    def fail_while_writing(*args):
        (args[0] / "train.inputs.npy").write_bytes(b"half")  # something half-written first
        raise RuntimeError("disk full")

    monkeypatch.setattr(cache, "write_dataset", fail_while_writing)
    with pytest.raises(RuntimeError, match="disk full"):
        build.prepare("listops", options, tmp_path, log=quiet)
    assert list(tmp_path.iterdir()) == []


def test_folders_left_by_a_killed_prepare_are_removed_but_a_live_ones_stay(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()  # its PID no longer runs
    name = "listops-release"
    abandoned = [tmp_path / f".{name}.tmp-{dead.pid}-00000000", tmp_path / f".{name}.old-{dead.pid}-11111111"]
    live = tmp_path / f".{name}.tmp-{os.getpid()}-22222222"  # as if a concurrent prepare were running
    for folder in abandoned + [live]:
        folder.mkdir()
        (folder / "train.inputs.npy").write_bytes(b"half")
    options = listops.make_options(source="release", release_dir=write_release(tmp_path / "rel"))
    messages = []
    build.prepare("listops", options, tmp_path, log=messages.append)
    assert not any(f.exists() for f in abandoned) and live.exists()
    assert sum("left by a prepare that was killed" in m for m in messages) == 2


def damage_file(folder: Path, damage: str) -> Path:
    """Damage a prepared folder one way; returns the file that was damaged."""
    victim = folder / "train.inputs.npy"
    if damage == "modify":  # same size, one byte changed
        raw = bytearray(victim.read_bytes())
        raw[-1] ^= 1
        victim.write_bytes(bytes(raw))
    elif damage == "truncate":
        victim.write_bytes(victim.read_bytes()[:-8])
    elif damage == "delete":
        victim.unlink()
    elif damage == "reshape":  # a valid .npy file of the same size, but another shape than the manifest's
        array = np.load(victim)
        np.save(victim, array.reshape(array.shape[1], array.shape[0]))
    else:
        victim = folder / "manifest.json"
        victim.write_text("{not json")
    return victim


@pytest.mark.parametrize("damage", ["truncate", "delete", "reshape", "manifest"])
def test_corrupted_cache_is_detected_at_load(tmp_path, damage):
    release = write_release(tmp_path / "rel")
    data = tmp_path / "data"
    folder = build.prepare("listops", listops.make_options(source="release", release_dir=release), data, log=quiet)
    victim = damage_file(folder, damage)
    with pytest.raises(DataError) as error:
        lra.get_dataset("listops", source="release", release_dir=release, data_dir=data)
    message = str(error.value)
    assert str(victim) in message and "corrupted" in message
    assert f"python -m lra.prepare listops --release-dir {release} --data-dir {data} --force" in message
    result = run_cli("listops", "--release-dir", str(release), "--data-dir", str(data))  # no --force
    assert result.returncode == 2 and str(victim) in result.stderr and "--force" in result.stderr


@pytest.mark.parametrize("damage", ["modify", "truncate", "delete", "reshape", "manifest"])
def test_verify_command_finds_every_damage(tmp_path, damage):
    release = write_release(tmp_path / "rel")
    data = tmp_path / "data"
    folder = build.prepare("listops", listops.make_options(source="release", release_dir=release), data, log=quiet)
    task_args = ["listops", "--release-dir", str(release), "--data-dir", str(data)]
    for target in ([str(folder)], task_args):  # a folder, or the task options that name it
        ok = run_cli("verify", *target)
        assert ok.returncode == 0 and ok.stdout.startswith(f"OK {folder}"), ok.stderr
    victim = damage_file(folder, damage)
    for target in ([str(folder)], task_args):
        result = run_cli("verify", *target)
        assert result.returncode == 1 and "OK" not in result.stdout
        assert str(victim) in result.stderr and "--force" in result.stderr
    if damage == "modify":
        # The cheap check at load (sizes, shapes, dtypes) cannot see a flipped byte: only verify reads every byte.
        assert lra.get_dataset("listops", source="release", release_dir=release, data_dir=data).max_len == 8
        assert "fails its sha256 checksum" in run_cli("verify", str(folder)).stderr


@pytest.mark.parametrize("what, complaint", [
    ("absent", "is not a prepared dataset folder (it does not exist)"),
    ("file", "is a file, not a prepared dataset folder"),
    ("folder", "is not a prepared dataset: it has no manifest.json"),
])
def test_verify_of_what_is_not_a_prepared_folder_says_what_it_is(tmp_path, capsys, what, complaint):
    target = tmp_path / what
    if what == "file":
        target.write_text("x")
    elif what == "folder":
        target.mkdir()
        (target / "notes.txt").write_text("x")
    assert importlib.import_module("lra.prepare").main(["verify", str(target)]) == 2
    err = capsys.readouterr().err
    assert err == f"error: {target} {complaint}" + err.split(complaint, 1)[1] and err.count("\n") == 1


def test_old_format_cache_names_the_rebuild_command(tmp_path):
    release = write_release(tmp_path / "rel")
    data = tmp_path / "data"
    folder = build.prepare("listops", listops.make_options(source="release", release_dir=release), data, log=quiet)
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["format_version"] = 1
    (folder / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(DataError) as error:
        lra.load_dataset(folder)  # no rebuild command given: it comes from the old manifest
    message = str(error.value)
    assert "old cache format" in message and "version 1" in message
    assert f"python -m lra.prepare listops --release-dir {release} --data-dir {data} --force" in message


def test_old_format_generated_cache_is_regenerated_on_use_but_release_data_is_not(tmp_path, capsys):
    release = write_release(tmp_path / "rel")
    data = tmp_path / "data"
    generated = build.prepare("listops", listops.make_options(source="generated", size="small"), data, log=quiet)
    released = build.prepare("listops", listops.make_options(source="release", release_dir=release), data, log=quiet)
    for folder in (generated, released):
        manifest = json.loads((folder / "manifest.json").read_text())
        (folder / "manifest.json").write_text(json.dumps({**manifest, "format_version": 1}))
    # `make run` on a machine whose cache an older version of this code made: the generated data is rebuilt.
    dataset = lra.get_dataset("listops", source="generated", size="small", data_dir=data)
    assert dataset.manifest["format_version"] == cache.FORMAT_VERSION
    assert f"{generated} is in an old cache format; regenerating it" in capsys.readouterr().err
    with pytest.raises(DataError, match="old cache format"):  # release data needs the release: the user's call
        lra.get_dataset("listops", source="release", release_dir=release, data_dir=data)


def test_data_dir_resolution(tmp_path, monkeypatch):
    monkeypatch.delenv("LRA_DATA_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert build.default_data_dir() == tmp_path / "xdg" / "lra"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert build.default_data_dir() == tmp_path / "home" / ".cache" / "lra"
    monkeypatch.setenv("LRA_DATA_DIR", str(tmp_path / "env"))
    assert build.resolve_data_dir() == tmp_path / "env"
    assert build.resolve_data_dir(tmp_path / "arg") == tmp_path / "arg"


@pytest.mark.parametrize(
    "kwargs, complaint",
    [({"task": "listopz"}, "unknown task"), ({"size": "huge"}, "unknown ListOps size"),
     ({"source": "tfds"}, "unknown ListOps source"), ({"seed": -1}, "non-negative"),
     ({"sedd": 1}, "unknown ListOps option.*'sedd'.*valid options: source, size, seed, release_dir, append_eos"),
     ({"append_eos": "yes"}, "append_eos must be True or False")],
)
def test_get_dataset_rejects_bad_options(tmp_path, kwargs, complaint):
    kwargs = {"task": "listops", **kwargs}
    with pytest.raises(DataError, match=complaint):
        lra.get_dataset(data_dir=tmp_path, **kwargs)
    assert list(tmp_path.iterdir()) == []


def test_losing_a_publish_race_keeps_the_winner(tmp_path):
    winner, ours = tmp_path / "listops-release", tmp_path / ".listops-release.tmp-1"
    for folder, text in [(winner, "winner"), (ours, "ours")]:
        folder.mkdir()
        (folder / cache.MANIFEST).write_text(text)
    messages = []
    build._move_into_place(ours, winner, force=False, log=messages.append)
    assert (winner / cache.MANIFEST).read_text() == "winner" and "concurrently" in messages[0]


def test_a_cache_from_another_release_dir_is_reported_not_reused(tmp_path, capsys):
    """lra/build.py source_mismatch: the folder name does not encode the release path; the manifest does."""
    prepare_cli = importlib.import_module("lra.prepare")  # `from lra import prepare` is lra.build.prepare

    first, other, data = write_release(tmp_path / "a"), write_release(tmp_path / "b"), tmp_path / "data"
    assert prepare_cli.main(["listops", "--release-dir", str(first), "--data-dir", str(data)]) == 0
    assert prepare_cli.main(["listops", "--release-dir", str(first), "--data-dir", str(data)]) == 0
    assert "already prepared and verified" in capsys.readouterr().out
    stamp = (data / "listops-release" / "manifest.json").stat().st_mtime_ns

    assert prepare_cli.main(["listops", "--release-dir", str(other), "--data-dir", str(data)]) == 2
    out, err = capsys.readouterr()
    assert "already prepared" not in out and err.startswith("error: ") and "Traceback" not in err
    assert f"was prepared from release_dir={first}, not from release_dir={other}" in err
    assert f"python -m lra.prepare listops --release-dir {other} --data-dir {data} --force" in err
    assert "--data-dir DIR" in err
    with pytest.raises(DataError, match="leave config.data.release_dir unset"):  # the trainer's path
        lra.get_dataset("listops", source="release", release_dir=other, data_dir=data)
    assert lra.get_dataset("listops", source="release", data_dir=data).manifest["options"]["release_dir"] == str(first)
    assert (data / "listops-release" / "manifest.json").stat().st_mtime_ns == stamp  # nothing was rebuilt

    assert prepare_cli.main(["listops", "--release-dir", str(other), "--data-dir", str(data), "--force"]) == 0
    assert json.loads((data / "listops-release" / "manifest.json").read_text())["options"]["release_dir"] == str(other)
