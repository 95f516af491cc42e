"""BioIR computes the reference function: the fixture's name-derived weights
(tests/fixtures/parity/bioir/) reproduce the recorded float64 output and every recorded stage, on
the reference and on the fast path; P2F and F2P alone match on the recorded pair; sizes the
network cannot take are refused."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import PARITY, parity_value

from net import BioIR
from net.registry import create_model
from net.speed import prepare_for_speed
from tests.helpers import run_with_stages

FIXTURE = PARITY / "bioir"
TOL_FLOAT64 = 1e-7  # output and every stage (fixture README: the float64 noise floor is 5.4e-9)
TOL_FLOAT32_OUTPUT = 10  # float32 smoke test (README: float32 rounding moves the output by 2.2 of +-224)
TOL_OPERATOR = 1e-4  # P2F and F2P alone on the recorded pair, float32 (README)

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def bioir_keys() -> list[tuple[str, list[int]]]:
    return [(k, s) for k, s in json.loads((FIXTURE / "bioir_state_dict_keys.json").read_text())]


@pytest.fixture(scope="module")
def bioir_io() -> dict:
    return torch.load(FIXTURE / "bioir_reference_io.pt", weights_only=True)


@pytest.fixture(scope="module")
def bioir_state(bioir_keys) -> dict[str, torch.Tensor]:
    return {k: parity_value(k, s) for k, s in bioir_keys}


def reference_network(state: dict[str, torch.Tensor], dtype: torch.dtype) -> BioIR:
    model = BioIR().to(dtype)
    model.load_state_dict(state, strict=True)  # float32 values, copied into the model's dtype
    return model.eval()


def test_state_dict_layout_matches_the_released_checkpoint(bioir_keys):
    model = create_model("bioir")
    assert isinstance(model, BioIR) and model.architecture == "bioir" and model.size_multiple == 4
    assert not model.uses_text_prompts
    assert [(k, list(v.shape)) for k, v in model.state_dict().items()] == bioir_keys
    assert len(bioir_keys) == 907
    assert sum(p.numel() for p in model.parameters()) == 15_847_328
    assert sum(p.numel() for p in model.unused_modules()["reduce_chan_level2"].parameters()) == 18_432


@pytest.mark.parametrize("fast", [False, True], ids=["reference_path", "fast_path"])
def test_float64_output_and_every_stage_match_the_reference(bioir_state, bioir_io, fast):
    """The fixture README's proof: the network in float64 against the reference's float64 run."""
    model = reference_network(bioir_state, torch.float64).set_fast_path(fast)  # channels_last: the float32 test
    expected = bioir_io["stage_outputs_float64_sample0"]  # sample 0 of each stage (the fixture's cut)
    output, stages = run_with_stages(model, bioir_io["input"].double(), expected)
    assert output.dtype == torch.float64
    assert (output - bioir_io["output_float64"]).abs().max() < TOL_FLOAT64
    assert len(expected) == 7
    for name, value in expected.items():
        assert stages[name][:1].shape == value.shape, name
        assert (stages[name][:1] - value).abs().max() < TOL_FLOAT64, name


def test_float32_output_is_near_the_references_float32_output(bioir_state, bioir_io):
    """A smoke test with the README's loose bound, on the fast path in channels_last."""
    model = prepare_for_speed(reference_network(bioir_state, torch.float32), channels_last=True)
    with torch.no_grad():
        output = model(bioir_io["input"])
    assert (output - bioir_io["output"]).abs().max() < TOL_FLOAT32_OUTPUT


@pytest.mark.parametrize("fast", [False, True], ids=["reference_path", "fast_path"])
def test_p2f_and_f2p_alone_match_on_the_recorded_pair(bioir_state, bioir_io, fast):
    """At 12x16 the 16x16 pooling bins overlap and the reflection padding touches many pixels."""
    model = reference_network(bioir_state, torch.float32).set_fast_path(fast)
    attn = model.encoder_level3[0].attn
    low, high = bioir_io["attn_inputs"]["low"], bioir_io["attn_inputs"]["high"]
    with torch.no_grad():
        for name in ("l2h", "h2l"):
            out = getattr(attn, name)(low, high)
            assert (out - bioir_io["attn_outputs"][name]).abs().max() < TOL_OPERATOR, name


def test_the_fast_p2f_is_the_same_function_as_the_reference_one():
    torch.manual_seed(0)
    model = create_model("bioir_tiny").double().eval()
    img = torch.rand(1, 3, 20, 24, dtype=torch.float64)
    with torch.no_grad():
        reference = model.set_fast_path(False)(img)
        fast = model.set_fast_path(True)(img)
    assert (fast - reference).abs().max() < 1e-10


@pytest.mark.parametrize("size", [(14, 16), (16, 18), (8, 8)])
def test_sizes_the_network_cannot_take_are_refused(size):
    model = create_model("bioir_tiny")
    with pytest.raises(ValueError, match="BioIR needs H and W"):
        model(torch.rand(1, 3, *size))
    assert model(torch.rand(1, 3, 12, 16)).shape == (1, 3, 12, 16)
