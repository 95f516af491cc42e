"""Reading every checkpoint format a DFPIR user meets, and loading it strictly.

Formats (all read with ``torch.load(..., weights_only=True)``: no code in a file is ever run):

- ``authors``: the released ``.pth.tar`` files, a dict with ``state_dict`` (bare network keys),
  ``optimizer``, ``scheduler`` and ``epoch``;
- ``lightning``: this project's ``.ckpt`` files; the network's keys carry the LightningModule's
  ``net.`` prefix, and ``checkpoint["dfpir"]`` holds the network's architecture name and
  configuration (``net/registry.py``; files written before the registry hold no name: DFPIR) and
  the prompt table it was trained with (so evaluating it needs neither CLIP nor a prompt file);
- ``state_dict``: a bare state dict (a ``module.`` prefix left by DataParallel/DDP is removed);
- ``hub``: a Hugging Face Hub folder or repo id (safetensors weights, config and prompt table;
  read by ``net/hub.py``).

Loading is strict: a missing or unexpected key or a shape mismatch is an error that lists them.
(The authors' loader silently skips mismatched keys and evaluates a half-random network.)
"""

from __future__ import annotations

import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from net.prompts import PromptError, PromptTable

LIGHTNING_PREFIX = "net."  # the LightningModule keeps the network in ``self.net``
EXTRA_KEY = "dfpir"  # what this project adds to a Lightning checkpoint
RUN_KEY = "dfpir_run"  # the training run's configuration (engine/train.py), compared when resuming
_TRAINING_STATE = ("global_step", "epoch", "loops", "optimizer_states", "lr_schedulers")
UNNAMED_ARCHITECTURE = "dfpir"  # the network of files that do not name theirs (authors', before the registry)
_MAX_LISTED = 10


class CheckpointError(ValueError):
    """A file is not a usable DFPIR checkpoint; the message names the file and the problem."""


@dataclass
class Checkpoint:
    """What a checkpoint file holds, normalised.

    state_dict:   the network's tensors under the authors' bare key names.
    format:       'authors', 'lightning', 'state_dict' or 'hub'.
    architecture: the registered architecture (``net/registry.py``) of the weights; files that do not
                  record one (the authors', this project's before the registry, Hub folders) hold DFPIR.
    model_config: the network's configuration (this project's checkpoints), else None.
    prompt_table: the prompt table the network was trained with (this project's checkpoints), else None.
    epoch:        the epoch recorded in the file, if any.
    run_config:   the training run's options that a resumed run must keep (this project's checkpoints).
    resume_problem: why ``--resume`` cannot continue from this file (None: it can).
    """

    path: Path
    state_dict: dict[str, torch.Tensor]
    format: str
    architecture: str = UNNAMED_ARCHITECTURE
    model_config: dict | None = None
    prompt_table: PromptTable | None = None
    prompt_set: str | None = None
    epoch: int | None = None
    run_config: dict | None = None
    resume_problem: str | None = "it holds weights only, no training state (optimizer, schedule, step)"


def _resume_problem(obj: dict) -> str | None:
    """Why a Lightning checkpoint cannot be resumed by the installed Lightning, or None."""
    from lightning import __version__ as installed
    from packaging.version import InvalidVersion, Version

    written = obj.get("pytorch-lightning_version")
    try:
        if Version(str(written)) > Version(installed):
            return f"it was written by Lightning {written}, newer than the installed {installed}; upgrade lightning"
    except InvalidVersion:
        return f"its Lightning version {written!r} is not a version number: the file was not written by Lightning"
    missing = [k for k in _TRAINING_STATE if k not in obj]
    if missing:
        return (f"it lacks the training state {missing} (written by Lightning {written} with weights only, or by "
                "another tool)")
    return None


def _is_tensor_dict(obj) -> bool:
    return isinstance(obj, dict) and len(obj) > 0 and all(
        isinstance(k, str) and torch.is_tensor(v) for k, v in obj.items()
    )


