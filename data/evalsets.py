"""The test sets of the evaluation protocol (spec section 4), one per task.

Each item is a whole image pair, both centre-cropped to a multiple of 16, evaluated at batch 1.
Denoising inputs are made from the clean CBSD68 images as in training (clip, uint8 truncation).

Where this deliberately differs from the reference: the reference seeds numpy once and draws the
noise of all images in directory-listing order, so its noise depends on file order. Here each
image's noise is seeded by its name and sigma (:func:`noise_seed`), so numbers do not depend on
file order, worker count or which sigma ran first.
"""

from __future__ import annotations

import zlib
from typing import Any

import numpy as np
from torch.utils.data import Dataset

from data.layouts import DataError, DatasetPaths, Pair, eval_pairs, read_pair
from data.transforms import CROP_BASE, add_gaussian_noise, crop_to_multiple, to_tensor
from utils.tasks import TASKS


def pair_name(pair: Pair) -> str:
    """The name a test image is reported and saved under: the degraded file's stem (clean's for denoising)."""
    return (pair.degraded or pair.clean).stem


def duplicate_names(pairs: list[Pair]) -> list[str]:
    """One problem line per name (:func:`pair_name`) shared by several pairs, naming their files."""
    by_name: dict[str, list[Pair]] = {}
    for pair in pairs:
        by_name.setdefault(pair_name(pair), []).append(pair)
    return [
        f"test images {', '.join(str(p.degraded or p.clean) for p in group)} share the name {name!r}; "
        "rename or remove all but one"
        for name, group in by_name.items()
        if len(group) > 1
    ]


def noise_seed(name: str, sigma: int) -> int:
    """Seed of the test noise of image ``name`` at ``sigma``: CRC-32 of ``f"{name}:{sigma}"``, stable everywhere."""
    return zlib.crc32(f"{name}:{sigma}".encode())


def load_test_images(pair: Pair, sigma: int | None) -> tuple[np.ndarray, np.ndarray]:
    """(degraded, clean) of a test pair as (H, W, 3) uint8, centre-cropped to a multiple of 16.

    For denoising (``sigma`` set, ``pair.degraded`` None) the degraded image is the cropped clean
    image plus Gaussian noise seeded by :func:`noise_seed`. DataError if the images differ in
    size or are smaller than 16 pixels.
    """
    degraded, clean = read_pair(pair)
    if clean.shape[0] < CROP_BASE or clean.shape[1] < CROP_BASE:
        raise DataError(f"{pair.clean} ({clean.shape[1]}x{clean.shape[0]}) is smaller than {CROP_BASE}x{CROP_BASE} "
                        "pixels; remove it from the test set")
    clean = crop_to_multiple(clean, CROP_BASE)
    if degraded is None:
        if sigma is None:
            raise ValueError(f"{pair.clean}: a test pair without a degraded image needs a noise sigma")
        rng = np.random.default_rng(noise_seed(pair_name(pair), sigma))
        return add_gaussian_noise(np.ascontiguousarray(clean), sigma, rng), clean
    return crop_to_multiple(degraded, CROP_BASE), clean


class EvalSet(Dataset):
    """The test set of one task (a name in ``utils.tasks.TASKS``).

    Item i is a dict:

    - ``degraded``: (3, H, W) float32 in [0, 1] (H, W multiples of 16)
    - ``clean``:    (3, H, W) float32 in [0, 1]
    - ``de_id``:    int, the task's degradation id
    - ``task``:     str, the task name
    - ``name``:     str, the degraded file's stem (the clean file's for denoising), unique in the set

    DataError at construction for layout problems or duplicate names, and when loading an item
    whose images differ in size or are smaller than 16 pixels.
    """

    def __init__(self, task: str, paths: DatasetPaths) -> None:
        if task not in TASKS:
            raise ValueError(f"unknown task {task!r}; choose from {list(TASKS)}")
        self.task = TASKS[task]
        self.pairs = eval_pairs(self.task.kind, paths)
        duplicates = duplicate_names(self.pairs)
        if duplicates:
            raise DataError(duplicates, f"{task} test data")

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, i: int) -> dict[str, Any]:
        pair = self.pairs[i]
        degraded, clean = load_test_images(pair, self.task.sigma)
        return {
            "degraded": to_tensor(degraded),
            "clean": to_tensor(clean),
            "de_id": self.task.de_id,
            "task": self.task.name,
            "name": pair_name(pair),
        }
