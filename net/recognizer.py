"""The degradation recogniser: which degradation (and which noise level) an image has, for blind restoration.

DFPIR needs the degradation's prompt at test time; this small network predicts the degradation id
(a row of the prompt table, spec section 2) from the degraded image alone, so its prompt code can be
used. It does not change DFPIR.

Design: physically motivated image statistics (:func:`degradation_statistics`) plus a small CNN
on the image's locally normalised detail (:func:`local_detail`), both pooled over the whole image,
feed an MLP:

- noise level: the local standard deviation of a high-pass residual whose gain for white noise is 1
  (Immerkaer's 3x3 operator), in 8x8 blocks, at full and half resolution; its low quantiles over
  the blocks estimate sigma in the flattest regions (texture only raises them; halving the
  resolution halves noise but not texture), plus the median-absolute-deviation estimate and the
  colour correlation of the residual (Gaussian noise is independent per channel, texture is not);
- low light and haze: brightness quantiles, saturation, the dark channel (minimum over the colour
  channels and 8x8 blocks: large under haze) and the bright channel, local contrast;
- blur: gradient magnitude at three scales (blur removes the fine scales) and the coherence of the
  structure tensor (motion blur is directional);
- rain: the energy of thin ridges averaged along lines at 8 orientations, at two scales (streaks
  are thin, bright and parallel: the energy of bright ridges peaks at one orientation, and there
  they outweigh dark ridges, which blurred texture and noise make as often as bright ones).

All statistics are logarithms or ratios pooled over the image, so they do not depend on its size,
and they are invariant to the training augmentations (flips, 90-degree rotations). The CNN sees
what the statistics miss, but only the image's detail with its local amplitude divided out: the
colours, brightness and contrast of a training set's few scenes would otherwise let it recognise
the scene instead of the degradation (on the stand-in data, a CNN on the raw image recognised 39%
of the test images on its own, one on the normalised detail 82%). Input: (B, 3, H, W) in [0, 1],
any size (images smaller than ``MIN_SIZE`` are padded by replication, larger than ``MAX_SIZE``
analysed in their centre window); output: logits over the setting's degradation ids.

Checkpoints (:func:`save_recognizer` / :func:`load_recognizer`) are self-contained: the format tag,
the architecture config, the setting, its degradation ids and task names, the weights, and how it
was trained; they load with ``torch.load(weights_only=True)``, strictly.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from net.checkpoint import CheckpointError, check_state_dict
from utils.tasks import SETTINGS, TASK_BY_ID, TASKS

FORMAT = "dfpir-degradation-recognizer"
FORMAT_VERSION = 2
MIN_SIZE = 48
"""Images smaller than this (either side) are padded by replication before analysis."""
MAX_SIZE = 1024
"""Larger images are analysed in their centre MAX_SIZE x MAX_SIZE window (bounded time and memory)."""

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


def setting_ids(setting: str) -> list[int]:
    """The degradation ids a recogniser of ``setting`` chooses from: its training tasks' ids, ascending."""
    if setting not in SETTINGS:
        raise ValueError(f"unknown setting {setting!r}; choose from {list(SETTINGS)}")
    return sorted(TASKS[t].de_id for t in SETTINGS[setting].train_repeats)


# --------------------------------------------------------------------------------------------------
# Image statistics


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


# --------------------------------------------------------------------------------------------------
# The network


@dataclass
class RecognizerConfig:
    """Architecture of the recogniser.

    setting:      '3D' or '5D': the classes are ``setting_ids(setting)``.
    cnn_channels: widths of the CNN's stride-2 3x3 convolutions (empty: statistics only).
    hidden:       width of the MLP's hidden layers.
    """

    setting: str = "5D"
    cnn_channels: list[int] = field(default_factory=lambda: [16, 32, 32])
    hidden: int = 64

    def to_dict(self) -> dict:
        return asdict(self)


