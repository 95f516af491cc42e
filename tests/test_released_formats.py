"""Released checkpoints of the networks that take no text prompts, one test per path, every such network
(docs/baselines.md "Loading PromptIR checkpoints" and "Loading BioIR checkpoints").

Each file is synthetic: the released format (a Lightning 2.0.1 file of another project: ``net.``-prefixed
weights, training state, no hyper-parameters, no record of its network) built on the real layout from the
fixture's recorded key list. It is recognised by its key layout with no flag and loads strictly, with
weights_only=True, through --ckpt, --init_from, the demo, the web app's restorer and the Hub conversion
(the same outputs), with no prompt table, CLIP or --prompt_embeddings; --blind and --recognizer are noted
as unused, never refused; wrong, missing or extra keys are refused with the differences listed, as is a file
that fits no registered network.
"""

from __future__ import annotations

import json
from argparse import Namespace
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from demo import main as demo_main
from engine.evaluate import main as evaluate_main
from engine.inference import BLIND, open_restorer
from engine.train import main as train_main
from net.checkpoint import CheckpointError, load_pretrained, read_checkpoint
from net.dfpir import DFPIRConfig
from net.hub import main as hub_main
from net.registry import NetworkError, NetworkSpec, create_model, resolve_network

PARITY = Path(__file__).parent / "fixtures" / "parity"
RUN = ["--device", "cpu", "--num_workers", "0"]

pytestmark = pytest.mark.usefixtures("one_thread")


@dataclass(frozen=True)
class Released:
    """One network's released file: its registered model, the recorded key list, the file's name and training
    state as the authors' ModelCheckpoint wrote it (the networks' facts, section 4)."""

    model: str  # the registered model the file's layout must resolve to
    tiny: str  # its tiny preset (``--model`` forces a network whatever the layout)
    keys: Path
    file_name: str
    epoch: int
    global_step: int

    @property
    def tensors(self) -> int:
        return len(json.loads(self.keys.read_text()))

    def spec(self) -> NetworkSpec:
        return NetworkSpec.of_model(self.model)


RELEASED = [
    Released("promptir", "promptir_tiny", PARITY / "promptir" / "promptir_state_dict_keys.json", "model.ckpt",
             epoch=119, global_step=37000),
    Released("bioir", "bioir_tiny", PARITY / "bioir" / "bioir_state_dict_keys.json", "BioIR3D.ckpt",
             epoch=149, global_step=762300),
]


def released_format(weights: dict[str, torch.Tensor], epoch: int, global_step: int) -> dict:
    """What the authors' ModelCheckpoint (Lightning 2.0.1) writes around the network's weights."""
    return {"epoch": epoch, "global_step": global_step, "pytorch-lightning_version": "2.0.1",
            "state_dict": {f"net.{key}": value for key, value in weights.items()},
            "loops": {}, "callbacks": {}, "optimizer_states": [{"state": {}, "param_groups": []}],
            "lr_schedulers": [{"last_epoch": epoch}]}


@pytest.fixture(scope="module", params=RELEASED, ids=lambda r: r.model)
def released(request, tmp_path_factory) -> tuple[Released, Path]:
    """(the network's record, its released-format file): seeded weights of 0.02 x N(0, 1) on the recorded key
    list (PromptIR 35.6M, BioIR 15.8M float32 weights)."""
    record: Released = request.param
    g = torch.Generator().manual_seed(0)
    weights = {key: 0.02 * torch.randn(shape, generator=g) for key, shape in json.loads(record.keys.read_text())}
    path = tmp_path_factory.mktemp(f"released_{record.model}") / record.file_name
    torch.save(released_format(weights, record.epoch, record.global_step), path)
    return record, path


def test_the_released_file_is_recognised_by_its_key_layout_and_loads_strictly(released):
    record, path = released
    ckpt = read_checkpoint(path)  # torch.load(weights_only=True)
    assert ckpt.format == "lightning" and ckpt.architecture is None and ckpt.model_config is None
    assert ckpt.prompt_table is None and len(ckpt.state_dict) == record.tensors
    assert not any(key.startswith("net.") for key in ckpt.state_dict)  # the LightningModule's prefix removed
    network = resolve_network(None, ckpt)
    assert (network.architecture, network.config) == (record.spec().architecture, record.spec().config)
    assert "key layout" in network.origin and network.text_dim is None
    model = network.build()
    load_pretrained(model, ckpt)  # strict
    name, value = next(iter(ckpt.state_dict.items()))
    assert torch.equal(model.state_dict()[name], value)
    assert resolve_network(record.tiny, ckpt).config == NetworkSpec.of_model(record.tiny).config  # --model forces


