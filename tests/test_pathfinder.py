"""Pathfinder / Path-X: the generator (labels, connectivity read off the image, reproducibility), the release-layout
reader on fixtures written in the real layout, the split, both encodings, and the tasks end to end."""
import dataclasses
import importlib
import json
import re

import numpy as np
import pytest
from PIL import Image
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components

import lra
from lra import pathfinder, pathfinder_gen
from lra.errors import DataError

# ---------------------------------------------------------------------------------------------
# Generator
# ---------------------------------------------------------------------------------------------


def marker_components(image, markers, radius, threshold=64):
    """Component ids of the two marker pixels in the image thresholded at `threshold`, where two lit pixels are
    linked when their centres are at most `radius` apart (so the gap between two dashes of one snake is bridged).
    Computed from the pixels only, not from the generator's bookkeeping."""
    ys, xs = np.nonzero(image > threshold)
    pts = np.stack([xs, ys], 1).astype(float)
    near = ((pts[:, None] - pts[None]) ** 2).sum(-1) <= radius ** 2
    _, component = connected_components(csr_matrix(near), directed=False)
    lookup = {(x, y): c for x, y, c in zip(xs, ys, component)}
    return [lookup.get((int(x), int(y))) for x, y in markers]


def connectivity_agrees(out, radius):
    """Per label: the fraction of images whose markers are connected (label 1) / not connected (label 0)."""
    agree = {0: [], 1: []}
    for image, label, markers in zip(out["images"], out["labels"], out["markers"]):
        a, b = marker_components(image, markers, radius)
        assert a is not None and b is not None, "a marker centre is not a lit pixel"
        agree[int(label)].append((a == b) == (label == 1))
    return {label: float(np.mean(v)) for label, v in agree.items()}


@pytest.fixture(scope="module")
def chunk32():
    return pathfinder_gen.generate_chunk(pathfinder_gen.lra_params(32, "hard"), seed=0, chunk=0, size=64)


def test_labels_are_balanced_and_images_look_right(chunk32):
    labels = chunk32["labels"]
    assert np.bincount(labels, minlength=2).tolist() == [32, 32]
    assert sum(pathfinder_gen.label_of(3, i) for i in range(1000)) == 500  # one of each pair (2k, 2k+1)
    images = chunk32["images"]
    assert images.shape == (64, 32, 32) and images.dtype == np.uint8
    lit = (images > 64).mean(axis=(1, 2))
    assert np.all(lit > 0.08) and np.all(lit < 0.6)  # two long snakes, distractors, markers; not a blank canvas
    # Padding 1 keeps paddles off the border row and column (only a marker disc at a snake's end may reach it).
    border = np.concatenate([images[:, 0, :], images[:, -1, :], images[:, :, 0], images[:, :, -1]], axis=1)
    assert (border > 64).mean() < 0.02


def test_label_one_markers_are_connected_in_the_image_with_lra_spacing(chunk32):
    # With LRA's 32x32 settings the dashes of one snake are 1 px apart: linking pixels up to 2.3 px apart always
    # joins the markers of a label-1 image. (Label 0 cannot be read off the pixels at this spacing: other snakes
    # come as close as the dashes of one snake, as in LRA; see the next test.)
    assert connectivity_agrees(chunk32, radius=2.3)[1] >= 0.95


def test_markers_connected_iff_label_one_when_snakes_keep_apart():
    # The same generator with a 3.6 px clearance between different snakes: now pixel connectivity decides the label.
    p = dataclasses.replace(pathfinder_gen.lra_params(32, "hard"), clearance=3.6)
    agree = connectivity_agrees(pathfinder_gen.generate_chunk(p, seed=1, chunk=0, size=48), radius=2.3)
    assert agree[0] >= 0.95 and agree[1] >= 0.95, agree


def test_pathx_markers_connected_iff_label_one():
    # Path-X as shipped (clearance 3.5 px, gaps 2-3 px): linking pixels up to 3.6 px apart bridges the gaps of a
    # snake and never reaches another snake, so the test is exact up to rare rendering coincidences.
    out = pathfinder_gen.generate_chunk(pathfinder_gen.lra_params(128, "hard"), seed=0, chunk=0, size=12)
    agree = connectivity_agrees(out, radius=3.6)
    assert agree[0] >= 0.9 and agree[1] >= 0.9, agree


