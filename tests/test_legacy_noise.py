"""--legacy_noise: the denoising test inputs drawn exactly as the authors' test scripts draw them."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from data.evalsets import EvalSet, legacy_noisy_images
from data.layouts import DatasetPaths

SIZES = {"102061.png": (37, 45), "3096.png": (33, 20), "0010.png": (16, 50), "69015.png": (48, 31)}


def authors_draw(folder: Path, sigmas: tuple[int, ...]) -> dict[tuple[int, str], np.ndarray]:
    """An independent re-implementation of the authors' test-script noise, written from docs/protocol.md section 4:
    numpy seeded with 0 once, os.listdir order, crop to a multiple of 16, clip(x + randn * sigma), uint8."""
    np.random.seed(0)
    noisy = {}
    for sigma in sigmas:
        for name in os.listdir(folder):
            x = np.array(Image.open(folder / name).convert("RGB"))
            h, w = x.shape[:2]
            top, left = (h % 16) // 2, (w % 16) // 2
            x = x[top: top + h - h % 16, left: left + w - w % 16]
            noisy[sigma, name] = np.clip(x + np.random.randn(*x.shape) * sigma, 0, 255).astype(np.uint8)
    return noisy


@pytest.fixture
def paths(tmp_path: Path) -> DatasetPaths:
    folder = tmp_path / "test/denoise/bsd68"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(1)
    for name, size in SIZES.items():
        Image.fromarray(rng.integers(0, 256, (*size, 3), dtype=np.uint8)).save(folder / name)
    return DatasetPaths.from_root(tmp_path)


def _inputs(dataset: EvalSet) -> dict[str, np.ndarray]:
    items = [dataset[i] for i in range(len(dataset))]
    return {item["name"] + ".png": (item["degraded"] * 255).round().byte().permute(1, 2, 0).numpy() for item in items}


@pytest.mark.parametrize("listing", ["sorted", "reversed"])
@pytest.mark.parametrize("setting, sigmas", [("3D", (15, 25, 50)), ("5D", (25,))])
def test_legacy_noise_reproduces_the_authors_draw(paths, setting, sigmas, listing, monkeypatch):
    real_listdir = os.listdir  # whatever order the file system lists in, both draws follow it
    monkeypatch.setattr(os, "listdir", lambda p: sorted(real_listdir(p), reverse=listing == "reversed"))
    expected = authors_draw(paths.denoise_path / "bsd68", sigmas)
    for sigma in sigmas:
        inputs = _inputs(EvalSet(f"denoise_{sigma}", paths, legacy_noise=setting))
        assert inputs.keys() == set(SIZES)
        for name, image in inputs.items():
            assert np.array_equal(image, expected[sigma, name]), (setting, sigma, name)
    seeded = _inputs(EvalSet("denoise_25", paths))  # the default: per-image seeded noise, another draw
    assert not np.array_equal(seeded["3096.png"], expected[25, "3096.png"])


def test_legacy_noise_has_no_sigma_outside_the_scripts_order(paths):
    pairs = EvalSet("denoise_15", paths).pairs
    with pytest.raises(ValueError, match="draws no noise at sigma 15"):
        legacy_noisy_images(pairs, 15, "5D")
