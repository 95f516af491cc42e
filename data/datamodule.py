"""The LightningDataModule: the training mixture and the test sets, with exact-resume sampling.

Training order is a pure function of (seed, global step): the batch of optimizer step s is cut
from the shuffled order of epoch s // steps_per_epoch, and each sample index carries its epoch
(``epoch * len(dataset) + i``) so that crops, flips and noise are fresh every epoch yet
reproducible (see ``data/mixture.py``). A run resumed from a checkpoint at step k therefore sees
exactly the batches an uninterrupted run sees, on any number of workers and devices.

Validation and testing shard each test set over the processes without padding, so distributed
evaluation scores every image exactly once.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Sampler

from data.evalsets import EvalSet
from data.layouts import DatasetPaths
from data.mixture import TrainMixture
from data.run_options import PatchSizeOption
from utils.config import default_of


class StepSampler(Sampler[int]):
    """Sample indices for the optimizer steps of one epoch, resumable at any step.

    dataset_len: samples per epoch. batch_size: per process. The global batch of step s is
    positions [p * B * W, (p + 1) * B * W) of epoch e's permutation (e, p = divmod(s, steps_per_epoch),
    W = world size, B = batch size); process r takes its B consecutive positions. The remainder
    of an epoch that does not fill a global batch is dropped (as ``drop_last=True``).
    Each ``__iter__`` yields from ``next_step`` to the end of that step's epoch.
    """

    def __init__(self, dataset_len: int, batch_size: int, seed: int, start_step: int = 0,
                 rank: int = 0, world_size: int = 1):
        self.dataset_len = dataset_len
        self.batch_size = batch_size
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self.steps_per_epoch = dataset_len // (batch_size * world_size)
        if self.steps_per_epoch == 0:
            raise ValueError(
                f"one epoch has {dataset_len} samples, fewer than one global batch of {batch_size * world_size}: "
                "lower --batch_size or add data"
            )
        self.next_step = start_step

    def epoch_order(self, epoch: int) -> torch.Tensor:
        """(dataset_len,) the shuffled sample order of an epoch."""
        return torch.randperm(self.dataset_len, generator=torch.Generator().manual_seed(self.seed + epoch))

    def __iter__(self) -> Iterator[int]:
        epoch, first = divmod(self.next_step, self.steps_per_epoch)
        self.next_step = (epoch + 1) * self.steps_per_epoch
        order = self.epoch_order(epoch)
        global_batch = self.batch_size * self.world_size
        for step in range(first, self.steps_per_epoch):
            start = step * global_batch + self.rank * self.batch_size
            for i in order[start : start + self.batch_size].tolist():
                yield epoch * self.dataset_len + i

    def __len__(self) -> int:
        return self.steps_per_epoch * self.batch_size


class TaskBalancedSampler(Sampler[int]):
    """Sample indices of a ``TrainMixture`` with every task equally often, for the degradation recogniser.

    The mixture's repeat factors make some tasks far more frequent (Rain100L 120 times per epoch,
    RESIDE once): a classifier trained on it would learn that prior instead of the degradations.
    Position j of step s takes task ``(s * batch_size + j) % T`` (T tasks) and a uniform sample of
    that task's index range in a random epoch, so crops, flips and noise are fresh at every draw
    (``k + e * len(dataset)`` is the same image with new randomness, see ``data/mixture.py``). The
    order depends only on (seed, step).
    """

    def __init__(self, dataset: TrainMixture, batch_size: int, steps: int, seed: int):
        self.ranges = [(start, stop) for _, start, stop in dataset.task_ranges()]
        self.dataset_len = len(dataset)
        self.batch_size = batch_size
        self.steps = steps
        self.seed = seed

    def __iter__(self) -> Iterator[int]:
        for step in range(self.steps):
            rng = np.random.default_rng([self.seed, step])
            for j in range(self.batch_size):
                start, stop = self.ranges[(step * self.batch_size + j) % len(self.ranges)]
                epoch = int(rng.integers(2**20))
                yield epoch * self.dataset_len + int(rng.integers(start, stop))

    def __len__(self) -> int:
        return self.steps * self.batch_size


class ResumableLoader(DataLoader):
    """A DataLoader that tells Lightning it resumes mid-epoch correctly.

    Its sampler (``StepSampler``) restarts from the trainer's global step, so there is no
    loader state to save; these methods exist so Lightning treats the loader as resumable.
    """

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state_dict: dict) -> None:
        pass


class ShardSampler(Sampler[int]):
    """Indices rank, rank + W, ... of a dataset: every item on exactly one process, no padding."""

    def __init__(self, dataset_len: int, rank: int = 0, world_size: int = 1):
        self.indices = list(range(rank, dataset_len, world_size))

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)


def _collate_test(items: list[dict]) -> dict:
    """Batch of one whole image: tensors stacked, strings kept as lists."""
    return {k: torch.utils.data.default_collate([it[k] for it in items]) if k in ("degraded", "clean", "de_id")
            else [it[k] for it in items] for k in items[0]}


def eval_loaders(tasks: list[str], paths: DatasetPaths, num_workers: int, rank: int = 0,
                 world_size: int = 1, legacy_noise: str | None = None) -> list[DataLoader]:
    """One DataLoader per test task: batch 1, whole images, sharded without padding.

    ``legacy_noise``: '3D' / '5D' to draw denoising inputs as the authors' test scripts do (``EvalSet``).
    """
    loaders = []
    for task in tasks:
        dataset = EvalSet(task, paths, legacy_noise)
        loaders.append(DataLoader(
            dataset, batch_size=1, sampler=ShardSampler(len(dataset), rank, world_size),
            num_workers=min(num_workers, max(len(dataset), 1)), collate_fn=_collate_test,
        ))
    return loaders


class DFPIRDataModule(L.LightningDataModule):
    """Training mixture (``TrainMixture``; ``repeats``: its repeat factors, None: the setting's) and
    validation test sets (``EvalSet``) of one setting."""

    def __init__(self, paths: DatasetPaths, setting: str, train_tasks: list[str], val_tasks: list[str],
                 batch_size: int = 5, patch_size: int = default_of(PatchSizeOption, "patch_size"),
                 num_workers: int = 4, seed: int = 0, preload_bytes: int = 0, repeats: Mapping[str, int] | None = None):
        super().__init__()
        self.repeats = repeats
        self.paths = paths
        self.setting = setting
        self.train_tasks = train_tasks
        self.val_tasks = val_tasks
        self.batch_size = batch_size
        self.patch_size = patch_size
        self.num_workers = num_workers
        self.seed = seed
        self.preload_bytes = preload_bytes
        self.train_set: TrainMixture | None = None

    def setup(self, stage: str) -> None:
        if stage == "fit" and self.train_set is None:
            self.train_set = TrainMixture(
                self.train_tasks, self.setting, self.paths, self.patch_size, self.seed,
                preload=self.preload_bytes > 0, preload_bytes=self.preload_bytes, repeats=self.repeats,
            )

    def _rank_world(self) -> tuple[int, int]:
        trainer = self.trainer
        return (trainer.global_rank, trainer.world_size) if trainer is not None else (0, 1)

    def train_dataloader(self) -> DataLoader:
        rank, world = self._rank_world()
        start_step = self.trainer.global_step if self.trainer is not None else 0
        sampler = StepSampler(len(self.train_set), self.batch_size, self.seed, start_step, rank, world)
        return ResumableLoader(
            self.train_set, batch_size=self.batch_size, sampler=sampler, drop_last=True,
            num_workers=self.num_workers, pin_memory=torch.cuda.is_available(),
            persistent_workers=self.num_workers > 0,
        )

    def val_dataloader(self) -> list[DataLoader]:
        rank, world = self._rank_world()
        return eval_loaders(self.val_tasks, self.paths, self.num_workers, rank, world)
