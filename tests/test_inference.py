"""engine/inference.py: the one restoration path of demo.py and app.py."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import demo
from engine.inference import Restorer
from engine.preflight import UsageError
from net.checkpoint import Checkpoint
from net.prompts import PromptTable, prompt_list
from net.registry import create_model, resolve_network
from utils.image_io import read_rgb


@pytest.fixture(scope="module")
def tiny() -> tuple[torch.nn.Module, PromptTable]:
    torch.manual_seed(0)
    return create_model("tiny"), PromptTable(prompt_list("detailed"), torch.randn(7, 512), "test table")


def _restorer(tiny, setting: str | None = None) -> Restorer:
    net, table = tiny
    checkpoint = Checkpoint(Path("tiny.ckpt"), net.state_dict(), "state_dict",
                            run_config={"setting": setting} if setting else None)
    return Restorer(checkpoint, resolve_network("tiny", checkpoint), table)


def test_the_degradations_offered_are_the_settings_and_unknown_ones_are_refused(tiny):
    assert _restorer(tiny, "3D").degradations == ["noise15", "noise25", "noise50", "rain", "haze"]
    restorer = _restorer(tiny)
    assert restorer.degradations == ["noise15", "noise25", "noise50", "rain", "haze", "blur", "lowlight"]
    image = np.zeros((20, 28, 3), np.uint8)
    with pytest.raises(UsageError, match="unknown degradation 'sleet'"):
        restorer.restore(image, "sleet")
    with pytest.raises(UsageError, match="auto needs a degradation recogniser"):
        restorer.restore(image, "auto")
    with pytest.raises(UsageError, match="--tile 12"):
        restorer.restore(image, "rain", tile=12)
    result = restorer.restore(image, "rain", tile=16, overlap=8)
    assert result.image.shape == image.shape and result.image.dtype == np.uint8 and result.probabilities is None


def test_demo_writes_the_restorers_output_of_the_photo_as_a_viewer_shows_it(tiny, tmp_path):
    net, table = tiny
    net.prompt_table, net.prompt_set = table, "detailed"
    net.save_pretrained(tmp_path / "hub")
    stored = np.random.default_rng(0).integers(0, 256, (40, 52, 3), dtype=np.uint8)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to view
    Image.fromarray(stored).save(tmp_path / "phone.jpg", exif=exif, quality=95)
    assert demo.main(["--ckpt", str(tmp_path / "hub"), "--degradation", "haze", "--input", str(tmp_path / "phone.jpg"),
                      "--output_dir", str(tmp_path / "out"), "--device", "cpu"]) == 0
    written = read_rgb(tmp_path / "out" / "phone.png")
    upright = read_rgb(tmp_path / "phone.jpg", exif_orientation=True)
    assert written.shape == upright.shape == (52, 40, 3)
    assert np.array_equal(written, _restorer(tiny).restore(upright, "haze").image)
