"""The checkpoint formats written with ``torch.save``: the authors' ``.pth.tar``, this project's
Lightning ``.ckpt`` and a bare state dict (see ``net/checkpoint/__init__.py``), read with
``torch.load(weights_only=True)`` into a :class:`Checkpoint`."""

from __future__ import annotations

import zipfile
from pathlib import Path

import torch

from net.checkpoint.record import (
    EXTRA_KEY,
    LIGHTNING_PREFIX,
    RUN_KEY,
    UNNAMED_ARCHITECTURE,
    Checkpoint,
    CheckpointError,
    check_finite,
    metadata_field,
)
from net.prompts import PromptError, PromptTable
from utils.safe_load import text_kind, unsafe_message

ZIP_HEADER = b"PK\x03\x04"
"""How a zip archive (torch.save's format) starts; one that is cut short keeps it but loses its end."""

_TRAINING_STATE = ("global_step", "epoch", "loops", "optimizer_states", "lr_schedulers")


def _resume_problem(obj: dict) -> str | None:
    """Why a Lightning checkpoint cannot be resumed by the installed Lightning, or None."""
    # Imported when a Lightning file is read: importing the networks never loads Lightning.
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
    is_zip = zipfile.is_zipfile(path)
    if (head.startswith(ZIP_HEADER) and not is_zip) or (head.startswith(b"\x80") and _pickle_ended_early(err)):
        kind = ("a zip archive written by torch.save without its end (the central directory)"
                if head.startswith(ZIP_HEADER) else "a pickle that ends early")
        return (f"checkpoint {path} ({size:,} bytes) is truncated (an incomplete download or copy), not a PyTorch "
                f"checkpoint that can be read: {kind}; fetch or copy it again")
    if not is_zip and not head.startswith(b"\x80"):  # neither torch.save's zip nor a pickle
        what = text_kind(head) or "neither a zip archive written by torch.save nor a pickle"
        return f"checkpoint {path} is not a PyTorch checkpoint: {what}"
    unsafe = unsafe_message(f"checkpoint {path}", err)
    if unsafe is not None:
        return unsafe
    return (f"checkpoint {path} ({size:,} bytes) is not a PyTorch checkpoint that can be read: truncated or damaged "
            f"({type(err).__name__}); fetch or copy it again")


def _pickle_ended_early(err: Exception) -> bool:
    """Whether torch.load's error says the file ended early (a pickle before its STOP opcode, or the tensor data
    of the legacy format after it)."""
    return isinstance(err, EOFError) or any(
        words in str(err).lower() for words in ("truncated", "ran out of input", "unexpected end", "unexpected eof"))


def _lightning_checkpoint(path: Path, obj: dict, net_state: dict[str, torch.Tensor]) -> Checkpoint:
    """The Checkpoint of a Lightning file (this project's, or another tool's without the ``dfpir`` extra),
    its metadata checked field by field."""
    extra = metadata_field(path, "the", obj, EXTRA_KEY, dict) or {}
    run = metadata_field(path, "the", obj, RUN_KEY, dict)
    where = f"the {EXTRA_KEY!r}"
    setting = metadata_field(path, where, extra, "setting", str)
    if run is not None:
        metadata_field(path, f"the {RUN_KEY!r}", run, "de_type", list)
    table = metadata_field(path, where, extra, "prompt_table", dict)
    try:
        prompt_table = PromptTable.from_dict(table) if table else None
    except (PromptError, KeyError, TypeError, AttributeError, ValueError) as err:
        raise CheckpointError(f"{path}: its stored prompt table is unusable ({err})") from err
    model_config = metadata_field(path, where, extra, "model_config", dict)
    return Checkpoint(
        path=path,
        state_dict=net_state,
        format="lightning",
        # Another tool's Lightning file (PromptIR's released model.ckpt) names no network: None.
        architecture=metadata_field(path, where, extra, "architecture", str) or (
            UNNAMED_ARCHITECTURE if model_config is not None else None),
        model_config=model_config,
        prompt_table=prompt_table,
        prompt_set=metadata_field(path, where, extra, "prompt_set", str),
        epoch=metadata_field(path, "the", obj, "epoch", int),
        run_config=run or ({"setting": setting} if setting else None),
        resume_problem=_resume_problem(obj),
    )


def read_torch_file(path: str | Path) -> Checkpoint:
    """Read a ``torch.save`` checkpoint file of any of the three formats; CheckpointError if it is not one."""
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
        check_finite(path, net_state)
        return _lightning_checkpoint(path, obj, net_state)
    if isinstance(obj, dict) and "state_dict" in obj:
        if not _is_tensor_dict(obj["state_dict"]):
            raise CheckpointError(f"{path}: 'state_dict' is not a dict of tensors")
        epoch = obj.get("epoch")
        check_finite(path, obj["state_dict"])
        return Checkpoint(path, _strip_prefix(obj["state_dict"], "module."), "authors",
                          epoch=int(epoch) if isinstance(epoch, int) else None)
    if _is_tensor_dict(obj):
        check_finite(path, obj)
        return Checkpoint(path, _strip_prefix(obj, "module."), "state_dict")
    kind = type(obj).__name__
    keys = f" with keys {list(obj)[:8]}" if isinstance(obj, dict) else ""
    raise CheckpointError(
        f"{path} is not a DFPIR checkpoint: it holds a {kind}{keys}; expected the authors' .pth.tar "
        "(a dict with 'state_dict'), a Lightning .ckpt of this project, or a bare state dict"
    )
