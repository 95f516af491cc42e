"""PromptIR's released checkpoint format and the no-prompt path (docs/baselines.md "Loading PromptIR
checkpoints"): a synthetic ``model.ckpt`` in the released format (a Lightning file of another project,
keys prefixed ``net.``, no record of its network) is recognised by its key layout and loads strictly
with weights_only=True through --ckpt, --init_from, the demo and the Hub conversion, with no prompt
table, CLIP or --prompt_embeddings; --blind / --recognizer are refused."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from demo import main as demo_main
from engine.evaluate import main as evaluate_main
from engine.train import main as train_main
from net.checkpoint import load_pretrained, read_checkpoint
from net.dfpir import DFPIRConfig
from net.hub import main as hub_main
from net.promptir import PromptIRConfig
from net.registry import NetworkError, create_model, resolve_network

KEYS = Path(__file__).parent / "fixtures" / "parity" / "promptir" / "promptir_state_dict_keys.json"
RUN = ["--device", "cpu", "--num_workers", "0"]


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def released(tmp_path_factory) -> Path:
    """A file in the format of PromptIR's released model.ckpt, built from the recorded key list (35.6M weights)."""
    g = torch.Generator().manual_seed(0)
    weights = {f"net.{key}": 0.02 * torch.randn(shape, generator=g) for key, shape in json.loads(KEYS.read_text())}
    path = tmp_path_factory.mktemp("released") / "model.ckpt"
    torch.save({"epoch": 119, "global_step": 37000, "pytorch-lightning_version": "2.0.1", "state_dict": weights,
                "optimizer_states": [{"state": {}, "param_groups": []}],
                "lr_schedulers": [{"last_epoch": 120}]}, path)
    return path


def test_the_released_file_is_recognised_by_its_key_layout_and_loads_strictly(released):
    ckpt = read_checkpoint(released)  # torch.load(weights_only=True)
    assert ckpt.format == "lightning" and ckpt.architecture is None and ckpt.model_config is None
    assert ckpt.prompt_table is None and len(ckpt.state_dict) == 548
    network = resolve_network(None, ckpt)
    assert (network.architecture, network.config) == ("promptir", PromptIRConfig.released().to_dict())
    assert "key layout" in network.origin and network.text_dim is None
    load_pretrained(network.build(), ckpt)  # strict
    assert resolve_network("promptir_tiny", ckpt).config == PromptIRConfig.tiny().to_dict()  # --model forces


def test_dfpir_files_that_name_no_network_are_recognised_too(official_keys, tmp_path):
    authors = tmp_path / "model.pth.tar"  # the authors' format, the paper network's layout (no memory: zeros)
    torch.save({"epoch": 5, "state_dict": {k: torch.zeros(s) for k, s in official_keys}}, authors)
    assert resolve_network(None, read_checkpoint(authors)).config == DFPIRConfig.paper().to_dict()
    bare = tmp_path / "tiny.pt"
    torch.save(create_model("tiny").state_dict(), bare)
    assert resolve_network(None, read_checkpoint(bare)).config == DFPIRConfig.tiny().to_dict()


def test_a_file_that_fits_no_network_is_refused_with_the_layouts_tried(data_root, tmp_path, capsys):
    odd = tmp_path / "odd.pt"
    torch.save({"conv.weight": torch.zeros(3, 3, 3, 3)}, odd)
    with pytest.raises(NetworkError, match=r"fit no registered network \(tried paper \(dfpir, 590 tensors"):
        resolve_network(None, read_checkpoint(odd))
    argv = ["--ckpt", str(odd), "--data_root", str(data_root), "--output_path", str(tmp_path / "o"), *RUN]
    assert evaluate_main("3D", argv) == 2
    assert "promptir (promptir, 548 tensors" in capsys.readouterr().err


def test_blind_and_a_recognizer_do_not_apply_to_promptir(released, data_root, tmp_path, capsys):
    """Options a network does not use are noted, never refused (issue 30, cases 7 and 13: this test refused them
    before): PromptIR is blind by construction, so --blind and --recognizer are a no-op for it."""
    argv = ["--ckpt", str(released), "--data_root", str(data_root), "--output_path", str(tmp_path / "o"),
            "--blind", "--recognizer", str(tmp_path / "r.pt"), "--tasks", "dehaze", "--no_save_images", *RUN]
    assert evaluate_main("3D", argv) == 0
    err = capsys.readouterr().err
    assert ("note: promptir (promptir) takes no text prompts (it is blind by construction): --blind and --recognizer "
            "do not apply to it and are not used for it") in err


