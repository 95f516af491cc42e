"""Degradations synthesised online: the training and test loaders make the degraded image from the clean one.

A task record names its online degradation (``utils.tasks.Online``: a name and parameters); the
function is found here in :data:`ONLINE_DEGRADATIONS`. The paper's one is ``"noise"`` (Gaussian
noise, parameter ``sigma``: the denoising tasks); a plug-in registers its own with
:func:`register_online`. Each has the signature :data:`OnlineDegradation`.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from data.transforms import add_gaussian_noise
from utils.registry import Registry
from utils.tasks import Online

OnlineDegradation = Callable[..., np.ndarray]
"""(clean (H, W, 3) uint8, rng: np.random.Generator, **params) -> degraded (H, W, 3) uint8."""

ONLINE_DEGRADATIONS: Registry[OnlineDegradation] = Registry("online degradation", "data.online.register_online")
"""Online degradation name (``Online.name``) -> function."""
register_online = ONLINE_DEGRADATIONS.register


def degrade_online(online: Online, clean: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``clean`` (H, W, 3) uint8 degraded by the record's online degradation, drawing from ``rng``."""
    return ONLINE_DEGRADATIONS.find(online.name)(np.ascontiguousarray(clean), rng, **online.params)


def gaussian_noise(clean: np.ndarray, rng: np.random.Generator, *, sigma: float) -> np.ndarray:
    """The denoising tasks' noise: :func:`data.transforms.add_gaussian_noise` at ``sigma`` (0-255)."""
    return add_gaussian_noise(clean, sigma, rng)


register_online("noise", gaussian_noise)
