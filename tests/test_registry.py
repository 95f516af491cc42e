"""net/registry.py: the networks by name, and the one rule that picks a run's network."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from net.checkpoint import Checkpoint
from net.dfpir import DFPIR, DFPIRConfig
from net.registry import NetworkError, create_model, model_names, resolve_network

TINY = DFPIRConfig.tiny().to_dict()


def _checkpoint(model_config: dict | None, architecture: str = "dfpir") -> Checkpoint:
    fmt = "authors" if model_config is None else "lightning"
    return Checkpoint(Path("run/last.ckpt"), {}, fmt, architecture=architecture, model_config=model_config)


def test_models_are_named_configurations_of_registered_architectures():
    assert model_names()[:2] == ["paper", "tiny"]
    tiny = create_model("tiny")
    assert isinstance(tiny, DFPIR) and tiny.architecture == "dfpir" and tiny.size_multiple == 8
    assert tiny.config == DFPIRConfig.tiny()


def test_without_a_recorded_network_model_decides_and_defaults_to_the_paper():
    assert resolve_network(None).config == DFPIRConfig.paper().to_dict()
    assert resolve_network("tiny", _checkpoint(None)).config == TINY  # an authors' file of the tiny network
    # A file that names no network is recognised by its layout (tests/test_released_formats.py); an empty
    # one fits none.
    with pytest.raises(NetworkError, match="fit no registered network .*tried paper .*promptir_tiny"):
        resolve_network(None, _checkpoint(None))


def test_a_recorded_network_decides_and_a_contradicting_model_is_an_error():
    recorded = _checkpoint(TINY)
    assert resolve_network(None, recorded).config == TINY  # e.g. --init_from / --resume of a tiny run
    assert resolve_network("tiny", recorded).origin == "checkpoint run/last.ckpt"
    conflict = r"--model paper: .* holds a tiny \(dfpir\) network, not a paper \(dfpir\) one.* drop --model"
    with pytest.raises(NetworkError, match=conflict):
        resolve_network("paper", recorded)
    with pytest.raises(NetworkError, match="unknown network architecture 'unet'"):
        resolve_network(None, _checkpoint({"width": 4}, architecture="unet")).build()
    with pytest.raises(NetworkError, match="unknown --model 'huge'"):
        resolve_network("huge")


def test_the_resolved_network_builds_with_the_recorded_configuration():
    net = resolve_network(None, _checkpoint(TINY)).build()
    assert sum(p.numel() for p in net.parameters()) == sum(p.numel() for p in create_model("tiny").parameters())
    assert net(torch.rand(1, 3, 16, 16), torch.randn(1, 512)).shape == (1, 3, 16, 16)
