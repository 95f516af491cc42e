"""data.evalsets.EvalSet: centre crops, names, order-independent denoising noise, errors naming the files."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from data.evalsets import EvalSet, noise_seed
from data.layouts import DataError, DatasetPaths
from data.transforms import add_gaussian_noise

H, W = 37, 50  # cropped to 32 x 48: rows 2..33, columns 1..48


def save(path: Path, img: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(img).save(path)


def scene(seed: int, h: int = H, w: int = W) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def as_uint8(x: torch.Tensor) -> np.ndarray:
    return np.round(x.permute(1, 2, 0).numpy() * 255).astype(np.uint8)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    test = tmp_path / "test"
    for name in ("0003", "0001", "0002"):
        save(test / f"denoise/bsd68/{name}.png", scene(int(name)))
    save(test / "derain/Rain100L/input/rain-1.png", scene(11))
    save(test / "derain/Rain100L/target/norain-1.png", scene(12))
    save(test / "dehaze/input/0007_0.8_0.2.png", scene(21))
    save(test / "dehaze/target/0007.png", scene(22))
    save(test / "deblur/blur/x.png", scene(31))
    save(test / "deblur/sharp/x.png", scene(32))
    save(test / "lowlight/low/5.png", scene(41))
    save(test / "lowlight/high/5.png", scene(42))
    return tmp_path


@pytest.mark.parametrize("task, name, degraded_seed, clean_seed", [
    ("derain", "rain-1", 11, 12), ("dehaze", "0007_0.8_0.2", 21, 22), ("deblur", "x", 31, 32),
    ("lowlight", "5", 41, 42)])
def test_paired_items_are_centre_cropped(root, task, name, degraded_seed, clean_seed):
    test_set = EvalSet(task, DatasetPaths.from_root(root))
    assert len(test_set) == 1
    item = test_set[0]
    assert item["name"] == name and item["task"] == task
    assert item["de_id"] == {"derain": 3, "dehaze": 4, "deblur": 5, "lowlight": 6}[task]
    assert item["degraded"].shape == item["clean"].shape == (3, 32, 48)
    assert item["degraded"].dtype == torch.float32
    assert np.array_equal(as_uint8(item["degraded"]), scene(degraded_seed)[2:34, 1:49])
    assert np.array_equal(as_uint8(item["clean"]), scene(clean_seed)[2:34, 1:49])


def test_denoise_noise_is_seeded_by_name_and_sigma(root):
    paths = DatasetPaths.from_root(root)
    s25 = EvalSet("denoise_25", paths)
    assert [s25[i]["name"] for i in range(len(s25))] == ["0001", "0002", "0003"]
    item = s25[1]
    clean = scene(2)[2:34, 1:49]
    expected = add_gaussian_noise(clean, 25, np.random.default_rng(noise_seed("0002", 25)))
    assert np.array_equal(as_uint8(item["clean"]), clean)
    assert np.array_equal(as_uint8(item["degraded"]), expected)
    assert item["de_id"] == 1
    # Independent of access order, repetition, other files and other sigmas.
    again = [s25[i]["degraded"] for i in (2, 1, 0)][1]
    assert torch.equal(again, item["degraded"])
    (root / "test/denoise/bsd68/0001.png").unlink()
    save(root / "test/denoise/bsd68/0000.png", scene(0))
    EvalSet("denoise_50", paths)[0]
    assert torch.equal(EvalSet("denoise_25", paths)[1]["degraded"], item["degraded"])  # 0002 is item 1 again
    assert not torch.equal(EvalSet("denoise_15", paths)[1]["degraded"], item["degraded"])
    assert noise_seed("0002", 25) == 1481180473  # zlib.crc32(b"0002:25"): stable across runs and platforms


def test_pair_of_different_sizes_names_both(root):
    save(root / "test/lowlight/high/5.png", scene(42, H, W + 1))
    test_set = EvalSet("lowlight", DatasetPaths.from_root(root))
    with pytest.raises(DataError, match=r"low/5.png \(50x37\) and its partner .*high/5.png \(51x37\) differ in size"):
        test_set[0]


def test_image_smaller_than_16_is_refused(root):
    save(root / "test/denoise/bsd68/0004.png", scene(4, 15, 40))
    test_set = EvalSet("denoise_15", DatasetPaths.from_root(root))
    with pytest.raises(DataError, match=re.escape(f"{root / 'test/denoise/bsd68/0004.png'} (40x15) is smaller")):
        test_set[3]


def test_duplicate_names_are_refused(root):
    save(root / "test/denoise/bsd68/0002.jpg", scene(2))
    with pytest.raises(DataError, match=r"0002.jpg, .*0002.png share the name '0002'"):
        EvalSet("denoise_25", DatasetPaths.from_root(root))


def test_missing_test_folder_names_it(tmp_path):
    with pytest.raises(DataError, match=re.escape(f"missing folder {tmp_path / 'test/derain/Rain100L/input'}")):
        EvalSet("derain", DatasetPaths.from_root(tmp_path))
    with pytest.raises(ValueError, match="unknown task 'desnow'"):
        EvalSet("desnow", DatasetPaths.from_root(tmp_path))
