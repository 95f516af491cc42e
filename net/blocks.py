"""Restormer building blocks shared by DFPIR, PromptIR and BioIR (docs/protocol.md sections 1 and 7.1), and
the configuration of the Restormer U-Net they are both built on (:class:`RestormerConfig`).

Every module keeps the attribute names of the authors' network, so the state-dict keys of the
released checkpoints load without any renaming (``norm1.body.weight``, ``attn.qkv_dwconv.weight``,
``ffn.project_in.weight``, ...). Submodules are created in the authors' order, so with the same
seed the initial weights are drawn in the same order.

Fast path. ``ChannelLayerNorm``, the attention logits of MDTA/CAAPM, the GDFN gate and the top-k
mask of CAAPM (``net/dgpb.py``) each have two implementations of the same function, chosen by a
``fast`` attribute that :func:`set_fast_path` switches for a whole network (``DFPIR.set_fast_path``,
``PromptIR.set_fast_path``):

- ``fast=False``: the reference formulation (LayerNorm on tokens ``(B, H*W, C)``, mean and
  variance over the last axis, reshaped back; q and k normalised before their product; the two
  GDFN halves sliced from one tensor), the faithful eager baseline the benchmarks compare against;
- ``fast=True`` (default): the same functions with fewer passes over memory and no strided
  elementwise work in channels_last (a fused ``F.layer_norm``; the q k^T products divided by the
  norms; each GDFN half computed as a dense tensor). Outputs agree within about 1e-5 on the full
  network; ``benchmarks/benchmark.py`` measures the speed.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

LAYERNORM_EPS = 1e-5
NORMALIZE_EPS = 1e-12  # F.normalize's floor on the norm


@dataclass
class RestormerConfig:
    """The Restormer U-Net that DFPIR and PromptIR share; the defaults are both papers' networks."""

    inp_channels: int = 3  # channels of the degraded input image
    out_channels: int = 3  # channels of the restored image
    dim: int = 48  # C: channels at level 1 (levels 2..4 have 2C, 4C, 8C)
    num_blocks: list[int] = field(default_factory=lambda: [4, 6, 6, 8])  # transformer blocks per level
    num_refinement_blocks: int = 4  # blocks at full resolution after decoder_level1
    heads: list[int] = field(default_factory=lambda: [1, 2, 4, 8])  # attention heads per level
    ffn_expansion_factor: float = 2.66  # GDFN hidden width = int(channels * factor)
    bias: bool = False  # bias in the Restormer convolutions
    layernorm_type: str = "WithBias"  # "WithBias" or "BiasFree"

    def to_dict(self) -> dict:
        return asdict(self)


def check_image_batch(img: torch.Tensor, channels: int, size_multiple: int, network: str) -> None:
    """ValueError unless ``img`` is (B, ``channels``, H, W) with H and W multiples of ``size_multiple``:
    the input every Restormer U-Net here takes (``network`` names it in the message)."""
    if img.ndim != 4 or img.shape[1] != channels:
        raise ValueError(f"img must be (B, {channels}, H, W), got {tuple(img.shape)}")
    h, w = img.shape[-2:]
    if h % size_multiple or w % size_multiple:
        raise ValueError(
            f"{network} needs H and W to be multiples of {size_multiple}, got {h}x{w}: pad the image "
            "(demo.py and the tiled restorer do this for you) or crop it"
        )


def set_fast_path(network: nn.Module, enabled: bool = True) -> nn.Module:
    """Switch every module of ``network`` that has a ``fast`` attribute to the fast (True) or the
    reference (False) formulation; returns ``network``."""
    for module in network.modules():
        if hasattr(module, "fast"):
            module.fast = enabled
    return network


class _NormParams(nn.Module):
    """Holds the affine parameters under the authors' ``body`` name (``norm.body.weight``)."""

    def __init__(self, dim: int, with_bias: bool):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.bias = nn.Parameter(torch.zeros(dim)) if with_bias else None


