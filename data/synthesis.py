"""Synthetic degradations of the stand-in dataset (``python -m data.sample``), one per dataset record.

A dataset record's stand-in recipe names its synthesis (``utils.tasks.StandIn.synthesis``), found
here in :data:`SYNTHESES` (``"rain"``, ``"haze"``, ``"motion_blur"``, ``"low_light"``; a plug-in adds
its own with :func:`register_synthesis`). Each has the signature :data:`Synthesis`:
``(clean, rng, count) -> [(tag, degraded), ...]`` with ``clean`` and every ``degraded`` (H, W, 3)
float64 in [0, 1] and ``count`` versions of the scene; ``tag`` goes into the file name where the
benchmark's names carry the degradation's parameters (RESIDE's ``ID_A_B.jpg``), else it is "". Each
resembles its benchmark:

- rain (Rain100L): thin, bright, slanted, motion-blurred streaks of random length and density,
  screen-blended onto the scene.
- haze (RESIDE OTS / SOTS outdoor): atmospheric scattering I = J t + A (1 - t), t = exp(-beta d),
  with d a smooth synthetic depth map shared by all hazy versions of a scene; A and beta come from
  RESIDE's grids and are the tag.
- motion blur (GoPro): a random linear or random-walk (camera shake) kernel convolved with the scene.
- low light (LOL): gamma darkening, scaling and a little signal-dependent noise.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy import ndimage

from utils.registry import Registry

Synthesis = Callable[[np.ndarray, np.random.Generator, int], list[tuple[str, np.ndarray]]]
"""(clean (H, W, 3) float64 in [0, 1], rng, count) -> ``count`` [(file-name tag, degraded)]."""

# RESIDE's atmospheric light and scattering coefficient grids.
AIRLIGHTS: tuple[float, ...] = (0.8, 0.85, 0.9, 0.95, 1.0)
BETAS: tuple[float, ...] = (0.04, 0.06, 0.08, 0.1, 0.12, 0.16, 0.2)


# --------------------------------------------------------------------------------------------------
# Blur kernels


def splat_kernel(points: np.ndarray, size: int) -> np.ndarray:
    """Bilinearly splat a path into a (size, size) float64 kernel that sums to 1.

    points: (N, 2) float (y, x) offsets from the kernel centre, each within +-(size - 1) / 2.
    """
    yx = points + (size - 1) / 2
    base = np.floor(yx).astype(np.int64)
    frac = yx - base
    kernel = np.zeros((size + 1, size + 1))  # one spare row/column for the zero-weight neighbours
    for dy in (0, 1):
        for dx in (0, 1):
            weight = (frac[:, 0] if dy else 1 - frac[:, 0]) * (frac[:, 1] if dx else 1 - frac[:, 1])
            np.add.at(kernel, (base[:, 0] + dy, base[:, 1] + dx), weight)
    kernel = kernel[:size, :size]
    return kernel / kernel.sum()


def line_kernel(length: float, angle: float) -> np.ndarray:
    """A linear motion kernel: a line of ``length`` pixels, ``angle`` degrees from vertical (90: horizontal).

    Returns (size, size) float64 summing to 1, size the smallest odd number above ``length``.
    """
    size = 2 * int(np.ceil(length / 2)) + 1
    offsets = np.linspace(-length / 2, length / 2, int(4 * length) + 1)
    direction = np.array([np.cos(np.radians(angle)), np.sin(np.radians(angle))])
    return splat_kernel(offsets[:, None] * direction, size)


def camera_shake_kernel(rng: np.random.Generator, size: int) -> np.ndarray:
    """A random-walk motion kernel: a smooth path with drifting heading, scaled to span the kernel.

    Returns (size, size) float64 summing to 1; ``size`` odd.
    """
    steps = 4 * size
    heading = rng.uniform(0, 2 * np.pi) + np.cumsum(rng.normal(0, 0.3, steps))
    path = np.cumsum(np.stack([np.sin(heading), np.cos(heading)], axis=1), axis=0)
    path -= (path.min(axis=0) + path.max(axis=0)) / 2
    path *= ((size - 1) / 2 - 0.5) / np.abs(path).max()
    return splat_kernel(path, size)


# --------------------------------------------------------------------------------------------------
# Degradations: clean (H, W, 3) float64 in [0, 1] -> degraded (H, W, 3) float64 in [0, 1]


def add_rain(clean: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Rain100L-like streaks: two layers of sparse seeds smeared along one slant, screen-blended.

    Each layer has its own density and streak length; the far layer is shorter and fainter.
    """
    height, width = clean.shape[:2]
    angle = rng.uniform(-25, 25)
    rain = np.zeros((height, width))
    for min_length, max_length, brightness in ((6, 14, 0.6), (14, 28, 0.9)):
        length = rng.uniform(min_length, max_length)
        density = rng.uniform(0.0007, 0.003)
        seeds = (rng.random((height, width)) < density) * rng.uniform(0.5, 1.0, (height, width))
        kernel = line_kernel(length, angle + rng.uniform(-3, 3)) * length  # ~1 along the streak
        streaks = ndimage.gaussian_filter(ndimage.convolve(seeds, kernel, mode="wrap"), 0.5)
        rain = np.maximum(rain, np.clip(streaks * brightness * rng.uniform(0.8, 1.2), 0, 1))
    return 1 - (1 - clean) * (1 - rain[..., None])


