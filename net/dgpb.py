"""The Degradation-Guided Perturbation Block (DGPB) of DFPIR (docs/protocol.md section 1).

A DGPB perturbs a feature map F (B, C, H, W) under the guidance of a CLIP text code t (B, 512):

- DGCPM, degradation-guided channel perturbation: the text code is projected to 2C scores, whose
  descending sort is a per-sample permutation of the 2C channels of a 1x1 expansion of F; the
  permuted channels are projected back to C channels (Q).
- CAAPM, channel-adaptive attention perturbation: cross attention across channels, queries from
  Q and keys/values from F, in which every row of the attention map keeps only its
  int(c_h * 9 / 10) largest logits (c_h channels per head).

The sort is not differentiable and its values are unused, so the two text Linear layers
(``linear_layer1``, ``linear_layer3``) never receive a gradient: they keep their initial values for
the whole training run. Here they are frozen (``requires_grad=False``), which makes that explicit
and lets distributed training run without ``find_unused_parameters``.

Mixed precision: a rounding of the text projection reorders the sort and changes the function, so
the projection and the sort always run in float32, also under autocast.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from net.blocks import GDFN, ChannelLayerNorm, channel_attention, merge_heads, split_heads

TEXT_DIM = 512


def keep_count(channels_per_head: int) -> int:
    """How many logits per attention row CAAPM keeps: int(c_h * 9 / 10) (43 of 48 by default)."""
    return channels_per_head * 9 // 10


def topk_mask(attn: torch.Tensor, k: int, fast: bool = True) -> torch.Tensor:
    """Keep the k largest entries of every row of attn (..., n) and set the rest to -inf.

    fast=False is the reference formulation (top-k indices scattered into a 0/1 mask). fast=True
    compares against the k-th largest value of each row instead, which keeps the same entries
    (the logits are continuous, so ties do not occur) without materialising index tensors.
    """
    if k >= attn.shape[-1]:
        return attn
    if fast:
        kth_largest = attn.topk(k, dim=-1, sorted=True).values[..., -1:]
        return attn.masked_fill(attn < kth_largest, float("-inf"))
    index = attn.topk(k, dim=-1).indices
    mask = torch.zeros_like(attn).scatter_(-1, index, 1.0)
    return torch.where(mask > 0, attn, torch.full_like(attn, float("-inf")))


class CAAPM(nn.Module):
    """Channel-adaptive attention perturbation: top-k masked cross attention across channels.

    Authors' module name: ``select_attn``; ``attn4`` is the output scale gamma (init 0.2).
    """

    def __init__(self, dim: int, num_heads: int, bias: bool):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"CAAPM: {dim} channels do not split into {num_heads} heads")
        self.num_heads = num_heads
        self.keep = keep_count(dim // num_heads)
        self.temperature = nn.Parameter(torch.ones(num_heads, 1, 1))
        self.attn4 = nn.Parameter(torch.tensor([0.2]))
        self.kv = nn.Conv2d(dim, dim * 2, kernel_size=1, bias=bias)
        self.kv_dwconv = nn.Conv2d(dim * 2, dim * 2, 3, padding=1, groups=dim * 2, bias=bias)
        self.q = nn.Conv2d(dim, dim, kernel_size=1, bias=bias)
        self.q_dwconv = nn.Conv2d(dim, dim, 3, padding=1, groups=dim, bias=bias)
        self.project_out = nn.Conv2d(dim, dim, kernel_size=1, bias=bias)
        self.fast = True

    def forward(self, query: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        """query (normalised Q), context (normalised F): (B, C, H, W) -> (B, C, H, W)."""
        h, w = query.shape[-2:]
        q = split_heads(self.q_dwconv(self.q(query)), self.num_heads)
        k, v = (split_heads(t, self.num_heads) for t in self.kv_dwconv(self.kv(context)).chunk(2, dim=1))
        attn = channel_attention(q, k, self.temperature, self.fast)  # (B, heads, c_h, c_h)
        attn = topk_mask(attn, self.keep, self.fast).softmax(dim=-1)
        return self.project_out(merge_heads((attn @ v) * self.attn4, h, w))


class DGPB(nn.Module):
    """Degradation-Guided Perturbation Block: DGCPM, then CAAPM, then a GDFN.

    Authors' module names: ``encoder_shuffle_channel1..3`` and ``latent_shuffle_channel``.
    Output: att + GDFN(norm3(att)), att = CAAPM(norm1(Q), norm2(F)); no residual from F or Q.
    """

    def __init__(
        self,
        dim: int,
        num_heads: int,
        ffn_expansion_factor: float,
        bias: bool,
        layernorm_type: str,
        text_dim: int = TEXT_DIM,
    ):
        super().__init__()
        # DGCPM: text projection (frozen, see module docstring) and the channel expansion/reduction.
        self.linear_layer1 = nn.Linear(text_dim, text_dim)
        self.linear_layer3 = nn.Linear(text_dim, dim * 2)
        self.linear_layer1.requires_grad_(False)
        self.linear_layer3.requires_grad_(False)
        self.conv1x1 = nn.Conv2d(dim, dim * 2, kernel_size=1, bias=True)
        self.conv_out = nn.Conv2d(dim * 2, dim, kernel_size=1, bias=True)
        # CAAPM and the feed-forward part.
        self.norm1 = ChannelLayerNorm(dim, layernorm_type)
        self.norm2 = ChannelLayerNorm(dim, layernorm_type)
        self.norm3 = ChannelLayerNorm(dim, layernorm_type)
        self.select_attn = CAAPM(dim, num_heads, bias)
        self.ffn = GDFN(dim, ffn_expansion_factor, bias)

    def channel_permutation(self, text_code: torch.Tensor) -> torch.Tensor:
        """DGCPM step 1-2. text_code (B, 512) -> idx (B, 2C) int64, the descending sort of the scores.

        Always float32, also under autocast: the sort is sensitive to any rounding of the scores.
        """
        with torch.autocast(device_type=text_code.device.type, enabled=False):
            t = text_code.float()
            hidden = F.linear(t, self.linear_layer1.weight.float(), self.linear_layer1.bias.float())
            scores = F.linear(hidden, self.linear_layer3.weight.float(), self.linear_layer3.bias.float())
        return scores.argsort(dim=1, descending=True, stable=True)

    def perturb_channels(self, feature: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        """DGCPM step 3-4. feature F (B, C, H, W), idx (B, 2C) -> Q (B, C, H, W).

        G = conv1x1(F); G'[b, j] = G[b, idx[b, j]]; Q = conv_out(G').
        """
        g = self.conv1x1(feature)
        if g.is_contiguous(memory_format=torch.channels_last):
            # Gather in the (B, H, W, 2C) view so the result stays channels_last.
            g_nhwc = g.permute(0, 2, 3, 1)
            index = idx[:, None, None, :].expand(g_nhwc.shape)
            g = torch.gather(g_nhwc, 3, index).permute(0, 3, 1, 2)
        else:
            g = torch.gather(g, 1, idx[:, :, None, None].expand(g.shape))
        return self.conv_out(g)

    def forward(self, feature: torch.Tensor, text_code: torch.Tensor) -> torch.Tensor:
        """feature F (B, C, H, W), text_code (B, 512) -> (B, C, H, W)."""
        q = self.perturb_channels(feature, self.channel_permutation(text_code))
        att = self.select_attn(self.norm1(q), self.norm2(feature))
        return att + self.ffn(self.norm3(att))
