"""Retrieval (AAN): the release TSV reader, bytes/chars encodings, two-document arrays, malformed rows."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import lra
from lra import build, encoding, retrieval
from lra.errors import DataError
from release_files import write_aan

REPO = Path(__file__).resolve().parents[1]

# A multi-sentence text with both quote characters and an apostrophe (quotes are text: no CSV quoting).
QUOTED = 'We say "linear RNNs suffice." Others disagree: \'they do not\'. "Unbalanced quote and a ""double"" one.'
ROWS = {
    "train": [("1", "a1", "b1", QUOTED, "Citing paper text."),
              ("0", "a2", "b2", "Short one.", "x"),
              ("1.0", "a3", "b3", "Naïve café – unicode.", "abc abc"),
              ("0.0", "a4", "b4", "zzz", "")],
    "val": [("1.0", "v1", "w1", "Val text with Ω.", "yy")],
    "test": [("0", "t1", "u1", "test", "test text"), ("1", "t2", "u2", QUOTED, QUOTED)],
}


def quiet(message):
    """A log function that drops messages."""


def run_cli(*args):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "lra.prepare", *args], capture_output=True, text=True, cwd=REPO,
                          env=env, timeout=120)


def test_parse_row_keeps_quotes_and_reads_float_labels():
    line = "\t".join(ROWS["train"][0]).encode()
    label, text1, text2 = retrieval.parse_row(line)
    assert label == 1 and text1 == QUOTED.encode() and text2 == b"Citing paper text."
    assert retrieval.parse_row(b"1.0\ta\tb\tx\ty")[0] == 1 and retrieval.parse_row(b"0.0\ta\tb\tx\ty")[0] == 0
    long = b"q" * 12_000
    assert len(retrieval.parse_row(b"0\ta\tb\t" + long + b"\ty")[1]) == retrieval.LRA_TEXT_BYTES


@pytest.mark.parametrize("line, complaint", [
    (b"1\ta\tb\ttext with a\ttab\ty", "expected 5 tab-separated columns"),
    (b"1\ta\tb\tonly four", "got 4"),
    (b"yes\ta\tb\tx\ty", "is not a number"),
    (b"2\ta\tb\tx\ty", "is not 0 or 1"),
    (b"1\ta\tb\tx\0x\ty", "NUL byte"),
])
def test_malformed_rows(line, complaint):
    with pytest.raises(ValueError, match=complaint):
        retrieval.parse_row(line)


def test_bytes_dataset_is_the_utf8_of_each_text(tmp_path):
    release = write_aan(tmp_path / "lra_release" / "lra_release" / "tsv_data", ROWS)
    ds = lra.get_dataset("retrieval", release_dir=tmp_path, encoding="bytes", max_len=40, data_dir=tmp_path / "d")
    assert ds.path.name == "retrieval-release-bytes-40" and ds.vocab_size == 256 and ds.n_classes == 2
    assert ds.manifest["sources"]["train"]["path"] == str(release / "new_aan_pairs.train.tsv")
    for split, rows in ROWS.items():
        arrays = ds.splits[split]
        assert set(arrays) == {"inputs", "lengths", "inputs2", "lengths2", "labels"}
        assert all(isinstance(a, np.memmap) for a in arrays.values())
        assert arrays["inputs"].dtype == np.uint8 and arrays["inputs"].shape == (len(rows), 40)
        assert arrays["labels"].tolist() == [int(float(r[0])) for r in rows]
        for i, row in enumerate(rows):
            for key, text in (("", row[3]), ("2", row[4])):
                expected = np.frombuffer(text.encode("utf-8")[:40], np.uint8)
                assert arrays["lengths" + key][i] == len(expected)
                assert np.array_equal(arrays["inputs" + key][i, : len(expected)], expected)
                assert not arrays["inputs" + key][i, len(expected):].any()
    batch = lra.train_batch(ds.splits["train"], 3, seed=0, step=0)
    assert batch.keys() == {"inputs", "lengths", "inputs2", "lengths2", "labels", "valid"}
    assert batch["inputs"].dtype == np.int32 and batch["inputs2"].shape == (3, 40)


def test_bytes_with_eos_needs_257_ids(tmp_path):
    write_aan(tmp_path / "rel", ROWS)
    ds = lra.get_dataset("retrieval", release_dir=tmp_path / "rel", encoding="bytes", max_len=10, append_eos=True,
                         data_dir=tmp_path / "d")
    train = ds.splits["train"]
    assert ds.vocab_size == 257 and train["inputs"].dtype == np.uint16  # 256 = <eos> does not fit uint8
    assert train["lengths"][0] == 10 and train["inputs"][0, 9] == 256  # truncated to 9 bytes + <eos>
    assert np.array_equal(train["inputs"][0, :9], np.frombuffer(QUOTED.encode()[:9], np.uint8))
    assert train["lengths2"][3] == 1 and train["inputs2"][3, 0] == 256  # an empty text is just <eos>


def test_chars_vocabulary_comes_from_train_in_code_point_order(tmp_path):
    write_aan(tmp_path / "rel", ROWS)
    ds = lra.get_dataset("retrieval", release_dir=tmp_path / "rel", encoding="chars", max_len=64, min_freq=1,
                         append_eos=True, data_dir=tmp_path / "d")
    vocab = ds.manifest["vocabulary"]
    train_text = "".join(t[:63] for r in ROWS["train"] for t in (r[3], r[4]))
    assert vocab == [encoding.PAD, encoding.UNK, encoding.EOS] + sorted(set(train_text))
    assert "Ω" not in vocab  # only in val: <unk> there
    val = ds.splits["val"]
    ids = val["inputs"][0, : val["lengths"][0]].tolist()
    expected = [vocab.index(c) if c in vocab else 1 for c in "Val text with Ω."] + [2]
    assert ids == expected and ids[-3] == 1 and ids[-1] == 2  # "Ω" -> <unk>, then "." and <eos>
    # Unicode characters are single tokens (not their UTF-8 bytes).
    third = ds.splits["train"]["lengths"][2]
    assert third == len("Naïve café – unicode.") + 1


def test_chars_vocabulary_does_not_depend_on_row_order_or_hash_seed(tmp_path):
    shuffled = dict(ROWS, train=ROWS["train"][::-1])
    vocabularies = []
    for k, rows in enumerate([ROWS, shuffled]):
        write_aan(tmp_path / f"rel{k}", rows)
        for seed in ("1", "2"):
            data = tmp_path / f"d{k}{seed}"
            env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONHASHSEED": seed}
            subprocess.run([sys.executable, "-m", "lra.prepare", "retrieval", "--release-dir", str(tmp_path / f"rel{k}"),
                            "--encoding", "chars", "--max-len", "32", "--data-dir", str(data)],
                           cwd=REPO, env=env, check=True, capture_output=True, timeout=120)
            vocabularies.append(lra.load_dataset(data / "retrieval-release-chars-32-minfreq1").manifest["vocabulary"])
    assert all(v == vocabularies[0] for v in vocabularies)


def test_min_freq_drops_rare_characters(tmp_path):
    write_aan(tmp_path / "rel", ROWS)
    ds = lra.get_dataset("retrieval", release_dir=tmp_path / "rel", encoding="chars", max_len=200, min_freq=3,
                         data_dir=tmp_path / "d")
    counts = {}
    for row in ROWS["train"]:
        for ch in row[3] + row[4]:
            counts[ch] = counts.get(ch, 0) + 1
    assert ds.manifest["vocabulary"][3:] == sorted(c for c, n in counts.items() if n >= 3)
    assert ds.manifest["task_info"]["min_freq"] == 3


def test_malformed_row_stops_with_file_and_line(tmp_path):
    release = write_aan(tmp_path / "rel", ROWS, extra_lines={"val": ["1\tv2\tw2\ttext with a\ttab\tdoc"]})
    with pytest.raises(DataError) as error:
        build.prepare("retrieval", retrieval.make_options(release_dir=release), tmp_path / "d", log=quiet)
    assert f"{release / 'new_aan_pairs.eval.tsv'}, line 2" in str(error.value) and "6" in str(error.value)
    assert not (tmp_path / "d").exists() or list((tmp_path / "d").iterdir()) == []  # nothing half-written
    result = run_cli("retrieval", "--release-dir", str(release), "--data-dir", str(tmp_path / "d"))
    assert result.returncode == 2 and "Traceback" not in result.stderr and "eval.tsv, line 2" in result.stderr


def test_malformed_rows_can_be_skipped_and_counted(tmp_path):
    bad = ["2\tx\ty\tlabel two\tdoc", "1\tx\ty\tfour columns"]
    release = write_aan(tmp_path / "rel", ROWS, extra_lines={"train": bad})
    ds = lra.get_dataset("retrieval", release_dir=release, malformed="skip", max_len=16, data_dir=tmp_path / "d")
    assert ds.path.name.endswith("-skipbad")
    assert len(ds.splits["train"]["labels"]) == len(ROWS["train"])
    skipped = ds.manifest["task_info"]["malformed_rows_skipped"]
    assert skipped["train"] == {"count": 2, "first_lines": [5, 6]} and skipped["val"]["count"] == 0


@pytest.mark.parametrize("kwargs, complaint", [
    ({"encoding": "words"}, "unknown Retrieval encoding"), ({"max_len": 0}, "max_len must be an integer >= 2"),
    ({"malformed": "ignore"}, "unknown Retrieval malformed"), ({"min_freq": 0, "encoding": "chars"}, "min_freq"),
    ({"resolution": 32}, "unknown Retrieval option.*'resolution'.*valid options: source, release_dir"),
])
def test_bad_options(tmp_path, kwargs, complaint):
    with pytest.raises(DataError, match=complaint):
        lra.get_dataset("retrieval", data_dir=tmp_path, **kwargs)


def test_missing_release_names_the_command(tmp_path):
    with pytest.raises(DataError) as error:
        lra.get_dataset("retrieval", encoding="chars", max_len=4000, append_eos=True, data_dir=tmp_path)
    assert ("python -m lra.prepare retrieval --release-dir PATH/TO/lra_release/lra_release/tsv_data --encoding chars "
            f"--max-len 4000 --min-freq 1 --append-eos --data-dir {tmp_path}") in str(error.value)
