"""data.check.check_data: the report on good data, and every problem of bad data named by its path."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import data.check
from data.check import check_data, compare_with_paper
from data.layouts import AUTHORS_NAME_LISTS, DataError, DatasetPaths
from utils.tasks import DATASETS, SETTINGS

PATCH = 16
FILES = [  # (path under the root, (height, width)); degraded and clean alike
    *[(f"Train/Denoise/{i}.png", (40, 36)) for i in range(3)],
    *[(f"Train/Derain/{d}-{i}.png", (33, 40)) for i in (1, 2) for d in ("rainy/rain", "gt/norain")],
    *[(f"Train/Dehaze/synthetic/0001_{a}.jpg", (32, 32)) for a in ("0.8_0.1", "1_0.2")],
    ("Train/Dehaze/original/0001.jpg", (32, 32)),
    *[(f"Train/Deblur/{d}/a.png", (48, 32)) for d in ("blur", "sharp")],
    *[(f"Train/LowLight/{d}/{i}.png", (20, 16)) for d in ("low", "high") for i in (1, 2)],
    *[(f"test/denoise/bsd68/{i}.png", (17, 17)) for i in range(2)],
    *[(f"test/derain/Rain100L/{d}-1.png", (24, 24)) for d in ("input/rain", "target/norain")],
    ("test/dehaze/input/0005_0.8_0.2.jpg", (20, 30)),
    ("test/dehaze/target/0005.png", (20, 30)),
    *[(f"test/deblur/{d}/x.png", (16, 16)) for d in ("blur", "sharp")],
    *[(f"test/lowlight/{d}/7.png", (30, 20)) for d in ("low", "high")],
]


def save(path: Path, size: tuple[int, int]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((*size, 3), 100, np.uint8)).save(path)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    root = tmp_path / "deblur_lowlight_rain"
    for rel, size in FILES:
        save(root / rel, size)
    return root


def check(root: Path, setting: str = "5D", **paths_kwargs) -> list[str]:
    """The report's task= and test= lines."""
    s = SETTINGS[setting]
    report = check_data(list(s.train_repeats), setting, list(s.test_tasks),
                        DatasetPaths.from_root(root, **paths_kwargs), PATCH, num_workers=2)
    return [line for line in report.lines if not line.startswith("paper=")]


def test_report_on_good_data(root):
    assert check(root) == [
        "task=denoise_15 images=3 repeat=3 samples=9",
        "task=denoise_25 images=3 repeat=3 samples=9",
        "task=denoise_50 images=3 repeat=3 samples=9",
        "task=derain images=2 repeat=80 samples=160",
        "task=dehaze images=2 repeat=1 samples=2",
        "task=deblur images=1 repeat=30 samples=30",
        "task=lowlight images=2 repeat=60 samples=120",
        "test=dehaze pairs=1",
        "test=derain pairs=1",
        "test=denoise_25 pairs=2",
        "test=deblur pairs=1",
        "test=lowlight pairs=1",
    ]
    assert check(root, "3D")[3:] == ["task=derain images=2 repeat=120 samples=240", "task=dehaze images=2 repeat=1 "
                                     "samples=2", "test=denoise_15 pairs=2", "test=denoise_25 pairs=2",
                                     "test=denoise_50 pairs=2", "test=derain pairs=1", "test=dehaze pairs=1"]


def test_report_with_name_lists(root, tmp_path):
    lists = tmp_path / "lists"
    for name, text in {"noisy/denoise.txt": "0.png\n", "rainy/rainTrain.txt": "rainy/rain-2.png\n",
                       "hazy/hazy_outside.txt": "synthetic/0001_1_0.2.jpg\n", "train_gopro.txt": "a.png\n",
                       "lol/train_lol.txt": "1.png\n2.png\n"}.items():
        (lists / name).parent.mkdir(parents=True, exist_ok=True)
        (lists / name).write_text(text)
    report = check(root, data_file_dir=lists)
    assert report[0] == "task=denoise_15 images=1 repeat=3 samples=3"
    assert report[3:7] == ["task=derain images=1 repeat=80 samples=80", "task=dehaze images=1 repeat=1 samples=1",
                           "task=deblur images=1 repeat=30 samples=30", "task=lowlight images=2 repeat=60 samples=120"]


