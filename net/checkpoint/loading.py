"""Reading a checkpoint of any format (a file, a Hub folder or a repo id) and loading it strictly."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from net.checkpoint.hub_folder import is_hub_reference, read_hub_checkpoint
from net.checkpoint.record import Checkpoint, CheckpointError
from net.checkpoint.torch_file import read_torch_file

_MAX_LISTED = 10


def read_checkpoint(path: str | Path) -> Checkpoint:
    """Read a checkpoint of any supported format (``net/checkpoint/__init__.py``): a file, a Hub folder
    or a repo id; CheckpointError if it is not one."""
    if is_hub_reference(path):
        return read_hub_checkpoint(path)
    return read_torch_file(path)


def _listing(title: str, items: list[str]) -> str:
    shown = ", ".join(items[:_MAX_LISTED])
    more = f" (+{len(items) - _MAX_LISTED} more)" if len(items) > _MAX_LISTED else ""
    return f"  {title} ({len(items)}): {shown}{more}"


_STRICT_HINT = "Is it a DFPIR checkpoint of the same configuration (e.g. --model paper vs tiny)?"


def check_state_dict(model: nn.Module, state_dict: dict[str, torch.Tensor], source: str,
                     hint: str = _STRICT_HINT) -> None:
    """Raise CheckpointError listing missing keys, unexpected keys and shape mismatches, then ``hint``."""
    expected = model.state_dict()
    missing = [k for k in expected if k not in state_dict]
    unexpected = [k for k in state_dict if k not in expected]
    mismatched = [
        f"{k} {tuple(state_dict[k].shape)} vs model {tuple(v.shape)}"
        for k, v in expected.items()
        if k in state_dict and state_dict[k].shape != v.shape
    ]
    if missing or unexpected or mismatched:
        lines = [f"{source} does not match the network (strict loading; nothing was loaded):"]
        listed = (("missing keys", missing), ("unexpected keys", unexpected), ("shape mismatches", mismatched))
        for title, items in listed:
            if items:
                lines.append(_listing(title, items))
        lines.append(f"  {hint}")
        raise CheckpointError("\n".join(lines))


def load_pretrained(model: nn.Module, checkpoint: str | Path | Checkpoint) -> Checkpoint:
    """Strictly load a checkpoint (a path in any supported format, or a read Checkpoint) into model.

    Returns the Checkpoint (its prompt table and config, when it has them).
    """
    ckpt = checkpoint if isinstance(checkpoint, Checkpoint) else read_checkpoint(checkpoint)
    check_state_dict(model, ckpt.state_dict, f"checkpoint {ckpt.path}")
    model.load_state_dict(ckpt.state_dict, strict=True)
    return ckpt
