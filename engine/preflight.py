"""What is checked before a run starts its heavy work (docs/reliability.md).

Every script first validates its flags and the files it was given, in one pass that collects every
problem, and stops with exit status 2 and one line per problem (each naming the flag or file and
saying what to do) before it decodes a dataset, builds a network or writes anything:

- numeric flags in range (``--batch_size`` >= 1, ``--patch_size`` a positive multiple of the
  network's size multiple, ``--num_workers`` >= 0, ``--tile`` a multiple of it larger than
  ``--tile_overlap``, ``--seed`` in [0, 2**32) ...), ``--device cuda`` only where PyTorch sees a GPU and
  ``--num_nodes`` > 1 only in a cluster environment (:func:`cluster_problems`);
- checkpoints (``--ckpt``, ``--init_from``, ``--resume``) readable as a DFPIR checkpoint, and a
  ``--resume`` file holding a training state, and weights that fit the network (:func:`weights_fit`);
- prompt-table files (``--prompt_embeddings``): finite floating-point vectors of the network's width;
- output locations (``--output_path``, ``--output_dir``, ``--ckpt_dir``) creatable and writable,
  never an existing file, never a place whose files would be replaced by the run.

The datasets are checked next (``data/check.py``), also before any heavy work.
"""

from __future__ import annotations

import argparse
import math
import os
from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TypeVar

import torch

from data.layouts import DataError, format_problems
from net.checkpoint import Checkpoint, CheckpointError, check_state_dict, read_checkpoint
from net.prompts import PromptError
from net.registry import NetworkError, NetworkSpec
from utils.image_io import ImageReadError
from utils.outputs import OutputError, check_output_dir
from utils.run_lock import LockError
from utils.tiling import tile_problems

T = TypeVar("T")
F = TypeVar("F", bound="CheckedFlags")


class UsageError(Exception):
    """A problem with the user's options or files; printed as 'error: ...' without a traceback (exit 2)."""


USER_ERRORS = (UsageError, DataError, CheckpointError, PromptError, NetworkError, ImageReadError, OutputError,
               LockError)
"""Exceptions that mean a user's mistake (exit status 2, one message), not a bug (a traceback)."""


class Preflight:
    """Collects the problems of a run's flags and files so that all of them are reported at once.

        checks = Preflight()
        checkpoint = checks.run(read_checkpoint, args.ckpt)   # None if it failed; the problem is kept
        checks.add(flag_problems(TrainFlags.of(args), network))
        checks.raise_if_any()                                 # UsageError listing every problem
    """

    def __init__(self) -> None:
        self.problems: list[str] = []

    def add(self, problems: list[str] | str | None) -> None:
        if problems:
            self.problems += [problems] if isinstance(problems, str) else problems

    def run(self, check: Callable[..., T], *args, **kwargs) -> T | None:
        """check(*args, **kwargs), or None with its message kept if it raised a user error."""
        try:
            return check(*args, **kwargs)
        except USER_ERRORS as err:
            self.add(str(err))
            return None

    def raise_if_any(self) -> None:
        if self.problems:
            raise UsageError(format_problems(self.problems, "cannot start; fix these first"))


def _bad(flag: str, value, rule: str) -> str:
    return f"--{flag} {value}: {rule}"


SEED_LIMIT = 2**32
"""``--seed`` must be below this: numpy and the data workers take seeds in [0, 2**32)."""


@dataclass(frozen=True)
class CheckedFlags:
    """The flags of one command that :func:`flag_problems` checks, with their values: a subclass per
    command (:class:`TrainFlags`, :class:`TestFlags`, :class:`DemoFlags`, :class:`RecognizerFlags`)
    names its flags as fields."""

    @classmethod
    def of(cls: type[F], args: argparse.Namespace) -> F:
        """The view of a parse of the command's parser; AttributeError if that parser lacks one of the
        fields' flags (a bug: never a silently skipped check)."""
        return cls(**{field.name: getattr(args, field.name) for field in fields(cls)})


@dataclass(frozen=True)
class DemoFlags(CheckedFlags):
    """demo.py's checked flags."""

    device: str
    tile: int | None  # None: whole image
    tile_overlap: int
    recognizer: str | None  # refused for a network without text prompts


@dataclass(frozen=True)
class TestFlags(DemoFlags):
    """test_<setting>_DFPIR.py's checked flags."""

    num_workers: int
    blind: bool  # refused for a network without text prompts