def break_everything(root: Path) -> dict[str, str]:
    """Damage the dataset in every way the check knows; return a fragment of each expected problem line."""
    for f in (root / "test/deblur/sharp").iterdir():
        f.unlink()  # empty folder
    for f in sorted((root / "test/lowlight").rglob("*"), reverse=True):
        f.unlink() if f.is_file() else f.rmdir()
    (root / "test/lowlight").rmdir()  # missing folder
    (root / "Train/Derain/gt/norain-2.png").unlink()  # missing partner
    png = root / "Train/Denoise/1.png"
    png.write_bytes(png.read_bytes()[:60])  # truncated PNG
    jpg = root / "Train/Dehaze/original/0001.jpg"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(jpg, quality=95)
    jpg.write_bytes(jpg.read_bytes()[: jpg.stat().st_size * 2 // 3])  # truncated JPEG
    save(root / "Train/LowLight/low/3.png", (40, 15))  # too small for the patch
    save(root / "Train/LowLight/high/3.png", (40, 15))
    save(root / "Train/Deblur/blur/b.png", (48, 32))  # pair of different sizes
    save(root / "Train/Deblur/sharp/b.png", (48, 33))
    save(root / "test/denoise/bsd68/tiny.png", (10, 30))  # test image smaller than 16
    return {
        "empty folder": f"no images in {root / 'test/deblur/sharp'}",
        "missing folder": f"missing folder {root / 'test/lowlight/low'}",
        "missing clean folder": f"missing folder {root / 'test/lowlight/high'}",
        "missing partner": f"{root / 'Train/Derain/rainy/rain-2.png'} has no clean partner: "
                           f"expected {root / 'Train/Derain/gt/norain-2.png'}",
        "truncated PNG": f"cannot read image {png}",
        "truncated JPEG": f"cannot read image {jpg}",
        "too small": f"{root / 'Train/LowLight/low/3.png'} (15x40, 0x32 after cropping to a multiple of 16) is "
                     "smaller than the 16x16 training patch",
        "different sizes": f"{root / 'Train/Deblur/blur/b.png'} (32x48) and its partner "
                           f"{root / 'Train/Deblur/sharp/b.png'} (33x48) differ in size",
        "small test image": f"{root / 'test/denoise/bsd68/tiny.png'} (30x10, 16x0 after cropping",
    }


def test_every_problem_is_reported_at_once(root):
    expected = break_everything(root)
    with pytest.raises(DataError) as err:
        check(root)
    message = str(err.value)
    assert message.startswith(f"data check failed ({len(err.value.problems)}):")
    for what, fragment in expected.items():
        assert fragment in message, what
    assert len(err.value.problems) == len(expected)  # one line per problem, nothing twice


def test_problem_list_is_capped(root):
    for i in range(60):
        save(root / f"Train/Deblur/blur/orphan{i:02d}.png", (48, 32))
    with pytest.raises(DataError, match=re.escape("  ... and 10 more")):
        check(root)


def test_unknown_tasks_are_refused(root):
    with pytest.raises(ValueError, match="deblur"):
        check_data(["deblur"], "3D", [], DatasetPaths.from_root(root), PATCH)


def test_paper_counts_flag_a_difference_without_refusing(root, tmp_path):
    for old, new in (("1", "900"), ("2", "100")):  # rain-100 is in the authors' list, rain-900 not
        (root / f"Train/Derain/rainy/rain-{old}.png").rename(root / f"Train/Derain/rainy/rain-{new}.png")
        (root / f"Train/Derain/gt/norain-{old}.png").rename(root / f"Train/Derain/gt/norain-{new}.png")
    report = check_data(["derain", "lowlight"], "5D", [], DatasetPaths.from_root(root), PATCH)
    paper = [line for line in report.lines if line.startswith("paper=")]
    assert paper[0] == ("paper=derain found=2 expected=200 DIFFERS FROM THE PAPER: 199 of the authors' images are "
                        "missing (e.g. rain-1.png, rain-10.png, rain-101.png, rain-102.png, rain-103.png, ...); "
                        "1 images found are not in the authors' list")
    assert paper[1].startswith("paper=lowlight found=2 expected=485 DIFFERS FROM THE PAPER")
    assert [(c.kind, c.found, c.expected, len(c.missing), c.unlisted) for c in report.paper] == [
        ("derain", 2, 200, 199, 1), ("lowlight", 2, 485, 484, 1)]
    (warning,) = report.warnings
    assert "derain (2 images, the paper 200), lowlight (2 images, the paper 485)" in warning


def test_paper_counts_match_on_the_authors_files(tmp_path, monkeypatch):
    folder = tmp_path / "Train/LowLight"
    names = (AUTHORS_NAME_LISTS / "train_lol.txt").read_text().split()
    for name in names[:3]:  # 3 of LOL's 485, as if the list were the whole benchmark
        save(folder / "low" / name, (16, 16))
        save(folder / "high" / name, (16, 16))
    count = compare_with_paper("lowlight", DatasetPaths.from_root(tmp_path))
    assert (count.found, count.expected, len(count.missing), count.unlisted, count.matches) == (3, 485, 482, 0, False)
    lists = tmp_path / "lists"  # as if the authors' list were these 3 names
    lists.mkdir()
    (lists / "train_lol.txt").write_text("\n".join(names[:3]))
    monkeypatch.setattr(data.check, "AUTHORS_NAME_LISTS", lists)
    monkeypatch.setitem(DATASETS, "lowlight", dataclasses.replace(DATASETS["lowlight"], train_size=3))
    count = compare_with_paper("lowlight", DatasetPaths.from_root(tmp_path, data_file_dir=lists))
    assert count.matches and count.line() == "paper=lowlight found=3 expected=3 ok"


def test_own_lists_warn_about_missing_files(root, tmp_path):
    (tmp_path / "lists").mkdir()
    (tmp_path / "lists/train_lol.txt").write_text("1.png\ngone.png\n")
    report = check_data(["lowlight"], "5D", [], DatasetPaths.from_root(root, data_file_dir=tmp_path / "lists"), PATCH)
    assert report.lines[0] == "task=lowlight images=1 repeat=60 samples=60"
    own_list = tmp_path / "lists/train_lol.txt"
    assert report.left_out == [f"{root / 'Train/LowLight/low/gone.png'} is listed in {own_list} but does not exist"]
    assert report.warnings[0] == (f"1 images listed in {tmp_path / 'lists/train_lol.txt'} are missing from "
                                  f"{root / 'Train/LowLight/low'} and are left out (e.g. gone.png)")
