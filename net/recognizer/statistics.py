"""The recogniser's image statistics (:func:`degradation_statistics`: noise level, brightness, haze,
blur and rain-streak statistics pooled over the image) and the locally normalised detail its CNN
sees (:func:`local_detail`); see ``net/recognizer/__init__.py``. Input (B, 3, H, W) in [0, 1]."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

_LUMA = (0.299, 0.587, 0.114)
_EPS = 1e-4
_BLOCK = 8
_ORIENTATIONS = 8
_LINE_LENGTH = 9
_STREAK_OFFSET = 2
_DETAIL_MEAN_WINDOW = 5  # local mean removed from the image (high-pass)
_DETAIL_AMPLITUDE_WINDOW = 9  # local mean absolute detail the detail is divided by
_DETAIL_FLOOR = 0.01  # added to that amplitude (flat areas, 8-bit quantisation)
_DETAIL_SCALE = 0.3  # brings the normalised detail (mean absolute value 1) to the CNN's input range
_MAX_QUANTILE_VALUES = 2**12  # torch.quantile over at most this many values per image (strided subsample)


def _quantiles(values: torch.Tensor, qs: tuple[float, ...]) -> torch.Tensor:
    """(B, ...) -> (B, len(qs)): quantiles over all but the first dimension (strided subsample if large)."""
    flat = values.flatten(1)
    step = max(1, math.ceil(flat.shape[1] / _MAX_QUANTILE_VALUES))
    q = torch.tensor(qs, dtype=flat.dtype, device=flat.device)
    return torch.quantile(flat[:, ::step], q, dim=1).T


def _log(x: torch.Tensor) -> torch.Tensor:
    return torch.log(x.clamp_min(0) + _EPS)


def _block_mean(x: torch.Tensor) -> torch.Tensor:
    return F.avg_pool2d(x, _BLOCK, _BLOCK)


_IMMERKAER = torch.tensor([[1.0, -2.0, 1.0], [-2.0, 4.0, -2.0], [1.0, -2.0, 1.0]]) / 6.0
"""High-pass operator with unit gain for white noise (sum of squares 1); zero on planes."""


def _noise_statistics(x: torch.Tensor) -> list[torch.Tensor]:
    """Noise-level statistics of (B, 3, H, W) at one scale: 3 block-std quantiles, MAD sigma, colour correlation."""
    kernel = _IMMERKAER.to(x)[None, None].repeat(3, 1, 1, 1)
    residual = F.conv2d(x, kernel, groups=3)  # (B, 3, H-2, W-2)
    luma = _luma(x)[..., 1:-1, 1:-1]
    energy = _block_mean(residual.square().mean(1, keepdim=True))
    block_std = energy.sqrt()
    # Clipping at 0 and 1 hides noise: push nearly black/white blocks to the top of the distribution.
    brightness = _block_mean(luma)
    usable = (brightness > 0.06) & (brightness < 0.94)
    top = block_std.flatten(1).amax(1).view(-1, 1, 1, 1)
    block_std = torch.where(usable, block_std, top)
    mad_sigma = _quantiles(residual.abs(), (0.5,)) / 0.6745
    r, g, b = residual.unbind(1)
    cross = _block_mean(((r * g + g * b + r * b) / 3)[:, None])
    correlation = cross / (energy + _EPS**2)
    return [
        _log(_quantiles(block_std, (0.05, 0.2, 0.5))),
        _log(mad_sigma),
        _quantiles(correlation, (0.2, 0.5)),
    ]


def _luma(x: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) -> (B, 1, H, W) luminance (Rec. 601)."""
    w = torch.tensor(_LUMA, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return (x * w).sum(1, keepdim=True)


def _gradients(y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Central differences of (B, 1, H, W), both cropped to (B, 1, H-2, W-2)."""
    gx = (y[..., 1:-1, 2:] - y[..., 1:-1, :-2]) / 2
    gy = (y[..., 2:, 1:-1] - y[..., :-2, 1:-1]) / 2
    return gx, gy


def _coherence(gx: torch.Tensor, gy: torch.Tensor) -> torch.Tensor:
    """Structure-tensor coherence (l1 - l2) / (l1 + l2) in [0, 1] of means over the last two dims."""
    jxx, jyy, jxy = (gx * gx).mean((-2, -1)), (gy * gy).mean((-2, -1)), (gx * gy).mean((-2, -1))
    return ((jxx - jyy).square() + 4 * jxy.square()).sqrt() / (jxx + jyy + _EPS**2)


def _line_kernels() -> torch.Tensor:
    """(2 * ORIENTATIONS, 1, K, K) line-contrast kernels at 0 to 157.5 degrees.

    For each orientation: the average along the line through the centre minus the average along the
    parallel line ``_STREAK_OFFSET`` pixels to one side, then to the other side (bilinear weights).
    """
    size = _LINE_LENGTH + 2 * _STREAK_OFFSET
    c = (size - 1) / 2
    half = (_LINE_LENGTH - 1) / 2
    t = torch.linspace(-half, half, 4 * _LINE_LENGTH, dtype=torch.float64)
    kernels = torch.zeros(_ORIENTATIONS, 3, size, size, dtype=torch.float64)
    for k in range(_ORIENTATIONS):
        angle = math.pi * k / _ORIENTATIONS
        along, across = (math.cos(angle), math.sin(angle)), (-math.sin(angle), math.cos(angle))
        for j, offset in enumerate((0, _STREAK_OFFSET, -_STREAK_OFFSET)):
            xs = c + t * along[0] + offset * across[0]
            ys = c + t * along[1] + offset * across[1]
            x0, y0 = xs.floor().long(), ys.floor().long()
            fx, fy = xs - x0, ys - y0
            for dy, wy in ((0, 1 - fy), (1, fy)):
                for dx, wx in ((0, 1 - fx), (1, fx)):
                    yy, xx = (y0 + dy).clamp(0, size - 1), (x0 + dx).clamp(0, size - 1)
                    kernels[k, j].index_put_((yy, xx), wy * wx, accumulate=True)
            kernels[k, j] /= kernels[k, j].sum()
    return (kernels[:, :1] - kernels[:, 1:]).reshape(2 * _ORIENTATIONS, 1, size, size).float()


_LINES = _line_kernels()


def _per_channel_quantile(values: torch.Tensor, q: float) -> torch.Tensor:
    """(B, C, h, w) -> (B, C): the q-quantile of each channel (strided subsample if large)."""
    return _quantiles(values.flatten(0, 1), (q,)).view(values.shape[:2])


def _streak_statistics(y: torch.Tensor) -> list[torch.Tensor]:
    """Thin bright line energy of luminance (B, 1, H, W) per orientation: 7 statistics.

    A pixel's bright response at an orientation is by how much the line through it is brighter than
    both parallel lines beside it (zero on edges and flat areas); its dark response, by how much it
    is darker. Rain streaks are parallel and bright, so their energy peaks at one orientation, while
    texture and noise spread over all of them: the global log max, log mean and log max/min over the
    orientations, and, in 8x8 blocks, the log ratio of the energy at the image's dominant orientation
    to that at the perpendicular one (quantiles 0.5 and 0.9: high wherever streaks cross otherwise
    plain areas). The strongest responses (0.99 quantile) at the orientation where they peak give two
    more: bright over dark there (streaks are brighter than the scene; blurred texture and noise make
    bright and dark ridges alike) and bright there over the perpendicular orientation.
    """
    contrast = F.conv2d(y, _LINES.to(y)).unflatten(1, (_ORIENTATIONS, 2))  # (B, 8, 2, h, w)
    response = F.relu(contrast.amin(2))  # (B, 8, h, w): line brighter than both sides
    dark = F.relu(-contrast.amax(2))  # (B, 8, h, w): line darker than both sides
    energy = response.mean((-2, -1))  # (B, 8)
    strongest, weakest = energy.amax(1, keepdim=True), energy.amin(1, keepdim=True)
    blocks = _block_mean(response)  # (B, 8, hb, wb)
    batch = torch.arange(len(y), device=y.device)
    dominant = energy.argmax(1)
    perpendicular = (dominant + _ORIENTATIONS // 2) % _ORIENTATIONS
    ratio = torch.log((blocks[batch, dominant] + 1e-3) / (blocks[batch, perpendicular] + 1e-3))
    peaks = _per_channel_quantile(response, 0.99) + 1e-3  # (B, 8)
    dark_peaks = _per_channel_quantile(dark, 0.99) + 1e-3
    peak = peaks.argmax(1)
    peak_perpendicular = (peak + _ORIENTATIONS // 2) % _ORIENTATIONS
    asymmetry = torch.log(peaks[batch, peak] / dark_peaks[batch, peak])
    anisotropy = torch.log(peaks[batch, peak] / peaks[batch, peak_perpendicular])
    return [_log(strongest), _log(energy.mean(1, keepdim=True)), _log(strongest) - _log(weakest),
            _quantiles(ratio, (0.5, 0.9)), torch.stack([asymmetry, anisotropy], 1)]


def degradation_statistics(x: torch.Tensor) -> torch.Tensor:
    """The hand-made statistics of a batch of images: (B, 3, H, W) in [0, 1] -> (B, NUM_STATISTICS).

    H and W must be at least ``MIN_SIZE``. See the module docstring for what each group measures.
    """
    x = x.float()
    half = F.avg_pool2d(x, 2)
    y = _luma(x)
    y_half, y_quarter = _luma(half), F.avg_pool2d(_luma(half), 2)
    features: list[torch.Tensor] = []
    # Noise, at full and half resolution.
    features += _noise_statistics(x)
    features += _noise_statistics(half)[:1]
    # Brightness, saturation, contrast (low light, haze).
    features.append(_quantiles(y, (0.01, 0.1, 0.5, 0.9, 0.99)))
    features.append(torch.stack([y.mean((1, 2, 3)), y.std((1, 2, 3))], 1))
    high, low = x.amax(1, keepdim=True), x.amin(1, keepdim=True)
    saturation = (high - low) / (high + _EPS)
    features.append(_quantiles(saturation, (0.5, 0.9)))
    dark_channel = -F.max_pool2d(-low, _BLOCK, _BLOCK)
    bright_channel = F.max_pool2d(high, _BLOCK, _BLOCK)
    features.append(_quantiles(dark_channel, (0.1, 0.5, 0.9)))
    features.append(_quantiles(bright_channel, (0.1, 0.5, 0.9)))
    local_contrast = (_block_mean(y_half.square()) - _block_mean(y_half).square()).clamp_min(0).sqrt()
    features.append(_log(_quantiles(local_contrast, (0.5, 0.9))))
    # Sharpness (blur) at three scales, and directionality.
    for luma in (y, y_half, y_quarter):
        gx, gy = _gradients(luma)
        magnitude = (gx.square() + gy.square()).sqrt()
        features.append(_log(torch.stack([magnitude.mean((1, 2, 3)), *_quantiles(magnitude, (0.9,)).T], 1)))
    for luma in (y, y_half):
        gx, gy = _gradients(luma)
        features.append(_coherence(gx, gy).view(-1, 1))
    gx, gy = _gradients(y_half)
    local = _coherence(gx.unfold(2, _BLOCK, _BLOCK).unfold(3, _BLOCK, _BLOCK),
                       gy.unfold(2, _BLOCK, _BLOCK).unfold(3, _BLOCK, _BLOCK))
    features.append(_quantiles(local, (0.5,)))
    # Rain streaks, at full and half resolution.
    features += _streak_statistics(y)
    features += _streak_statistics(y_half)
    return torch.cat(features, 1)


NUM_STATISTICS = 49


def local_detail(x: torch.Tensor) -> torch.Tensor:
    """The CNN's input: (B, 3, H, W) -> (B, 3, H, W), the image minus its local mean (5x5), divided by
    the local mean absolute value of that detail (9x9, all channels, plus a small floor).

    Thin streaks, grain and edges keep their shape; the scene's colours, brightness and contrast,
    which describe the scene rather than its degradation, are divided out.
    """
    detail = x - F.avg_pool2d(x, _DETAIL_MEAN_WINDOW, 1, _DETAIL_MEAN_WINDOW // 2, count_include_pad=False)
    amplitude = F.avg_pool2d(detail.abs().mean(1, keepdim=True), _DETAIL_AMPLITUDE_WINDOW, 1,
                             _DETAIL_AMPLITUDE_WINDOW // 2, count_include_pad=False)
    return _DETAIL_SCALE * detail / (amplitude + _DETAIL_FLOOR)
