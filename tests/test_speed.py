"""The fast path computes the reference function: each fast switch alone, all of them together with
channels_last (outputs and gradients), and prepare_for_speed keeps the checkpoint layout."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F

from net import DFPIR
from net.blocks import GDFN, MDTA, ChannelLayerNorm, channel_attention
from net.dgpb import CAAPM
from net.registry import create_model, tiny_models
from net.speed import prepare_for_speed, to_channels_last

TOL = 1e-4  # the bound on |fast - eager| in float32


def tiny_model_and_inputs(
    seed: int = 0, batch: int = 2, size: int = 32
) -> tuple[DFPIR, torch.Tensor, torch.Tensor]:
    torch.manual_seed(seed)
    model = create_model("tiny")
    with torch.no_grad():  # move gamma/temperature away from their initial constants
        for name, p in model.named_parameters():
            if name.endswith(("temperature", "attn4")):
                p.uniform_(0.5, 1.5)
    return model, torch.rand(batch, 3, size, size), torch.randn(batch, 512)


def set_fast(model: DFPIR, module_type: type | None) -> None:
    """Reference formulation everywhere, except the fast one in modules of ``module_type`` (None: none)."""
    for module in model.modules():
        if hasattr(module, "fast"):
            module.fast = module_type is not None and isinstance(module, module_type)


@pytest.mark.parametrize("module_type", [ChannelLayerNorm, MDTA, CAAPM, GDFN], ids=lambda t: t.__name__)
def test_each_fast_switch_alone_keeps_the_output(module_type):
    model, img, code = tiny_model_and_inputs()
    switched = [m for m in model.modules() if isinstance(m, module_type)]
    assert switched and all(hasattr(m, "fast") for m in switched)
    with torch.no_grad():
        set_fast(model, None)
        reference = model(img, code)
        set_fast(model, module_type)
        fast = model(img, code)
    assert (fast - reference).abs().max() < TOL


def test_prepared_model_gives_the_same_outputs_and_gradients():
    model, img, code = tiny_model_and_inputs()
    target = torch.rand_like(img)
    eager = model.set_fast_path(False)
    fast = prepare_for_speed(create_model("tiny"), channels_last=True)
    fast.load_state_dict(eager.state_dict())

    out_eager, out_fast = eager(img, code), fast(img, code)
    F.l1_loss(out_eager, target).backward()
    F.l1_loss(out_fast, target).backward()

    assert (out_fast - out_eager).abs().max() < TOL
    grads_fast = dict(fast.named_parameters())
    for name, p in eager.named_parameters():
        if p.grad is None:
            assert grads_fast[name].grad is None, name
            continue
        scale = p.grad.abs().max().clamp_min(1e-6)
        assert ((grads_fast[name].grad - p.grad).abs().max() / scale) < 1e-3, name


def test_prepare_for_speed_switches_in_place_and_keeps_the_state_dict_keys():
    model = create_model("tiny").set_fast_path(False)
    keys = list(model.state_dict())
    params = list(model.parameters())
    prepared = prepare_for_speed(model, channels_last=True, compile=True)  # compiles lazily: no call here
    assert prepared is model
    assert list(model.state_dict()) == keys
    assert all(a is b for a, b in zip(model.parameters(), params, strict=True))
    assert all(m.fast for m in model.modules() if hasattr(m, "fast"))
    assert model.patch_embed.proj.weight.is_contiguous(memory_format=torch.channels_last)


@pytest.mark.parametrize("name", tiny_models())
def test_channels_last_weights_have_the_strides_of_module_to(name):
    """The channels_last kernels are chosen from the weights' strides: every 4-D tensor must carry the
    strides ``Module.to(memory_format=torch.channels_last)`` gives it, (9, 1, 3, 1) for a depthwise
    (C, 1, 3, 3) weight, not the NCHW ones (9, 9, 3, 1) that also count as channels_last contiguous
    (the lost speed-up of issue 31). ``Module.to`` restrides each 4-D tensor with ``Tensor.to``; it
    refuses PromptIR's 5-D prompt components, which must come through unchanged."""
    model = to_channels_last(create_model(name))
    tensors = dict(model.named_parameters()) | dict(model.named_buffers())
    four_d = {key: t for key, t in tensors.items() if t.dim() == 4}
    assert any(1 in t.shape for t in four_d.values())  # the size-1 case the guard is about
    for key, t in four_d.items():
        expected = torch.empty(t.shape).to(memory_format=torch.channels_last).stride()
        assert t.stride() == expected, key
    for key, t in tensors.items():
        if t.dim() != 4:
            assert t.is_contiguous(), key


def test_channels_last_weights_equal_module_to_on_dfpir():
    model, reference = create_model("tiny"), create_model("tiny").to(memory_format=torch.channels_last)
    to_channels_last(model)
    strides = {key: t.stride() for key, t in reference.named_parameters()}
    assert {key: t.stride() for key, t in model.named_parameters()} == strides


def test_fast_attention_logits_equal_normalised_ones_on_channels_last_views():
    torch.manual_seed(0)
    feature = torch.randn(2, 3 * 8, 6, 5).contiguous(memory_format=torch.channels_last)
    q, k, _ = (t.reshape(2, 2, 4, 30) for t in feature.chunk(3, dim=1))  # strided views, 2 heads
    temperature = torch.tensor([0.7, 1.3]).view(2, 1, 1)
    fast = channel_attention(q, k, temperature, fast=True)
    reference = channel_attention(q, k, temperature, fast=False)
    assert fast.shape == (2, 2, 4, 4)
    assert torch.allclose(fast, reference, atol=1e-6)


@pytest.mark.parametrize("bias", [False, True])
def test_gdfn_halves_computed_apart_are_dense_and_equal_the_sliced_ones(bias):
    torch.manual_seed(0)
    gdfn = GDFN(8, 2.66, bias).to(memory_format=torch.channels_last)
    x = torch.randn(2, 8, 6, 5).contiguous(memory_format=torch.channels_last)
    both = gdfn.dwconv(gdfn.project_in(x))
    for half, expected in enumerate(both.chunk(2, dim=1)):
        got = gdfn._gate_half(x, half)
        assert got.is_contiguous(memory_format=torch.channels_last)
        assert torch.allclose(got, expected, atol=1e-6)


def test_tune_glibc_malloc_reports_whether_it_applied():
    """Run in a child process: the setting is process-wide."""
    code = "import platform; from net.speed import tune_glibc_malloc as t; print(t(), platform.libc_ver()[0])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out[0] == str(out[1:] == ["glibc"])
