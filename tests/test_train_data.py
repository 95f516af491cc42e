"""data.mixture.TrainMixture: repeat factors, aligned crops, noise after crop + augment, determinism, preload."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from numpy.lib.stride_tricks import sliding_window_view
from PIL import Image
from torch.utils.data import DataLoader

from data.layouts import DataError, DatasetPaths
from data.mixture import TrainMixture
from data.transforms import (
    AUGMENTATIONS,
    add_gaussian_noise,
    augment,
    crop_to_multiple,
    paired_random_crop,
    random_augment,
)
from utils.tasks import SETTINGS, TASKS

PATCH = 16
TASKS_3D = list(SETTINGS["3D"].train_repeats)
TASKS_5D = list(SETTINGS["5D"].train_repeats)


def save(path: Path, img: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(img).save(path)


def scene(seed: int, h: int = 37, w: int = 42) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A tiny 5D training set whose degraded images are pointwise functions of the clean ones (lossless PNG).

    denoise 2 images; derain 2 pairs (255 - x); dehaze 3 hazy of 2 scenes (x // 2);
    deblur 1 pair (x ^ 85); lowlight 2 pairs (x // 4).
    """
    train = tmp_path / "Train"
    for i in (1, 2):
        save(train / f"Denoise/{i}.png", scene(i))
        save(train / f"Derain/gt/norain-{i}.png", scene(10 + i))
        save(train / f"Derain/rainy/rain-{i}.png", 255 - scene(10 + i))
        save(train / f"Dehaze/original/000{i}.png", scene(20 + i))
        save(train / f"LowLight/high/{i}.png", scene(40 + i))
        save(train / f"LowLight/low/{i}.png", scene(40 + i) // 4)
    save(train / "Dehaze/synthetic/0001_0.8_0.1.png", scene(21) // 2)
    save(train / "Dehaze/synthetic/0001_1_0.2.png", scene(21) // 2)
    save(train / "Dehaze/synthetic/0002_0.9_0.1.png", scene(22) // 2)
    save(train / "Deblur/sharp/a.png", scene(31))
    save(train / "Deblur/blur/a.png", scene(31) ^ 85)
    return tmp_path


RELATIONS = {
    "derain": lambda clean: 255 - clean,
    "dehaze": lambda clean: clean // 2,
    "deblur": lambda clean: clean ^ 85,
    "lowlight": lambda clean: clean // 4,
}


def as_uint8(x: torch.Tensor) -> np.ndarray:
    """(3, H, W) float in [0, 1] -> (H, W, 3) uint8 (exact for values that were k / 255)."""
    return np.round(x.permute(1, 2, 0).numpy() * 255).astype(np.uint8)


def find_window(patch: np.ndarray, img: np.ndarray) -> list[tuple[str, int, int]]:
    """Every (augmentation, top, left) such that augment(img[top:, left:] window, mode) == patch."""
    windows = sliding_window_view(img, (PATCH, PATCH, 3))[:, :, 0]
    found = []
    for mode in AUGMENTATIONS:
        matches = np.all(windows == augment_inverse(patch, mode)[None, None], axis=(2, 3, 4))
        found += [(mode, int(top), int(left)) for top, left in zip(*np.nonzero(matches), strict=True)]
    return found


def augment_inverse(patch: np.ndarray, mode: str) -> np.ndarray:
    for candidate in AUGMENTATIONS:  # the inverse is the mode that maps augment(x, mode) back to x
        if np.array_equal(augment(augment(patch, mode), candidate), patch):
            return augment(patch, candidate)
    raise AssertionError(mode)


def test_length_and_summary_follow_the_repeat_factors(root):
    mixture = TrainMixture(TASKS_5D, "5D", DatasetPaths.from_root(root), patch_size=PATCH)
    assert mixture.summary() == [("denoise_15", 2, 3), ("denoise_25", 2, 3), ("denoise_50", 2, 3),
                                 ("derain", 2, 80), ("dehaze", 3, 1), ("deblur", 1, 30), ("lowlight", 2, 60)]
    assert len(mixture) == 3 * 2 * 3 + 2 * 80 + 3 + 30 + 2 * 60
    visits = Counter(mixture.locate(k) for k in range(len(mixture)))
    for task, images, repeat in mixture.summary():
        task_visits = {pair: n for (t, pair), n in visits.items() if t == task}
        assert len(task_visits) == images and set(task_visits.values()) == {repeat}, task


def test_3d_subset(root):
    mixture = TrainMixture(["derain", "denoise_25"], "3D", DatasetPaths.from_root(root), patch_size=PATCH)
    assert mixture.summary() == [("derain", 2, 120), ("denoise_25", 2, 3)]
    assert len(mixture) == 246
    with pytest.raises(ValueError, match="deblur"):
        TrainMixture(["deblur"], "3D", DatasetPaths.from_root(root))


def test_samples_are_aligned_patches_of_their_pair(root):
    mixture = TrainMixture(TASKS_5D, "5D", DatasetPaths.from_root(root), patch_size=PATCH)
    seen_modes = set()
    for k in range(0, len(mixture), 7):
        sample = mixture[k]
        task, pair = mixture.locate(k)
        assert sample["task"] == task and sample["de_id"] == TASKS[task].de_id
        assert sample["degraded"].shape == sample["clean"].shape == (3, PATCH, PATCH)
        assert sample["degraded"].dtype == sample["clean"].dtype == torch.float32
        clean, degraded = as_uint8(sample["clean"]), as_uint8(sample["degraded"])
        source = crop_to_multiple(np.asarray(Image.open(pair.clean)))
        windows = find_window(clean, source)
        assert windows, f"sample {k} is not a window of {pair.clean} under a non-identity augmentation"
        seen_modes |= {mode for mode, _, _ in windows}
        if TASKS[task].kind in RELATIONS:
            assert np.array_equal(degraded, RELATIONS[TASKS[task].kind](clean)), k
    assert len(seen_modes) >= 5


def test_denoise_noise_is_added_after_crop_and_augment(root):
    """Sample k equals the documented pipeline replayed with default_rng([seed, k])."""
    mixture = TrainMixture(["denoise_50", "denoise_15"], "5D", DatasetPaths.from_root(root), patch_size=PATCH, seed=3)
    for k in (0, 5, 11, 12 + 4):
        sample = mixture[k]
        task, pair = mixture.locate(k)
        rng = np.random.default_rng([3, k])
        clean = crop_to_multiple(np.asarray(Image.open(pair.clean)))
        patch, _ = paired_random_crop(clean, clean, PATCH, rng)
        (patch,) = random_augment((patch,), rng)
        noisy = add_gaussian_noise(np.ascontiguousarray(patch), TASKS[task].sigma, rng)
        assert np.array_equal(as_uint8(sample["clean"]), patch)
        assert np.array_equal(as_uint8(sample["degraded"]), noisy)
    residual = {task: [] for task in ("denoise_15", "denoise_50")}
    for k in range(len(mixture)):
        s = mixture[k]
        residual[s["task"]].append((s["degraded"] - s["clean"]).std().item() * 255)
    assert 10 < np.mean(residual["denoise_15"]) < 20 < 35 < np.mean(residual["denoise_50"])


def test_same_index_same_sample_across_instances(root):
    paths = DatasetPaths.from_root(root)
    a = TrainMixture(TASKS_5D, "5D", paths, patch_size=PATCH, seed=7)
    b = TrainMixture(TASKS_5D, "5D", paths, patch_size=PATCH, seed=7)
    c = TrainMixture(TASKS_5D, "5D", paths, patch_size=PATCH, seed=8)
    n = len(a)
    for k in (0, 3, 100, n - 1):
        sa, sb, sc = a[k], b[np.int64(k)], c[k]
        assert torch.equal(sa["degraded"], sb["degraded"]) and torch.equal(sa["clean"], sb["clean"])
        assert not torch.equal(sa["clean"], sc["clean"])
        later = a[k + 5 * n]  # the same image in a later epoch, freshly cropped
        assert a.locate(k + 5 * n) == a.locate(k) and not torch.equal(later["clean"], sa["clean"])
    with pytest.raises(IndexError):
        a[-1]


def test_dataloader_workers_give_the_same_samples(root):
    mixture = TrainMixture(TASKS_5D, "5D", DatasetPaths.from_root(root), patch_size=PATCH)
    indices = [5, 900, 42, 17, 333, 2]
    loader = DataLoader(mixture, batch_size=3, sampler=indices, num_workers=2)
    batches = list(loader)
    expected = torch.stack([mixture[k]["degraded"] for k in indices])
    assert torch.equal(torch.cat([b["degraded"] for b in batches]), expected)
    assert [t for b in batches for t in b["task"]] == [mixture.locate(k)[0] for k in indices]


def test_preload_holds_the_revisited_datasets_and_changes_nothing(root):
    paths = DatasetPaths.from_root(root)
    plain = TrainMixture(TASKS_5D, "5D", paths, patch_size=PATCH)
    loaded = TrainMixture(TASKS_5D, "5D", paths, patch_size=PATCH, preload=True)
    assert loaded.preloaded() == {"derain": 2, "lowlight": 2, "deblur": 1}  # repeat >= 30; not denoise, dehaze
    assert loaded.preloaded_bytes == (2 + 2 + 1) * 2 * 32 * 32 * 3
    for k in range(0, len(plain), 11):
        assert torch.equal(plain[k]["degraded"], loaded[k]["degraded"])
        assert torch.equal(plain[k]["clean"], loaded[k]["clean"])


def test_preload_respects_the_budget_most_revisited_first(root):
    pair_bytes = 2 * 32 * 32 * 3
    mixture = TrainMixture(TASKS_5D, "5D", DatasetPaths.from_root(root), patch_size=PATCH, preload=True,
                           preload_bytes=3 * pair_bytes)
    assert mixture.preloaded() == {"derain": 2, "lowlight": 1}  # derain (80) > lowlight (60) > deblur (30)
    assert mixture.preloaded_bytes == 3 * pair_bytes
    assert TrainMixture(["derain"], "5D", DatasetPaths.from_root(root), patch_size=PATCH).preloaded() == {}


def test_too_small_image_names_the_file(root):
    save(root / "Train/LowLight/high/3.png", scene(3, 40, 31))  # 31 columns -> 16 after cropping: fine
    save(root / "Train/LowLight/low/3.png", scene(3, 40, 31))
    save(root / "Train/LowLight/high/4.png", scene(4, 40, 30))  # 30 -> 16; patch 17 does not fit
    save(root / "Train/LowLight/low/4.png", scene(4, 40, 30))
    mixture = TrainMixture(["lowlight"], "5D", DatasetPaths.from_root(root), patch_size=17)
    k = next(k for k in range(len(mixture)) if mixture.locate(k)[1].clean.name == "4.png")
    with pytest.raises(DataError, match=r"low/4.png: image of 16x32 .* smaller than the 17x17 patch .*--patch_size"):
        mixture[k]


def test_pair_of_different_sizes_names_both(root):
    save(root / "Train/Deblur/blur/a.png", scene(31, 37, 41))
    mixture = TrainMixture(["deblur"], "5D", DatasetPaths.from_root(root), patch_size=PATCH)
    with pytest.raises(DataError, match=r"blur/a.png \(41x37\) and its partner .*sharp/a.png \(42x37\) differ in size"):
        mixture[0]
