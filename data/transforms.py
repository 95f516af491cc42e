"""The sample transforms of the training and test protocol (docs/protocol.md sections 3 and 4).

All functions take and return numpy images of shape (H, W, C) (or (H, W)), uint8 unless stated;
randomness always comes from an explicit ``np.random.Generator``.
"""

from __future__ import annotations

import numpy as np
import torch

CROP_BASE = 16
"""Training and test images are centre-cropped to a multiple of this (docs/protocol.md sections 3 and 4)."""


def crop_to_multiple(img: np.ndarray, base: int = CROP_BASE) -> np.ndarray:
    """Centre-crop H and W down to multiples of ``base``.

    Drops ``h % base`` rows, ``floor((h % base) / 2)`` of them at the top and the rest at the
    bottom; the same for columns (left, right). Returns a view. An image smaller than ``base``
    becomes empty: callers check the size.
    """
    h, w = img.shape[:2]
    dh, dw = h % base, w % base
    top, left = dh // 2, dw // 2
    return img[top : h - (dh - top), left : w - (dw - left)]


def paired_random_crop(
    a: np.ndarray, b: np.ndarray, size: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """The same random ``size`` x ``size`` window of two aligned images (views).

    The top-left corner is uniform over all windows that fit. ValueError when the images differ
    in shape or are smaller than ``size``.
    """
    if a.shape[:2] != b.shape[:2]:
        raise ValueError(f"paired images differ in size: {a.shape[1]}x{a.shape[0]} vs {b.shape[1]}x{b.shape[0]} "
                         "(width x height)")
    h, w = a.shape[:2]
    if h < size or w < size:
        raise ValueError(f"image of {w}x{h} (width x height) is smaller than the {size}x{size} patch")
    top = int(rng.integers(0, h - size + 1))
    left = int(rng.integers(0, w - size + 1))
    return a[top : top + size, left : left + size], b[top : top + size, left : left + size]


AUGMENTATIONS: tuple[str, ...] = (
    "flip_ud",
    "rot90",
    "rot90_flip_ud",
    "rot180",
    "rot180_flip_ud",
    "rot270",
    "rot270_flip_ud",
)
"""The 7 non-identity flips/rotations of the training protocol, drawn uniformly (identity never).

``rotK`` is ``np.rot90(img, k=K // 90)`` (counter-clockwise in the image as displayed, axes (0, 1));
``_flip_ud`` then flips rows (``np.flipud``). With the identity these are the 8 symmetries of
the square, so all 7 differ from each other and from the identity.
"""


def augment(img: np.ndarray, mode: str) -> np.ndarray:
    """Apply one of :data:`AUGMENTATIONS` to an (H, W, ...) image; returns a view."""
    if mode not in AUGMENTATIONS:
        raise ValueError(f"unknown augmentation {mode!r}; choose from {list(AUGMENTATIONS)}")
    rotation = mode.split("_")[0]
    if rotation.startswith("rot"):
        img = np.rot90(img, k=int(rotation.removeprefix("rot")) // 90)
    if mode.endswith("flip_ud"):
        img = np.flipud(img)
    return img


def random_augment(images: tuple[np.ndarray, ...], rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    """Draw one mode uniformly from the 7 :data:`AUGMENTATIONS` and apply it to every image."""
    mode = AUGMENTATIONS[int(rng.integers(len(AUGMENTATIONS)))]
    return tuple(augment(img, mode) for img in images)


def add_gaussian_noise(img: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """Synthetic Gaussian noise of the denoising tasks: ``uint8(clip(x + N(0, 1) * sigma, 0, 255))``.

    img: uint8 of any shape; sigma on the 0-255 scale. The float64 result is truncated to uint8
    (``astype``), not rounded, as in the reference.
    """
    if img.dtype != np.uint8:
        raise ValueError(f"add_gaussian_noise expects a uint8 image, got {img.dtype}")
    noisy = img + rng.standard_normal(img.shape) * sigma
    return np.clip(noisy, 0, 255).astype(np.uint8)


def to_tensor(img: np.ndarray) -> torch.Tensor:
    """(H, W, 3) uint8 -> (3, H, W) float32 tensor in [0, 1] (x / 255, float32 arithmetic)."""
    if img.dtype != np.uint8 or img.ndim != 3:
        raise ValueError(f"to_tensor expects an (H, W, C) uint8 image, got {img.dtype} {img.shape}")
    # contiguous and writable: a transpose that is already contiguous (a 1x1 or 1-pixel-wide image) would be a view
    # of a read-only decoded array, which torch.from_numpy warns about
    chw = np.require(img.transpose(2, 0, 1), requirements=("C_CONTIGUOUS", "WRITEABLE"))
    return torch.from_numpy(chw).to(torch.float32).div_(255.0)