@dataclass(frozen=True)
class TrainFlags(CheckedFlags):
    """train_<setting>_DFPIR.py's checked flags (the recipe's options are None while the network is unknown)."""

    device: str
    num_workers: int
    batch_size: int | None
    patch_size: int
    epochs: int | None
    lr: float | None
    lr_schedule_epochs: int | None
    max_steps: int
    val_every: int | None  # None: the recipe's, else the setting's
    ckpt_every: int
    preload_gb: float
    devices: str
    num_nodes: int
    seed: int


@dataclass(frozen=True)
class RecognizerFlags(CheckedFlags):
    """train_recognizer.py's checked flags."""

    device: str
    num_workers: int
    batch_size: int
    patch_size: int
    max_steps: int
    lr: float
    seed: int
    preload_gb: float


COMMAND_FLAGS = (TrainFlags, TestFlags, DemoFlags, RecognizerFlags)
"""Every command's view: a check of a flag that none of them has is a bug (KeyError)."""


def flag_problems(flags: CheckedFlags, network: NetworkSpec | None = None, *, zero_lr: bool = True) -> list[str]:
    """Problems of the numeric and device flags of a command (``TrainFlags.of(args)`` ...).

    A check of a flag the command does not have (not a field of its view) does not apply to it; a
    value of None (``--tile`` unset, a recipe option of an unknown network) is not checked.
    ``network``: the run's network (``net.registry.resolve_network``), whose size multiple
    ``--patch_size`` and ``--tile`` must respect, and which refuses ``--blind`` / ``--recognizer``
    if it takes no text prompts (None: not known, not checked).
    ``zero_lr``: whether ``--lr 0`` is allowed (a DFPIR training: yes, it runs the data path without
    learning; the recogniser, whose cosine schedule needs a rate: no).
    """
    values = {field.name: getattr(flags, field.name) for field in fields(flags)}
    problems = []

    def value(flag: str):
        if not any(flag in cls.__dataclass_fields__ for cls in COMMAND_FLAGS):
            raise KeyError(f"--{flag} is checked but no command's flags (COMMAND_FLAGS) have it")
        return values.get(flag)

    def at_least(flag: str, low: float, rule: str | None = None) -> None:
        given = value(flag)
        if given is not None and not (math.isfinite(given) and given >= low):
            problems.append(_bad(flag, given, rule or f"must be at least {low}"))

    at_least("batch_size", 1, "must be at least 1 (images per optimizer step and process)")
    at_least("num_workers", 0, "must be 0 (load data in the main process) or more")
    at_least("epochs", 1)
    if zero_lr:
        at_least("lr", 0, "must be a finite learning rate >= 0")
    elif value("lr") is not None and not (math.isfinite(value("lr")) and value("lr") > 0):
        problems.append(_bad("lr", value("lr"), "must be a finite learning rate > 0"))
    at_least("lr_schedule_epochs", 1)
    at_least("val_every", 0, "must be 0 (no validation) or a number of steps")
    at_least("ckpt_every", 0, "must be 0 (only at epoch ends) or a number of steps")
    at_least("preload_gb", 0, "must be 0 (no preloading) or more")
    at_least("num_nodes", 1)
    seed = value("seed")
    if seed is not None and not 0 <= seed < SEED_LIMIT:
        problems.append(_bad("seed", seed, f"must be from 0 to {SEED_LIMIT - 1} (2**32 - 1)"))
    if value("num_nodes") is not None:
        problems += cluster_problems(value("num_nodes"))
    max_steps = value("max_steps")
    if max_steps is not None and max_steps != -1 and max_steps < 1:
        problems.append(_bad("max_steps", max_steps, "must be -1 (no limit) or at least 1"))
    multiple = network.size_multiple if network is not None else 1
    patch = value("patch_size")
    if patch is not None and (patch <= 0 or patch % multiple):
        problems.append(_bad("patch_size", patch, f"must be a positive multiple of {multiple} (the network's size "
                             "multiple), e.g. 128 as in the paper"))
    devices = value("devices")
    if devices is not None and devices != "auto" and not (devices.isdigit() and int(devices) >= 1):
        problems.append(_bad("devices", devices, "must be a number of devices per node (1, 2, ...) or 'auto'"))
    tile, overlap = value("tile"), value("tile_overlap")
    if tile is not None:
        problems += tile_problems(tile, overlap, multiple)
    elif overlap is not None and overlap < 0:
        problems.append(_bad("tile_overlap", overlap, "must be 0 or more"))
    if value("device") == "cuda" and not torch.cuda.is_available():
        problems.append("--device cuda: PyTorch sees no CUDA device here; use --device cpu (or auto), or check "
                        "the CUDA build of PyTorch (python -c 'import torch; print(torch.cuda.is_available())')")
    return problems


