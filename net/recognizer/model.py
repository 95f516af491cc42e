"""The degradation recogniser network: (B, 3, H, W) in [0, 1] -> logits over the setting's degradation
ids (see ``net/recognizer/__init__.py``)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from net.recognizer.statistics import NUM_STATISTICS, degradation_statistics, local_detail
from utils.tasks import SETTINGS, TASK_BY_ID, TASKS

MIN_SIZE = 48
"""Images smaller than this (either side) are padded by replication before analysis."""
MAX_SIZE = 1024
"""Larger images are analysed in their centre MAX_SIZE x MAX_SIZE window (bounded time and memory)."""


def setting_ids(setting: str) -> list[int]:
    """The degradation ids a recogniser of ``setting`` chooses from: its training tasks' ids, ascending."""
    if setting not in SETTINGS:
        raise ValueError(f"unknown setting {setting!r}; choose from {list(SETTINGS)}")
    return sorted(TASKS[t].de_id for t in SETTINGS[setting].train_repeats)


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
