"""Restoring images of any size: padding to the network's multiple, and tiling with overlap.

``restore_image`` pads (reflect) an image to the network's size multiple (``size_multiple`` of a
registered network, ``net/registry.py``; 8 for DFPIR), optionally restores it tile by tile
(bounded memory: the network sees one tile at a time), averages the overlaps, and crops back to
the input size. With no tile, or a tile
covering the whole image, the output is exactly the untiled one.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

RestoreFn = Callable[[torch.Tensor], torch.Tensor]


def pad_to_multiple(img: torch.Tensor, multiple: int, min_size: int = 0) -> torch.Tensor:
    """(B, C, H, W) -> (B, C, H', W') with H', W' the next multiples (at least ``min_size``, the network's
    smallest side), reflect-padded at bottom/right."""
    h, w = img.shape[-2:]
    pad_h, pad_w = (-(-max(side, min_size) // multiple) * multiple - side for side in (h, w))
    if not pad_h and not pad_w:
        return img
    mode = "reflect" if pad_h < h and pad_w < w else "replicate"  # reflect needs pad < size
    return F.pad(img, (0, pad_w, 0, pad_h), mode=mode)


def _starts(size: int, tile: int, stride: int) -> list[int]:
    if size <= tile:
        return [0]
    starts = list(range(0, size - tile, stride))
    return starts + [size - tile]


def tile_problems(tile: int, overlap: int, multiple: int) -> list[str]:
    """Problems of ``--tile`` / ``--tile_overlap`` for a network of size multiple ``multiple`` (empty when
    restore_tiled accepts them)."""
    problems = []
    if tile <= 0 or tile % multiple:
        problems.append(f"--tile {tile}: must be a positive multiple of {multiple} (the network's size multiple), "
                        "e.g. 512")
    if overlap < 0 or overlap >= tile:
        problems.append(f"--tile_overlap {overlap}: must be at least 0 and smaller than --tile {tile}")
    return problems


def restore_tiled(fn: RestoreFn, img: torch.Tensor, tile: int, overlap: int, multiple: int) -> torch.Tensor:
    """Apply fn to overlapping tile x tile windows of img (B, C, H, W) and average where they overlap.

    H, W and tile must be multiples of ``multiple`` (the network's); 0 <= overlap < tile. Tiles are
    clipped to the image, so a tile at least as large as the image gives exactly fn(img).
    """
    problems = tile_problems(tile, overlap, multiple)
    if problems:
        raise ValueError("; ".join(problems))
    h, w = img.shape[-2:]
    tile_h, tile_w = min(tile, h), min(tile, w)
    if (tile_h, tile_w) == (h, w):
        return fn(img)
    stride = tile - overlap
    out = torch.zeros_like(img)
    weight = torch.zeros((1, 1, h, w), dtype=img.dtype, device=img.device)
    for top in _starts(h, tile_h, stride):
        for left in _starts(w, tile_w, stride):
            window = (..., slice(top, top + tile_h), slice(left, left + tile_w))
            out[window] += fn(img[window])
            weight[window] += 1
    return out / weight


def restore_image(
    fn: RestoreFn, img: torch.Tensor, multiple: int, tile: int | None = None, overlap: int = 32, min_size: int = 0
) -> torch.Tensor:
    """Restore img (B, C, H, W) of any size: pad to ``multiple`` (the network's ``size_multiple``) and to at
    least ``min_size`` (its ``min_size``), restore (tiled if tile), crop back."""
    h, w = img.shape[-2:]
    padded = pad_to_multiple(img, multiple, min_size)
    restored = fn(padded) if tile is None else restore_tiled(fn, padded, tile, overlap, multiple)
    return restored[..., :h, :w]
