"""data.check.check_data: the report on good data, and every problem of bad data named by its path."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from data.check import check_data
from data.layouts import DataError, DatasetPaths
from utils.tasks import SETTINGS

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
    s = SETTINGS[setting]
    return check_data(list(s.train_repeats), setting, list(s.test_tasks), DatasetPaths.from_root(root, **paths_kwargs),
                      PATCH, num_workers=2)


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
