"""data.layouts: every pairing rule, name lists, and errors naming the offending path.

Pairing never decodes, so the files here are empty placeholders with image names. The dataset
root contains 'blur', 'low' and 'rain' to catch substring-replacement pairing.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path, PurePosixPath

import pytest

from data import layouts
from data.layouts import DataError, DatasetPaths, Pair, format_problems, scan_pairs, train_pairs

# task folder (relative to the root) -> files in it
TRAIN_FILES = {
    "Train/Denoise": ["b.png", "a.JPG", "sub/c.bmp", "notes.txt", ".hidden.png"],
    "Train/Derain": ["rainy/rain-2.png", "rainy/rain-1.png", "gt/norain-1.png", "gt/norain-2.png"],
    "Train/Dehaze": ["synthetic/0002_0.8_0.1.jpg", "synthetic/0001_1_0.2.jpg", "synthetic/0001_0.9_0.04.jpg",
                     "synthetic/part1/0003_0.8_0.2.png", "original/0001.jpg", "original/0002.jpg",
                     "original/0003.png", "original/0003.jpg"],
    "Train/Deblur": ["blur/GOPR_01.png", "sharp/GOPR_01.png", "blur/GOPR_00.png", "sharp/GOPR_00.png"],
    "Train/LowLight": ["low/22.png", "high/22.png", "low/1.png", "high/1.png"],
}
TEST_FILES = {
    "test/denoise": ["bsd68/0002.png", "bsd68/0001.png"],
    "test/derain": ["Rain100L/input/rain-001.png", "Rain100L/target/norain-001.png"],
    "test/dehaze": ["input/0005_0.8_0.2.jpg", "target/0005.png"],
    "test/deblur": ["blur/x.png", "sharp/x.png"],
    "test/lowlight": ["low/7.png", "high/7.png"],
}


def touch_all(root: Path, files: dict[str, list[str]]) -> None:
    for folder, names in files.items():
        for name in names:
            (root / folder / name).parent.mkdir(parents=True, exist_ok=True)
            (root / folder / name).touch()


@pytest.fixture
def root(tmp_path: Path) -> Path:
    root = tmp_path / "deblur_lowlight_rain" / "blur_low_rainy_gt"
    touch_all(root, TRAIN_FILES | TEST_FILES)
    return root


def rel(pairs: list[Pair], root: Path) -> list[tuple[str | None, str]]:
    return [(p.degraded and p.degraded.relative_to(root).as_posix(), p.clean.relative_to(root).as_posix())
            for p in pairs]


def test_from_root_gives_the_default_layout(tmp_path):
    paths = DatasetPaths.from_root(str(tmp_path), data_file_dir=str(tmp_path / "lists"))
    assert paths.derain_dir == tmp_path / "Train" / "Derain"
    assert paths.lowlight_dir == tmp_path / "Train" / "LowLight"
    assert paths.dehaze_path == tmp_path / "test" / "dehaze"
    assert paths.data_file_dir == tmp_path / "lists"
    assert DatasetPaths.from_root(tmp_path).data_file_dir is None


def test_strings_become_paths(tmp_path):
    fields = {f: str(tmp_path / f) for f in ("denoise_dir", "derain_dir", "dehaze_dir", "deblur_dir", "lowlight_dir",
                                            "denoise_path", "derain_path", "dehaze_path", "deblur_path",
                                            "lowlight_path")}
    paths = DatasetPaths(**fields)
    assert paths.deblur_path == tmp_path / "deblur_path" and isinstance(paths.deblur_path, Path)


def test_training_pairs_of_every_kind(root):
    paths = DatasetPaths.from_root(root)
    assert rel(train_pairs("denoise", paths), root) == [
        (None, "Train/Denoise/a.JPG"), (None, "Train/Denoise/b.png"), (None, "Train/Denoise/sub/c.bmp")]
    assert rel(train_pairs("derain", paths), root) == [
        ("Train/Derain/rainy/rain-1.png", "Train/Derain/gt/norain-1.png"),
        ("Train/Derain/rainy/rain-2.png", "Train/Derain/gt/norain-2.png")]
    assert rel(train_pairs("dehaze", paths), root) == [
        ("Train/Dehaze/synthetic/0001_0.9_0.04.jpg", "Train/Dehaze/original/0001.jpg"),
        ("Train/Dehaze/synthetic/0001_1_0.2.jpg", "Train/Dehaze/original/0001.jpg"),
        ("Train/Dehaze/synthetic/0002_0.8_0.1.jpg", "Train/Dehaze/original/0002.jpg"),
        ("Train/Dehaze/synthetic/part1/0003_0.8_0.2.png", "Train/Dehaze/original/0003.png")]
    assert rel(train_pairs("deblur", paths), root) == [
        ("Train/Deblur/blur/GOPR_00.png", "Train/Deblur/sharp/GOPR_00.png"),
        ("Train/Deblur/blur/GOPR_01.png", "Train/Deblur/sharp/GOPR_01.png")]
    assert rel(train_pairs("lowlight", paths), root) == [
        ("Train/LowLight/low/1.png", "Train/LowLight/high/1.png"),
        ("Train/LowLight/low/22.png", "Train/LowLight/high/22.png")]


def test_eval_pairs_of_every_kind(root):
    paths = DatasetPaths.from_root(root)
    assert rel(layouts.eval_pairs("denoise", paths), root) == [
        (None, "test/denoise/bsd68/0001.png"), (None, "test/denoise/bsd68/0002.png")]
    assert rel(layouts.eval_pairs("derain", paths), root) == [
        ("test/derain/Rain100L/input/rain-001.png", "test/derain/Rain100L/target/norain-001.png")]
    assert rel(layouts.eval_pairs("dehaze", paths), root) == [
        ("test/dehaze/input/0005_0.8_0.2.jpg", "test/dehaze/target/0005.png")]
    assert rel(layouts.eval_pairs("deblur", paths), root) == [("test/deblur/blur/x.png", "test/deblur/sharp/x.png")]
    assert rel(layouts.eval_pairs("lowlight", paths), root) == [("test/lowlight/low/7.png", "test/lowlight/high/7.png")]


def test_folders_outside_the_default_root(tmp_path):
    """Each flag may point anywhere, e.g. a GoPro copy under a folder named like another task's."""
    touch_all(tmp_path, {"rain/low/blur": ["blur/a.png", "sharp/a.png"]})
    paths = DatasetPaths.from_root(tmp_path / "nowhere", deblur_dir=tmp_path / "rain/low/blur")
    assert rel(train_pairs("deblur", paths), tmp_path) == [("rain/low/blur/blur/a.png", "rain/low/blur/sharp/a.png")]


