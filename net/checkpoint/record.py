"""What a checkpoint holds, normalised across formats, and the error for a file that is not one."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from net.prompts import PromptTable

LIGHTNING_PREFIX = "net."  # the LightningModule keeps the network in ``self.net``
EXTRA_KEY = "dfpir"  # what this project adds to a Lightning checkpoint
RUN_KEY = "dfpir_run"  # the training run's configuration (engine/train.py), compared when resuming
UNNAMED_ARCHITECTURE = "dfpir"  # the network of this project's files written before the registry named it


class CheckpointError(ValueError):
    """A file is not a usable DFPIR checkpoint; the message names the file and the problem."""


@dataclass
class Checkpoint:
    """What a checkpoint file holds, normalised.

    state_dict:   the network's tensors under the authors' bare key names.
    format:       'authors', 'lightning', 'state_dict' or 'hub'.
    architecture: the registered architecture (``net/registry.py``) of the weights as the file records
                  it (this project's files before the registry: DFPIR), else None: the file
                  names no network (the authors' files, PromptIR's released model.ckpt, a bare
                  state dict) and ``net.registry.resolve_network`` recognises it by its key layout.
    model_config: the network's configuration (this project's checkpoints), else None.
    prompt_table: the prompt table the network was trained with (this project's checkpoints), else None.
    epoch:        the epoch recorded in the file, if any.
    run_config:   the training run's options that a resumed run must keep (this project's checkpoints).
    resume_problem: why ``--resume`` cannot continue from this file (None: it can).
    """

    path: Path
    state_dict: dict[str, torch.Tensor]
    format: str
    architecture: str | None = None
    model_config: dict | None = None
    prompt_table: PromptTable | None = None
    prompt_set: str | None = None
    epoch: int | None = None
    run_config: dict | None = None
    resume_problem: str | None = "it holds weights only, no training state (optimizer, schedule, step)"