def test_generator_is_a_pure_function_of_seed_and_chunk(tmp_path):
    p = pathfinder_gen.lra_params(32, "easy")
    a = pathfinder_gen.generate_chunk(p, seed=5, chunk=2, size=16)
    b = pathfinder_gen.generate_chunk(p, seed=5, chunk=2, size=16)
    c = pathfinder_gen.generate_chunk(p, seed=6, chunk=2, size=16)
    assert np.array_equal(a["images"], b["images"]) and np.array_equal(a["labels"], b["labels"])
    assert not np.array_equal(a["images"], c["images"])


def test_generate_writes_the_release_layout(tmp_path):
    p = pathfinder_gen.lra_params(128, "intermediate")
    n = pathfinder_gen.chunk_size(128) + 3  # two chunks, the second one partly written
    folder = pathfinder_gen.generate(tmp_path, p, n, seed=2, difficulty="intermediate", workers=1, log=lambda s: None)
    assert folder == tmp_path / "pathfinder128" / "curv_contour_length_9"
    lines = (folder / "metadata" / "0.npy").read_text().splitlines()
    assert len(lines) == n
    fields = lines[-1].split()
    assert fields[:2] == ["imgs/0", f"sample_{n - 1}.png"] and fields[3] in ("0", "1")
    first = pathfinder_gen.generate_chunk(p, seed=2, chunk=0)
    png = np.asarray(Image.open(folder / "imgs" / "0" / "sample_7.png"))
    assert np.array_equal(png, first["images"][7]) and int(lines[7].split()[3]) == first["labels"][7]
    assert not list(folder.glob("metadata/.*"))  # no temporary files left


@pytest.mark.parametrize("n, B, phrase", [(250, 1000, "as 1 seeded chunk"), (1000, 1000, "as 1 seeded chunk"),
                                          (3000, 1000, "as 3 seeded chunks of 1000"),
                                          (53, 50, "as 2 seeded chunks: 1 of 50 and 1 of 3")])
def test_the_generate_log_says_how_the_images_were_chunked(n, B, phrase):
    """Was '1 chunk(s) of 1000 drawn' for 250 images (fresh-clone review)."""
    assert pathfinder_gen.chunks_phrase(n, B) == phrase


# ---------------------------------------------------------------------------------------------
# Reader on fixtures in the release layout
# ---------------------------------------------------------------------------------------------


