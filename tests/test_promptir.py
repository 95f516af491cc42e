"""PromptIR computes the reference function: the fixture's name-derived weights
(tests/fixtures/parity/promptir/) reproduce the recorded output and prompt-block outputs, on the
reference and on the fast path; the tiny configuration trains."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import PARITY, parity_value

from net import PromptIR, PromptIRConfig
from net.registry import create_model, resolve_network
from net.speed import prepare_for_speed
from tests.helpers import run_with_stages

FIXTURE = PARITY / "promptir"
TOL = 1e-3  # output and every stage, float32 on the CPU (the reference in float64 is within 2.9e-5)


@pytest.fixture(scope="module")
def promptir_keys() -> list[tuple[str, list[int]]]:
    return [(k, s) for k, s in json.loads((FIXTURE / "promptir_state_dict_keys.json").read_text())]


@pytest.fixture(scope="module")
def promptir_io() -> dict:
    return torch.load(FIXTURE / "promptir_reference_io.pt", weights_only=True)


@pytest.fixture(scope="module")
def promptir_state(promptir_keys) -> dict[str, torch.Tensor]:
    return {k: parity_value(k, s) for k, s in promptir_keys}


def reference_network(state: dict[str, torch.Tensor]) -> PromptIR:
    model = PromptIR()
    model.load_state_dict(state, strict=True)
    return model.eval()


def test_state_dict_layout_matches_the_released_checkpoint(promptir_keys):
    model = create_model("promptir")
    assert isinstance(model, PromptIR) and model.architecture == "promptir" and model.size_multiple == 8
    assert not model.uses_text_prompts
    assert [(k, list(v.shape)) for k, v in model.state_dict().items()] == promptir_keys
    assert len(promptir_keys) == 548
    assert sum(p.numel() for p in model.parameters()) == 35_592_263


@pytest.mark.parametrize("fast", [False, True], ids=["reference_path", "fast_path"])
def test_output_and_every_prompt_block_match_the_reference(promptir_state, promptir_io, fast):
    model = reference_network(promptir_state)
    if fast:
        prepare_for_speed(model, channels_last=True)
    else:
        model.set_fast_path(False)
    expected = promptir_io["stage_outputs"]
    output, stages = run_with_stages(model, promptir_io["input"], expected)
    assert (output - promptir_io["output"]).abs().max() < TOL
    for name, value in expected.items():
        assert stages[name].shape == value.shape, name
        assert (stages[name] - value).abs().max() < TOL, name


def test_a_moved_prompt_component_moves_the_output(promptir_state, promptir_io):
    """The prompt path is live: moving prompt3's components by 0.01 (the deepest, least sensitive
    block; 2.3e-2 in the fixture's README) moves the output far beyond the parity tolerance."""
    state = dict(promptir_state)
    state["prompt3.prompt_param"] = state["prompt3.prompt_param"] + 0.01
    model = prepare_for_speed(reference_network(state), channels_last=True)
    with torch.no_grad():
        output = model(promptir_io["input"])
    assert (output - promptir_io["output"]).abs().max() > 1e-2


def test_text_code_is_accepted_and_ignored():
    torch.manual_seed(0)
    model = create_model("promptir_tiny").eval()
    img = torch.rand(1, 3, 16, 24)
    with torch.no_grad():
        assert torch.equal(model(img), model(img, torch.randn(1, 512)))
    assert resolve_network("promptir_tiny").config == PromptIRConfig.tiny().to_dict()


def test_the_six_unused_modules_are_declared():
    """They get no gradient (tests/test_contract.py checks every declared unused module of every network)."""
    model = create_model("promptir_tiny")
    assert list(model.unused_modules()) == ["chnl_reduce1", "chnl_reduce2", "chnl_reduce3", "reduce_noise_channel_1",
                                            "reduce_noise_channel_2", "reduce_noise_channel_3"]
    assert sum(1 for module in model.unused_modules().values() for _ in module.parameters()) == 6
