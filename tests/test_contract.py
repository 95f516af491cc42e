"""The network contract (net/registry.py), checked for every registered network that has a tiny preset
(a model whose name contains ``tiny``: ``net.registry.tiny_models``). A newly registered network
gets every test here by registering its tiny preset; none is written per network.

Each test takes the tiny preset through one clause of the contract: inputs of a size that is not a
multiple of ``size_multiple`` refused; a gradient for every trainable parameter (but the declared
``unused_modules``); a strict save/load round trip; recognition of an unnamed file by its key layout;
a Hub folder round trip with identical outputs; two training steps and one evaluation through the
scripts on the stand-in data; --compile training as one graph that trains to the eager run's weights.
"""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F

from engine.evaluate import main as evaluate_main  # test_3D_DFPIR.py's main
from engine.train import main as train_main  # train_3D_DFPIR.py's main
from net.checkpoint import CheckpointError, load_pretrained, read_checkpoint
from net.hub import main as hub_main
from net.hub_model import HubMixin, from_pretrained
from net.registry import ARCHITECTURES, NetworkSpec, recognise, resolve_network, tiny_models
from tests.helpers import compile_with
from utils.tasks import SETTINGS

pytestmark = pytest.mark.usefixtures("one_thread")

TINY = tiny_models()


@pytest.fixture(params=TINY)
def model(request) -> str:
    """A tiny preset's --model name."""
    return request.param


@pytest.fixture
def network(model) -> NetworkSpec:
    return NetworkSpec.of_model(model)


