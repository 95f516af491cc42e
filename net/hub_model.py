"""Any registered network in the Hugging Face Hub format (``net/checkpoint/hub_folder.py``): one path for
every architecture to save, load and describe (model card) a network.

- Write: :func:`save_pretrained` (any registered network, given its :class:`net.registry.NetworkSpec`),
  ``net.save_pretrained(dir)`` / ``net.push_to_hub(repo_id)`` on a class that inherits
  :class:`HubMixin` (DFPIR, PromptIR), or convert any checkpoint file:
  ``python -m net.hub --ckpt FILE --out DIR [--push_to_hub USER/NAME]``.
- Read: :func:`from_pretrained` (the folder or repo id decides the network), ``Net.from_pretrained``
  (refuses a folder of another architecture), or pass the folder or repo id wherever a checkpoint is
  accepted (``--ckpt``, ``--init_from``, the demo): ``net.checkpoint.read_checkpoint`` turns it into
  the same ``Checkpoint`` record as a file, loaded as strictly.
- The model card (README.md) has one writer, :func:`model_card`.

A network carries ``prompt_table`` and ``prompt_set`` (not in its state dict; None for a network
without text prompts): a Hub model is self-contained, like a ``.ckpt``.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import torch
from huggingface_hub import ModelCard, ModelCardData, PyTorchModelHubMixin
from torch import nn

from net.checkpoint import CheckpointError, load_pretrained
from net.checkpoint.hub_folder import CARD_FILE, hub_architecture_name, read_hub_checkpoint, write_hub_files
from net.prompts import PromptTable
from net.registry import NetworkSpec, resolve_network
from utils.outputs import atomic_write

LIBRARY_NAME = "dfpir"  # the model card's library_name: this code base
CARD_TAGS = ("image-restoration", "all-in-one-image-restoration", "model_hub_mixin", "pytorch_model_hub_mixin")


def save_pretrained(directory: str | Path, net: nn.Module, network: NetworkSpec, prompt_table: PromptTable | None,
                    prompt_set: str | None, *, source: str | None = None, results: str | None = None) -> None:
    """The Hub files (weights, prompt table, config.json) and the model card of ``net`` (a ``network``)
    into ``directory`` (which exists). ``prompt_table``: the codes it was trained with, required for a
    network with text prompts, ignored (none written) for one without. ``source``/``results``: see
    :func:`model_card`."""
    table, table_set = _prompts_of(network, prompt_table, prompt_set)
    write_hub_files(directory, net.state_dict(), network.architecture, network.config, table, table_set)
    atomic_write(Path(directory) / CARD_FILE, str(model_card(network, net, table, table_set, source=source,
                                                             results=results)))


def _prompts_of(network: NetworkSpec, table: PromptTable | None, prompt_set: str | None
                ) -> tuple[PromptTable | None, str | None]:
    """The prompt table a Hub folder of ``network`` carries: ``table`` (required) for a network with text
    prompts, none for one without."""
    if not network.uses_text_prompts:
        return None, None
    if table is None:
        raise ValueError("set net.prompt_table (and net.prompt_set) before save_pretrained/push_to_hub: "
                         "a Hub model carries the prompt codes it was trained with")
    return table, prompt_set


def from_pretrained(ref: str | Path, *, architecture: str | None = None, map_location: str | torch.device = "cpu",
                    **fetch_options) -> nn.Module:
    """A Hub folder or repo id -> its network (eval mode, any registered architecture, strictly loaded from
    safetensors) with its ``prompt_table`` and ``prompt_set`` (None for a network without text prompts).

    architecture: refuse a folder of another architecture (CheckpointError); fetch_options: those of
    ``net.checkpoint.hub_folder.fetch_hub_folder`` (revision, cache_dir, force_download, local_files_only,
    token). Unlike the mixin's loader (non-strict, pickled fallback, about 25 s of retries without
    internet), this fails at once with a CheckpointError when the Hub cannot be reached (a repo already
    in the local cache loads offline).
    """
    ckpt = read_hub_checkpoint(ref, **fetch_options)
    if architecture is not None and ckpt.architecture != architecture:
        raise CheckpointError(f"{ref} holds a {ckpt.architecture!r} network, not {architecture!r}; read it with "
                              "net.hub_model.from_pretrained or net.checkpoint.read_checkpoint")
    net = resolve_network(None, ckpt).build()
    load_pretrained(net, ckpt)
    net.prompt_table, net.prompt_set = ckpt.prompt_table, ckpt.prompt_set
    return net.to(map_location).eval()


def card_data(network: NetworkSpec) -> ModelCardData:
    """The model card's metadata (its YAML header)."""
    tags = sorted({*CARD_TAGS, network.architecture})
    return ModelCardData(library_name=LIBRARY_NAME, pipeline_tag="image-to-image", tags=tags)


