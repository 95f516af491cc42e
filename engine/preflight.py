"""What is checked before a run starts its heavy work (docs/reliability.md).

Every script first validates its flags and the files it was given, in one pass that collects every
problem, and stops with exit status 2 and one line per problem (each naming the flag or file and
saying what to do) before it decodes a dataset, builds a network or writes anything:

- every option's value, from a flag or a ``--config`` file, within its choices and rule (declared
  with the option, ``utils/config.py``: ``--batch_size`` >= 1, ``--num_workers`` >= 0, ``--seed`` in
  [0, 2**32) ...; :func:`config_problems`), and what the network asks of them (``--patch_size`` and
  ``--tile`` multiples of its size multiple ...; :func:`network_problems`); ``--device cuda`` only
  where PyTorch sees a GPU (``utils.devices.device_problem``) and ``--num_nodes`` > 1 only in a
  cluster environment (:func:`cluster_problems`);
- checkpoints (``--ckpt``, ``--init_from``, ``--resume``) readable as a DFPIR checkpoint, and a
  ``--resume`` file holding a training state, and weights that fit the network (:func:`weights_fit`);
- prompt-table files (``--prompt_embeddings``): finite floating-point vectors of the network's width;
- output locations (``--output_path``, ``--output_dir``, ``--ckpt_dir``) creatable and writable,
  never an existing file, never a place whose files would be replaced by the run.

The datasets are checked next (``data/check.py``), also before any heavy work.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TypeVar

import torch

from data.layouts import DataError, format_problems
from net.checkpoint import Checkpoint, CheckpointError, check_state_dict, read_checkpoint
from net.prompts import PromptError
from net.registry import NetworkError, NetworkSpec
from utils.config import (
    CONFIG_NAME,
    Config,
    ConfigError,
    Given,
    file_mismatches,
    problems,
    read_command_line,
    to_yaml,
)
from utils.devices import DeviceError
from utils.image_io import ImageReadError
from utils.outputs import OutputError, atomic_write, check_output_dir
from utils.run_lock import LockError
from utils.tiling import tile_problems

T = TypeVar("T")
C = TypeVar("C", bound=Config)


class UsageError(Exception):
    """A problem with the user's options or files; printed as 'error: ...' without a traceback (exit 2)."""


USER_ERRORS = (UsageError, DataError, CheckpointError, PromptError, NetworkError, ImageReadError, OutputError,
               LockError, ConfigError, DeviceError)
"""Exceptions that mean a user's mistake (exit status 2, one message), not a bug (a traceback)."""


class Preflight:
    """Collects the problems of a run's flags and files so that all of them are reported at once.

        checks = Preflight()
        checkpoint = checks.run(read_checkpoint, config.ckpt)   # None if it failed; the problem is kept
        checks.add(network_problems(config, network))
        checks.raise_if_any()                                   # UsageError listing every problem
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


def read_config(cls: type[C], parser: argparse.ArgumentParser, argv: list[str] | None, context: Mapping,
                checks: Preflight) -> Given:
    """The command line of a command and its ``--config`` file (``utils.config.read_command_line``); the
    file's problems (unknown keys, wrong types) join ``checks``."""
    given = read_command_line(parser, cls, argv, context)
    checks.add(given.problems)
    return given


def config_problems(config: Config, given: Given) -> list[str]:
    """Every value of a resolved configuration outside its choices or rule (the fields' own declarations,
    ``utils/config.py``), and a config file stating another setting than the script's."""
    return file_mismatches(config, given) + problems(config, given.file_path)


def network_problems(config: Config, network: NetworkSpec | None) -> list[str]:
    """What a configuration's values must respect of the run's network (None: not known, not checked,
    taken as size multiple 1): ``--patch_size`` and ``--tile`` multiples of its size multiple, and
    ``--blind`` / ``--recognizer`` only for a network with text prompts."""
    multiple = network.size_multiple if network is not None else 1
    found = []
    patch = getattr(config, "patch_size", None)
    if patch is not None and (patch <= 0 or patch % multiple):
        found.append(_bad("patch_size", patch, f"must be a positive multiple of {multiple} (the network's size "
                          "multiple), e.g. 128 as in the paper"))
    tile = getattr(config, "tile", None)
    if tile is not None:  # a negative --tile_overlap is its own field's problem
        found += [p for p in tile_problems(tile, max(config.tile_overlap, 0), multiple)]
    return found


def print_config_and_exit(config: Config, given: Given, checks: Preflight, title: str) -> bool:
    """``--print_config``: the configuration's problems (exit 2), else its YAML on stdout; True if printed."""
    if not given.print_config:
        return False
    checks.raise_if_any()
    print(to_yaml(config, f"{title}\nresolved configuration; each value's source after it"), end="")
    return True


def write_run_config(folder: Path, config: Config, title: str) -> Path:
    """The run's resolved configuration as ``<folder>/config.yaml`` (atomic), rerun with ``--config``."""
    return atomic_write(Path(folder) / CONFIG_NAME,
                        to_yaml(config, f"{title}\nrerun with: --config {Path(folder) / CONFIG_NAME}"))


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
