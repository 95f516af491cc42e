"""The network computes the reference function: weights of the parity fixture, loaded through
load_pretrained from a file in the authors' .pth.tar format, reproduce the recorded outputs."""

from __future__ import annotations

import pytest
import torch

from net import DFPIR, load_pretrained

OUTPUT_TOL = 1e-3
STAGE_TOL = 1e-3


@pytest.fixture(scope="module")
def reference_model(parity_state_dict, tmp_path_factory) -> DFPIR:
    path = tmp_path_factory.mktemp("ckpt") / "model.pth.tar"
    model = DFPIR()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=500)
    torch.save(
        {"epoch": 80, "state_dict": parity_state_dict, "optimizer": optimizer.state_dict(),
         "scheduler": scheduler.state_dict()},
        path,
    )
    ckpt = load_pretrained(model, path)
    assert ckpt.format == "authors" and ckpt.epoch == 80
    return model.eval()


def test_state_dict_layout_matches_the_released_checkpoints(official_keys):
    state = DFPIR().state_dict()
    assert [(k, list(v.shape)) for k, v in state.items()] == official_keys
    assert sum(p.numel() for p in DFPIR().parameters()) == 31_104_761


@pytest.mark.parametrize("fast", [False, True], ids=["reference_path", "fast_path"])
def test_output_and_every_dgpb_match_the_reference(reference_model, parity_io, fast):
    model = reference_model.set_fast_path(fast)
    stage_outputs = {}
    hooks = [
        block.register_forward_hook(lambda _m, _i, out, name=name: stage_outputs.__setitem__(name, out))
        for name, block in model.dgpbs().items()
    ]
    try:
        with torch.no_grad():
            output = model(parity_io["input"], parity_io["text_code"])
    finally:
        for h in hooks:
            h.remove()
        model.set_fast_path(True)
    assert (output - parity_io["output"]).abs().max() < OUTPUT_TOL
    assert set(stage_outputs) == set(parity_io["stage_outputs"])
    for name, expected in parity_io["stage_outputs"].items():
        assert stage_outputs[name].shape == expected.shape, name
        assert (stage_outputs[name] - expected).abs().max() < STAGE_TOL, name


def test_channels_last_gives_the_same_output(reference_model, parity_io):
    model = reference_model.to(memory_format=torch.channels_last)
    try:
        with torch.no_grad():
            output = model(parity_io["input"].contiguous(memory_format=torch.channels_last), parity_io["text_code"])
    finally:
        model.to(memory_format=torch.contiguous_format)
    assert (output - parity_io["output"]).abs().max() < OUTPUT_TOL


def test_every_permutation_equals_the_recorded_one(reference_model, parity_io):
    for name, block in reference_model.dgpbs().items():
        assert torch.equal(block.channel_permutation(parity_io["text_code"]), parity_io["permutations"][name]), name


def test_permutation_is_identical_under_autocast(reference_model, parity_io):
    """bf16 autocast must not round the text projection: the sort would reorder."""
    for name, block in reference_model.dgpbs().items():
        with torch.autocast("cpu", dtype=torch.bfloat16):
            idx = block.channel_permutation(parity_io["text_code"])
        assert torch.equal(idx, parity_io["permutations"][name]), name
