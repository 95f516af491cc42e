"""Helpers shared by several test modules (fixtures live in conftest.py); a test module never imports
from another test module."""

from __future__ import annotations

from pathlib import Path

import torch

from net.prompts import PromptTable, prompt_list
from net.registry import NetworkSpec


def compile_with(monkeypatch, backend) -> list:
    """Make the training's torch.compile use ``backend``; returns the list of graphs it compiled."""
    graphs = []
    real_compile = torch.compile

    def counting_backend(gm, example_inputs):
        graphs.append(gm)
        return backend(gm, example_inputs) if callable(backend) else torch._dynamo.lookup_backend(backend)(
            gm, example_inputs)

    def compile_with_backend(fn, **options):
        return real_compile(fn, **{**options, "backend": counting_backend})

    monkeypatch.setattr(torch, "compile", compile_with_backend)
    return graphs


def lightning_file(path: Path, model: str, seed: int) -> Path:
    """A checkpoint of this project's Lightning format for ``--model model``: random weights (``seed``) and
    a random prompt table (the detailed prompts) for a network with text prompts, none otherwise (as training
    stores it)."""
    network = NetworkSpec.of_model(model)
    torch.manual_seed(seed)
    net = network.build()
    prompts = prompt_list("detailed")
    table = PromptTable(prompts, torch.randn(len(prompts), network.text_dim), "random (test)").to_dict() \
        if network.uses_text_prompts else None
    torch.save({"pytorch-lightning_version": "2.5.0", "epoch": 0,
                "state_dict": {f"net.{k}": v for k, v in net.state_dict().items()},
                "dfpir": {"architecture": network.architecture, "model_config": network.config,
                          "prompt_set": "detailed" if table else None, "prompt_table": table, "setting": "3D"}},
               path)
    return path


def run_with_stages(model: torch.nn.Module, img: torch.Tensor,
                    stages) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The output of ``model(img)`` (no grad) and the outputs of its named (dotted) submodules ``stages``,
    recorded by forward hooks (the parity tests' recorded stages)."""
    outputs = {}
    hooks = [model.get_submodule(name).register_forward_hook(
        lambda _m, _i, out, name=name: outputs.__setitem__(name, out)) for name in stages]
    try:
        with torch.no_grad():
            return model(img), outputs
    finally:
        for h in hooks:
            h.remove()
