"""PromptIR (Potlapalli et al., NeurIPS 2023): a blind all-in-one Restormer U-Net whose decoder is
steered by prompts that each image mixes from learned components (docs/protocol.md section 7).

The released configuration (``decoder=True``), C = 48:
```
e1  = encoder_level1(patch_embed(I))                                 C,   H,   W
e2  = encoder_level2(down1_2(e1))                                    2C,  H/2
e3  = encoder_level3(down2_3(e2))                                    4C,  H/4
lat = latent(down3_4(e3))                                            8C,  H/8
lat = PIM_3(lat, PGB_3(lat))                                         8C -> 4C
d3  = decoder_level3(reduce_chan_level3(cat(up4_3(lat), e3)))        2C + 4C -> 4C
d3  = PIM_2(d3, PGB_2(d3))                                           4C -> 4C
d2  = decoder_level2(reduce_chan_level2(cat(up3_2(d3), e2)))         2C + 2C -> 2C
d2  = PIM_1(d2, PGB_1(d2))                                           2C -> 2C
d1  = decoder_level1(cat(up2_1(d2), e1))                             C + C = 2C
out = output(refinement(d1)) + I
```
PGB_i, the prompt generation block (the paper's prompt generation module), is ``prompt{i}``. The
prompt interaction module PIM_i(x, p) = ``reduce_noise_level{i}(noise_level{i}(cat(x, p)))``: a
Restormer block on the concatenation (4 heads at every level) and a 1x1 convolution back down.
All Restormer parts are this project's blocks (``net/blocks.py``, the same definitions and
state-dict names as in DFPIR).

Module names are those of the reference implementation, created in the order of its state dict,
so the released checkpoints load strictly. That includes six modules the reference creates but
never calls (``chnl_reduce1..3``, ``reduce_noise_channel_1..3``): they hold weights in every
checkpoint and receive no gradient.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
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
from net.hub_model import HubMixin
from net.recipe import Recipe, adamw, linear_warmup_cosine, step_at_epoch
from net.registry import register_architecture, register_model

WARMUP_EPOCHS = 15  # linear warm-up of PromptIR's schedule, from lr 0 (docs/protocol.md section 7.2)


PROMPTIR_RECIPE = Recipe(
    # L1 (the default loss); AdamW lr 2e-4 with default betas and weight decay 0.01; batch 8 per GPU, 120 epochs.
    optimizer=adamw, lr=2e-4, batch_size=8, epochs=120,
    # Linear-warmup cosine (warmup 15, max 150, start lr 0, eta_min 0) in closed form, stepped per epoch
    # with scheduler.step(current_epoch) as the authors' lr_scheduler_step does (docs/baselines.md).
    scheduler=linear_warmup_cosine(WARMUP_EPOCHS), scheduler_step=step_at_epoch, lr_schedule_epochs=150,
    # No validation and no model selection during training; a checkpoint kept after every epoch.
    val_every=0, select_best_on_test=False, keep_every_epoch=True,
    find_unused_parameters=True,  # the six modules the forward pass never calls (PromptIR.unused_modules)
)
"""PromptIR's training protocol of the released 3D checkpoint (docs/protocol.md section 7.2)."""


@dataclass
class PromptIRConfig(RestormerConfig):
    """Architecture of PromptIR. The defaults are the released configuration (35,592,263 parameters)."""

    prompt_len: int = 5  # L: prompt components per PGB
    prompt_dims: list[int] = field(default_factory=lambda: [64, 128, 320])  # D of prompt1..3
    prompt_sizes: list[int] = field(default_factory=lambda: [64, 32, 16])  # S: prompt1..3 components are S x S
    prompt_heads: int = 4  # heads of the three noise_level blocks (PIM), whatever their level
    # Output widths of the unused chnl_reduce1..3, whose sum with each level's width is the input of
    # the unused reduce_noise_channel_1..3. Only their shapes matter (strict loading).
    unused_reduced_dims: list[int] = field(default_factory=lambda: [64, 128, 256])

    @classmethod
    def released(cls) -> PromptIRConfig:
        """The configuration of the released checkpoint."""
        return cls()

    @classmethod
    def tiny(cls) -> PromptIRConfig:
        """A small network with the same structure (every block type, all three PGBs) for fast tests."""
        return cls(dim=16, num_blocks=[1, 1, 1, 2], num_refinement_blocks=1, prompt_dims=[8, 16, 32],
                   prompt_sizes=[16, 8, 4], unused_reduced_dims=[8, 16, 24])


