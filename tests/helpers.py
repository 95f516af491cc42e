"""Helpers shared by several test modules (fixtures live in conftest.py); a test module never imports
from another test module."""

from __future__ import annotations

import torch


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
