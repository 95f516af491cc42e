"""data.transforms: crop to a multiple of 16, the shared random crop, the 7 augmentations, noise, tensors."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
import torch

from data.transforms import (
    AUGMENTATIONS,
    add_gaussian_noise,
    augment,
    crop_to_multiple,
    paired_random_crop,
    random_augment,
    to_tensor,
)


def numbered(h: int, w: int) -> np.ndarray:
    """(h, w, 3) int64 image whose pixels are all distinct: value = 3 * (row * w + col) + channel."""
    return np.arange(h * w * 3).reshape(h, w, 3)


def test_crop_to_multiple_drops_the_floor_half_at_top_and_left():
    img = numbered(37, 50)  # 37 % 16 = 5 rows: 2 at the top, 3 at the bottom; 50 % 16 = 2 columns: 1 and 1
    out = crop_to_multiple(img)
    assert out.shape == (32, 48, 3)
    assert np.array_equal(out, img[2:34, 1:49])
    assert crop_to_multiple(numbered(32, 48)).shape == (32, 48, 3)
    assert crop_to_multiple(numbered(9, 11), base=4).shape == (8, 8, 3)
    assert np.array_equal(crop_to_multiple(numbered(9, 11), base=4), numbered(9, 11)[0:8, 1:9])
    assert crop_to_multiple(numbered(7, 20)).shape == (0, 16, 3)


def test_paired_crop_takes_the_same_window():
    a = numbered(40, 30)
    b = 7 * a + 1  # the degraded image as a pointwise function of the clean one
    rng = np.random.default_rng(0)
    tops, lefts = set(), set()
    for _ in range(500):
        ca, cb = paired_random_crop(a, b, 16, rng)
        assert ca.shape == (16, 16, 3) and np.array_equal(cb, 7 * ca + 1)
        top, left = divmod(int(ca[0, 0, 0]) // 3, 30)
        assert np.array_equal(ca, a[top:top + 16, left:left + 16])
        tops.add(top)
        lefts.add(left)
    assert tops == set(range(40 - 16 + 1)) and lefts == set(range(30 - 16 + 1))  # every window reachable


def test_paired_crop_errors_name_the_sizes():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match=r"differ in size: 30x40 vs 30x41"):
        paired_random_crop(numbered(40, 30), numbered(41, 30), 16, rng)
    with pytest.raises(ValueError, match=r"12x40 .* smaller than the 16x16 patch"):
        paired_random_crop(numbered(40, 12), numbered(40, 12), 16, rng)
    assert paired_random_crop(numbered(16, 16), numbered(16, 16), 16, rng)[0].shape == (16, 16, 3)


def test_seven_distinct_non_identity_augmentations():
    img = numbered(4, 4)
    outs = [augment(img, mode) for mode in AUGMENTATIONS]
    assert len(AUGMENTATIONS) == 7
    keys = {o.tobytes() for o in outs} | {img.tobytes()}
    assert len(keys) == 8  # the 8 symmetries of the square: all distinct, none is the identity


def test_augmentations_are_the_documented_numpy_operations():
    img = numbered(3, 5)
    expected = {
        "flip_ud": np.flipud(img),
        "rot90": np.rot90(img, 1),
        "rot90_flip_ud": np.flipud(np.rot90(img, 1)),
        "rot180": np.rot90(img, 2),
        "rot180_flip_ud": np.flipud(np.rot90(img, 2)),
        "rot270": np.rot90(img, 3),
        "rot270_flip_ud": np.flipud(np.rot90(img, 3)),
    }
    assert set(expected) == set(AUGMENTATIONS)
    for mode, want in expected.items():
        assert np.array_equal(augment(img, mode), want), mode
    with pytest.raises(ValueError, match="unknown augmentation 'identity'"):
        augment(img, "identity")


def test_random_augment_is_uniform_over_the_seven_and_shared():
    a = numbered(4, 6)
    b = a * 2
    by_key = {augment(a, mode).tobytes(): mode for mode in AUGMENTATIONS}
    rng = np.random.default_rng(1)
    counts: Counter[str] = Counter()
    draws = 7000
    for _ in range(draws):
        ra, rb = random_augment((a, b), rng)
        assert np.array_equal(rb, ra * 2)  # the same mode for every image
        assert ra.tobytes() != a.tobytes() or ra.shape != a.shape  # never the identity
        counts[by_key[ra.tobytes()]] += 1
    assert set(counts) == set(AUGMENTATIONS)
    assert all(abs(n - draws / 7) < 5 * np.sqrt(draws / 7) for n in counts.values())


def test_noise_statistics_and_truncation():
    img = np.full((400, 500, 3), 128, np.uint8)  # mid-grey: clipping at 0/255 is negligible for sigma 25
    noisy = add_gaussian_noise(img, 25, np.random.default_rng(0))
    diff = noisy.astype(np.float64) - 128
    assert noisy.dtype == np.uint8 and noisy.shape == img.shape
    # Truncation floors x + n, so the mean drops by 0.5 and the std is sqrt(25^2 + 1/12).
    assert diff.mean() == pytest.approx(-0.5, abs=0.1)
    assert diff.std() == pytest.approx(np.sqrt(25**2 + 1 / 12), rel=0.01)


def test_noise_is_clip_then_truncate_of_the_standard_normal_draw():
    img = np.random.default_rng(2).integers(0, 256, (30, 20, 3), dtype=np.uint8)
    noisy = add_gaussian_noise(img, 50, np.random.default_rng(3))
    draw = img + np.random.default_rng(3).standard_normal(img.shape) * 50
    assert np.array_equal(noisy, np.floor(np.clip(draw, 0, 255)).astype(np.uint8))
    assert (noisy == 0).any() and (noisy == 255).any()
    with pytest.raises(ValueError, match="uint8"):
        add_gaussian_noise(img.astype(np.float32), 15, np.random.default_rng(0))


def test_to_tensor_layout_and_scale():
    img = np.random.default_rng(4).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    x = to_tensor(np.flipud(img))  # negative strides are fine
    assert x.dtype == torch.float32 and x.shape == (3, 5, 7)
    assert torch.equal(x, torch.from_numpy(np.flipud(img).copy()).permute(2, 0, 1).float() / 255)
    assert x.min() >= 0 and x.max() <= 1