class ChannelLayerNorm(nn.Module):
    """Per-pixel LayerNorm over the channel axis of a (B, C, H, W) feature map.

    "WithBias": (x - mean) / sqrt(var + 1e-5) * w + b, population variance over C.
    "BiasFree": x / sqrt(var + 1e-5) * w (the variance is still centred; only the mean is not
    subtracted from x), as in Restormer.
    """

    def __init__(self, dim: int, layernorm_type: str = "WithBias"):
        super().__init__()
        if layernorm_type not in ("WithBias", "BiasFree"):
            raise ValueError(f"layernorm_type must be 'WithBias' or 'BiasFree', got {layernorm_type!r}")
        self.with_bias = layernorm_type == "WithBias"
        self.body = _NormParams(dim, self.with_bias)
        self.fast = True

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, C, H, W) -> (B, C, H, W), same memory format."""
        weight, bias = self.body.weight, self.body.bias
        if not self.fast:
            return self._reference(x, weight, bias)
        if self.with_bias and x.is_contiguous(memory_format=torch.channels_last):
            # channels_last: (B, H, W, C) is a free view, and layer_norm runs as one fused kernel.
            out = F.layer_norm(x.permute(0, 2, 3, 1), (x.shape[1],), weight, bias, LAYERNORM_EPS)
            return out.permute(0, 3, 1, 2)
        var, mean = torch.var_mean(x, dim=1, keepdim=True, correction=0)
        centred = x - mean if self.with_bias else x
        out = centred * torch.rsqrt(var + LAYERNORM_EPS) * weight[:, None, None]
        return out + bias[:, None, None] if self.with_bias else out

    @staticmethod
    def _reference(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        """The authors' formulation: (B, C, H, W) -> tokens (B, H*W, C) -> normalise -> back."""
        h, w = x.shape[-2:]
        tokens = rearrange(x, "b c h w -> b (h w) c")
        mu = tokens.mean(-1, keepdim=True)
        sigma = tokens.var(-1, keepdim=True, unbiased=False)
        if bias is None:
            tokens = tokens / torch.sqrt(sigma + LAYERNORM_EPS) * weight
        else:
            tokens = (tokens - mu) / torch.sqrt(sigma + LAYERNORM_EPS) * weight + bias
        return rearrange(tokens, "b (h w) c -> b c h w", h=h, w=w)


class GDFN(nn.Module):
    """Gated-Dconv Feed-forward Network: 1x1 C->2h, depthwise 3x3, gelu(x1) * x2, 1x1 h->C.

    h = int(C * ffn_expansion_factor); exact (erf) GELU.
    """

    def __init__(self, dim: int, ffn_expansion_factor: float, bias: bool):
        super().__init__()
        hidden = int(dim * ffn_expansion_factor)
        self.project_in = nn.Conv2d(dim, hidden * 2, kernel_size=1, bias=bias)
        self.dwconv = nn.Conv2d(hidden * 2, hidden * 2, 3, padding=1, groups=hidden * 2, bias=bias)
        self.project_out = nn.Conv2d(hidden, dim, kernel_size=1, bias=bias)
        self.fast = True

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, C, H, W) -> (B, C, H, W)."""
        if self.fast:
            x1, x2 = (self._gate_half(x, half) for half in (0, 1))
        else:
            x1, x2 = self.dwconv(self.project_in(x)).chunk(2, dim=1)
        return self.project_out(F.gelu(x1) * x2)

    def _gate_half(self, x: torch.Tensor, half: int) -> torch.Tensor:
        """dwconv(project_in(x)) restricted to output half 0 (x1) or 1 (x2): (B, C, H, W) -> (B, h, H, W).

        Both convolutions act per output channel, so this equals the corresponding half of the full
        result. Computed apart, each half is a dense tensor; a channel slice of a channels_last
        tensor is strided, and GELU and the product run about 3x slower on it.
        """
        hidden = self.project_out.in_channels
        channels = slice(half * hidden, (half + 1) * hidden)

        def conv_half(conv: nn.Conv2d, inp: torch.Tensor, groups: int) -> torch.Tensor:
            bias = None if conv.bias is None else conv.bias[channels]
            return F.conv2d(inp, conv.weight[channels], bias, padding=conv.padding, groups=groups)

        return conv_half(self.dwconv, conv_half(self.project_in, x, groups=1), groups=hidden)


def channel_attention(
    q: torch.Tensor, k: torch.Tensor, temperature: torch.Tensor, fast: bool = True
) -> torch.Tensor:
    """Transposed (channel) attention logits of MDTA/CAAPM.

    q, k: (B, heads, c, N) with N = H*W; both L2-normalised along N here.
    temperature: (heads, 1, 1). Returns A = q k^T * temperature: (B, heads, c, c).

    fast=False normalises q and k (the reference formulation). fast=True divides the c x c
    products by the outer product of the norms instead: the same logits, without writing
    normalised copies of q and k (which, on channels_last views, also needs a slow strided
    reduction).
    """
    if not fast:
        q = F.normalize(q, dim=-1)
        k = F.normalize(k, dim=-1)
        return (q @ k.transpose(-2, -1)) * temperature
    q_norm, k_norm = (t.square().sum(-1, keepdim=True).sqrt().clamp_min(NORMALIZE_EPS) for t in (q, k))
    return (q @ k.transpose(-2, -1)) / (q_norm * k_norm.transpose(-2, -1)) * temperature


def split_heads(x: torch.Tensor, heads: int) -> torch.Tensor:
    """(B, heads*c, H, W) -> (B, heads, c, H*W)."""
    return rearrange(x, "b (head c) h w -> b head c (h w)", head=heads)


def merge_heads(x: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """(B, heads, c, H*W) -> (B, heads*c, H, W)."""
    return rearrange(x, "b head c (h w) -> b (head c) h w", h=h, w=w)


class MDTA(nn.Module):
    """Multi-Dconv head Transposed Attention (Restormer): attention across channels, per head."""

    def __init__(self, dim: int, num_heads: int, bias: bool):
        super().__init__()
        self.num_heads = num_heads
        self.temperature = nn.Parameter(torch.ones(num_heads, 1, 1))
        self.qkv = nn.Conv2d(dim, dim * 3, kernel_size=1, bias=bias)
        self.qkv_dwconv = nn.Conv2d(dim * 3, dim * 3, 3, padding=1, groups=dim * 3, bias=bias)
        self.project_out = nn.Conv2d(dim, dim, kernel_size=1, bias=bias)
        self.fast = True

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, C, H, W) -> (B, C, H, W)."""
        h, w = x.shape[-2:]
        q, k, v = self.qkv_dwconv(self.qkv(x)).chunk(3, dim=1)
        q, k, v = (split_heads(t, self.num_heads) for t in (q, k, v))
        attn = channel_attention(q, k, self.temperature, self.fast).softmax(dim=-1)
        return self.project_out(merge_heads(attn @ v, h, w))


