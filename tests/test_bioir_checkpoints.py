"""BioIR's released checkpoint format (docs/baselines.md "Loading BioIR checkpoints"): a synthetic
``BioIR3D.ckpt`` in the released format (a Lightning 2.0.1 file of another project: ``net.``-prefixed
weights, training state, no hyper-parameters, no record of its network), built on the real layout from
the fixture's key list, is recognised by its key layout with no flag and loads strictly through
--ckpt, --init_from, the demo, the web app's restorer and the Hub conversion (same outputs); wrong,
missing or extra keys are refused with the differences listed."""

from __future__ import annotations

import json
from argparse import Namespace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from demo import main as demo_main
from engine.evaluate import main as evaluate_main
from engine.train import main as train_main
from net.bioir import BioIRConfig
from net.checkpoint import CheckpointError, load_pretrained, read_checkpoint
from net.hub import main as hub_main
from net.registry import NetworkError, create_model, resolve_network

KEYS = Path(__file__).parent / "fixtures" / "parity" / "bioir" / "bioir_state_dict_keys.json"
RUN = ["--device", "cpu", "--num_workers", "0"]

pytestmark = pytest.mark.usefixtures("one_thread")


def released_format(weights: dict[str, torch.Tensor]) -> dict:
    """What the authors' ModelCheckpoint (Lightning 2.0.1) writes: section 4 of the BioIR facts."""
    return {"epoch": 149, "global_step": 762300, "pytorch-lightning_version": "2.0.1",
            "state_dict": {f"net.{key}": value for key, value in weights.items()},
            "loops": {}, "callbacks": {}, "optimizer_states": [{"state": {}, "param_groups": []}],
            "lr_schedulers": [{"last_epoch": 149}]}


@pytest.fixture(scope="module")
def released(tmp_path_factory) -> Path:
    """A file in the format of BioIR3D.ckpt, on the recorded key list (15.8M float32 weights, 63 MB)."""
    g = torch.Generator().manual_seed(0)
    weights = {key: 0.02 * torch.randn(shape, generator=g) for key, shape in json.loads(KEYS.read_text())}
    path = tmp_path_factory.mktemp("released") / "BioIR3D.ckpt"
    torch.save(released_format(weights), path)
    return path


def test_the_released_file_is_recognised_by_its_key_layout_and_loads_strictly(released):
    ckpt = read_checkpoint(released)  # torch.load(weights_only=True)
    assert ckpt.format == "lightning" and ckpt.architecture is None and ckpt.model_config is None
    assert ckpt.prompt_table is None and len(ckpt.state_dict) == 907
    assert not any(key.startswith("net.") for key in ckpt.state_dict)  # the LightningModule's prefix removed
    network = resolve_network(None, ckpt)
    assert (network.architecture, network.config) == ("bioir", BioIRConfig.released().to_dict())
    assert "key layout" in network.origin and network.text_dim is None and network.display_name == "BioIR"
    model = network.build()
    load_pretrained(model, ckpt)  # strict
    assert torch.equal(model.reduce_chan_level2.weight, ckpt.state_dict["reduce_chan_level2.weight"])


def test_wrong_missing_and_extra_keys_are_refused_with_the_differences_listed(released, tmp_path):
    weights = dict(read_checkpoint(released).state_dict)
    del weights["fuse1.conv.bias"]
    weights["extra.weight"] = torch.zeros(1)
    weights["output.weight"] = torch.zeros(3, 96, 3, 3)  # PromptIR's shape
    odd = tmp_path / "odd.ckpt"
    torch.save(released_format(weights), odd)
    ckpt = read_checkpoint(odd)
    with pytest.raises(NetworkError, match=r"bioir \(bioir, 907 tensors: 1 missing, 1 unexpected, 1 of another "
                                           r"shape\)"):
        resolve_network(None, ckpt)
    with pytest.raises(CheckpointError) as refused:
        load_pretrained(resolve_network("bioir", ckpt).build(), ckpt)  # --model bioir: strict loading lists them
    message = str(refused.value)
    assert "fuse1.conv.bias" in message and "extra.weight" in message
    assert "output.weight (3, 96, 3, 3) vs model (3, 48, 3, 3)" in message


def test_the_released_file_evaluates_demos_and_converts_to_a_hub_folder_and_back(released, data_root, tmp_path,
                                                                                  capsys):
    out = tmp_path / "eval"  # --ckpt of the test scripts: no --model, no prompt option, no CLIP
    argv = ["--ckpt", str(released), "--data_root", str(data_root), "--output_path", str(out), "--tasks", "dehaze",
            "--no_save_images", *RUN]
    assert evaluate_main("3D", argv) == 0
    assert json.loads((out / "results.json").read_text())["dehaze"]["n"] == 4
    assert "prompts: none (the network takes no text prompts)" in capsys.readouterr().out

    hub = tmp_path / "hub"
    assert hub_main(["--ckpt", str(released), "--out", str(hub)]) == 0
    config = json.loads((hub / "config.json").read_text())
    assert config["architecture"] == "bioir" and config["model_config"] == BioIRConfig.released().to_dict()
    assert config["prompt_table"] is None
    record = read_checkpoint(hub)
    assert record.architecture == "bioir" and record.prompt_table is None
    assert all(torch.equal(record.state_dict[k], v) for k, v in read_checkpoint(released).state_dict.items())

    image = tmp_path / "in.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (20, 28, 3), dtype=np.uint8)).save(image)
    pixels = []
    for ckpt in (released, hub):  # the demo from the file and from the Hub folder: the same pixels
        restored = tmp_path / f"out_{Path(ckpt).name}"
        argv = ["--ckpt", str(ckpt), "--degradation", "rain", "--input", str(image), "--output_dir", str(restored),
                "--device", "cpu"]
        assert demo_main(argv) == 0
        pixels.append(np.asarray(Image.open(next(restored.glob("*.png")))))
    assert pixels[0].shape == (20, 28, 3) and np.array_equal(pixels[0], pixels[1])


def test_init_from_the_released_file_trains_bioir(released, data_root, tmp_path):
    ckpt_dir = tmp_path / "run"
    argv = ["--init_from", str(released), "--data_root", str(data_root), "--ckpt_dir", str(ckpt_dir),
            "--data_file_dir", "none", "--de_type", "dehaze", "--patch_size", "16", "--batch_size", "1",
            "--max_steps", "1", "--no-keep_every_epoch", "--logger", "csv", *RUN]
    assert train_main("3D", argv) == 0
    last = read_checkpoint(ckpt_dir / "last.ckpt")
    assert last.architecture == "bioir" and last.model_config == BioIRConfig.released().to_dict()
    assert last.prompt_table is None and len(last.state_dict) == 907


def test_the_web_apps_restorer_is_blind_for_bioir(tmp_path):
    from engine.inference import BLIND, open_restorer

    bare = tmp_path / "bioir_tiny.pt"
    torch.save(create_model("bioir_tiny").state_dict(), bare)
    args = Namespace(ckpt=str(bare), model=None, recognizer=None, device="cpu", prompt_set="detailed",
                     prompt_embeddings=None, prompt_backend="clip")  # CLIP is never asked for
    restorer = open_restorer(args)
    result = restorer.restore(np.zeros((12, 20, 3), dtype=np.uint8), "rain")
    assert result.degradation == BLIND and result.image.shape == (12, 20, 3)