def write_lists(lists_dir: Path, nested: bool) -> None:
    lists = {
        "noisy/denoise.txt": "b.png\n\nsub/c.bmp\n",
        "rainy/rainTrain.txt": "rainy/rain-2.png\n",
        "hazy/hazy_outside.txt": "synthetic/0001_1_0.2.jpg\r\nsynthetic/part1/0003_0.8_0.2.png\n",
        "gopro/train_gopro.txt": "GOPR_01.png\n",
        "lol/train_lol.txt": "low/22.png\n",  # the prefix is optional for every list
    }
    for name, text in lists.items():
        path = lists_dir / (name if nested else Path(name).name)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


@pytest.mark.parametrize("nested", [True, False])
def test_name_lists_select_training_images(root, tmp_path, nested):
    write_lists(tmp_path / "lists", nested)
    paths = DatasetPaths.from_root(root, data_file_dir=tmp_path / "lists")
    assert rel(train_pairs("denoise", paths), root) == [
        (None, "Train/Denoise/b.png"), (None, "Train/Denoise/sub/c.bmp")]
    assert rel(train_pairs("derain", paths), root) == [
        ("Train/Derain/rainy/rain-2.png", "Train/Derain/gt/norain-2.png")]
    assert rel(train_pairs("dehaze", paths), root) == [
        ("Train/Dehaze/synthetic/0001_1_0.2.jpg", "Train/Dehaze/original/0001.jpg"),
        ("Train/Dehaze/synthetic/part1/0003_0.8_0.2.png", "Train/Dehaze/original/0003.png")]
    assert rel(train_pairs("deblur", paths), root) == [
        ("Train/Deblur/blur/GOPR_01.png", "Train/Deblur/sharp/GOPR_01.png")]
    assert rel(train_pairs("lowlight", paths), root) == [
        ("Train/LowLight/low/22.png", "Train/LowLight/high/22.png")]
    assert len(layouts.eval_pairs("denoise", paths)) == 2  # lists never restrict the test sets


