"""Shared fixtures: the parity fixture's weights and tiny inputs."""

from __future__ import annotations

import json
import math
import zlib
from pathlib import Path

import pytest
import torch

FIXTURES = Path(__file__).parent / "fixtures"
PARITY = FIXTURES / "parity"


def parity_value(key: str, shape: list[int]) -> torch.Tensor:
    """The fill rule of tests/fixtures/parity/README.md: every tensor derived from its name."""
    g = torch.Generator().manual_seed(zlib.crc32(key.encode()))
    t = torch.randn(shape, generator=g, dtype=torch.float32)
    if key.endswith("temperature") or key.endswith("attn4"):
        return 1 + 0.1 * t
    if len(shape) == 1:
        return 1 + 0.1 * t if key.endswith("weight") else 0.1 * t
    return t / math.sqrt(math.prod(shape[1:]))


@pytest.fixture(scope="session")
def official_keys() -> list[tuple[str, list[int]]]:
    return [(k, s) for k, s in json.loads((PARITY / "official_state_dict_keys.json").read_text())]


@pytest.fixture(scope="session")
def parity_state_dict(official_keys) -> dict[str, torch.Tensor]:
    return {k: parity_value(k, s) for k, s in official_keys}


@pytest.fixture(scope="session")
def parity_io() -> dict:
    return torch.load(PARITY / "dfpir_reference_io.pt", weights_only=True)
