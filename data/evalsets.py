"""The test sets of the evaluation protocol (docs/protocol.md section 4), one per task.

Each item is a whole image pair, both centre-cropped to a multiple of 16, evaluated at batch 1.
Inputs of a task with an online degradation (denoising: Gaussian noise) are made from the clean
images as in training (:mod:`data.online`; noise: clip, uint8 truncation).

Where this deliberately differs from the reference: the reference seeds numpy once and draws the
noise of all images in directory-listing order, so its noise depends on file order. Here each
image's noise is seeded by its name and sigma (:func:`noise_seed`; any online degradation: by its
parameters), so numbers do not depend on file order, worker count or which sigma ran first.
``legacy_noise`` reproduces the reference's draw instead (:func:`legacy_noisy_images`), to compare
with numbers made by the authors' scripts.
"""

from __future__ import annotations

import os
import zlib
from typing import Any

import numpy as np
from torch.utils.data import Dataset

from data.layouts import DataError, DatasetPaths, Pair, eval_pairs, read_pair
from data.online import degrade_online
from data.transforms import CROP_BASE, add_gaussian_noise, crop_to_multiple, to_tensor
from utils.tasks import SETTINGS, TASKS, Online


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


def noise_seed(name: str, key: object) -> int:
    """Seed of the online degradation of test image ``name`` with parameters ``key`` (``Online.key``;
    for noise the sigma): CRC-32 of ``f"{name}:{key}"``, stable everywhere."""
    return zlib.crc32(f"{name}:{key}".encode())


def legacy_sigmas(setting: str) -> tuple[int, ...]:
    """The sigmas the authors' ``setting`` test script draws noise for, in order (its record's ``legacy_sigmas``).

    ValueError for a setting whose record names none (the authors wrote no test script for it).
    """
    order = SETTINGS[setting].legacy_sigmas
    if order is None:
        raise ValueError(f"--legacy_noise: the authors have no {setting} test script to reproduce "
                         f"(the setting's record names no legacy_sigmas; settings with one: "
                         f"{[s.name for s in SETTINGS.values() if s.legacy_sigmas is not None]})")
    return order


def legacy_noisy_images(pairs: list[Pair], sigma: int, setting: str) -> dict[Pair, np.ndarray]:
    """The noisy test images at ``sigma`` exactly as the authors' ``setting`` test script draws them.

    Their draw: numpy's global generator seeded with 0 once; then for each sigma of the setting's
    ``legacy_sigmas`` in turn, each clean image in ``os.listdir`` order, centre-cropped to a
    multiple of 16, gets ``clip(x + randn(H, W, 3) * sigma, 0, 255)`` truncated to uint8. The noise
    of one sigma thus depends on the file order and on the images drawn before it (the sigmas before
    it are drawn and dropped). ``pairs``: the denoising test pairs, directly in one folder.
    Returns {pair: (H, W, 3) uint8}.
    """
    order = legacy_sigmas(setting)
    if sigma not in order:
        raise ValueError(f"the authors' {setting} test script draws no noise at sigma {sigma} (only {order})")
    folders = {pair.clean.parent for pair in pairs}
    if len(folders) != 1:
        raise DataError(f"--legacy_noise needs the test images directly in one folder, not in {sorted(folders)}")
    by_name = {pair.clean.name: pair for pair in pairs}
    listed = [by_name[name] for name in os.listdir(folders.pop()) if name in by_name]
    cleans = {pair: crop_to_multiple(read_pair(pair)[1], CROP_BASE) for pair in listed}
    stream = np.random.RandomState(0)  # what np.random.seed(0) gives the global functions
    for drawn_sigma in order[: order.index(sigma) + 1]:
        noisy = {pair: add_gaussian_noise(np.ascontiguousarray(clean), drawn_sigma, stream)
                 for pair, clean in cleans.items()}
    return noisy


def load_test_images(pair: Pair, online: Online | None) -> tuple[np.ndarray, np.ndarray]:
    """(degraded, clean) of a test pair as (H, W, 3) uint8, centre-cropped to a multiple of 16.

    For a task with an online degradation (``online`` set, ``pair.degraded`` None; denoising: noise)
    the degraded image is the cropped clean image degraded by it, drawn from a generator seeded by
    :func:`noise_seed`. DataError if the images differ in
    size or are smaller than 16 pixels.
    """
    degraded, clean = read_pair(pair)
    if clean.shape[0] < CROP_BASE or clean.shape[1] < CROP_BASE:
        raise DataError(f"{pair.clean} ({clean.shape[1]}x{clean.shape[0]}) is smaller than {CROP_BASE}x{CROP_BASE} "
                        "pixels; remove it from the test set")
    clean = crop_to_multiple(clean, CROP_BASE)
    if degraded is None:
        if online is None:
            raise ValueError(f"{pair.clean}: a test pair without a degraded image needs an online degradation")
        rng = np.random.default_rng(noise_seed(pair_name(pair), online.key))
        return degrade_online(online, clean, rng), clean
    return crop_to_multiple(degraded, CROP_BASE), clean


class EvalSet(Dataset):
    """The test set of one task (a name in ``utils.tasks.TASKS``).

    Item i is a dict:

    - ``degraded``: (3, H, W) float32 in [0, 1] (H, W multiples of 16)
    - ``clean``:    (3, H, W) float32 in [0, 1]
    - ``de_id``:    int, the task's degradation id
    - ``task``:     str, the task name
    - ``name``:     str, the degraded file's stem (the clean file's for denoising), unique in the set

    ``legacy_noise`` (a setting with ``legacy_sigmas``: '3D' or '5D'): denoising inputs drawn as the
    authors' test script of that setting draws them (:func:`legacy_noisy_images`, computed here at
    once), instead of per-image seeded noise.

    DataError at construction for layout problems or duplicate names, and when loading an item
    whose images differ in size or are smaller than 16 pixels.
    """

    def __init__(self, task: str, paths: DatasetPaths, legacy_noise: str | None = None) -> None:
        if task not in TASKS:
            raise ValueError(f"unknown task {task!r}; choose from {list(TASKS)}")
        self.task = TASKS[task]
        self.pairs = eval_pairs(self.task.kind, paths)
        duplicates = duplicate_names(self.pairs)
        if duplicates:
            raise DataError(duplicates, f"{task} test data")
        self.legacy_noisy: dict[Pair, np.ndarray] = {}
        if legacy_noise is not None and self.task.sigma is not None:
            self.legacy_noisy = legacy_noisy_images(self.pairs, self.task.sigma, legacy_noise)

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, i: int) -> dict[str, Any]:
        pair = self.pairs[i]
        if pair in self.legacy_noisy:
            degraded, clean = self.legacy_noisy[pair], crop_to_multiple(read_pair(pair)[1], CROP_BASE)
        else:
            degraded, clean = load_test_images(pair, self.task.online)
        return {
            "degraded": to_tensor(degraded),
            "clean": to_tensor(clean),
            "de_id": self.task.de_id,
            "task": self.task.name,
            "name": pair_name(pair),
        }