def batch_problem(batch_size: int, world_size: int | None, samples: int) -> str | None:
    """Why one epoch of ``samples`` training samples (``data.check.DataReport.train_samples``) cannot fill one
    global batch (``batch_size`` x ``world_size`` processes, None: not known yet, taken as 1), else None."""
    processes = world_size or 1
    if batch_size * processes <= samples:
        return None
    per = f" x {processes} processes" if processes > 1 else ""
    return (f"--batch_size {batch_size}{per}: larger than the training set ({samples} samples per epoch, after the "
            "repeat factors), so not one training step could run; lower --batch_size or add training data")


MANUAL_CLUSTER = ("MASTER_ADDR", "NODE_RANK")
"""What a multi-node run started by hand must set on every node (Lightning's LightningEnvironment)."""


def cluster_problems(num_nodes: int) -> list[str]:
    """Why ``--num_nodes`` > 1 cannot start here: no cluster environment that Lightning detects (its
    ``ClusterEnvironment.detect()``: SLURM's srun, torchelastic's torchrun, LSF's jsrun, MPI) and no
    hand-made one (MASTER_ADDR and NODE_RANK set): Lightning would wait forever for the other nodes."""
    if num_nodes <= 1:
        return []
    from lightning.fabric.plugins.environments import (
        LSFEnvironment,
        MPIEnvironment,
        SLURMEnvironment,
        TorchElasticEnvironment,
    )

    detected = (SLURMEnvironment, TorchElasticEnvironment, LSFEnvironment, MPIEnvironment)
    if any(environment.detect() for environment in detected) or all(v in os.environ for v in MANUAL_CLUSTER):
        return []
    unset = " and ".join(v for v in MANUAL_CLUSTER if v not in os.environ)
    return [_bad("num_nodes", num_nodes, f"no cluster environment here ({unset} not set, and not launched by srun "
                 "(SLURM_NTASKS), torchrun (TORCHELASTIC_RUN_ID), jsrun (LSF) or mpirun), so the run would wait "
                 "forever for the other nodes; launch it on every node with one of them, or set MASTER_ADDR, "
                 "MASTER_PORT and NODE_RANK there (docs/training.md), or train on one node with --num_nodes 1")]


def writable_dir(path: str | Path, flag: str) -> str | None:
    """The problem with ``path`` as the output folder of ``--flag`` (``utils.outputs.check_output_dir``:
    not a file, creatable and writable), else None. Creates nothing."""
    try:
        check_output_dir(path)
    except OutputError as err:
        return f"--{flag}: {err}"
    return None


def read_resume_checkpoint(path: Path) -> Checkpoint:
    """A ``--resume`` file: a Lightning checkpoint of this project holding its training state."""
    checkpoint = read_checkpoint(path)
    if checkpoint.resume_problem is not None:
        kind = {"authors": "an authors' weights file", "state_dict": "a bare state dict",
                "lightning": "a Lightning checkpoint", "hub": "a Hub model (weights only)"}[checkpoint.format]
        raise CheckpointError(f"--resume {path}: {kind} that cannot be resumed: {checkpoint.resume_problem}. To start "
                              f"a new run from its weights use --init_from {path} (and another --ckpt_dir)")
    return checkpoint


def weights_fit(network: NetworkSpec | None, checkpoint: Checkpoint | None) -> None:
    """CheckpointError listing what does not fit (``net.checkpoint.check_state_dict``) when ``checkpoint``'s
    weights do not fit ``network``, found before any data is read: the network is built on the meta device
    (shapes only: no memory, no time). Nothing to check when either is unknown (None)."""
    if network is None or checkpoint is None:
        return
    with torch.device("meta"):
        model = network.build()
    check_state_dict(model, checkpoint.state_dict, f"checkpoint {checkpoint.path}")


def same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False
