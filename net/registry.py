"""Restoration networks by name: architectures, named configurations (``--model``) and the one rule
that decides which network a run builds.

- An **architecture** is a ``nn.Module`` class registered under a name with
  ``@register_architecture("name", recipe=...)``, with the :class:`net.recipe.Recipe` it is trained
  with (loss, optimiser, schedule, training defaults; default: the paper's, ``PAPER_RECIPE``).
  Every checkpoint this project writes stores that name beside
  the configuration (``checkpoint["dfpir"]["architecture"]`` / ``["model_config"]``), so a file
  rebuilds its own network. The class follows this protocol:

  - ``Net(**config)`` builds it from a plain dict of its configuration (ints, floats, strs, lists);
  - ``forward(img, text_code)``: img (B, 3, H, W) in [0, 1], text_code (B, D) the prompt codes of
    the samples (D: the configuration's ``text_dim``, else 512) -> restored (B, 3, H, W), not clipped;
  - ``uses_text_prompts`` (class attribute, True when absent): whether forward reads text_code.
    A blind network (PromptIR) sets it to False and takes ``forward(img, text_code=None)``,
    ignoring text_code;
  - ``size_multiple`` (class attribute): H and W must be multiples of it; forward refuses any other
    size with a ValueError saying "multiples of <size_multiple>" (tiling and the demo pad to it, the
    evaluation centre-crops to a multiple of 16);
  - optional ``min_size`` (class attribute): the smallest H and W forward takes (BioIR's 12); smaller
    images are padded up to it by the demo, the web app and the evaluation;
  - every trainable parameter (``requires_grad``) gets a gradient from the restored image, except
    those of the modules an optional ``unused_modules()`` ({name: module}) declares never called
    (PromptIR's six, kept for strict loading of the released file);
  - optional ``card_summary`` (class attribute, one paragraph): the model card's description
    (``net/hub_model.py``); inheriting ``net.hub_model.HubMixin`` adds ``save_pretrained`` /
    ``push_to_hub`` / ``from_pretrained`` on the class (the module functions work without it);
  - optional ``set_fast_path(enabled)`` (a faster formulation of the same function) and
    ``compiled_blocks`` (module types ``--compile`` compiles one by one; without it the whole
    network is compiled), used by ``net/speed.py``.

- A **model** is a named configuration of an architecture (timm-style entry point), the values of
  ``--model``: ``register_model("tiny", "dfpir", config_fn)``.

- A **tiny preset** is a model whose name contains ``tiny`` (``tiny``, ``promptir_tiny``): a small
  configuration with every block type, for fast tests (:func:`tiny_models`). Registering one is how a
  network gets the registry-wide contract test (``tests/test_contract.py``: input sizes, gradients,
  strict save/load, recognition by layout, the Hub round trip, training and evaluation through the
  scripts) with no test of its own.

- A checkpoint that does not name its network (the authors' DFPIR ``.pth.tar``, PromptIR's released
  Lightning ``model.ckpt``, a bare state dict) is **recognised by its layout**: a registered model
  declares its state dict by construction, the keys and shapes of ``Net(**config)`` (computed once
  on the ``meta`` device, no memory, :func:`model_layout`), and the file must fit exactly one model
  (:func:`recognise`). No per-architecture code is needed; a new model is recognised as soon as
  it is registered.

- :func:`resolve_network` is the only place that decides which architecture and configuration a
  run builds, for training from scratch, ``--init_from``, ``--resume``, evaluation and the demo.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import torch
from torch import nn

from net.recipe import PAPER_RECIPE, Recipe
from utils.registry import Registry

if TYPE_CHECKING:
    from net.checkpoint import Checkpoint

DEFAULT_MODEL = "paper"  # the network of the paper and of the released checkpoints
CLIP_TEXT_DIM = 512  # prompt-code width of a network whose configuration has no text_dim (CLIP ViT-B/32)


class NetworkError(ValueError):
    """An unknown network name, or options that contradict a checkpoint's network; the message says what to do."""


@dataclass(frozen=True)
class Architecture:
    """A registered network class, how it is trained (``net/recipe.py``) and its name in tables, default
    folders and model cards."""

    cls: type[nn.Module]
    recipe: Recipe
    display_name: str


@dataclass(frozen=True)
class ModelEntry:
    """A named configuration of an architecture: the value of ``--model``."""

    name: str
    architecture: str
    config: Callable[[], dict]  # -> the full configuration dict, ``Net(**config)``


