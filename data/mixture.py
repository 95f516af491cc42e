"""The 3D / 5D training mixture of DFPIR (docs/protocol.md section 3).

One epoch visits every training image of every task ``repeat`` times (the setting's
``train_repeats`` in :mod:`utils.tasks`, unless the network's recipe mixes them otherwise; each
denoise clean image once per sigma task, 3 times each). A sample is: both images read as RGB,
centre-cropped to a multiple of 16, one random
``patch_size`` crop at the same place in both, one of the 7 non-identity flips/rotations, and for
a task with an online degradation (denoising: Gaussian noise, :mod:`data.online`) that degradation
applied to the clean patch after crop and augmentation.

Where this deliberately differs from the reference: all randomness of sample ``k`` comes from
``np.random.default_rng([seed, k])`` instead of global random states, so a sample depends only
on (seed, k): resuming and any number of DataLoader workers reproduce a run exactly.
"""

from __future__ import annotations

import bisect
import operator
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from torch.utils.data import Dataset

from data.layouts import DataError, DatasetPaths, Pair, read_pair, train_pairs
from data.online import degrade_online
from data.run_options import PatchSizeOption
from data.transforms import (
    CROP_BASE,
    crop_to_multiple,
    paired_random_crop,
    random_augment,
    to_tensor,
)
from utils.config import default_of
from utils.image_io import image_size, parallel_map
from utils.tasks import SETTINGS, TASKS

PRELOAD_MIN_VISITS = 30
"""With ``preload``, a dataset is decoded into memory only if one epoch visits each image this often."""

DEFAULT_PRELOAD_BYTES = 4 * 2**30
"""Default memory budget of ``preload``: all of Rain100L (0.18 GB) and LOL (0.69 GB), ~600 GoPro pairs (5.5 MB each)."""


@dataclass(frozen=True)
class _Segment:
    """A contiguous run of sample indices: ``repeat`` passes over the images of one task."""

    task: str
    kind: str
    images: int
    repeat: int


def load_training_images(pair: Pair) -> tuple[np.ndarray | None, np.ndarray]:
    """:func:`data.layouts.read_pair`, both images centre-cropped to a multiple of ``CROP_BASE``."""
    degraded, clean = read_pair(pair)
    return (None if degraded is None else crop_to_multiple(degraded, CROP_BASE)), crop_to_multiple(clean, CROP_BASE)