def test_the_released_file_evaluates_demos_and_converts_to_a_hub_folder_and_back(released, data_root, tmp_path,
                                                                                  capsys):
    # --ckpt of the test scripts: no --model, no prompt option, no CLIP.
    out = tmp_path / "eval"
    argv = ["--ckpt", str(released), "--data_root", str(data_root), "--output_path", str(out), "--tasks", "dehaze",
            "--no_save_images", *RUN]
    assert evaluate_main("3D", argv) == 0
    assert json.loads((out / "results.json").read_text())["dehaze"]["n"] == 4
    assert "prompts: none (the network takes no text prompts)" in capsys.readouterr().out

    hub = tmp_path / "hub"
    assert hub_main(["--ckpt", str(released), "--out", str(hub), "--prompt_embeddings", "unused.pt"]) == 0
    assert {p.name for p in hub.iterdir()} == {"model.safetensors", "config.json", "README.md"}  # no prompt table
    config = json.loads((hub / "config.json").read_text())
    assert config["architecture"] == "promptir" and config["model_config"] == PromptIRConfig.released().to_dict()
    assert config["prompt_table"] is None and config["prompt_set"] is None
    record = read_checkpoint(hub)
    assert record.architecture == "promptir" and record.prompt_table is None
    assert all(torch.equal(record.state_dict[k], v) for k, v in read_checkpoint(released).state_dict.items())

    # The demo, from the file and from the Hub folder: --degradation is noted as unused; the same pixels.
    image = tmp_path / "in.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (20, 28, 3), dtype=np.uint8)).save(image)
    pixels = []
    for ckpt in (released, hub):
        restored = tmp_path / f"out_{Path(ckpt).name}"
        argv = ["--ckpt", str(ckpt), "--degradation", "rain", "--input", str(image), "--output_dir", str(restored),
                "--device", "cpu"]
        assert demo_main(argv) == 0
        assert "is blind (it takes no text prompts)" in capsys.readouterr().err
        pixels.append(np.asarray(Image.open(next(restored.glob("*.png")))))
    assert pixels[0].shape == (20, 28, 3) and np.array_equal(pixels[0], pixels[1])


def test_init_from_the_released_file_trains_promptir_without_prompts(released, data_root, tmp_path):
    ckpt_dir = tmp_path / "run"
    argv = ["--init_from", str(released), "--data_root", str(data_root), "--ckpt_dir", str(ckpt_dir),
            "--data_file_dir", "none", "--de_type", "dehaze", "--patch_size", "16", "--batch_size", "1",
            "--max_steps", "1", "--no-keep_every_epoch", "--logger", "csv", *RUN]
    assert train_main("3D", argv) == 0
    last = read_checkpoint(ckpt_dir / "last.ckpt")
    assert last.architecture == "promptir" and last.model_config == PromptIRConfig.released().to_dict()
    assert last.prompt_table is None and len(last.state_dict) == 548


def test_the_web_apps_restorer_is_blind_for_promptir(tmp_path):
    from argparse import Namespace

    from engine.inference import BLIND, open_restorer

    bare = tmp_path / "promptir_tiny.pt"
    torch.save(create_model("promptir_tiny").state_dict(), bare)
    args = Namespace(ckpt=str(bare), model=None, recognizer=None, device="cpu", prompt_set="detailed",
                     prompt_embeddings=None, prompt_backend="clip")  # CLIP is never asked for
    restorer = open_restorer(args)
    assert "rain" in restorer.degradations  # offered, each restored blindly
    result = restorer.restore(np.zeros((12, 20, 3), dtype=np.uint8), "rain")
    assert result.degradation == BLIND and result.image.shape == (12, 20, 3)
    # a recogniser does not apply to a blind network: noted, not refused, not loaded (issue 30, case 12)
    assert open_restorer(Namespace(**{**vars(args), "recognizer": "r.pt"})).recognizer is None
