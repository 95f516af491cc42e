"""Padding and tiled restoration (utils/tiling.py) and the demo on images of any size."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

import demo
from net import DFPIR
from net.registry import create_model
from utils.tiling import pad_to_multiple, restore_image, restore_tiled


@pytest.fixture(scope="module")
def tiny_net() -> DFPIR:
    torch.manual_seed(0)
    return create_model("tiny").eval()


def _restore_fn(net: DFPIR):
    code = torch.randn(1, 512, generator=torch.Generator().manual_seed(1))
    return lambda x: net(x, code.expand(x.shape[0], -1))


def test_a_tile_covering_the_image_equals_untiled(tiny_net):
    fn, img = _restore_fn(tiny_net), torch.rand(1, 3, 48, 64)
    with torch.no_grad():
        whole = fn(img)
        assert torch.equal(restore_image(fn, img, tiny_net.size_multiple, tile=64, overlap=16), whole)
        assert torch.equal(restore_image(fn, img, tiny_net.size_multiple, tile=128, overlap=16), whole)


def test_tiles_are_averaged_over_their_overlap():
    img = torch.rand(1, 3, 40, 56)
    calls = []

    def fn(x):
        calls.append(tuple(x.shape[-2:]))
        return x * 2

    out = restore_tiled(fn, img, tile=16, overlap=8, multiple=8)
    assert torch.allclose(out, img * 2)  # a pixelwise fn is unchanged by tiling, overlaps included
    assert set(calls) == {(16, 16)} and len(calls) == 4 * 6


def test_tiled_restoration_is_close_to_whole_image(tiny_net):
    fn, img = _restore_fn(tiny_net), torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        tiled = restore_image(fn, img, tiny_net.size_multiple, tile=32, overlap=16)
    assert tiled.shape == img.shape and torch.isfinite(tiled).all()


@pytest.mark.parametrize("tile,overlap", [(20, 4), (0, 0), (32, 32)])
def test_bad_tile_options_are_refused(tile, overlap):
    with pytest.raises(ValueError, match="tile"):
        restore_tiled(lambda x: x, torch.rand(1, 3, 64, 64), tile, overlap, multiple=8)


def test_padding_reaches_the_network_multiple_and_crops_back(tiny_net):
    img = torch.rand(1, 3, 37, 50)
    assert tiny_net.size_multiple == 8 and pad_to_multiple(img, 8).shape[-2:] == (40, 56)
    with torch.no_grad():
        out = restore_image(_restore_fn(tiny_net), img, tiny_net.size_multiple)
    assert out.shape == img.shape


def test_demo_restores_any_size_and_keeps_it(tmp_path, tiny_net, capsys):
    ckpt = tmp_path / "tiny.ckpt"
    from net.checkpoint import EXTRA_KEY, LIGHTNING_PREFIX
    from net.prompts import PromptTable, prompt_list

    table = PromptTable(prompt_list("detailed"), torch.randn(7, 512), "test table")
    torch.save({"pytorch-lightning_version": "2.6", "state_dict": {LIGHTNING_PREFIX + k: v for k, v in
                                                                   tiny_net.state_dict().items()},
                EXTRA_KEY: {"model_config": tiny_net.config.to_dict(), "prompt_table": table.to_dict()}}, ckpt)
    inputs = tmp_path / "in"
    inputs.mkdir()
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (37, 50, 3), dtype=np.uint8)).save(inputs / "odd.png")
    Image.fromarray(rng.integers(0, 256, (30, 30), dtype=np.uint8)).save(inputs / "gray.jpg")
    out = tmp_path / "out"
    argv = ["--ckpt", str(ckpt), "--degradation", "rain", "--input", str(inputs), "--output_dir", str(out),
            "--device", "cpu"]
    assert demo.main(argv) == 0
    assert Image.open(out / "odd.png").size == (50, 37) and Image.open(out / "gray.png").size == (30, 30)
    assert demo.main(argv[:-2] + ["--tile", "16", "--tile_overlap", "8", "--device", "cpu", "--overwrite"]) == 0
    assert demo.main(["--ckpt", str(ckpt), "--degradation", "rain", "--input", str(tmp_path / "none")]) == 2
    assert "does not exist" in capsys.readouterr().err