def _strip_prefix(state_dict: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    if state_dict and all(k.startswith(prefix) for k in state_dict):
        return {k[len(prefix):]: v for k, v in state_dict.items()}
    return state_dict


def _unreadable(path: Path, err: Exception) -> str:
    """Why torch.load could not read ``path``, in words (never advice to load unsafely)."""
    size = path.stat().st_size
    if size == 0:
        return f"checkpoint {path} is empty (0 bytes): the download or copy did not finish; fetch it again"
    with open(path, "rb") as f:
        head = f.read(64)
    if not zipfile.is_zipfile(path) and not head.startswith(b"\x80"):  # neither torch.save's zip nor a pickle
        text = head.lstrip().lower()
        if text.startswith((b"<!doctype html", b"<html", b"<?xml")):
            what = (f"an HTML page (it starts with {head[:24]!r}): a web page was saved instead of the file; "
                    "download the file itself")
        elif all(32 <= b < 127 or b in b"\t\r\n" for b in head):
            what = f"a text file (it starts with {head[:24]!r})"
        else:
            what = "neither a zip archive written by torch.save nor a pickle"
        return f"checkpoint {path} is not a PyTorch checkpoint: {what}"
    unsafe = re.search(r"Unsupported global: GLOBAL (\S+)", str(err))
    if unsafe:
        return (f"checkpoint {path} holds Python objects besides tensors ({unsafe.group(1)}); files are read with "
                "torch.load(weights_only=True), which never runs code from a file. Re-save only its tensors "
                "(torch.save(model.state_dict(), FILE))")
    return (f"checkpoint {path} ({size:,} bytes) is not a PyTorch checkpoint that can be read: truncated or damaged "
            f"({type(err).__name__}); fetch or copy it again")


def read_checkpoint(path: str | Path) -> Checkpoint:
    """Read a checkpoint of any supported format (see module docstring): a file, a Hub folder or a repo id;
    CheckpointError if it is not one."""
    from net.hub import is_hub_reference, read_hub_checkpoint  # net.hub builds on this module

    if is_hub_reference(path):
        return read_hub_checkpoint(path)
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist" if not path.exists() else
                              f"checkpoint {path} is not a file")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch.load fails in many ways on a file that is not a checkpoint
        raise CheckpointError(_unreadable(path, err)) from err

    if isinstance(obj, dict) and "pytorch-lightning_version" in obj:
        state = obj.get("state_dict")
        net_state = {k[len(LIGHTNING_PREFIX):]: v for k, v in state.items()
                     if isinstance(k, str) and k.startswith(LIGHTNING_PREFIX)} if isinstance(state, dict) else {}
        if not _is_tensor_dict(net_state):
            raise CheckpointError(f"{path} is a Lightning checkpoint without DFPIR weights (no '{LIGHTNING_PREFIX}*' "
                                  "tensors); is it a checkpoint of another project?")
        extra = obj.get(EXTRA_KEY) or {}
        table = extra.get("prompt_table")
        try:
            prompt_table = PromptTable.from_dict(table) if table else None
        except (PromptError, KeyError, TypeError, AttributeError) as err:
            raise CheckpointError(f"{path}: its stored prompt table is unusable ({err})") from err
        return Checkpoint(
            path=path,
            state_dict=net_state,
            format="lightning",
            architecture=extra.get("architecture", UNNAMED_ARCHITECTURE),
            model_config=extra.get("model_config"),
            prompt_table=prompt_table,
            prompt_set=extra.get("prompt_set"),
            epoch=obj.get("epoch"),
            run_config=obj.get(RUN_KEY) or ({"setting": extra["setting"]} if extra.get("setting") else None),
            resume_problem=_resume_problem(obj),
        )
    if isinstance(obj, dict) and "state_dict" in obj:
        if not _is_tensor_dict(obj["state_dict"]):
            raise CheckpointError(f"{path}: 'state_dict' is not a dict of tensors")
        epoch = obj.get("epoch")
        return Checkpoint(path, _strip_prefix(obj["state_dict"], "module."), "authors",
                          epoch=int(epoch) if isinstance(epoch, int) else None)
    if _is_tensor_dict(obj):
        return Checkpoint(path, _strip_prefix(obj, "module."), "state_dict")
    kind = type(obj).__name__
    keys = f" with keys {list(obj)[:8]}" if isinstance(obj, dict) else ""
    raise CheckpointError(
        f"{path} is not a DFPIR checkpoint: it holds a {kind}{keys}; expected the authors' .pth.tar "
        "(a dict with 'state_dict'), a Lightning .ckpt of this project, or a bare state dict"
    )


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
