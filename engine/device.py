"""The device a run uses, from ``--device`` (auto, cpu, cuda)."""

from __future__ import annotations

import torch

from engine.preflight import UsageError


def accelerator(device: str) -> str:
    """--device auto|cpu|cuda -> Lightning accelerator name."""
    if device == "cuda" and not torch.cuda.is_available():
        raise UsageError("--device cuda was given but PyTorch sees no CUDA device; use --device cpu")
    return {"auto": "auto", "cpu": "cpu", "cuda": "gpu"}[device]
