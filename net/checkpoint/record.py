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

    @property
    def trained_tasks(self) -> list[str] | None:
        """The tasks the network was trained on (the run's ``de_type``), None where the file does not record them
        (the authors' files, bare state dicts, Hub folders, other tools' checkpoints)."""
        tasks = (self.run_config or {}).get("de_type")
        return list(tasks) if isinstance(tasks, list) else None

    def untrained(self, tasks: list[str]) -> list[str]:
        """Those of ``tasks`` the file records it was not trained on ([] where it records no tasks)."""
        trained = self.trained_tasks
        return [] if trained is None else [task for task in tasks if task not in trained]


_MAX_NAMED = 5
_KIND_NAMES = {dict: "a dict", str: "a string", int: "an integer", list: "a list"}


def metadata_field(path: Path, where: str, record: dict, key: str, kind: type, *, required: bool = False):
    """``record[key]`` if it is a ``kind`` (None if absent and not ``required``); CheckpointError naming the
    file, the field and what it holds otherwise. ``where``: the record's name in the message, e.g. "'dfpir'"."""
    value = record.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        held = "missing" if key not in record else f"{type(value).__name__} {value!r:.40}"
        raise CheckpointError(f"checkpoint {path} has malformed metadata: {where} field {key!r} is {held}, expected "
                              f"{_KIND_NAMES[kind]}; the file was edited or written by another tool: re-save it "
                              "from its training run")
    return value


def check_finite(path: Path, state_dict: dict[str, torch.Tensor]) -> None:
    """CheckpointError naming the first few tensors that hold NaN or Inf (such weights restore black images)."""
    bad = [key for key, tensor in state_dict.items()
           if tensor.is_floating_point() or tensor.is_complex()
           if not bool(torch.isfinite(tensor).all())]
    if bad:
        more = f" (+{len(bad) - _MAX_NAMED} more)" if len(bad) > _MAX_NAMED else ""
        raise CheckpointError(f"checkpoint {path} holds non-finite weights (NaN or Inf) in {len(bad)} tensor(s): "
                              f"{', '.join(bad[:_MAX_NAMED])}{more}; the training diverged or the file is damaged: "
                              "use an earlier checkpoint")
