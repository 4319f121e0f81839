"""ListOps: evaluator, vocabulary, release-format reader, and the seeded generator."""

import dataclasses
import random

import numpy as np
import pytest

from lra import listops
from lra.errors import DataError

# ----------------------------------------------------------------------------------- evaluator

# [MAX 2 9 [MIN 4 7 ] ] as the release writes it (lra_data.md).
RELEASE_EXAMPLE = "( ( ( ( [MAX 2 ) 9 ) ( ( ( [MIN 4 ) 7 ) ] ) ) ] )"


@pytest.mark.parametrize(
    "expression, value",
    [
        ("7", 7),
        ("[MAX 2 9 [MIN 4 7 ] ]", 9),
        (RELEASE_EXAMPLE, 9),
        ("[MIN 3 1 4 ]", 1),
        ("[MED 7 1 5 ]", 5),  # odd count: the middle value
        ("[MED 1 2 3 8 ]", 2),  # even count: floor((2 + 3) / 2)
        ("[MED 0 9 ]", 4),
        ("[MED 8 8 9 9 ]", 8),
        ("[SM 9 8 7 ]", 4),  # 24 mod 10
        ("[SM [MED 1 2 3 8 ] [MAX 0 [MIN 5 6 ] ] 9 ]", 6),  # (2 + 5 + 9) mod 10
        ("[MAX 2 9 [MIN 4 7 X X", 9),  # LRA's ']' -> 'X' renaming
        ("( ( ( [SM 5 ) 5 ) ] )", 0),
    ],
)
def test_evaluate_hand_written(expression, value):
    assert listops.evaluate(expression) == value


@pytest.mark.parametrize("args", [[3, 1], [0, 9, 4, 4], [1, 2, 3, 8, 9, 9], [5], [2, 7, 7, 1, 0]])
def test_med_matches_int_numpy_median(args):
    expression = "[MED " + " ".join(map(str, args)) + " ]"
    assert listops.evaluate(expression) == int(np.median(args))


def test_evaluate_deep_nesting_is_iterative():
    depth = 5000  # far beyond Python's default recursion limit
    assert listops.evaluate("[MIN " * depth + "3 " + "] " * depth) == 3


@pytest.mark.parametrize("expression", ["", "[MAX 2", "2 ]", "[MAX ]", "[FOO 1 ]", "1 2", "[MIN 1 ] 3", "12"])
def test_evaluate_rejects_malformed(expression):
    with pytest.raises(ValueError):
        listops.evaluate(expression)


# ---------------------------------------------------------------------------------- vocabulary


def test_vocabulary_is_fixed_literal():
    assert listops.VOCAB[0] == "<pad>" and listops.PAD_ID == 0
    assert listops.VOCAB[1:11] == tuple(str(d) for d in range(10))
    assert listops.VOCAB[11:15] == ("[MIN", "[MAX", "[MED", "[SM")
    assert listops.VOCAB[15:] == ("]", "<eos>")
    assert [listops.TOKEN_IDS[t] for t in listops.VOCAB] == list(range(len(listops.VOCAB)))
    assert listops.TOKEN_IDS["X"] == listops.TOKEN_IDS["]"]


def test_encode_decode_round_trip():
    tokens = listops.strip_parentheses(RELEASE_EXAMPLE)
    ids = listops.encode(tokens, append_eos=True)
    assert ids == [12, 3, 10, 11, 5, 8, 15, 15, 16]
    assert listops.decode(ids + [0, 0]) == "[MAX 2 9 [MIN 4 7 ] ] <eos>"


# ------------------------------------------------------------------------------------- reader


def write_text(path, text):
    path.write_text(text, encoding="utf-8")
    return path


