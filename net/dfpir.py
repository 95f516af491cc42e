"""DFPIR: a Restormer U-Net steered by CLIP text codes through four DGPBs (docs/protocol.md section 1).

```
e1  = encoder_level1(patch_embed(I))                                        C,  H,   W
e2  = encoder_level2(down1_2(e1))                                           2C, H/2
e3  = encoder_level3(down2_3(e2))                                           4C, H/4
lat = DGPB_latent(latent(down3_4(e3)), t)                                   8C, H/8
d3  = decoder_level3(reduce_chan_level3(cat(up4_3(lat), DGPB_3(e3, t))))   4C
d2  = decoder_level2(reduce_chan_level2(cat(up3_2(d3),  DGPB_2(e2, t))))   2C
d1  = decoder_level1(cat(up2_1(d2), DGPB_1(e1, t)))                         2C
out = output(refinement(d1)) + I
```
Module names are those of the authors' checkpoints (DGPB_1..3 = ``encoder_shuffle_channel1..3``,
DGPB_latent = ``latent_shuffle_channel``), so their state dicts load without renaming.

``DFPIR.save_pretrained`` / ``push_to_hub`` / ``from_pretrained`` read and write the Hugging Face
Hub format (``net/hub_model.py``, shared by every registered network).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from net.blocks import (
    Downsample,
    OverlapPatchEmbed,
    RestormerConfig,
    TransformerBlock,
    Upsample,
    check_image_batch,
    set_fast_path,
)
from net.dgpb import DGPB, TEXT_DIM
from net.hub_model import HubMixin
from net.recipe import PAPER_RECIPE
from net.registry import register_architecture, register_model


@dataclass
class DFPIRConfig(RestormerConfig):
    """Architecture of DFPIR. The defaults are the paper's (31,104,761 parameters)."""

    text_dim: int = TEXT_DIM  # width of the CLIP text code

    @classmethod
    def paper(cls) -> DFPIRConfig:
        """The configuration of the paper and of the released checkpoints."""
        return cls()

    @classmethod
    def tiny(cls) -> DFPIRConfig:
        """A small network with the same structure (every block type, all four DGPBs) for fast tests."""
        return cls(dim=16, num_blocks=[1, 1, 1, 2], num_refinement_blocks=1)