class PreNormBlock(nn.Module):
    """Restormer's block skeleton around any token mixer ``attn`` (C -> C):
    x + attn(norm1(x)), then + GDFN(norm2(x)); state-dict names ``norm1``, ``attn``, ``norm2``, ``ffn``."""

    def __init__(self, dim: int, attn: nn.Module, ffn_expansion_factor: float, bias: bool, layernorm_type: str):
        super().__init__()
        # LayerNorms draw no random numbers: building attn first keeps the authors' draw order.
        self.norm1 = ChannelLayerNorm(dim, layernorm_type)
        self.attn = attn
        self.norm2 = ChannelLayerNorm(dim, layernorm_type)
        self.ffn = GDFN(dim, ffn_expansion_factor, bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, C, H, W) -> (B, C, H, W)."""
        x = x + self.attn(self.norm1(x))
        return x + self.ffn(self.norm2(x))


class TransformerBlock(PreNormBlock):
    """Restormer block: x + MDTA(norm1(x)), then + GDFN(norm2(x))."""

    def __init__(self, dim: int, num_heads: int, ffn_expansion_factor: float, bias: bool, layernorm_type: str):
        super().__init__(dim, MDTA(dim, num_heads, bias), ffn_expansion_factor, bias, layernorm_type)


class OverlapPatchEmbed(nn.Module):
    """Patch embedding: 3x3 conv in_channels -> C."""

    def __init__(self, in_channels: int, dim: int, bias: bool):
        super().__init__()
        self.proj = nn.Conv2d(in_channels, dim, kernel_size=3, padding=1, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, in_channels, H, W) -> (B, C, H, W)."""
        return self.proj(x)


class Downsample(nn.Module):
    """3x3 conv n -> n/2, then PixelUnshuffle(2): (B, n, H, W) -> (B, 2n, H/2, W/2)."""

    def __init__(self, n: int):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(n, n // 2, 3, padding=1, bias=False), nn.PixelUnshuffle(2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class Upsample(nn.Module):
    """3x3 conv n -> 2n, then PixelShuffle(2): (B, n, H, W) -> (B, n/2, 2H, 2W)."""

    def __init__(self, n: int):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(n, n * 2, 3, padding=1, bias=False), nn.PixelShuffle(2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)