def test_read_release_format(tmp_path):
    path = write_text(
        tmp_path / "basic_train.tsv",
        "Source\tTarget\r\n"  # the release was written by csv.writer: CRLF line ends
        f"{RELEASE_EXAMPLE}\t9\r\n"
        "( ( ( [SM 5 ) 5 ) ] )\t0\r\n"
        "\r\n",
    )
    sequences, labels = listops.read_split(path)
    assert labels.tolist() == [9, 0] and labels.dtype == np.int32
    assert listops.decode(sequences[0]) == "[MAX 2 9 [MIN 4 7 ] ]"
    assert sequences[1].tolist() == listops.encode(["[SM", "5", "5", "]"])
    with_eos, _ = listops.read_split(path, append_eos=True)
    assert [s.tolist() for s in with_eos] == [s.tolist() + [listops.EOS_ID] for s in sequences]


@pytest.mark.parametrize(
    "bad_row, complaint",
    [
        ("[MAX 1 2 ]\t2\textra", "expected 2 tab-separated columns"),
        ("[MAX 1 2 ]", "expected 2 tab-separated columns"),
        ("[MAX 1 2 ]\ttwo", "is not an integer"),
        ("[MAX 1 2 ]\t2.0", "is not an integer"),
        ("[MAX 1 2 ]\t12", "outside 0-9"),
        ("[MAX 1 2 [FOO 3 ] ]\t2", "unknown token '[FOO'"),
        ("( ( )\t2", "empty expression"),
    ],
)
def test_reader_names_file_and_line(tmp_path, bad_row, complaint):
    path = write_text(tmp_path / "basic_val.tsv", f"Source\tTarget\n[MIN 1 2 ]\t1\n{bad_row}\n[MIN 3 4 ]\t3\n")
    with pytest.raises(DataError) as error:
        listops.read_split(path)
    message = str(error.value)
    assert str(path) in message and "line 3" in message and complaint in message


def test_reader_requires_header(tmp_path):
    path = write_text(tmp_path / "basic_test.tsv", "[MIN 1 2 ]\t1\n")
    with pytest.raises(DataError, match=r"basic_test.tsv, line 1: expected the header"):
        listops.read_split(path)


def test_reader_missing_file(tmp_path):
    with pytest.raises(DataError, match="file not found"):
        listops.read_split(tmp_path / "nope.tsv")


# ---------------------------------------------------------------------------------- generator

SMALL = listops.SIZES["small"]
FULL_FEW = dataclasses.replace(listops.SIZES["full"], n_train=40, n_val=5, n_test=5, trees_per_batch=1024)


def lra_to_string(tokens):
    """Independent oracle for the release format: LRA's binary (left, right) tuples, printed."""

    def parse(i):
        if tokens[i] in listops.DIGITS:
            return tokens[i], i + 1
        tree, i = tokens[i], i + 1
        while tokens[i] != "]":
            child, i = parse(i)
            tree = (tree, child)
        return (tree, "]"), i + 1

    def show(t):
        return t if isinstance(t, str) else f"( {show(t[0])} {show(t[1])} )"

    return show(parse(0)[0])


def tree_shape(tokens):
    """(operator nesting depth, smallest and largest argument count) of a prefix expression."""
    depth = deepest = 0
    counts, stack = [], []
    for t in tokens:
        if t in listops.OPERATORS:
            if stack:
                stack[-1] += 1
            stack.append(0)
            depth += 1
            deepest = max(deepest, depth)
        elif t == "]":
            counts.append(stack.pop())
            depth -= 1
        elif stack:
            stack[-1] += 1
    return deepest, min(counts), max(counts)


@pytest.mark.parametrize("params", [SMALL, FULL_FEW], ids=["small", "full-procedure"])
def test_generated_examples_follow_the_procedure(params):
    rows = listops.generate(params, seed=1)
    assert {s: len(r) for s, r in rows.items()} == params.counts
    texts = [text for split in rows.values() for text, _ in split]
    assert len(set(texts)) == len(texts), "duplicates across or within splits"
    for text, label in (row for split in rows.values() for row in split):
        tokens = listops.strip_parentheses(text)
        assert params.min_length < len(tokens) < params.max_length
        assert label == listops.evaluate(text)
        assert text == lra_to_string(tokens)
        depth, fewest, most = tree_shape(tokens)
        assert depth <= params.max_depth - 1 and 2 <= fewest and most <= params.max_args