def write_release(root, n=20, resolution=32, difficulty_folder="curv_contour_length_14", seed=0):
    """n PNGs in lra_release/pathfinder<R>/<folder>/imgs/<j>/ with metadata/<j>.npy text lines (two folders)."""
    folder = root / "lra_release" / f"pathfinder{resolution}" / difficulty_folder
    rng = np.random.default_rng(seed)
    labels = {}
    for j in range(2):
        (folder / "imgs" / str(j)).mkdir(parents=True)
        (folder / "metadata").mkdir(exist_ok=True)
        lines = []
        for i in range(n // 2):
            pixels = rng.integers(0, 256, (resolution, resolution), dtype=np.uint8)
            Image.fromarray(pixels, mode="L").save(folder / "imgs" / str(j) / f"sample_{i}.png")
            label = int(rng.integers(2))
            labels[(j, i)] = (pixels, label)
            lines.append(f"imgs/{j} sample_{i}.png {i} {label} 1.0 14 4 2 0.5 1 1")
        (folder / "metadata" / f"{j}.npy").write_text("\n".join(lines) + "\n")
    return folder, labels


def test_reader_skips_and_counts_empty_missing_and_undecodable_pngs(tmp_path):
    folder, _ = write_release(tmp_path)
    (folder / "imgs" / "0" / "sample_3.png").write_bytes(b"")  # like the release's curv_baseline sample_172.png
    (folder / "imgs" / "1" / "sample_4.png").write_bytes(b"\x89PNG not really")  # not decodable
    label = (folder / "metadata" / "0.npy").read_text().splitlines()[5].split()[3]
    with open(folder / "metadata" / "1.npy", "a") as f:
        f.write("imgs/1 sample_99.png 99 1 1.0 14 4 2 0.5 1 1\n")  # points to a missing file
        f.write(f"imgs/0 sample_5.png 5 {label} 1.0 14 4 2 0.5 1 1\n")  # lists an image a second time
    logged = []
    entries, skipped = pathfinder.read_metadata(folder, logged.append)
    assert skipped == {"missing": 1, "empty": 1, "duplicate": 1} and len(entries) == 19
    assert len(logged) == 1 and "dropped 1 metadata line(s)" in logged[0] and "1.npy (1)" in logged[0]
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    logged.clear()
    built = pathfinder.build(pathfinder.make_options(source="release", release_dir=tmp_path), out_dir, logged.append)
    assert built["info"]["skipped"] == {"missing": 1, "empty": 1, "duplicate": 1, "unreadable": 1}
    assert built["info"]["unreadable_files"] == ["imgs/1/sample_4.png"]
    assert [line for line in logged if "do not decode" in line] == [
        f"skipped 1 PNG(s) that do not decode, in {folder.resolve()}: imgs/1/sample_4.png"]
    sizes = {split: len(a["labels"]) for split, a in built["arrays"].items()}
    assert sum(sizes.values()) == 18
    for arrays in built["arrays"].values():
        assert len(arrays["inputs"]) == len(arrays["labels"]) == len(arrays["lengths"])


def test_too_few_or_no_decodable_images_are_errors_from_the_cli(tmp_path, capsys):
    """Found by a fresh-clone review: both ended in a traceback (an empty split; a division by zero)."""
    prepare = importlib.import_module("lra.prepare")  # the CLI module (lra.prepare is also a function)
    few, _ = write_release(tmp_path / "few", n=4)
    junk, _ = write_release(tmp_path / "junk", n=20)
    for png in junk.glob("imgs/*/*.png"):
        png.write_bytes(b"junk")
    data = tmp_path / "data"
    expected = {few: "too few for the 80/10/10 split", junk: "split(s) got no readable image"}
    for folder, message in expected.items():
        assert prepare.main(["pathfinder", "--release-dir", str(folder), "--data-dir", str(data)]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"error: {folder}") and message in err and "Traceback" not in err
    assert not data.exists() or not any(data.iterdir())  # nothing half-written


def test_pixel_stats_are_exact_and_two_pass():
    rng = np.random.default_rng(0)
    x = np.full((130, 50), 250, np.uint8)  # a large mean and a small spread: E[x^2] - E[x]^2 loses it in float32
    x[:, ::7] = rng.integers(245, 256, x[:, ::7].shape)
    mean, std = pathfinder.pixel_stats(x)
    np.testing.assert_allclose([mean, std], [x.astype(np.float64).mean(), x.astype(np.float64).std()], rtol=1e-12)


def test_unreadable_pngs_are_one_log_line_naming_the_first_few():
    """Was one line per file, which floods the output on a damaged release (fresh-clone review)."""
    folder = pathfinder.Path("/r")
    pngs = [folder / "imgs" / "0" / f"sample_{i}.png" for i in range(8)]
    message = pathfinder.unreadable_message(pngs, folder)
    assert message.startswith("skipped 8 PNG(s) that do not decode, in /r: imgs/0/sample_0.png, ")
    assert "sample_4.png ... and 3 more (all listed in the manifest's task_info.unreadable_files)" in message
    assert "sample_5" not in message and "\n" not in message


@pytest.mark.parametrize("pixels, complaint", [
    (np.zeros((64, 64), np.uint8), "image is 64x64, expected 32x32"),
    (np.full((32, 32), 40_000, np.uint16), "a PNG of mode I;16 (16-bit grey); Pathfinder images are 8-bit greyscale"),
    (np.zeros((32, 32, 3), np.uint8), "a PNG of mode RGB (colour); Pathfinder images are 8-bit greyscale"),
])
def test_reader_rejects_a_png_of_the_wrong_size_or_kind_naming_it(tmp_path, pixels, complaint):
    """16-bit PNGs were silently clipped to 255 and colour ones greyed (fresh-clone review)."""
    folder, _ = write_release(tmp_path)
    Image.fromarray(pixels).save(folder / "imgs" / "1" / "sample_2.png")
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    with pytest.raises(DataError, match=re.escape(f"sample_2.png: {complaint}")):
        pathfinder.build(pathfinder.make_options(source="release", release_dir=tmp_path), out_dir, log=lambda s: None)


def test_reader_rejects_a_malformed_metadata_line_naming_file_and_line(tmp_path):
    folder, _ = write_release(tmp_path)
    with open(folder / "metadata" / "0.npy", "a") as f:
        f.write("imgs/0 sample_1.png 1 yes\n")
    with pytest.raises(DataError, match=r"0\.npy, line 11: label 'yes'"):
        pathfinder.read_metadata(folder)


def test_one_image_listed_with_two_labels_names_both_lines(tmp_path):
    folder, _ = write_release(tmp_path)
    label = int((folder / "metadata" / "0.npy").read_text().splitlines()[1].split()[3])
    with open(folder / "metadata" / "1.npy", "a") as f:
        f.write(f"imgs/0 sample_1.png 1 {1 - label}\n")
    with pytest.raises(DataError, match=rf"1\.npy, line 11: imgs/0/sample_1.png has label {1 - label}, but "
                                        rf".*0\.npy, line 2 gives it label {label}"):
        pathfinder.read_metadata(folder)


def test_find_folder_accepts_archive_resolution_and_difficulty_folders(tmp_path):
    folder, _ = write_release(tmp_path)
    for given in (tmp_path, tmp_path / "lra_release", folder.parent, folder):
        assert pathfinder.find_folder(given, 32, "hard") == folder.resolve()
    with pytest.raises(DataError, match="no pathfinder32/curv_baseline/metadata"):
        pathfinder.find_folder(tmp_path, 32, "easy")
    with pytest.raises(DataError):  # the hard folder itself is not taken for the easy one
        pathfinder.find_folder(folder, 32, "easy")


def test_split_is_seeded_80_10_10_and_disjoint():
    a, b, c = pathfinder.split_indices(1000, 0), pathfinder.split_indices(1000, 0), pathfinder.split_indices(1000, 1)
    assert [len(a[s]) for s in ("train", "val", "test")] == [800, 100, 100]
    assert np.array_equal(np.sort(np.concatenate(list(a.values()))), np.arange(1000))
    assert all(np.array_equal(a[s], b[s]) for s in a)
    assert not np.array_equal(a["val"], c["val"])


def test_streaming_in_small_chunks_gives_the_same_arrays(tmp_path, monkeypatch):
    folder, _ = write_release(tmp_path)
    entries, _ = pathfinder.read_metadata(folder)
    big, labels_big, _ = pathfinder.write_split(tmp_path / "a.npy", entries, 32)
    monkeypatch.setattr(pathfinder, "READ_CHUNK", 3)
    small, labels_small, _ = pathfinder.write_split(tmp_path / "b.npy", entries, 32)
    assert isinstance(small, np.memmap) and small.dtype == np.uint8 and small.shape == (20, 1024)
    assert np.array_equal(big, small) and np.array_equal(labels_big, labels_small)


@pytest.mark.parametrize("encoding", ["tokens", "real"])
def test_get_dataset_on_release_fixtures_in_both_encodings(tmp_path, encoding):
    folder, truth = write_release(tmp_path)
    ds = lra.get_dataset("pathfinder", source="release", release_dir=str(tmp_path), encoding=encoding,
                         data_dir=tmp_path / "data")
    manifest = json.loads((ds.path / "manifest.json").read_text())
    split = manifest["task_info"]["split"]
    assert split["seed"] == 0 and [split[s]["n"] for s in ("train", "val", "test")] == [16, 2, 2]
    assert ds.n_classes == 2 and ds.max_len == 1024
    train = ds.splits["train"]
    assert train["inputs"].dtype == np.uint8
    # Row r of train is the r-th train file in metadata order: check pixels and labels against what was written.
    order = pathfinder.split_indices(20, 0)["train"]
    keys = sorted(truth, key=lambda k: (k[0], k[1]))
    for r, index in enumerate(order[:3]):
        pixels, label = truth[keys[index]]
        assert np.array_equal(train["inputs"][r], pixels.reshape(-1)) and train["labels"][r] == label
    batch = next(iter(lra.eval_batches(ds.splits["train"], 4)))
    if encoding == "tokens":
        assert ds.vocab_size == 256 and ds.d_input is None
        assert batch["inputs"].dtype == np.int32 and np.array_equal(batch["inputs"], train["inputs"][:4])
    else:
        assert ds.vocab_size is None and ds.d_input == 1
        mean, std = manifest["input"]["mean"][0], manifest["input"]["std"][0]
        pixels = np.asarray(train["inputs"], np.float64)
        assert mean == pytest.approx(pixels.mean()) and std == pytest.approx(pixels.std())
        np.testing.assert_allclose(batch["inputs"], (train["inputs"][:4] - mean) / std, rtol=1e-5, atol=1e-5)


def test_unknown_option_names_the_valid_ones():
    with pytest.raises(DataError, match="unknown pathx option.*'resolution'"):
        lra.TASKS["pathx"].make_options(resolution=32)
    with pytest.raises(DataError, match="difficulty 'medium'"):
        pathfinder.make_options(difficulty="medium")


# ---------------------------------------------------------------------------------------------
# End to end on generated data
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("task", ["pathfinder", "pathx"])
def test_get_dataset_on_generated_data(tmp_path, task):
    ds = lra.get_dataset(task, source="generated", size="tiny", encoding="tokens", data_dir=tmp_path)
    R = 32 if task == "pathfinder" else 128
    n = pathfinder_gen.SIZES["tiny"][R]
    assert ds.max_len == R * R and sum(len(a["labels"]) for a in ds.splits.values()) == n
    labels = np.concatenate([a["labels"] for a in ds.splits.values()])
    assert np.bincount(labels).tolist() == [n // 2, n // 2]
    assert (ds.path / "source" / f"pathfinder{R}" / "curv_contour_length_14" / "metadata" / "0.npy").is_file()
    again = lra.get_dataset(task, source="generated", size="tiny", encoding="tokens", data_dir=tmp_path)
    assert np.array_equal(again.splits["test"]["inputs"], ds.splits["test"]["inputs"])


@pytest.mark.slow
@pytest.mark.parametrize("task", ["pathfinder", "pathx"])
def test_lru_smoke_config_trains_a_few_steps(tmp_path, task):
    from experiments import trainer
    from experiments.configs import lru

    config = lru.get_config(f"{task}_smoke")
    config.data.data_dir = str(tmp_path / "data")
    config.data.size = "tiny"
    config.model.d_model, config.model.n_layers, config.model.layer_args.d_state = 8, 1, 4
    config.train.batch_size, config.train.eval_batch_size = 4, 8
    config.train.num_steps = config.train.log_every = config.train.eval_every = config.train.checkpoint_every = 3
    config.train.async_checkpointing = False
    config.optim.warmup_steps = 1
    results = trainer.train_and_evaluate(config, tmp_path / "run")
    assert results["step"] == 3 and 0.0 <= results["test_accuracy"] <= 1.0
    assert np.isfinite(results["test_loss"])


def test_full_generated_size_removes_its_pngs_after_reading(tmp_path, monkeypatch):
    monkeypatch.setitem(pathfinder_gen.SIZES["full"], 128, 50)  # 'full' shrunk to one chunk for the test
    ds = lra.get_dataset("pathx", source="generated", size="full", data_dir=tmp_path)
    assert not (ds.path / "source").exists() and len(ds.splits["train"]["labels"]) == 40
    assert "removed" in json.loads((ds.path / "manifest.json").read_text())["task_info"]["generated_pngs"]
