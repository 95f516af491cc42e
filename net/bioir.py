"""BioIR (Cui, Ren, Knoll, NeurIPS 2025): a blind all-in-one 3-level U-Net whose blocks replace
Restormer's attention by two bio-inspired operators run in parallel on the two halves of a
projection (docs/baselines.md, facts: BIOIR_REFERENCE.md of the project's spec):

- P2F, Peripheral-to-Foveal (``l2h``): wide context from a 16x16 grid of regions, weighted per pixel
  by pixel-to-region affinity, turned into a 3x3 kernel per pixel;
- F2P, Foveal-to-Peripheral (``h2l``): a static depthwise 7x7 filter, then a dynamic 5x5 kernel per
  pixel.

The released configuration, C = 48 (15,847,328 parameters):
```
e1  = encoder_level1(patch_embed(I))                  C,  H      6 blocks
e2  = encoder_level2(down1_2(e1))                     2C, H/2    6 blocks
e3  = encoder_level3(down2_3(e2))                     4C, H/4    14 blocks
d3  = decoder_level3(e3)                              4C, H/4    14 blocks (no skip at this level)
d2  = decoder_level2(fuse2(up3_2(d3), e2))            2C, H/2    6 blocks
d1  = decoder_level1(fuse1(up2_1(d2), e1))            C,  H      6 blocks
out = output(refinement(d1)) + I                      refinement: 4 blocks at C
```
Every block is Restormer's skeleton (``net/blocks.py``: LayerNorm "WithBias", GDFN with hidden
factor 3) around :class:`AttModule`. Module names and creation order are the reference's, so the
released Lightning checkpoints (``net.``-prefixed state dicts) load strictly; that includes
``reduce_chan_level2``, created but never called (it holds weights in every checkpoint and gets no
gradient). Because P2F pools over the whole feature map, every output pixel depends on the whole
image: tiling changes the result.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from net.blocks import OverlapPatchEmbed, PreNormBlock, check_image_batch, set_fast_path
from net.recipe import LossTerms, Recipe, TrainingBatch, adamw, linear_warmup_cosine, restore_batch, step_at_epoch
from net.registry import register_architecture, register_model

P2F_GRID = 16  # P2F pools the low half to a 16 x 16 grid of regions (256 = the 1x1 conv's input width)
P2F_KERNEL = 3  # P2F's per-pixel kernel (3 x 3 taps of the channel mean of high)
F2P_KERNEL = 5  # F2P's dynamic per-pixel kernel (5 x 5 taps of the channel mean of the static stage)
F2P_STATIC_KERNEL = 7  # F2P's static depthwise filter
FFN_EXPANSION = 3  # GDFN hidden width = 3 C
MIN_SIZE = 12  # smallest H and W: F2P pads by reflection of 2 at H/4 x W/4, which needs 3 pixels


FFT_WEIGHT = 0.1  # weight of the frequency-domain L1 term of the authors' loss
WARMUP_EPOCHS = 15  # linear warm-up of the authors' schedule, from lr 0


def frequency_l1(restored: torch.Tensor, clean: torch.Tensor) -> torch.Tensor:
    """The authors' frequency-domain term: the unnormalised 2-D DFT over (H, W) of each channel of both
    images (PyTorch's "backward" norm), real and imaginary parts stacked as a last axis of 2, L1 mean
    over all B x 3 x H x W x 2 entries. restored, clean (B, 3, P, P) -> scalar (grows with P)."""
    spectrum = (torch.view_as_real(torch.fft.fft2(image)) for image in (restored, clean))
    return F.l1_loss(*spectrum)


def bioir_objective(network: nn.Module, batch: TrainingBatch) -> LossTerms:
    """The authors' loss: L1(restored, clean) + 0.1 x frequency_l1(restored, clean), no clamp before it;
    logged as loss_l1 and loss_fft (the weighted term)."""
    restored = restore_batch(network, batch)
    l1 = F.l1_loss(restored, batch.clean)
    fft = FFT_WEIGHT * frequency_l1(restored, batch.clean)
    return LossTerms(l1 + fft, {"l1": l1, "fft": fft})


BIOIR_RECIPE = Recipe(
    objective=bioir_objective,
    # AdamW lr 2e-4 with PyTorch's default betas, eps and weight decay 0.01 on every parameter; batch 16 per
    # GPU (the authors ran 2 GPUs: 32 in all), 150 epochs, 32-bit.
    optimizer=adamw, lr=2e-4, batch_size=16, epochs=150,
    # Linear-warmup cosine (warmup 15, max 180 while training stops at 150, start lr 0, eta_min 0) in closed
    # form, stepped with scheduler.step(current_epoch) as the authors' lr_scheduler_step does.
    scheduler=linear_warmup_cosine(WARMUP_EPOCHS), scheduler_step=step_at_epoch, lr_schedule_epochs=180,
    # Validation only logged every 10th epoch, no model selection; a checkpoint kept after every epoch.
    val_every=0, select_best_on_test=False, keep_every_epoch=True,
    find_unused_parameters=True,  # reduce_chan_level2, never called (BioIR.unused_modules)
    # The authors' 5D mixture: rain x120, GoPro x5, LOL x20 (DFPIR's: x80, x30, x60); 3D is DFPIR's.
    train_repeat_overrides={"5D": {"derain": 120, "deblur": 5, "lowlight": 20}},
)
"""BioIR's training protocol of the released all-in-one checkpoints (docs/baselines.md)."""


@dataclass
class BioIRConfig:
    """Architecture of BioIR. The defaults are the released all-in-one configuration."""

    inp_channels: int = 3  # channels of the degraded input image
    out_channels: int = 3  # channels of the restored image
    dim: int = 48  # C: channels at level 1 (levels 2, 3 have 2C, 4C)
    num_blocks: list[int] = field(default_factory=lambda: [6, 6, 14])  # blocks per level (decoder mirrors them)
    num_refinement_blocks: int = 4  # blocks at full resolution after decoder_level1
    bias: bool = False  # bias in the block convolutions (P2F, F2P and Fuse always have one)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def released(cls) -> BioIRConfig:
        """The configuration of the released BioIR3D.ckpt / BioIR5D.ckpt."""
        return cls()

    @classmethod
    def tiny(cls) -> BioIRConfig:
        """A small network with the same structure (every module type, all three levels) for fast tests."""
        return cls(dim=8, num_blocks=[1, 1, 2], num_refinement_blocks=1)


def _window_taps(m: torch.Tensor, kernel: int) -> torch.Tensor:
    """The ``kernel x kernel`` taps around each pixel of a one-channel map after reflection padding
    (position -1 reads position 1): m (B, 1, h, w) -> (B, k*k, h, w), tap t = k ky + kx at
    (y + ky - k//2, x + kx - k//2), the order of ``F.unfold``."""
    h, w = m.shape[-2:]
    padded = F.pad(m, [kernel // 2] * 4, mode="reflect")
    return F.unfold(padded, kernel).unflatten(-1, (h, w))


class L2H(nn.Module):
    """P2F, Peripheral-to-Foveal (the reference's class ``L2H``), on low, high (B, C, h, w):
    ```
    P   = adaptive average pool of low to 16 x 16, flattened row-major         (B, C, 256)
    A   = sum over c of high[:, c] * P[:, c, s]   (plain product)              (B, 256, h, w)
    K   = conv 1x1 256 -> 9 (with bias) of A: a 3x3 kernel per pixel           (B, 9, h, w)
    ctx = sum over taps t of T[:, t] K[:, t], T the 3x3 reflect-padded taps of mean_c(high)   (B, 1, h, w)
    return high * (1 + ctx)
    ```
    ``fast=True`` folds the 1x1 conv into the regions first: K = (W P^T) high + b, a (9 x C) matrix
    per image instead of the 256-channel affinity map (the same function by associativity).
    """

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(P2F_GRID * P2F_GRID, P2F_KERNEL * P2F_KERNEL, kernel_size=1, bias=True)
        self.fast = True

    def forward(self, low: torch.Tensor, high: torch.Tensor) -> torch.Tensor:
        """low, high: (B, C, h, w) -> (B, C, h, w)."""
        regions = F.adaptive_avg_pool2d(low, P2F_GRID).flatten(2)  # (B, C, 256)
        if self.fast:
            weight = self.conv.weight.flatten(1)  # (9, 256)
            per_channel = torch.einsum("ks,bcs->bkc", weight, regions)  # (B, 9, C)
            kernel = torch.einsum("bkc,bchw->bkhw", per_channel, high) + self.conv.bias[:, None, None]
        else:
            affinity = torch.einsum("bchw,bcs->bshw", high, regions)  # (B, 256, h, w)
            kernel = self.conv(affinity)  # (B, 9, h, w)
        taps = _window_taps(high.mean(dim=1, keepdim=True), P2F_KERNEL)
        context = (taps * kernel).sum(dim=1, keepdim=True)  # (B, 1, h, w)
        return high * (1 + context)


class H2L(nn.Module):
    """F2P, Foveal-to-Peripheral (the reference's class ``H2L``), on low, high (B, C, h, w):
    ```
    g = depthwise 7x7 (zero padding, with bias) of high                        (B, C, h, w)
    u = low * (1 + g)                                                         the static stage
    K = conv 1x1 C -> 25 (with bias) of g: a 5x5 kernel per pixel              (B, 25, h, w)
    return u + sum over taps t of T[:, t] K[:, t], T the 5x5 reflect-padded taps of mean_c(u)
    ```
    """

    def __init__(self, dim: int):
        super().__init__()
        self.dw = nn.Conv2d(dim, dim, F2P_STATIC_KERNEL, padding=F2P_STATIC_KERNEL // 2, groups=dim, bias=True)
        self.cv2 = nn.Conv2d(dim, F2P_KERNEL * F2P_KERNEL, kernel_size=1, bias=True)

    def forward(self, low: torch.Tensor, high: torch.Tensor) -> torch.Tensor:
        """low, high: (B, C, h, w) -> (B, C, h, w)."""
        filtered = self.dw(high)
        static = low * (1 + filtered)
        taps = _window_taps(static.mean(dim=1, keepdim=True), F2P_KERNEL)
        return static + (taps * self.cv2(filtered)).sum(dim=1, keepdim=True)


class AttModule(nn.Module):
    """BioIR's token mixer (C -> C): t = dw3x3(conv1x1 C -> 2C (x)); low, high = the two halves of t;
    project_out(F2P(low, high) * P2F(low, high)), both operators fed the same raw pair (in parallel)."""

    def __init__(self, dim: int, bias: bool):
        super().__init__()
        self.conv = nn.Conv2d(dim, dim * 2, kernel_size=1, bias=bias)
        self.dw = nn.Conv2d(dim * 2, dim * 2, 3, padding=1, groups=dim * 2, bias=bias)
        self.l2h = L2H()
        self.h2l = H2L(dim)
        self.project_out = nn.Conv2d(dim, dim, kernel_size=1, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, C, h, w) -> (B, C, h, w)."""
        low, high = self.dw(self.conv(x)).chunk(2, dim=1)
        return self.project_out(self.h2l(low, high) * self.l2h(low, high))


class AttBlock(PreNormBlock):
    """BioIR's block: Restormer's skeleton (LayerNorm "WithBias", GDFN with hidden width 3 C) around
    :class:`AttModule`."""

    def __init__(self, dim: int, bias: bool):
        super().__init__(dim, AttModule(dim, bias), FFN_EXPANSION, bias, "WithBias")


class BilinearDownsample(nn.Module):
    """Bilinear x0.5 (align_corners False, no antialiasing), then 3x3 conv n -> 2n:
    (B, n, H, W) -> (B, 2n, H/2, W/2)."""

    def __init__(self, n: int):
        super().__init__()
        self.body = nn.Sequential(nn.Upsample(scale_factor=0.5, mode="bilinear", align_corners=False),
                                  nn.Conv2d(n, n * 2, 3, padding=1, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class BilinearUpsample(nn.Module):
    """Bilinear x2 (align_corners False), then 3x3 conv n -> n/2: (B, n, H, W) -> (B, n/2, 2H, 2W)."""

    def __init__(self, n: int):
        super().__init__()
        self.body = nn.Sequential(nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
                                  nn.Conv2d(n, n // 2, 3, padding=1, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class Fuse(nn.Module):
    """Skip fusion: 1x1 conv 2n -> n (with bias) of cat(upsampled decoder features, encoder skip)."""

    def __init__(self, n: int):
        super().__init__()
        self.conv = nn.Conv2d(n * 2, n, kernel_size=1, bias=True)

    def forward(self, upsampled: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        """upsampled, skip: (B, n, h, w) each -> (B, n, h, w)."""
        return self.conv(torch.cat([upsampled, skip], dim=1))


@register_architecture("bioir", recipe=BIOIR_RECIPE, display_name="BioIR")
class BioIR(nn.Module):
    """The BioIR network, released configuration by default: ``BioIR(**config)``.

    Registered as architecture ``bioir``, with the configurations ``--model bioir`` (released) and
    ``--model bioir_tiny``. Blind: ``forward(img)``; the registry's text_code argument is accepted
    and ignored (``uses_text_prompts = False``).
    """

    size_multiple = 4  # two 2x resamplings whose skips must line up
    min_size = MIN_SIZE  # H, W >= 12 (net.registry: restore_image pads smaller images up to it)
    uses_text_prompts = False
    compiled_blocks = (AttBlock,)  # the repeated unit --compile compiles (net/speed.py)

    def __init__(self, **config):
        super().__init__()
        cfg = BioIRConfig(**config)
        self.config = cfg
        c, blocks = cfg.dim, cfg.num_blocks

        def level(channels: int, n: int) -> nn.Sequential:
            return nn.Sequential(*(AttBlock(channels, cfg.bias) for _ in range(n)))

        # Created in the reference's order (the order of its state dict).
        self.patch_embed = OverlapPatchEmbed(cfg.inp_channels, c, cfg.bias)
        self.encoder_level1 = level(c, blocks[0])
        self.down1_2 = BilinearDownsample(c)
        self.encoder_level2 = level(c * 2, blocks[1])
        self.down2_3 = BilinearDownsample(c * 2)
        self.encoder_level3 = level(c * 4, blocks[2])
        self.decoder_level3 = level(c * 4, blocks[2])
        self.up3_2 = BilinearUpsample(c * 4)
        self.reduce_chan_level2 = nn.Conv2d(c * 4, c * 2, kernel_size=1, bias=cfg.bias)  # never called
        self.decoder_level2 = level(c * 2, blocks[1])
        self.up2_1 = BilinearUpsample(c * 2)
        self.decoder_level1 = level(c, blocks[0])
        self.refinement = level(c, cfg.num_refinement_blocks)
        self.fuse2 = Fuse(c * 2)
        self.fuse1 = Fuse(c)
        self.output = nn.Conv2d(c, cfg.out_channels, kernel_size=3, padding=1, bias=cfg.bias)

    def unused_modules(self) -> dict[str, nn.Conv2d]:
        """The module the reference creates but never calls, by its checkpoint name."""
        return {"reduce_chan_level2": self.reduce_chan_level2}

    def set_fast_path(self, enabled: bool = True) -> BioIR:
        """Switch the LayerNorms, GDFN gates (``net/blocks.py``) and P2F between the fast (default) and
        reference formulations; ``net.speed.prepare_for_speed`` adds channels_last and compilation."""
        return set_fast_path(self, enabled)

    def forward(self, img: torch.Tensor, text_code: torch.Tensor | None = None) -> torch.Tensor:
        """img: (B, 3, H, W) in [0, 1], H and W multiples of 4 (and >= 12); text_code is ignored (blind).

        Returns the restored image (B, 3, H, W) (not clipped).
        """
        check_image_batch(img, self.config.inp_channels, self.size_multiple, "BioIR")
        if min(img.shape[-2:]) < MIN_SIZE:
            raise ValueError(f"BioIR needs H and W of at least {MIN_SIZE}, got {img.shape[-2]}x{img.shape[-1]}: "
                             "F2P's reflection padding at H/4 x W/4 needs 3 pixels there")
        e1 = self.encoder_level1(self.patch_embed(img))
        e2 = self.encoder_level2(self.down1_2(e1))
        e3 = self.encoder_level3(self.down2_3(e2))
        d3 = self.decoder_level3(e3)
        d2 = self.decoder_level2(self.fuse2(self.up3_2(d3), e2))
        d1 = self.decoder_level1(self.fuse1(self.up2_1(d2), e1))
        return self.output(self.refinement(d1)) + img


register_model("bioir", "bioir", lambda: BioIRConfig.released().to_dict())
register_model("bioir_tiny", "bioir", lambda: BioIRConfig.tiny().to_dict())
