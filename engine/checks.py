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
import contextlib
import math
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import torch

from data.layouts import DataError, format_problems
from net.checkpoint import Checkpoint, CheckpointError, check_state_dict, read_checkpoint
from net.prompts import PromptError
from net.registry import NetworkError, NetworkSpec
from utils.image_io import ImageReadError
from utils.tiling import tile_problems

T = TypeVar("T")


class UsageError(Exception):
    """A problem with the user's options or files; printed as 'error: ...' without a traceback (exit 2)."""


USER_ERRORS = (UsageError, DataError, CheckpointError, PromptError, NetworkError, ImageReadError)
"""Exceptions that mean a user's mistake (exit status 2, one message), not a bug (a traceback)."""


class Preflight:
    """Collects the problems of a run's flags and files so that all of them are reported at once.

        checks = Preflight()
        checkpoint = checks.run(read_checkpoint, args.ckpt)   # None if it failed; the problem is kept
        checks.add(flag_problems(args))
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


def flag_problems(args: argparse.Namespace, network: NetworkSpec | None = None, *, zero_lr: bool = True) -> list[str]:
    """Problems of the numeric and device flags present in ``args`` (train, test, demo and recogniser parsers).

    ``network``: the run's network (``net.registry.resolve_network``), whose size multiple
    ``--patch_size`` and ``--tile`` must respect (None: not known, not checked).
    ``zero_lr``: whether ``--lr 0`` is allowed (a DFPIR training: yes, it runs the data path without
    learning; the recogniser, whose cosine schedule needs a rate: no).
    """
    problems = []

    def at_least(flag: str, low: float, rule: str | None = None) -> None:
        value = getattr(args, flag, None)
        if value is not None and not (math.isfinite(value) and value >= low):
            problems.append(_bad(flag, value, rule or f"must be at least {low}"))

    at_least("batch_size", 1, "must be at least 1 (images per optimizer step and process)")
    at_least("num_workers", 0, "must be 0 (load data in the main process) or more")
    at_least("epochs", 1)
    if zero_lr:
        at_least("lr", 0, "must be a finite learning rate >= 0")
    elif getattr(args, "lr", None) is not None and not (math.isfinite(args.lr) and args.lr > 0):
        problems.append(_bad("lr", args.lr, "must be a finite learning rate > 0"))
    at_least("lr_schedule_epochs", 1)
    at_least("val_every", 0, "must be 0 (no validation) or a number of steps")
    at_least("ckpt_every", 0, "must be 0 (only at epoch ends) or a number of steps")
    at_least("preload_gb", 0, "must be 0 (no preloading) or more")
    at_least("num_nodes", 1)
    seed = getattr(args, "seed", None)
    if seed is not None and not 0 <= seed < SEED_LIMIT:
        problems.append(_bad("seed", seed, f"must be from 0 to {SEED_LIMIT - 1} (2**32 - 1)"))
    problems += cluster_problems(getattr(args, "num_nodes", 1))
    max_steps = getattr(args, "max_steps", None)
    if max_steps is not None and max_steps != -1 and max_steps < 1:
        problems.append(_bad("max_steps", max_steps, "must be -1 (no limit) or at least 1"))
    multiple = network.size_multiple if network is not None else 1
    patch = getattr(args, "patch_size", None)
    if patch is not None and (patch <= 0 or patch % multiple):
        problems.append(_bad("patch_size", patch, f"must be a positive multiple of {multiple} (the network's size "
                             "multiple), e.g. 128 as in the paper"))
    devices = getattr(args, "devices", None)
    if devices is not None and devices != "auto" and not (devices.isdigit() and int(devices) >= 1):
        problems.append(_bad("devices", devices, "must be a number of devices per node (1, 2, ...) or 'auto'"))
    if getattr(args, "tile", None) is not None:
        problems += tile_problems(args.tile, args.tile_overlap, multiple)
    elif getattr(args, "tile_overlap", 0) < 0:
        problems.append(_bad("tile_overlap", args.tile_overlap, "must be 0 or more"))
    if getattr(args, "device", None) == "cuda" and not torch.cuda.is_available():
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
    """The problem with ``path`` as an output folder, else None. Leaves nothing behind: folders it had
    to create to try are removed again."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        return f"--{flag} {path} is an existing file, not a folder; choose a folder"
    created = []
    try:
        for folder in reversed([path, *path.parents]):
            if not folder.exists():
                folder.mkdir()
                created.append(folder)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as err:
        return f"--{flag} {path} cannot be written ({err.strerror or err}); choose a folder you can write to"
    finally:
        for folder in reversed(created):
            with contextlib.suppress(OSError):  # another process (a DDP rank) may have filled it meanwhile
                folder.rmdir()
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
