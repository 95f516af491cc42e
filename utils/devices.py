"""``--device auto|cpu|cuda``: its one interpretation, for training, evaluation, the demo, the web app,
the recogniser and the prompt table alike."""

from __future__ import annotations

import torch


class DeviceError(ValueError):
    """``--device cuda`` where PyTorch sees no CUDA device (a user's mistake: exit status 2)."""


def device_problem(name: str) -> str | None:
    """Why ``--device name`` cannot be used here, else None."""
    if name == "cuda" and not torch.cuda.is_available():
        return ("--device cuda: PyTorch sees no CUDA device here; use --device cpu (or auto), or check the CUDA "
                "build of PyTorch (python -c 'import torch; print(torch.cuda.is_available())')")
    return None


def resolve_device(name: str) -> torch.device:
    """--device auto|cpu|cuda -> the torch device (auto: CUDA when present); DeviceError for an unusable one."""
    problem = device_problem(name)
    if problem:
        raise DeviceError(problem)
    return torch.device("cuda" if name != "cpu" and torch.cuda.is_available() else "cpu")


def lightning_accelerator(name: str) -> str:
    """--device auto|cpu|cuda -> Lightning's accelerator name (auto stays Lightning's 'auto')."""
    resolve_device(name)
    return {"auto": "auto", "cpu": "cpu", "cuda": "gpu"}[name]