def _side(network: NetworkSpec) -> int:
    """The smallest multiple of the network's size multiple that it takes (at least its ``min_size``)."""
    m = network.size_multiple
    return -(-network.min_size // m) * m


def _inputs(network: NetworkSpec, height: int, width: int, batch: int = 2, seed: int = 0):
    """A batch of images and, for a network with text prompts, one prompt code per image (else None)."""
    generator = torch.Generator().manual_seed(seed)
    img = torch.rand(batch, 3, height, width, generator=generator)
    code = torch.randn(batch, network.text_dim, generator=generator) if network.uses_text_prompts else None
    return img, code


def _built(network: NetworkSpec, seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    return network.build().eval()


def test_every_registered_architecture_has_a_tiny_preset():
    covered = {NetworkSpec.of_model(name).architecture for name in TINY}
    missing = sorted(set(ARCHITECTURES) - covered)
    assert not missing, (f"register a tiny preset (a model named *tiny*, net/registry.py) for {missing}: "
                         "the contract tests run on it")
    assert {"tiny", "promptir_tiny"} <= set(TINY)


def test_a_size_that_is_not_a_multiple_is_refused(network):
    net, side = _built(network, 0), _side(network)
    img, code = _inputs(network, 2 * side, 3 * side)
    with torch.no_grad():
        assert net(img, code).shape == img.shape
        for height, width in ((2 * side + 2, 3 * side), (2 * side, 3 * side - 1)):
            img, code = _inputs(network, height, width)
            with pytest.raises(ValueError, match=f"multiples of {network.size_multiple}"):
                net(img, code)


def test_every_trainable_parameter_gets_a_gradient(network):
    net = _built(network, 0).train()
    img, code = _inputs(network, 4 * _side(network), 4 * _side(network))
    F.l1_loss(net(img, code), torch.rand_like(img)).backward()
    unused = {f"{name}.{p}" for name, module in getattr(net, "unused_modules", dict)().items()
              for p, _ in module.named_parameters()}
    trainable = [(name, p) for name, p in net.named_parameters() if p.requires_grad]
    assert trainable
    without = [name for name, p in trainable if name not in unused and (p.grad is None or not p.grad.abs().sum() > 0)]
    assert without == []
    assert [name for name, p in trainable if name in unused and p.grad is not None] == []


def _outputs(net: torch.nn.Module, network: NetworkSpec) -> torch.Tensor:
    img, code = _inputs(network, 2 * _side(network), 2 * _side(network), seed=1)
    with torch.no_grad():
        return net(img, code)


def test_strict_save_load_round_trip_and_recognition_by_layout(model, network, tmp_path):
    net = _built(network, 1)
    path = tmp_path / "weights.pth"
    torch.save(net.state_dict(), path)  # a bare state dict: it names no network
    assert recognise(net.state_dict()) == [model]
    checkpoint = read_checkpoint(path)
    recognised = resolve_network(None, checkpoint)
    assert recognised.same_network(network) and model in recognised.origin
    loaded = recognised.build().eval()
    load_pretrained(loaded, checkpoint)
    assert torch.equal(_outputs(loaded, network), _outputs(net, network))

    one_short = dict(net.state_dict())
    dropped = sorted(one_short)[-1]
    del one_short[dropped]
    torch.save(one_short, path)
    with pytest.raises(CheckpointError, match="strict loading"):
        load_pretrained(network.build(), read_checkpoint(path))


def test_hub_round_trip_gives_identical_outputs(model, network, tmp_path):
    net = _built(network, 2)
    torch.save(net.state_dict(), tmp_path / "weights.pth")
    hub = tmp_path / "hub"
    assert hub_main(["--ckpt", str(tmp_path / "weights.pth"), "--out", str(hub), "--model", model,
                     "--prompt_backend", "offline"]) == 0
    loaded = from_pretrained(hub)
    assert type(loaded) is type(net) and (loaded.prompt_table is not None) == network.uses_text_prompts
    assert torch.equal(_outputs(loaded, network), _outputs(net, network))
    card = (hub / "README.md").read_text()
    assert f"# {network.display_name}" in card and network.architecture in card
    assert (hub / "prompt_table.safetensors").exists() == network.uses_text_prompts
    if isinstance(loaded, HubMixin):  # the class's own save_pretrained / from_pretrained: the same folder
        loaded.save_pretrained(tmp_path / "again")
        for name in ("config.json", "model.safetensors"):  # the card differs: it names no source
            assert (tmp_path / "again" / name).read_bytes() == (hub / name).read_bytes(), name
        assert f"# {network.display_name}" in (tmp_path / "again" / "README.md").read_text()
        again = type(loaded).from_pretrained(tmp_path / "again")
        assert torch.equal(_outputs(again, network), _outputs(net, network))


def _train_two_steps(model: str, network: NetworkSpec, data_root, run, *extra: str) -> None:
    """Two steps of train_3D_DFPIR.py on the stand-in dehazing pairs, patch 32, into ``run``."""
    prompts = ["--prompt_backend", "offline"] if network.uses_text_prompts else []
    assert train_main("3D", [
        "--data_root", str(data_root), "--ckpt_dir", str(run), "--model", model, "--de_type", "dehaze",
        "--patch_size", "32", "--batch_size", "2", "--max_steps", "2", "--val_every", "0", "--num_workers", "0",
        "--device", "cpu", "--logger", "csv", "--data_file_dir", "none", *prompts, *extra]) == 0


def test_two_training_steps_and_one_evaluation_through_the_scripts(model, network, data_root, tmp_path):
    run = tmp_path / "run"
    _train_two_steps(model, network, data_root, run)
    last = read_checkpoint(run / "last.ckpt")
    assert last.architecture == network.architecture and last.model_config == network.config

    out = tmp_path / "eval"
    assert evaluate_main("3D", ["--ckpt", str(run / "last.ckpt"), "--data_root", str(data_root), "--tasks", "dehaze",
                                "--output_path", str(out), "--no_save_images", "--device", "cpu",
                                "--num_workers", "0"]) == 0
    results = json.loads((out / "results.json").read_text())
    assert results["dehaze"]["n"] == 4 and 0 < results["dehaze"]["psnr"] < 100
    paper_row = f"| {network.display_name} 3D ({SETTINGS['3D'].published_source(network.architecture)})"
    published = SETTINGS["3D"].published_for(network.architecture)
    assert paper_row + (" |" if published else ": not published |") in (out / "results.md").read_text()


def test_compiled_training_is_one_graph_that_trains_to_the_eager_weights(model, network, data_root, tmp_path,
                                                                         monkeypatch):
    """--compile: the whole training step (network and the recipe's loss terms) one graph, saved under the
    network's own key names, training to the weights of the eager run (aot_eager: Inductor's C++ code generation
    takes minutes on 2 cores; tests/test_training.py runs DFPIR's with Inductor under DFPIR_SLOW_TESTS=1)."""
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path / "inductor"))
    common = ("--lr", "1e-3", "--no-keep_every_epoch")
    _train_two_steps(model, network, data_root, tmp_path / "eager", *common)
    graphs = compile_with(monkeypatch, "aot_eager")
    try:
        _train_two_steps(model, network, data_root, tmp_path / "compiled", *common, "--compile")
    finally:
        torch._dynamo.reset()
    assert len(graphs) == 1, f"{len(graphs)} graphs: the training step has graph breaks"
    eager = read_checkpoint(tmp_path / "eager" / "last.ckpt").state_dict
    compiled = read_checkpoint(tmp_path / "compiled" / "last.ckpt").state_dict
    assert list(compiled) == list(network.build().state_dict())  # no "_orig_mod." prefix
    assert all(torch.allclose(compiled[k], v, atol=1e-5) for k, v in eager.items())
    assert F.l1_loss(compiled["output.weight"], eager["output.weight"]) < 1e-6