def test_generation_is_seeded():
    small = dataclasses.replace(SMALL, n_train=300, n_val=30, n_test=30)
    assert listops.generate(small, seed=3) == listops.generate(small, seed=3)
    assert listops.generate(small, seed=3)["train"] != listops.generate(small, seed=4)["train"]


def reference_tree_length(rng, max_depth, max_args, depth=1):
    """LRA's recursive generate_tree, counting tokens only (python `random`, depth-first)."""
    r = rng.random() if depth < max_depth else 1.0
    if r > 0.25:
        return 1
    n_args = rng.randint(2, max_args)
    return 2 + sum(reference_tree_length(rng, max_depth, max_args, depth + 1) for _ in range(n_args))


def test_breadth_first_generator_matches_recursive_distribution():
    # Unfiltered trees: the vectorised generator and the original recursion must agree in law.
    params = dataclasses.replace(SMALL, min_length=0, max_length=10**9, trees_per_batch=20_000)
    trees = listops.generate_batch(np.random.default_rng(0), params)
    ours = np.array([len(listops.strip_parentheses(text)) for text, _ in trees])
    rng = random.Random(0)
    ref = np.array([reference_tree_length(rng, params.max_depth, params.max_args) for _ in range(20_000)])
    assert abs(np.mean(ours == 1) - 0.75) < 0.015 and abs(np.mean(ref == 1) - 0.75) < 0.015
    standard_error = np.sqrt(ours.var() / ours.size + ref.var() / ref.size)
    assert abs(ours.mean() - ref.mean()) < 4 * standard_error
    for k in (3, 5, 9):  # a few points of the length distribution
        assert abs(np.mean(ours <= k) - np.mean(ref <= k)) < 0.015



BAD_RELEASE = (
    "Source\tTarget\r\n"
    "( ( ( [MAX 2 ) 9 ) ] )\t9\r\n"  # fine
    "( ( ( [MAX 2 ) 9 ) ] )\t3\r\n"  # label differs from the value (9)
    "( ( ( [MIN 4 ) 7 ) \t4\r\n"  # unbalanced: the operator is never closed
    "( ( ( [SM 5 ) 3 ) ] ) ]\t8\r\n"  # unbalanced: one ']' too many
)


def test_reader_counts_malformed_and_mislabelled_rows(tmp_path):
    path = write_text(tmp_path / "basic_train.tsv", BAD_RELEASE)
    bad = []
    sequences, labels = listops.read_split(path, bad_rows=bad)
    assert len(sequences) == 4 and labels.tolist() == [9, 3, 4, 8]  # rows kept as released
    assert [kind for kind, _ in bad] == ["label", "malformed", "malformed"]
    assert f"{path}, line 3: label 3 but the expression's value is 9" in bad[0][1]
    assert "line 4: malformed expression" in bad[1][1] and "line 5" in bad[2][1]
    assert listops.read_split(path)[1].tolist() == [9, 3, 4, 8]  # without bad_rows: no value checks


@pytest.mark.parametrize("mode", ["error", "warn"])
def test_release_build_refuses_or_warns_about_bad_rows(tmp_path, mode):
    release = tmp_path / "listops-1000"
    release.mkdir()
    write_text(release / "basic_train.tsv", BAD_RELEASE)
    for split in ("val", "test"):
        write_text(release / f"basic_{split}.tsv", "Source\tTarget\n[MIN 1 2 ]\t1\n")
    options = listops.make_options(source="release", release_dir=release, bad_rows=mode)
    out = tmp_path / "out"
    out.mkdir()
    logged = []
    if mode == "error":
        with pytest.raises(DataError, match=r"2 release row\(s\) with a malformed .* and 1 whose label differs") as e:
            listops.build(options, out, log=logged.append)
        assert "--bad-rows warn" in str(e.value) and "basic_train.tsv, line 3" in str(e.value)
    else:
        built = listops.build(options, out, log=logged.append)
        assert built["info"]["bad_rows"]["malformed"] == 2 and built["info"]["bad_rows"]["label_mismatch"] == 1
        assert any(m.startswith("WARNING: 2 release row(s)") for m in logged)
        assert listops.command_args(options)[-2:] == ["--bad-rows", "warn"]
