"""PSNR and SSIM exactly as the DFPIR evaluation protocol defines them (spec section 4).

Both are scikit-image's implementations with the protocol's options:

- PSNR: ``peak_signal_noise_ratio(target, restored, data_range=1)``.
- SSIM: ``structural_similarity(target, restored, data_range=1, channel_axis=-1)`` with
  scikit-image's defaults (7x7 uniform window, sample covariance, K1 = 0.01, K2 = 0.03), computed
  per RGB channel and averaged. ``channel_axis`` exists since scikit-image 0.19 (the older
  ``multichannel`` flag is never used), so any scikit-image >= 0.19 gives the same numbers.

Precision: scikit-image computes in the floating type of its inputs, so float32 images give
float32 SSIM (and a float32 difference inside PSNR). The reference evaluates float32 arrays made
from float32 network outputs, so the protocol path (:func:`tensor_to_image`,
:func:`image_metrics`) feeds float32; :func:`psnr` and :func:`ssim` pass arrays through untouched.
Metrics are computed on the clipped float output, never on a uint8-rounded copy.
"""

from __future__ import annotations

import numpy as np
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity


def _check_pair(restored: np.ndarray, target: np.ndarray) -> None:
    if restored.shape != target.shape or restored.ndim != 3 or restored.shape[2] != 3:
        raise ValueError(
            f"expected two (H, W, 3) images of the same shape, got {restored.shape} and {target.shape}"
        )


def psnr(restored: np.ndarray, target: np.ndarray) -> float:
    """PSNR in dB of ``restored`` against ``target``, both (H, W, 3) float in [0, 1] (data range 1)."""
    _check_pair(restored, target)
    return float(peak_signal_noise_ratio(target, restored, data_range=1))


def ssim(restored: np.ndarray, target: np.ndarray) -> float:
    """SSIM of ``restored`` against ``target``, both (H, W, 3) float in [0, 1], H and W >= 7."""
    _check_pair(restored, target)
    return float(structural_similarity(target, restored, data_range=1, channel_axis=-1))


def tensor_to_image(x: torch.Tensor) -> np.ndarray:
    """(3, H, W) tensor in [0, 1] -> (H, W, 3) float32 numpy array, clamped to [0, 1]."""
    if x.ndim != 3 or x.shape[0] != 3:
        raise ValueError(f"expected a (3, H, W) tensor, got shape {tuple(x.shape)}")
    return x.detach().to(device="cpu", dtype=torch.float32).clamp(0, 1).permute(1, 2, 0).numpy()


def image_metrics(restored: torch.Tensor, target: torch.Tensor) -> tuple[float, float]:
    """(PSNR, SSIM) of one restored image against its target, both (3, H, W) tensors.

    ``restored`` is clipped to [0, 1] first (the protocol's output clipping); both are evaluated
    as float32, as the reference does.
    """
    restored_img, target_img = tensor_to_image(restored), tensor_to_image(target)
    return psnr(restored_img, target_img), ssim(restored_img, target_img)