def test_missing_name_list_names_the_paths_looked_at(root, tmp_path):
    (tmp_path / "lists").mkdir()
    paths = DatasetPaths.from_root(root, data_file_dir=tmp_path / "lists")
    lists = tmp_path / "lists"
    looked_at = f"looked for {lists / 'rainTrain.txt'} and {lists / '*' / 'rainTrain.txt'}"
    with pytest.raises(DataError, match=re.escape(f"name list rainTrain.txt not found: {looked_at}")):
        train_pairs("derain", paths)


def test_own_list_leaves_out_listed_files_that_do_not_exist(root, tmp_path):
    (tmp_path / "lists").mkdir()
    (tmp_path / "lists" / "train_lol.txt").write_text("1.png\nmissing.png\n")
    paths = DatasetPaths.from_root(root, data_file_dir=tmp_path / "lists")
    assert [p.clean.name for p in train_pairs("lowlight", paths)] == ["1.png"]
    inputs, problems = layouts.training_inputs("lowlight", paths)
    assert problems == [] and inputs.missing == (PurePosixPath("missing.png"),)
    assert inputs.list_path == tmp_path / "lists" / "train_lol.txt"


def test_authors_lists_require_every_listed_file_and_spot_the_bsd400_prefix(tmp_path):
    folder = tmp_path / "Train" / "Denoise"
    folder.mkdir(parents=True)
    for name in ("00001.bmp", "117025.jpg", "161062.jpg", "999999.jpg"):  # BSD400 as downloaded: no 'a'
        (folder / name).touch()
    paths = DatasetPaths.from_root(tmp_path, data_file_dir=layouts.AUTHORS_NAME_LISTS)
    with pytest.raises(DataError) as err:
        train_pairs("denoise", paths)
    (problem,) = err.value.problems
    assert problem.startswith(f"5143 of the 5144 images listed in {layouts.AUTHORS_NAME_LISTS / 'denoise.txt'} "
                              f"are missing from {folder} (e.g. 00002.bmp")
    assert "2 of them exist without the 'a' prefix" in problem and "--data_file_dir none" in problem
    command = problem.split("e.g. with: ")[1].split(" (to train on")[0]
    subprocess.run(["bash", "-c", command], check=True)  # the advice, run as printed, renames exactly those two
    assert sorted(p.name for p in folder.iterdir()) == ["00001.bmp", "999999.jpg", "a117025.jpg", "a161062.jpg"]
    inputs, problems = layouts.training_inputs("denoise", paths)
    assert len(inputs.names) == 3 and len(inputs.missing) == 5141 and "'a' prefix" not in problems[0]


def test_listed_files_in_other_sub_folders_are_pointed_at(tmp_path):
    (tmp_path / "Train/Dehaze/synthetic/part1").mkdir(parents=True)
    (tmp_path / "Train/Dehaze/synthetic/part1/0025_0.8_0.04.jpg").touch()
    paths = DatasetPaths.from_root(tmp_path, data_file_dir=layouts.AUTHORS_NAME_LISTS)
    _, problems = layouts.training_inputs("dehaze", paths)
    assert "1 of them are in other sub-folders of" in problems[0]
    assert "(e.g. part1/0025_0.8_0.04.jpg for 0025_0.8_0.04.jpg)" in problems[0]