class TrainMixture(Dataset):
    """The training mixture of ``tasks`` under ``setting`` ('3D' or '5D'), with the setting's repeat
    factors or ``repeats`` (task -> repeat factor: the network recipe's, ``Recipe.train_repeats``).

    Sample index k >= 0 (any int: ``k`` and ``k + len(self)`` are the same image with fresh
    randomness, so a sampler can yield ``epoch * len(self) + i``) gives a dict:

    - ``degraded``: (3, P, P) float32 in [0, 1], P = ``patch_size``
    - ``clean``:    (3, P, P) float32 in [0, 1]
    - ``de_id``:    int, the task's degradation id (row of the prompt table)
    - ``task``:     str, the task name

    All randomness of sample k comes from ``np.random.default_rng([seed, k])``: the same k gives a
    bit-identical sample in any process.

    ``preload=True`` decodes, in ``__init__`` (so before DataLoader workers fork and share it
    copy-on-write), the images of the datasets that one epoch revisits at least
    ``PRELOAD_MIN_VISITS`` times (Rain100L, GoPro, LOL), most revisited first, until
    ``preload_bytes`` of uint8 pixels are held; the rest is read from disk per sample. Samples
    are identical either way. GoPro alone is about 11.6 GB.
    """

    def __init__(
        self,
        tasks: list[str],
        setting: str,
        paths: DatasetPaths,
        patch_size: int = default_of(PatchSizeOption, "patch_size"),
        seed: int = 0,
        preload: bool = False,
        preload_bytes: int = DEFAULT_PRELOAD_BYTES,
        repeats: Mapping[str, int] | None = None,
    ) -> None:
        if setting not in SETTINGS:
            raise ValueError(f"unknown setting {setting!r}; choose from {list(SETTINGS)}")
        repeats = SETTINGS[setting].train_repeats if repeats is None else repeats
        unknown = [t for t in tasks if t not in repeats]
        if unknown or not tasks:
            raise ValueError(f"training tasks {list(tasks)}: {unknown or 'none given'} not in the {setting} setting; "
                             f"choose from {list(repeats)}")
        self.tasks = list(dict.fromkeys(tasks))
        self.setting = setting
        self.patch_size = patch_size
        self.seed = seed

        kinds = list(dict.fromkeys(TASKS[t].kind for t in self.tasks))
        self._pairs: dict[str, list[Pair]] = {kind: train_pairs(kind, paths) for kind in kinds}
        self._segments = [
            _Segment(t, TASKS[t].kind, len(self._pairs[TASKS[t].kind]), repeats[t]) for t in self.tasks
        ]
        self._ends = np.cumsum([s.images * s.repeat for s in self._segments]).tolist()

        self._cache: dict[tuple[str, int], tuple[np.ndarray | None, np.ndarray]] = {}
        self.preloaded_bytes = 0
        if preload:
            self._preload(preload_bytes)

    def __len__(self) -> int:
        """Samples per epoch: the sum over tasks of images x repeat."""
        return self._ends[-1]

    def summary(self) -> list[tuple[str, int, int]]:
        """(task, images, repeat) per task, in task order."""
        return [(s.task, s.images, s.repeat) for s in self._segments]

    def task_ranges(self) -> list[tuple[str, int, int]]:
        """(task, start, stop) per task: the sample indices [start, stop) of one epoch cut from that task."""
        starts = [0, *self._ends[:-1]]
        return [(s.task, start, stop) for s, start, stop in zip(self._segments, starts, self._ends, strict=True)]

    def preloaded(self) -> dict[str, int]:
        """Dataset kind -> number of its pairs held in memory (empty without ``preload``)."""
        counts: dict[str, int] = {}
        for kind, _ in self._cache:
            counts[kind] = counts.get(kind, 0) + 1
        return counts

    def locate(self, k: int) -> tuple[str, Pair]:
        """(task, pair) that sample ``k`` is cut from."""
        segment, index = self._locate(k)
        return segment.task, self._pairs[segment.kind][index]

    def __getitem__(self, k: int) -> dict[str, Any]:
        segment, index = self._locate(k)
        pair = self._pairs[segment.kind][index]
        rng = np.random.default_rng([self.seed, operator.index(k)])
        cached = self._cache.get((segment.kind, index))
        degraded, clean = cached if cached is not None else load_training_images(pair)
        try:
            # The same window for both; denoising crops the clean image alone (degraded is None).
            degraded, clean = paired_random_crop(clean if degraded is None else degraded, clean, self.patch_size, rng)
        except ValueError as err:
            raise DataError(f"{pair.degraded or pair.clean}: {err} (after cropping to a multiple of {CROP_BASE}); "
                            "remove it from the training set or lower --patch_size") from err
        degraded, clean = random_augment((degraded, clean), rng)
        task = TASKS[segment.task]
        if task.online is not None:
            degraded = degrade_online(task.online, clean, rng)
        return {
            "degraded": to_tensor(degraded),
            "clean": to_tensor(clean),
            "de_id": task.de_id,
            "task": task.name,
        }

    def _locate(self, k: int) -> tuple[_Segment, int]:
        """(segment, index of the pair within its dataset) of sample ``k``."""
        k = operator.index(k)
        if k < 0:
            raise IndexError(f"sample index must be >= 0, got {k}")
        k %= len(self)
        segment_index = bisect.bisect_right(self._ends, k)
        start = self._ends[segment_index - 1] if segment_index else 0
        segment = self._segments[segment_index]
        return segment, (k - start) % segment.images

    def _preload(self, budget: int) -> None:
        visits: dict[str, int] = {}
        for s in self._segments:
            visits[s.kind] = visits.get(s.kind, 0) + s.repeat
        kinds = sorted((k for k, v in visits.items() if v >= PRELOAD_MIN_VISITS), key=lambda k: -visits[k])
        chosen: list[tuple[str, int]] = []
        for kind in kinds:
            for index, pair in enumerate(self._pairs[kind]):
                height, width = image_size(pair.clean)
                size = (height - height % CROP_BASE) * (width - width % CROP_BASE) * 3
                size *= 1 if pair.degraded is None else 2
                if self.preloaded_bytes + size > budget:
                    break
                self.preloaded_bytes += size
                chosen.append((kind, index))
        decoded = parallel_map(
            lambda key: load_training_images(self._pairs[key[0]][key[1]]), chosen, os.cpu_count() or 1,
            desc=f"preloading {len(chosen)} training images/pairs", unit="item",
        )
        for key, (degraded, clean) in zip(chosen, decoded, strict=True):
            self._cache[key] = (
                None if degraded is None else np.ascontiguousarray(degraded),
                np.ascontiguousarray(clean),
            )