ARCHITECTURES: Registry[Architecture] = Registry("architecture", "net.registry.register_architecture")
MODELS: Registry[ModelEntry] = Registry("model", "net.registry.register_model")


def register_architecture(name: str, recipe: Recipe = PAPER_RECIPE, display_name: str | None = None,
                          ) -> Callable[[type[nn.Module]], type[nn.Module]]:
    """Class decorator: register a network class under ``name`` (stored in its checkpoints), trained
    with ``recipe`` (``net/recipe.py``) and shown as ``display_name`` (default: the class name) in
    result tables, default folder names (``checkpoints/<display_name>_3D``) and model cards."""

    def register(cls: type[nn.Module]) -> type[nn.Module]:
        if name in ARCHITECTURES and ARCHITECTURES[name].cls is not cls:
            raise ValueError(f"architecture {name!r} is already registered ({ARCHITECTURES[name].cls.__name__})")
        if not isinstance(getattr(cls, "size_multiple", None), int):
            raise ValueError(f"{cls.__name__} needs an int class attribute size_multiple (see net/registry.py)")
        cls.architecture = name
        ARCHITECTURES[name] = Architecture(cls, recipe, display_name or cls.__name__)  # the same class again: replaced
        return cls

    return register


def register_model(name: str, architecture: str, config: Callable[[], dict]) -> ModelEntry:
    """Register ``--model name``: the configuration ``config()`` of a registered architecture."""
    if architecture not in ARCHITECTURES:
        raise ValueError(f"model {name!r}: register its architecture {architecture!r} first")
    return MODELS.register(name, ModelEntry(name, architecture, config))


def model_names() -> list[str]:
    """The values ``--model`` accepts."""
    return list(MODELS)


def tiny_models() -> list[str]:
    """The tiny presets: the models whose name contains ``tiny`` (see the module docstring)."""
    return [name for name in MODELS if "tiny" in name]


def _architecture(name: str) -> Architecture:
    if name not in ARCHITECTURES:
        raise NetworkError(f"unknown network architecture {name!r}; this installation has "
                           f"{list(ARCHITECTURES)} (register it with net.registry.register_architecture)")
    return ARCHITECTURES[name]


def recipe_of(architecture: str) -> Recipe:
    """The training recipe registered with an architecture."""
    return _architecture(architecture).recipe


def display_name(architecture: str) -> str:
    """An architecture's name in tables, default folders and model cards (e.g. 'DFPIR', 'PromptIR')."""
    return _architecture(architecture).display_name


def build_network(architecture: str, config: dict) -> nn.Module:
    """``Net(**config)`` of a registered architecture."""
    return _architecture(architecture).cls(**config)


def create_model(name: str) -> nn.Module:
    """The network of ``--model name``, freshly initialised."""
    return NetworkSpec.of_model(name).build()


@dataclass(frozen=True)
class NetworkSpec:
    """What to build: an architecture, its full configuration, and where they were taken from."""

    architecture: str
    config: dict
    origin: str

    @classmethod
    def of_model(cls, name: str) -> NetworkSpec:
        if name not in MODELS:
            raise NetworkError(f"unknown --model {name!r}; choose from {model_names()}")
        entry = MODELS[name]
        return cls(entry.architecture, entry.config(), f"--model {name}")

    def build(self) -> nn.Module:
        return build_network(self.architecture, self.config)

    @property
    def size_multiple(self) -> int:
        """H and W of the network's inputs must be multiples of it (the class attribute)."""
        return _architecture(self.architecture).cls.size_multiple

    @property
    def min_size(self) -> int:
        """The smallest H and W the network takes (the optional class attribute; else its size multiple)."""
        cls = _architecture(self.architecture).cls
        return getattr(cls, "min_size", cls.size_multiple)

    @property
    def recipe(self) -> Recipe:
        """How the network is trained (``register_architecture(..., recipe=...)``)."""
        return recipe_of(self.architecture)

    @property
    def display_name(self) -> str:
        """The network's name in tables, default folders and model cards (e.g. 'DFPIR', 'PromptIR')."""
        return display_name(self.architecture)

    @property
    def uses_text_prompts(self) -> bool:
        """Whether the network reads text codes (the class attribute; False: blind, e.g. PromptIR)."""
        return getattr(_architecture(self.architecture).cls, "uses_text_prompts", True)

    @property
    def text_dim(self) -> int | None:
        """Width of the prompt codes the network takes: its ``text_dim`` setting, else CLIP's 512; None
        for a network without text prompts (it needs no prompt table)."""
        if not self.uses_text_prompts:
            return None
        return int(self.config.get("text_dim", CLIP_TEXT_DIM))

    def describe(self) -> str:
        names = [m.name for m in MODELS.values() if self.same_network(NetworkSpec.of_model(m.name))]
        return f"{names[0]} ({self.architecture})" if names else f"{self.architecture} (custom configuration)"

    def same_network(self, other: NetworkSpec) -> bool:
        return self.architecture == other.architecture and self.config == other.config