def test_missing_folder_names_it_and_its_flag(tmp_path):
    paths = DatasetPaths.from_root(tmp_path)
    deblur = f"missing folder {tmp_path / 'Train/Deblur/blur'} (deblur train data: set --data_root or --deblur_dir"
    with pytest.raises(DataError, match=re.escape(deblur)):
        train_pairs("deblur", paths)
    lowlight = (f"missing folder {tmp_path / 'test/lowlight/low'} (lowlight test data: set --data_root or "
                "--lowlight_path")
    with pytest.raises(DataError, match=re.escape(lowlight)):
        layouts.eval_pairs("lowlight", paths)


def test_missing_clean_folder_is_one_problem(root):
    for f in (root / "Train/LowLight/high").iterdir():
        f.unlink()
    (root / "Train/LowLight/high").rmdir()
    _, problems = scan_pairs("lowlight", "train", DatasetPaths.from_root(root))
    assert problems == [f"missing folder {root / 'Train/LowLight/high'} (lowlight train data: set --data_root or "
                        "--lowlight_dir; the expected layout is in docs/datasets.md)"]


def test_empty_folder_is_named(tmp_path):
    (tmp_path / "Train/Denoise").mkdir(parents=True)
    (tmp_path / "Train/Denoise/readme.txt").touch()
    with pytest.raises(DataError, match=re.escape(f"no images in {tmp_path / 'Train/Denoise'} (looked for .bmp")):
        train_pairs("denoise", DatasetPaths.from_root(tmp_path))


def test_image_without_partner_names_both(root):
    (root / "Train/Derain/gt/norain-2.png").unlink()
    (root / "Train/Dehaze/original/0002.jpg").unlink()
    paths = DatasetPaths.from_root(root)
    pairs, problems = scan_pairs("derain", "train", paths)
    assert rel(pairs, root) == [("Train/Derain/rainy/rain-1.png", "Train/Derain/gt/norain-1.png")]
    assert problems == [f"{root / 'Train/Derain/rainy/rain-2.png'} has no clean partner: "
                        f"expected {root / 'Train/Derain/gt/norain-2.png'}"]
    expected = f"{root / 'Train/Dehaze/synthetic/0002_0.8_0.1.jpg'} has no clean partner: " \
               f"expected {root / 'Train/Dehaze/original/0002.jpg'}"
    with pytest.raises(DataError, match=re.escape(expected)):
        train_pairs("dehaze", paths)


def test_rain_names_must_follow_rain100l(root):
    (root / "Train/Derain/rainy/storm-3.png").touch()
    with pytest.raises(DataError, match=r"storm-3.png: a rainy image must be named rain-<N>"):
        train_pairs("derain", DatasetPaths.from_root(root))


def test_all_problems_are_collected_and_capped():
    problems = [f"problem {i}" for i in range(60)]
    message = str(DataError(problems, "header"))
    assert message.startswith("header (60):\n  - problem 0\n")
    assert "problem 49" in message and "problem 50" not in message
    assert message.endswith("... and 10 more")
    assert format_problems(["only one"], "header") == "only one"


def test_unknown_kind_and_split_are_refused(root):
    with pytest.raises(ValueError, match="unknown dataset kind 'desnow'"):
        train_pairs("desnow", DatasetPaths.from_root(root))
    with pytest.raises(ValueError, match="split"):
        scan_pairs("derain", "val", DatasetPaths.from_root(root))


def test_name_list_in_two_subfolders_is_ambiguous(root, tmp_path):
    for sub in ("a", "b"):
        (tmp_path / "lists" / sub).mkdir(parents=True)
        (tmp_path / "lists" / sub / "train_lol.txt").write_text("1.png\n")
    ambiguous = r"name list train_lol.txt is ambiguous: found .*a/train_lol.txt, .*b/train_lol"
    with pytest.raises(DataError, match=ambiguous):
        train_pairs("lowlight", DatasetPaths.from_root(root, data_file_dir=tmp_path / "lists"))
    (tmp_path / "lists" / "train_lol.txt").write_text("22.png\n")  # the top-level list wins
    paths = DatasetPaths.from_root(root, data_file_dir=tmp_path / "lists")
    assert [p.clean.name for p in train_pairs("lowlight", paths)] == ["22.png"]
