"""Structure, gradients and input checks of the DFPIR network."""

from __future__ import annotations

import pytest
import torch

from net import DFPIR, DFPIRConfig
from net.dgpb import keep_count, topk_mask
from net.registry import create_model


def test_every_parameter_but_the_text_projections_gets_a_gradient():
    torch.manual_seed(0)
    model = DFPIR()  # the paper's configuration, on a tiny image
    img, code = torch.rand(2, 3, 16, 16), torch.randn(2, 512)
    torch.nn.functional.l1_loss(model(img, code), torch.rand_like(img)).backward()
    no_grad = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert len(no_grad) == 16
    assert all(".linear_layer1." in n or ".linear_layer3." in n for n in no_grad)
    assert {n.split(".")[0] for n in no_grad} == set(model.dgpbs())


def test_text_projection_is_frozen_and_excluded_from_training():
    model = create_model("tiny")
    frozen = [n for n, p in model.named_parameters() if not p.requires_grad]
    assert len(frozen) == 16


def test_tiny_preset_has_every_block_and_runs():
    model = create_model("tiny")
    assert model.config == DFPIRConfig.tiny()
    assert len(model.dgpbs()) == 4
    out = model(torch.rand(1, 3, 32, 24), torch.randn(1, 512))
    assert out.shape == (1, 3, 32, 24)


def test_one_text_code_per_sample_is_required():
    with pytest.raises(ValueError, match="one code per image"):
        create_model("tiny")(torch.rand(2, 3, 16, 16), torch.randn(1, 512))


def test_a_batch_may_mix_degradations():
    torch.manual_seed(0)
    model = create_model("tiny").eval()
    img, code = torch.rand(3, 3, 16, 16), torch.randn(3, 512)
    with torch.no_grad():
        together = model(img, code)
        alone = torch.cat([model(img[i : i + 1], code[i : i + 1]) for i in range(3)])
    assert torch.allclose(together, alone, atol=1e-5)


def test_keep_count_follows_the_spec():
    assert keep_count(48) == 43
    assert keep_count(16) == 14


def test_topk_mask_keeps_the_k_largest_per_row_in_both_formulations():
    attn = torch.randn(2, 3, 48, 48)
    for fast in (False, True):
        masked = topk_mask(attn, 43, fast)
        kept = torch.isfinite(masked)
        assert (kept.sum(-1) == 43).all()
        smallest_kept = masked.masked_fill(~kept, float("inf")).min(-1).values
        largest_dropped = attn.masked_fill(kept, float("-inf")).max(-1).values
        assert (smallest_kept > largest_dropped).all()
        assert torch.equal(masked[kept], attn[kept])
    assert torch.equal(topk_mask(attn, 43, True), topk_mask(attn, 43, False))


def test_fast_and_reference_paths_agree_in_training_mode():
    torch.manual_seed(0)
    model = create_model("tiny")
    img, code = torch.rand(2, 3, 16, 16), torch.randn(2, 512)
    fast = model.set_fast_path(True)(img, code)
    ref = model.set_fast_path(False)(img, code)
    assert (fast - ref).abs().max() < 1e-5