Layout = dict[str, tuple[int, ...]]  # state-dict key -> tensor shape


@functools.cache
def model_layout(name: str) -> Layout:
    """The state-dict layout of ``--model name``: every key and shape of ``Net(**config)``, built on
    the meta device (no memory, no initialisation cost)."""
    with torch.device("meta"):
        net = NetworkSpec.of_model(name).build()
    return layout_of(net.state_dict())


def layout_of(state_dict: Mapping[str, torch.Tensor]) -> Layout:
    """Every key of ``state_dict`` with its tensor's shape."""
    return {key: tuple(tensor.shape) for key, tensor in state_dict.items()}


def recognise(state_dict: Mapping[str, torch.Tensor]) -> list[str]:
    """The registered models whose layout is exactly that of ``state_dict`` (same keys, same shapes)."""
    layout = layout_of(state_dict)
    return [name for name in MODELS if model_layout(name) == layout]


def _misfit(name: str, layout: Layout) -> str:
    """How ``layout`` differs from --model name's, in a few words."""
    expected = model_layout(name)
    missing = sum(k not in layout for k in expected)
    unexpected = sum(k not in expected for k in layout)
    shapes = sum(k in layout and layout[k] != v for k, v in expected.items())
    return (f"{name} ({MODELS[name].architecture}, {len(expected)} tensors: {missing} missing, {unexpected} "
            f"unexpected, {shapes} of another shape)")


def recognised_network(checkpoint: Checkpoint) -> NetworkSpec:
    """The network of a checkpoint that does not record one, recognised by its layout (:func:`recognise`);
    NetworkError naming the layouts tried when no model, or more than one, fits."""
    fits = recognise(checkpoint.state_dict)
    if len(fits) == 1:
        return replace(NetworkSpec.of_model(fits[0]),
                                   origin=f"the key layout of {checkpoint.path} (--model {fits[0]})")
    if fits:
        raise NetworkError(f"{checkpoint.path} fits several registered networks ({', '.join(fits)}); choose one with "
                           f"--model")
    layout = layout_of(checkpoint.state_dict)
    tried = "; ".join(_misfit(name, layout) for name in MODELS)
    raise NetworkError(f"{checkpoint.path} records no network and its {len(layout)} tensors fit no registered network "
                       f"(tried {tried}); is it a checkpoint of another network? Register it (docs/extending.md), "
                       f"or pass --model to see the strict-loading differences")


def resolve_network(model: str | None, checkpoint: Checkpoint | None = None) -> NetworkSpec:
    """The network a run builds, from ``--model`` (None when not given) and the checkpoint it starts
    from (``--resume``, ``--init_from``, the evaluated or demo checkpoint), by one rule:

    - a checkpoint that records its network (this project's) decides; ``--model`` may be given
      only if it names the same network, otherwise NetworkError (never a silent choice);
    - otherwise ``--model`` decides when given (the file must then load strictly into it);
    - otherwise a checkpoint that does not record its network (the authors' ``.pth.tar``, PromptIR's
      released ``model.ckpt``, a bare state dict) is recognised by its layout
      (:func:`recognised_network`; NetworkError if it fits no registered network, or several);
    - without a checkpoint: ``paper``.
    """
    requested = NetworkSpec.of_model(model) if model is not None else None
    if checkpoint is not None and checkpoint.model_config is not None:
        recorded = NetworkSpec(checkpoint.architecture, dict(checkpoint.model_config), f"checkpoint {checkpoint.path}")
        if requested is not None and not requested.same_network(recorded):
            raise NetworkError(
                f"--model {model}: {checkpoint.path} holds a {recorded.describe()} network, not a "
                f"{requested.describe()} one, and a run from a checkpoint keeps its network: drop --model (the "
                "checkpoint's network is used) or pick another checkpoint"
            )
        return recorded
    if requested is not None:
        return requested
    if checkpoint is not None:
        return recognised_network(checkpoint)
    return NetworkSpec.of_model(DEFAULT_MODEL)