class PromptGenerationBlock(nn.Module):
    """PGB(D, L, S, Cin): an image-conditioned prompt, mixed from L learned components.

    On features x (B, Cin, H, W):
    w = softmax over L of ``linear_layer``(spatial mean of x)                 (B, L)
    prompt = sum_l w[:, l] * ``prompt_param``[0, l]                           (B, D, S, S)
    return ``conv3x3``(bilinear resize of prompt to (H, W), align_corners=False)  (B, D, H, W)
    """

    def __init__(self, prompt_dim: int, prompt_len: int, prompt_size: int, in_channels: int):
        super().__init__()
        self.prompt_param = nn.Parameter(torch.rand(1, prompt_len, prompt_dim, prompt_size, prompt_size))
        self.linear_layer = nn.Linear(in_channels, prompt_len)
        self.conv3x3 = nn.Conv2d(prompt_dim, prompt_dim, kernel_size=3, padding=1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, Cin, H, W) -> prompt (B, D, H, W)."""
        weights = self.linear_layer(x.mean(dim=(-2, -1))).softmax(dim=1)  # (B, L)
        prompt = torch.einsum("bl,ldhw->bdhw", weights, self.prompt_param[0])  # (B, D, S, S)
        prompt = F.interpolate(prompt, size=x.shape[-2:], mode="bilinear", align_corners=False)
        return self.conv3x3(prompt)


@register_architecture("promptir", recipe=PROMPTIR_RECIPE)
class PromptIR(nn.Module, HubMixin):
    """The PromptIR network, released configuration by default: ``PromptIR(**config)``.

    Registered as architecture ``promptir``, with the configurations ``--model promptir`` (released)
    and ``--model promptir_tiny`` (``net/registry.py``). Blind: ``forward(img)``; the registry's
    text_code argument is accepted and ignored (``uses_text_prompts = False``).

    Hugging Face Hub format (``net/hub_model.py``): ``save_pretrained(dir)``, ``push_to_hub(repo_id)``,
    ``PromptIR.from_pretrained(dir_or_repo_id)`` (no prompt table: it takes no text prompts).
    """

    card_summary = ("PromptIR (Potlapalli et al., NeurIPS 2023): an all-in-one blind restorer; learned prompt "
                    "components, mixed per image from its own features, steer a Restormer U-Net. No text, no "
                    "task id.")  # the model card's (net/hub_model.py)

    size_multiple = 8  # three 2x downsamplings
    uses_text_prompts = False  # blind: the prompts come from the image features
    compiled_blocks = (TransformerBlock, PromptGenerationBlock)  # the units --compile compiles (net/speed.py)

    def __init__(self, **config):
        super().__init__()
        cfg = PromptIRConfig(**config)
        self.config = cfg
        c, heads, blocks = cfg.dim, cfg.heads, cfg.num_blocks
        p_dims, reduced = cfg.prompt_dims, cfg.unused_reduced_dims

        def block(channels: int, num_heads: int) -> TransformerBlock:
            return TransformerBlock(channels, num_heads, cfg.ffn_expansion_factor, cfg.bias, cfg.layernorm_type)

        def level(channels: int, n: int, num_heads: int) -> nn.Sequential:
            return nn.Sequential(*(block(channels, num_heads) for _ in range(n)))

        def pgb(i: int, in_channels: int) -> PromptGenerationBlock:
            return PromptGenerationBlock(p_dims[i], cfg.prompt_len, cfg.prompt_sizes[i], in_channels)

        def conv1x1(cin: int, cout: int) -> nn.Conv2d:
            return nn.Conv2d(cin, cout, kernel_size=1, bias=cfg.bias)

        # Created in the reference's order (the order of its state dict).
        self.patch_embed = OverlapPatchEmbed(cfg.inp_channels, c, cfg.bias)
        self.prompt1 = pgb(0, c * 2)  # on d2
        self.prompt2 = pgb(1, c * 4)  # on d3
        self.prompt3 = pgb(2, c * 8)  # on the latent
        # Unused by the forward pass (in the reference too); kept for strict loading.
        self.chnl_reduce1 = conv1x1(p_dims[0], reduced[0])
        self.chnl_reduce2 = conv1x1(p_dims[1], reduced[1])
        self.chnl_reduce3 = conv1x1(p_dims[2], reduced[2])
        self.reduce_noise_channel_1 = conv1x1(c + reduced[0], c)  # unused
        self.encoder_level1 = level(c, blocks[0], heads[0])
        self.down1_2 = Downsample(c)
        self.reduce_noise_channel_2 = conv1x1(c * 2 + reduced[1], c * 2)  # unused
        self.encoder_level2 = level(c * 2, blocks[1], heads[1])
        self.down2_3 = Downsample(c * 2)
        self.reduce_noise_channel_3 = conv1x1(c * 4 + reduced[2], c * 4)  # unused
        self.encoder_level3 = level(c * 4, blocks[2], heads[2])
        self.down3_4 = Downsample(c * 4)
        self.latent = level(c * 8, blocks[3], heads[3])
        self.up4_3 = Upsample(c * 4)
        self.reduce_chan_level3 = conv1x1(c * 2 + c * 4, c * 4)
        self.noise_level3 = block(c * 8 + p_dims[2], cfg.prompt_heads)
        self.reduce_noise_level3 = conv1x1(c * 8 + p_dims[2], c * 4)
        self.decoder_level3 = level(c * 4, blocks[2], heads[2])
        self.up3_2 = Upsample(c * 4)
        self.reduce_chan_level2 = conv1x1(c * 2 + c * 2, c * 2)
        self.noise_level2 = block(c * 4 + p_dims[1], cfg.prompt_heads)
        self.reduce_noise_level2 = conv1x1(c * 4 + p_dims[1], c * 4)
        self.decoder_level2 = level(c * 2, blocks[1], heads[1])
        self.up2_1 = Upsample(c * 2)
        self.noise_level1 = block(c * 2 + p_dims[0], cfg.prompt_heads)
        self.reduce_noise_level1 = conv1x1(c * 2 + p_dims[0], c * 2)
        self.decoder_level1 = level(c * 2, blocks[0], heads[0])
        self.refinement = level(c * 2, cfg.num_refinement_blocks, heads[0])
        self.output = nn.Conv2d(c * 2, cfg.out_channels, kernel_size=3, padding=1, bias=cfg.bias)

    def unused_modules(self) -> dict[str, nn.Conv2d]:
        """The six modules the reference creates but never calls, by their checkpoint names."""
        names = ("chnl_reduce1", "chnl_reduce2", "chnl_reduce3",
                 "reduce_noise_channel_1", "reduce_noise_channel_2", "reduce_noise_channel_3")
        return {name: getattr(self, name) for name in names}

    def set_fast_path(self, enabled: bool = True) -> PromptIR:
        """Switch every LayerNorm, attention and GDFN gate between the fast (default) and reference
        formulations (``net/blocks.py``); ``net.speed.prepare_for_speed`` adds channels_last and compilation."""
        return set_fast_path(self, enabled)

    @staticmethod
    def _interact(
        x: torch.Tensor, pgb: PromptGenerationBlock, block: TransformerBlock, reduce: nn.Conv2d
    ) -> torch.Tensor:
        """Prompt interaction: x (B, n, h, w) -> reduce(block(cat(x, pgb(x)))) (B, reduce's width, h, w)."""
        return reduce(block(torch.cat([x, pgb(x)], dim=1)))

    def forward(self, img: torch.Tensor, text_code: torch.Tensor | None = None) -> torch.Tensor:
        """img: (B, 3, H, W) in [0, 1], H and W multiples of 8; text_code is ignored (blind network).

        Returns the restored image (B, 3, H, W) (not clipped).
        """
        check_image_batch(img, self.config.inp_channels, self.size_multiple, "PromptIR")
        e1 = self.encoder_level1(self.patch_embed(img))
        e2 = self.encoder_level2(self.down1_2(e1))
        e3 = self.encoder_level3(self.down2_3(e2))
        lat = self.latent(self.down3_4(e3))
        lat = self._interact(lat, self.prompt3, self.noise_level3, self.reduce_noise_level3)

        d3 = self.decoder_level3(self.reduce_chan_level3(torch.cat([self.up4_3(lat), e3], dim=1)))
        d3 = self._interact(d3, self.prompt2, self.noise_level2, self.reduce_noise_level2)
        d2 = self.decoder_level2(self.reduce_chan_level2(torch.cat([self.up3_2(d3), e2], dim=1)))
        d2 = self._interact(d2, self.prompt1, self.noise_level1, self.reduce_noise_level1)
        d1 = self.decoder_level1(torch.cat([self.up2_1(d2), e1], dim=1))
        return self.output(self.refinement(d1)) + img



register_model("promptir", "promptir", lambda: PromptIRConfig.released().to_dict())
register_model("promptir_tiny", "promptir", lambda: PromptIRConfig.tiny().to_dict())