class DegradationRecognizer(nn.Module):
    """Predicts the degradation id of an image: (B, 3, H, W) in [0, 1], any H, W -> logits (B, num_classes).

    Class ``i`` is degradation id ``self.de_ids[i]`` (the setting's ids, ascending). The statistics are
    standardised by a ``BatchNorm1d`` without affine parameters (the training set's mean and
    variance, accumulated over the whole training run), the CNN's channels are pooled by mean and
    standard deviation (the CNN sees :func:`local_detail`), and a 2-hidden-layer MLP maps both to the logits.
    """

    def __init__(self, setting: str = "5D", cnn_channels: list[int] | None = None, hidden: int = 64):
        super().__init__()
        self.config = RecognizerConfig(setting, list(RecognizerConfig().cnn_channels if cnn_channels is None
                                                     else cnn_channels), hidden)
        self.de_ids = setting_ids(setting)
        self.normalise = nn.BatchNorm1d(NUM_STATISTICS, affine=False, momentum=None)
        layers: list[nn.Module] = []
        width = 3
        for channels in self.config.cnn_channels:
            layers += [nn.Conv2d(width, channels, 3, stride=2, padding=1), nn.GELU()]
            width = channels
        self.cnn = nn.Sequential(*layers)
        cnn_features = 2 * width if self.config.cnn_channels else 0
        self.head = nn.Sequential(
            nn.Linear(NUM_STATISTICS + cnn_features, hidden), nn.GELU(),
            nn.Linear(hidden, hidden), nn.GELU(),
            nn.Linear(hidden, len(self.de_ids)),
        )

    @property
    def setting(self) -> str:
        return self.config.setting

    @property
    def task_names(self) -> list[str]:
        return [TASK_BY_ID[i].name for i in self.de_ids]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, 3, H, W) in [0, 1] -> logits (B, num_classes)."""
        x = x.float()
        h, w = x.shape[-2:]
        if h > MAX_SIZE or w > MAX_SIZE:
            top, left = max(0, (h - MAX_SIZE) // 2), max(0, (w - MAX_SIZE) // 2)
            x = x[..., top : top + MAX_SIZE, left : left + MAX_SIZE]
            h, w = x.shape[-2:]
        if h < MIN_SIZE or w < MIN_SIZE:
            pad_h, pad_w = max(0, MIN_SIZE - h), max(0, MIN_SIZE - w)
            x = F.pad(x, (0, pad_w, 0, pad_h), mode="replicate")
        parts = [self.normalise(degradation_statistics(x))]
        if self.config.cnn_channels:
            maps = self.cnn(local_detail(x))
            parts += [maps.mean((-2, -1)), maps.std((-2, -1))]
        return self.head(torch.cat(parts, 1))

    @torch.inference_mode()
    def predict(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x (B, 3, H, W) -> (de_ids (B,) long, probabilities (B, num_classes)); the module must be in eval mode."""
        probabilities = self(x).softmax(1)
        ids = torch.tensor(self.de_ids, device=probabilities.device)[probabilities.argmax(1)]
        return ids, probabilities


# --------------------------------------------------------------------------------------------------
# Checkpoints


class RecognizerError(CheckpointError):
    """A file is not a usable recogniser checkpoint; the message names the file and what to do."""


def save_recognizer(path: str | Path, model: DegradationRecognizer, training: dict | None = None) -> None:
    """Write a self-contained recogniser checkpoint (written to a temporary file, then renamed).

    training: how it was trained (steps, batch size, data ...), kept for the record.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "config": model.config.to_dict(),
        "setting": model.setting,
        "de_ids": list(model.de_ids),
        "tasks": model.task_names,
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "training": training or {},
    }
    tmp = path.with_name(path.name + ".tmp")
    torch.save(payload, tmp)
    tmp.replace(path)


def load_recognizer(path: str | Path, setting: str | None = None) -> DegradationRecognizer:
    """Read a recogniser checkpoint strictly (``weights_only=True``) and return it in eval mode.

    setting: when given, a recogniser of another setting is refused.
    RecognizerError for a missing or foreign file, a DFPIR checkpoint, another version, ids that no
    longer match the setting, or weights that do not match the recorded architecture.
    """
    path = Path(path)
    if not path.is_file():
        raise RecognizerError(f"recogniser {path} does not exist; train one with: "
                              "python train_recognizer.py --setting 3D|5D --output FILE")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # any unreadable file: truncated, not torch, unsafe pickle
        raise RecognizerError(f"{path} is not a readable recogniser checkpoint ({type(err).__name__}: "
                              f"{str(err).splitlines()[0] if str(err) else ''})") from err
    if not isinstance(obj, dict) or obj.get("format") != FORMAT:
        looks_like_dfpir = isinstance(obj, dict) and ("pytorch-lightning_version" in obj or "state_dict" in obj)
        what = "a DFPIR checkpoint" if looks_like_dfpir else "not a recogniser checkpoint"
        raise RecognizerError(f"{path} is {what}; --recognizer takes a file written by train_recognizer.py --output")
    if obj.get("version") != FORMAT_VERSION:
        raise RecognizerError(f"{path} is a recogniser checkpoint of format version {obj.get('version')}; "
                              f"this code reads version {FORMAT_VERSION}: retrain it with train_recognizer.py")
    try:
        config = RecognizerConfig(**obj["config"])
        model = DegradationRecognizer(config.setting, list(config.cnn_channels), int(config.hidden))
        state_dict = obj["state_dict"]
        recorded_ids = [int(i) for i in obj["de_ids"]]
    except (KeyError, TypeError, ValueError) as err:
        raise RecognizerError(f"{path}: a damaged recogniser checkpoint ({type(err).__name__}: {err})") from err
    if recorded_ids != model.de_ids:
        raise RecognizerError(f"{path} predicts degradation ids {recorded_ids}, but the {config.setting} setting "
                              f"has ids {model.de_ids}; retrain it with train_recognizer.py")
    if setting is not None and config.setting != setting:
        raise RecognizerError(f"{path} is a {config.setting} recogniser (ids {model.de_ids}) and cannot steer a "
                              f"{setting} DFPIR; train one with: python train_recognizer.py --setting {setting}")
    try:
        check_state_dict(model, state_dict, f"recogniser {path}",
                         hint="The file is damaged or was edited; retrain it with train_recognizer.py.")
    except CheckpointError as err:
        raise RecognizerError(str(err)) from None
    model.load_state_dict(state_dict, strict=True)
    return model.eval()