def model_card(network: NetworkSpec, net: nn.Module, prompt_table: PromptTable | None, prompt_set: str | None, *,
               source: str | None = None, results: str | None = None) -> ModelCard:
    """README.md of the Hub folder of ``net`` (a ``network``, any registered architecture).

    The summary is the class's ``card_summary`` (one paragraph; optional); prompt_table: the codes a
    network with text prompts carries (None: blind); results: markdown shown under "Results" (e.g. a
    test run's results.md); source: where the weights came from.
    """
    name, cls = network.display_name, type(net)
    params = sum(p.numel() for p in net.parameters())
    configuration = ", ".join(f"{key} {value}" for key, value in network.config.items())
    lines = ["---", card_data(network).to_yaml(), "---", "", f"# {name}", "",
             *([cls.card_summary, ""] if getattr(cls, "card_summary", None) else []),
             *([f"Converted from {source}.", ""] if source else []),
             "| | |", "| --- | --- |",
             f"| architecture | {hub_architecture_name(network.architecture)} ({params:,} parameters) |",
             f"| network | {network.describe()} |",
             f"| configuration | {configuration} |"]
    if prompt_table is None:
        lines += ["| text prompts | none (blind: it restores whatever degradation it sees) |", ""]
        call = "restored = net(image)"
        demo = "python demo.py --ckpt MODEL --degradation rain --input photo.jpg  # the degradation is not used"
    else:
        lines += [f"| prompt set | {prompt_set or 'unknown'} |", f"| prompt codes | {prompt_table.source} |", "",
                  "Prompts by degradation id (the codes are in `prompt_table.safetensors`):", "",
                  "| id | prompt |", "| --- | --- |", *(f"| {i} | {p} |" for i, p in enumerate(prompt_table.prompts)),
                  ""]
        call = "restored = net(image, net.prompt_table.embeddings[3][None])  # id 3: rain"
        demo = "python demo.py --ckpt MODEL --degradation rain --input photo.jpg"
    lines += ["## Use", "", "With the DFPIR code (`MODEL` is this repository's id or a local copy of it):", "",
              "```bash", "python test_3D_DFPIR.py --ckpt MODEL --data_root /data/dfpir", demo, "```", "",
              "```python", "from net.hub_model import from_pretrained",
              'net = from_pretrained("MODEL")  # strict, safetensors only',
              f"{call}  # image: (1, 3, H, W) in [0, 1], H and W multiples of {network.size_multiple}",
              "```", ""]
    if results:
        lines += ["## Results", "", results.strip(), ""]
    return ModelCard("\n".join(lines))


class HubMixin(PyTorchModelHubMixin):
    """``save_pretrained`` / ``push_to_hub`` / ``from_pretrained`` of a registered network class that
    inherits it (DFPIR, PromptIR), in the Hub format: the module functions above, on ``self``.

    The class keeps its configuration dataclass in ``self.config``; the instance carries ``prompt_table``
    and ``prompt_set`` (set them before saving a network with text prompts).
    """

    prompt_table: PromptTable | None = None
    prompt_set: str | None = None

    def _network(self) -> NetworkSpec:
        return NetworkSpec(self.architecture, asdict(self.config), f"a {type(self).__name__} instance")

    def _save_pretrained(self, save_directory: Path) -> None:
        """Called by the mixin's save_pretrained / push_to_hub: weights, prompt table and config.json."""
        network = self._network()
        table, table_set = _prompts_of(network, self.prompt_table, self.prompt_set)
        write_hub_files(save_directory, self.state_dict(), network.architecture, network.config, table, table_set)

    def generate_model_card(self, *args, **kwargs) -> ModelCard:
        """The README.md of a Hub folder (:func:`model_card`); ``model_card_kwargs={"results": markdown,
        "source": text}``."""
        network = self._network()
        table, table_set = _prompts_of(network, self.prompt_table, self.prompt_set)
        return model_card(network, self, table, table_set, **kwargs)

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: str | Path, *, map_location: str | torch.device = "cpu",
                        **fetch_options) -> nn.Module:
        """A Hub folder or repo id of this class's architecture -> the network (:func:`from_pretrained`)."""
        return from_pretrained(pretrained_model_name_or_path, architecture=cls.architecture,
                               map_location=map_location, **fetch_options)