def test_the_released_file_evaluates_demos_and_converts_to_a_hub_folder_and_back(released, data_root, tmp_path,
                                                                                  capsys):
    record, path = released
    out = tmp_path / "eval"  # --ckpt of the test scripts: no --model, no prompt option, no CLIP
    argv = ["--ckpt", str(path), "--data_root", str(data_root), "--output_path", str(out), "--tasks", "dehaze",
            "--no_save_images", *RUN]
    assert evaluate_main("3D", argv) == 0
    assert json.loads((out / "results.json").read_text())["dehaze"]["n"] == 4
    assert "prompts: none (the network takes no text prompts)" in capsys.readouterr().out

    hub = tmp_path / "hub"
    assert hub_main(["--ckpt", str(path), "--out", str(hub), "--prompt_embeddings", "unused.pt"]) == 0
    assert {p.name for p in hub.iterdir()} == {"model.safetensors", "config.json", "README.md"}  # no prompt table
    config = json.loads((hub / "config.json").read_text())
    assert (config["architecture"], config["model_config"]) == (record.spec().architecture, record.spec().config)
    assert config["prompt_table"] is None and config["prompt_set"] is None
    copy = read_checkpoint(hub)
    assert copy.architecture == record.spec().architecture and copy.prompt_table is None
    assert all(torch.equal(copy.state_dict[k], v) for k, v in read_checkpoint(path).state_dict.items())

    # The demo, from the file and from the Hub folder: --degradation is noted as unused; the same pixels.
    image = tmp_path / "in.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (20, 28, 3), dtype=np.uint8)).save(image)
    pixels = []
    for ckpt in (path, hub):
        restored = tmp_path / f"out_{Path(ckpt).name}"
        argv = ["--ckpt", str(ckpt), "--degradation", "rain", "--input", str(image), "--output_dir", str(restored),
                "--device", "cpu"]
        assert demo_main(argv) == 0
        assert "is blind (it takes no text prompts)" in capsys.readouterr().err
        pixels.append(np.asarray(Image.open(next(restored.glob("*.png")))))
    assert pixels[0].shape == (20, 28, 3) and np.array_equal(pixels[0], pixels[1])


def test_blind_and_a_recognizer_are_noted_as_unused(released, data_root, tmp_path, capsys):
    """Options a network does not use are noted, never refused (issue 30, cases 7 and 13): a network that takes
    no text prompts is blind by construction, so --blind and --recognizer are a no-op for it."""
    record, path = released
    argv = ["--ckpt", str(path), "--data_root", str(data_root), "--output_path", str(tmp_path / "o"),
            "--blind", "--recognizer", str(tmp_path / "r.pt"), "--tasks", "dehaze", "--no_save_images", *RUN]
    assert evaluate_main("3D", argv) == 0
    assert (f"note: {record.model} ({record.spec().architecture}) takes no text prompts (it is blind by "
            "construction): --blind and --recognizer do not apply to it and are not used for it"
            ) in capsys.readouterr().err


def test_init_from_the_released_file_trains_without_prompts(released, data_root, tmp_path):
    record, path = released
    ckpt_dir = tmp_path / "run"
    argv = ["--init_from", str(path), "--data_root", str(data_root), "--ckpt_dir", str(ckpt_dir),
            "--data_file_dir", "none", "--de_type", "dehaze", "--patch_size", "16", "--batch_size", "1",
            "--max_steps", "1", "--no-keep_every_epoch", "--logger", "csv", *RUN]
    assert train_main("3D", argv) == 0
    last = read_checkpoint(ckpt_dir / "last.ckpt")
    assert (last.architecture, last.model_config) == (record.spec().architecture, record.spec().config)
    assert last.prompt_table is None and len(last.state_dict) == record.tensors


@pytest.mark.parametrize("tiny", [r.tiny for r in RELEASED])
def test_the_web_apps_restorer_is_blind(tiny, tmp_path):
    bare = tmp_path / f"{tiny}.pt"
    torch.save(create_model(tiny).state_dict(), bare)
    args = Namespace(ckpt=str(bare), model=None, recognizer=None, device="cpu", prompt_set="detailed",
                     prompt_embeddings=None, prompt_backend="clip")  # CLIP is never asked for
    restorer = open_restorer(args)
    assert "rain" in restorer.degradations  # offered, each restored blindly
    result = restorer.restore(np.zeros((12, 20, 3), dtype=np.uint8), "rain")
    assert result.degradation == BLIND and result.image.shape == (12, 20, 3)
    # a recogniser does not apply to a blind network: noted, not refused, not loaded (issue 30, case 12)
    assert open_restorer(Namespace(**{**vars(args), "recognizer": "r.pt"})).recognizer is None


def test_wrong_missing_and_extra_keys_are_refused_with_the_differences_listed(released, tmp_path):
    record, path = released
    weights = dict(read_checkpoint(path).state_dict)
    missing, (reshaped, value) = next(reversed(weights)), next(iter(weights.items()))
    del weights[missing]
    weights["extra.weight"] = torch.zeros(1)
    weights[reshaped] = torch.zeros(value.shape[0] + 1, *value.shape[1:])
    odd = tmp_path / "odd.ckpt"
    torch.save(released_format(weights, record.epoch, record.global_step), odd)
    ckpt = read_checkpoint(odd)
    with pytest.raises(NetworkError, match=rf"{record.model} \({record.spec().architecture}, {record.tensors} "
                                           r"tensors: 1 missing, 1 unexpected, 1 of another shape\)"):
        resolve_network(None, ckpt)
    with pytest.raises(CheckpointError) as refused:
        load_pretrained(resolve_network(record.model, ckpt).build(), ckpt)  # --model: strict loading lists them
    message = str(refused.value)
    assert missing in message and "extra.weight" in message
    assert f"{reshaped} {tuple(weights[reshaped].shape)} vs model {tuple(value.shape)}" in message


def test_files_of_dfpir_that_name_no_network_are_recognised_too(official_keys, tmp_path):
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
    err = capsys.readouterr().err
    assert all(f"{r.model} ({r.spec().architecture}, {r.tensors} tensors" in err for r in RELEASED)