@register_architecture("dfpir", recipe=PAPER_RECIPE)
class DFPIR(nn.Module, HubMixin):
    """The all-in-one restoration network of DFPIR. ``DFPIR(**config)``; defaults are the paper's.

    Registered as architecture ``dfpir``, with the configurations ``--model paper`` and ``--model tiny``
    (``net/registry.py``).

    Hugging Face Hub format (``net/hub_model.py``): ``save_pretrained(dir)`` and ``push_to_hub(repo_id)``
    (huggingface_hub's ``PyTorchModelHubMixin``) write the weights as safetensors, the config and
    ``prompt_table`` (set it first: a Hub model is self-contained, like a ``.ckpt``);
    ``DFPIR.from_pretrained(dir_or_repo_id)`` returns the network with its ``prompt_table`` and
    ``prompt_set``. The text code of degradation id i is ``net.prompt_table.embeddings[i]``.
    """

    card_summary = ("DFPIR (Degradation-Aware Feature Perturbation for All-in-One Image Restoration, Tian et al., "
                    "CVPR 2025): one network that removes noise, rain, haze, motion blur and low light, steered by "
                    "the CLIP text code of a degradation prompt.")  # the model card's (net/hub_model.py)
    size_multiple = 8  # three 2x downsamplings
    uses_text_prompts = True  # forward(img, text_code) needs the degradation's text code
    compiled_blocks = (TransformerBlock, DGPB)  # the repeated units --compile compiles (net/speed.py)

    def __init__(self, **config):
        super().__init__()
        cfg = DFPIRConfig(**config)
        self.config = cfg
        c, heads, blocks = cfg.dim, cfg.heads, cfg.num_blocks

        def level(channels: int, n: int, num_heads: int) -> nn.Sequential:
            return nn.Sequential(
                *(
                    TransformerBlock(channels, num_heads, cfg.ffn_expansion_factor, cfg.bias, cfg.layernorm_type)
                    for _ in range(n)
                )
            )

        def dgpb(channels: int, num_heads: int) -> DGPB:
            return DGPB(channels, num_heads, cfg.ffn_expansion_factor, cfg.bias, cfg.layernorm_type, cfg.text_dim)

        # Created in the authors' order (the order of their state dict).
        self.patch_embed = OverlapPatchEmbed(cfg.inp_channels, c, cfg.bias)
        self.encoder_level1 = level(c, blocks[0], heads[0])
        self.encoder_shuffle_channel1 = dgpb(c, heads[0])
        self.down1_2 = Downsample(c)
        self.encoder_level2 = level(c * 2, blocks[1], heads[1])
        self.encoder_shuffle_channel2 = dgpb(c * 2, heads[1])
        self.down2_3 = Downsample(c * 2)
        self.encoder_level3 = level(c * 4, blocks[2], heads[2])
        self.encoder_shuffle_channel3 = dgpb(c * 4, heads[2])
        self.down3_4 = Downsample(c * 4)
        self.latent = level(c * 8, blocks[3], heads[3])
        self.latent_shuffle_channel = dgpb(c * 8, heads[3])
        self.up4_3 = Upsample(c * 8)
        self.reduce_chan_level3 = nn.Conv2d(c * 8, c * 4, kernel_size=1, bias=cfg.bias)
        self.decoder_level3 = level(c * 4, blocks[2], heads[2])
        self.up3_2 = Upsample(c * 4)
        self.reduce_chan_level2 = nn.Conv2d(c * 4, c * 2, kernel_size=1, bias=cfg.bias)
        self.decoder_level2 = level(c * 2, blocks[1], heads[1])
        self.up2_1 = Upsample(c * 2)
        self.decoder_level1 = level(c * 2, blocks[0], heads[0])
        self.refinement = level(c * 2, cfg.num_refinement_blocks, heads[0])
        self.output = nn.Conv2d(c * 2, cfg.out_channels, kernel_size=3, padding=1, bias=cfg.bias)

    # ----------------------------------------------------------------------------- structure
    def dgpbs(self) -> dict[str, DGPB]:
        """The four DGPBs by their checkpoint names, from full resolution to the latent."""
        return {
            "encoder_shuffle_channel1": self.encoder_shuffle_channel1,
            "encoder_shuffle_channel2": self.encoder_shuffle_channel2,
            "encoder_shuffle_channel3": self.encoder_shuffle_channel3,
            "latent_shuffle_channel": self.latent_shuffle_channel,
        }

    def set_fast_path(self, enabled: bool = True) -> DFPIR:
        """Switch every LayerNorm, attention, GDFN gate and CAAPM mask between the fast (default)
        and reference formulations (``net/blocks.py``).

        Both compute the same function (within ~1e-5 in float32); the reference one is the faithful
        eager baseline of ``benchmarks/benchmark.py``. ``net.speed.prepare_for_speed`` adds
        channels_last and compilation.
        """
        return set_fast_path(self, enabled)

    def forward(self, img: torch.Tensor, text_code: torch.Tensor) -> torch.Tensor:
        """img: (B, 3, H, W) in [0, 1], H and W multiples of 8; text_code: (B, 512), one per sample.

        Returns the restored image (B, 3, H, W) (not clipped).
        """
        self._check_inputs(img, text_code)
        e1 = self.encoder_level1(self.patch_embed(img))
        e2 = self.encoder_level2(self.down1_2(e1))
        e3 = self.encoder_level3(self.down2_3(e2))
        lat = self.latent_shuffle_channel(self.latent(self.down3_4(e3)), text_code)

        d3 = torch.cat([self.up4_3(lat), self.encoder_shuffle_channel3(e3, text_code)], dim=1)
        d3 = self.decoder_level3(self.reduce_chan_level3(d3))
        d2 = torch.cat([self.up3_2(d3), self.encoder_shuffle_channel2(e2, text_code)], dim=1)
        d2 = self.decoder_level2(self.reduce_chan_level2(d2))
        d1 = torch.cat([self.up2_1(d2), self.encoder_shuffle_channel1(e1, text_code)], dim=1)
        d1 = self.decoder_level1(d1)
        return self.output(self.refinement(d1)) + img

    def _check_inputs(self, img: torch.Tensor, text_code: torch.Tensor) -> None:
        check_image_batch(img, self.config.inp_channels, self.size_multiple, "DFPIR")
        if text_code.shape != (img.shape[0], self.config.text_dim):
            raise ValueError(
                f"text_code must be (B, {self.config.text_dim}) with one code per image, got "
                f"{tuple(text_code.shape)} for a batch of {img.shape[0]} images"
            )


register_model("paper", "dfpir", lambda: DFPIRConfig.paper().to_dict())
register_model("tiny", "dfpir", lambda: DFPIRConfig.tiny().to_dict())