def synthetic_depth(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A smooth depth map (height, width) float64 in [1, far], far in [6, 12], in the units where
    RESIDE's betas apply: far at the top (sky, horizon), near at the bottom, with smooth bumps.
    """
    ramp = np.linspace(1.0, 0.0, height)[:, None].repeat(width, axis=1)
    noise = rng.standard_normal((height, width))
    bumps = ndimage.gaussian_filter(noise, min(height, width) / 6, mode="reflect")
    bumps /= np.abs(bumps).max() + 1e-12
    depth01 = ramp + 0.3 * bumps
    depth01 = (depth01 - depth01.min()) / (depth01.max() - depth01.min())
    return 1.0 + depth01 * (rng.uniform(6, 12) - 1.0)


def add_haze(clean: np.ndarray, depth: np.ndarray, airlight: float, beta: float) -> np.ndarray:
    """Atmospheric scattering: I = J t + A (1 - t), t = exp(-beta d); depth d (H, W)."""
    transmission = np.exp(-beta * depth)[..., None]
    return clean * transmission + airlight * (1 - transmission)


def add_motion_blur(clean: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """GoPro-like blur: a linear kernel (5-13 px, any direction) or a 7-13 px camera-shake random walk."""
    if rng.random() < 0.5:
        kernel = line_kernel(rng.uniform(5, 13), rng.uniform(0, 180))
    else:
        kernel = camera_shake_kernel(rng, 2 * int(rng.integers(3, 7)) + 1)
    return ndimage.convolve(clean, kernel[..., None], mode="reflect")


def darken(clean: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """LOL-like low light: scale * clean ** gamma plus a little read and shot noise (per channel)."""
    low = rng.uniform(0.12, 0.3) * clean ** rng.uniform(1.4, 2.2)
    noise_std = rng.uniform(0.002, 0.006) + rng.uniform(0.005, 0.015) * np.sqrt(low)
    return np.clip(low + rng.standard_normal(low.shape) * noise_std, 0, 1)


def haze_versions(
    clean: np.ndarray, rng: np.random.Generator, count: int
) -> list[tuple[str, np.ndarray]]:
    """``count`` hazy versions of one scene with distinct (A, beta): [(tag 'A_B', hazy)]."""
    depth = synthetic_depth(rng, *clean.shape[:2])
    grid = [(a, b) for a in AIRLIGHTS for b in BETAS]
    picks = rng.choice(len(grid), size=count, replace=False)
    return [
        (f"{grid[p][0]:g}_{grid[p][1]:g}", add_haze(clean, depth, *grid[p]))
        for p in sorted(picks)
    ]


def each(degrade: Callable[[np.ndarray, np.random.Generator], np.ndarray]) -> Synthesis:
    """A :data:`Synthesis` drawing ``count`` independent versions of ``degrade(clean, rng)``, untagged."""

    def synthesise(clean: np.ndarray, rng: np.random.Generator, count: int) -> list[tuple[str, np.ndarray]]:
        return [("", degrade(clean, rng)) for _ in range(count)]

    synthesise.__doc__ = f"``count`` versions of :func:`{degrade.__name__}`, untagged."
    return synthesise


SYNTHESES: Registry[Synthesis] = Registry("stand-in synthesis", "data.synthesis.register_synthesis")
"""Synthesis name (a stand-in recipe's ``synthesis``) -> function."""
register_synthesis = SYNTHESES.register
find_synthesis = SYNTHESES.find

register_synthesis("rain", each(add_rain))
register_synthesis("haze", haze_versions)
register_synthesis("motion_blur", each(add_motion_blur))
register_synthesis("low_light", each(darken))
