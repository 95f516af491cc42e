"""DFPIR's side of the Hugging Face Hub format (``net/checkpoint/hub_folder.py``): the
``PyTorchModelHubMixin`` methods of :class:`net.dfpir.DFPIR` and its model card.

- Write: ``net.prompt_table = table; net.save_pretrained(dir)`` or ``net.push_to_hub(repo_id)``, or
  convert any checkpoint file: ``python -m net.hub --ckpt FILE --out DIR [--push_to_hub USER/NAME]``.
- Read: ``DFPIR.from_pretrained(dir_or_repo_id)``, or pass the folder or repo id wherever a
  checkpoint is accepted (``--ckpt``, ``--init_from``, the demo): ``net.checkpoint.read_checkpoint``
  turns it into the same ``Checkpoint`` record as a file, loaded as strictly.
"""

from __future__ import annotations

from pathlib import Path

import torch
from huggingface_hub import ModelCard, ModelCardData, PyTorchModelHubMixin
from torch import nn

from net.checkpoint import CheckpointError, load_pretrained
from net.checkpoint.hub_folder import read_hub_checkpoint, write_hub_files

ARCHITECTURE = "DFPIR"  # config.json's "architecture" of DFPIR's Hub folders


class DFPIRHubMixin(PyTorchModelHubMixin):
    """``save_pretrained`` / ``push_to_hub`` / ``from_pretrained`` of DFPIR (``net.dfpir.DFPIR``, which
    inherits it) in the Hub format.

    The network carries ``prompt_table`` and ``prompt_set`` (not in its state dict): a Hub model is
    self-contained, like a ``.ckpt``.
    """

    def _save_pretrained(self, save_directory: Path) -> None:
        """Called by the mixin's save_pretrained / push_to_hub: weights, prompt table and config.json."""
        if self.prompt_table is None:
            raise ValueError("set net.prompt_table (and net.prompt_set) before save_pretrained/push_to_hub: "
                             "a Hub model carries the prompt codes it was trained with")
        write_hub_files(save_directory, self.state_dict(), ARCHITECTURE, self.config.to_dict(),
                        self.prompt_table, self.prompt_set)

    def generate_model_card(self, *args, **kwargs) -> ModelCard:
        """The README.md of a Hub folder; ``model_card_kwargs={"results": markdown, "source": text}``."""
        return model_card(self, self._hub_mixin_info.model_card_data, **kwargs)

    @classmethod
    def from_pretrained(
        cls,
        pretrained_model_name_or_path: str | Path,
        *,
        revision: str | None = None,
        cache_dir: str | Path | None = None,
        force_download: bool = False,
        local_files_only: bool = False,
        token: str | bool | None = None,
        map_location: str | torch.device = "cpu",
    ) -> nn.Module:
        """A Hub folder or repo id -> the network (eval mode) with its ``prompt_table`` and ``prompt_set``.

        Replaces the mixin's loader, which loads non-strictly, falls back to pickled weights and
        retries for about 25 s without internet: this one reads safetensors only, refuses any key or
        shape mismatch, and fails at once with a CheckpointError when the Hub cannot be reached
        (a repo already in the local cache loads offline).
        """
        ckpt = read_hub_checkpoint(pretrained_model_name_or_path, revision=revision, cache_dir=cache_dir,
                                   force_download=force_download, local_files_only=local_files_only, token=token)
        if ckpt.architecture != cls.architecture:
            raise CheckpointError(f"{pretrained_model_name_or_path} holds a {ckpt.architecture!r} network, not "
                                  f"{cls.architecture!r}; read it with net.checkpoint.read_checkpoint")
        net = cls(**ckpt.model_config)
        load_pretrained(net, ckpt)
        net.prompt_table, net.prompt_set = ckpt.prompt_table, ckpt.prompt_set
        return net.to(map_location).eval()


def model_card(net: nn.Module, card_data: ModelCardData, results: str | None = None,
               source: str | None = None) -> ModelCard:
    """README.md of the Hub folder of ``net`` (a DFPIR with its ``prompt_table`` set).

    results: markdown shown under "Results" (e.g. a test run's results.md); source: where the weights came from.
    """
    cfg = net.config
    params = sum(p.numel() for p in net.parameters())
    prompts = "\n".join(f"| {i} | {p} |" for i, p in enumerate(net.prompt_table.prompts))
    lines = [
        "---", card_data.to_yaml(), "---", "",
        "# DFPIR", "",
        ("DFPIR (Degradation-Aware Feature Perturbation for All-in-One Image Restoration, Tian et al., CVPR 2025): "
         "one network that removes noise, rain, haze, motion blur and low light, steered by the CLIP text code "
         "of a degradation prompt."), "",
        *([f"Converted from {source}.", ""] if source else []),
        "| | |", "| --- | --- |",
        f"| architecture | {ARCHITECTURE} ({params:,} parameters) |",
        (f"| configuration | dim {cfg.dim}, blocks {cfg.num_blocks}, refinement {cfg.num_refinement_blocks}, "
         f"heads {cfg.heads} |"),
        f"| prompt set | {net.prompt_set or 'unknown'} |",
        f"| prompt codes | {net.prompt_table.source} |", "",
        "Prompts by degradation id (the codes are in `prompt_table.safetensors`):", "",
        "| id | prompt |", "| --- | --- |", prompts, "",
        "## Use", "",
        "With the DFPIR code (`MODEL` is this repository's id or a local copy of it):", "",
        "```bash",
        "python test_3D_DFPIR.py --ckpt MODEL --data_root /data/dfpir",
        "python demo.py --ckpt MODEL --degradation rain --input photo.jpg",
        "```", "",
        "```python",
        "from net import DFPIR",
        'net = DFPIR.from_pretrained("MODEL")  # strict, safetensors only',
        "code = net.prompt_table.embeddings[3][None]  # id 3: rain",
        "restored = net(image, code)  # image: (1, 3, H, W) in [0, 1], H and W multiples of 8",
        "```", "",
    ]
    if results:
        lines += ["## Results", "", results.strip(), ""]
    return ModelCard("\n".join(lines))
