"""Does a training run learn every task? (issue 31; docs/training.md)."""

from __future__ import annotations

from net.registry import model_names


def tiny_presets() -> list[str]:
    """The registered models small enough for CPU checks: ``tiny`` and every ``*_tiny`` preset."""
    return [name for name in model_names() if name == "tiny" or name.endswith("_tiny")]
