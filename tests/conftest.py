"""Shared fixtures: the parity fixture's weights and tiny inputs, the stand-in dataset, a short tiny run."""

from __future__ import annotations

import json
import math
import zlib
from pathlib import Path

import pytest
import torch

from data.sample import make_sample_dataset

FIXTURES = Path(__file__).parent / "fixtures"
PARITY = FIXTURES / "parity"


def parity_value(key: str, shape: list[int]) -> torch.Tensor:
    """The fill rule of tests/fixtures/parity/README.md: every tensor derived from its name.

    PromptIR's ``prompt_param`` is uniform in [0, 1) (tests/fixtures/parity/promptir/README.md),
    drawn from the same generator *after* the normal draw t: the recorded outputs match that
    (to 4e-6), not a rand drawn first, as that README's wording suggests.
    """
    g = torch.Generator().manual_seed(zlib.crc32(key.encode()))
    t = torch.randn(shape, generator=g, dtype=torch.float32)
    if key.endswith("prompt_param"):
        return torch.rand(shape, generator=g, dtype=torch.float32)
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


TINY_TRAIN_ARGS = ["--model", "tiny", "--patch_size", "32", "--batch_size", "2", "--num_workers", "0",
                   "--device", "cpu", "--prompt_backend", "offline", "--logger", "csv", "--data_file_dir", "none"]
"""Training flags of the fast end-to-end tests: the tiny network on small patches, offline prompt codes,
every stand-in image (the default name lists are the authors', for the real benchmarks)."""


@pytest.fixture(scope="session")
def tiny_train_args() -> list[str]:
    return list(TINY_TRAIN_ARGS)


@pytest.fixture(scope="session")
def data_root(tmp_path_factory) -> Path:
    """The stand-in dataset (``python -m data.sample``) with small images, shared by the whole session."""
    root = tmp_path_factory.mktemp("sample")
    make_sample_dataset(root, train_size=48, test_size=32)
    return root


@pytest.fixture(scope="session")
def trained_run(data_root, tmp_path_factory) -> Path:
    """A checkpoint folder after 2 steps of tiny 3D dehaze training (last.ckpt at step 2). Copy it before use."""
    from engine.train import main as train_main

    ckpt_dir = tmp_path_factory.mktemp("trained") / "run"
    argv = ["--data_root", str(data_root), "--ckpt_dir", str(ckpt_dir), *TINY_TRAIN_ARGS, "--de_type", "dehaze",
            "--val_every", "0", "--max_steps", "2"]
    assert train_main("3D", argv) == 0
    return ckpt_dir


@pytest.fixture
def one_thread():
    """One intra-op thread for the test: tiny steps are far slower when threads fight over shared cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def hub_model(tmp_path) -> Path:
    """A tiny DFPIR as a Hub folder (fast to read and to run)."""
    from net.prompts import PromptTable, prompt_list
    from net.registry import create_model

    torch.manual_seed(0)
    net = create_model("tiny")
    net.prompt_table, net.prompt_set = PromptTable(prompt_list("detailed"), torch.randn(7, 512), "t"), "detailed"
    net.save_pretrained(tmp_path / "model")
    return tmp_path / "model"
