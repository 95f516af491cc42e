"""PSNR and SSIM exactly as the DFPIR evaluation protocol defines them (docs/protocol.md section 4).

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

On a GPU, :func:`device_image_metrics` computes the same two numbers where the images already are
(float64 SSIM, equal to scikit-image's to within 1e-6 per image, ``tests/test_metrics.py``), so
that validation does not wait for the CPU.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
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


SSIM_WINDOW = 7  # scikit-image's default win_size: a 7 x 7 uniform window
SSIM_K1, SSIM_K2 = 0.01, 0.03


def device_ssim(restored: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """:func:`ssim` as a tensor computation on the images' own device (any of CPU/CUDA).

    restored, target: (B, 3, H, W) in [0, 1], H and W >= 7 -> (B,) float64 SSIM per image.
    scikit-image's formulation: per channel, 7 x 7 uniform-window means, sample (co)variances
    (normalised by 49/48), C1 = (0.01)^2, C2 = (0.03)^2, the SSIM map averaged over the pixels
    whose window lies inside the image (scikit-image filters with reflected borders, then crops
    those 3 pixels away), then over the channels. Computed in float64: scikit-image computes in
    its inputs' float32, and the two agree to within 1e-6 per image.
    """
    x, y = restored.double(), target.double()
    n = SSIM_WINDOW * SSIM_WINDOW
    maps = torch.cat([x, y, x * x, y * y, x * y])  # (5B, 3, H, W): one pass of the window filter
    ux, uy, uxx, uyy, uxy = F.avg_pool2d(maps, SSIM_WINDOW, stride=1).chunk(5)
    cov_norm = n / (n - 1)
    vx, vy, vxy = cov_norm * (uxx - ux * ux), cov_norm * (uyy - uy * uy), cov_norm * (uxy - ux * uy)
    c1, c2 = SSIM_K1**2, SSIM_K2**2
    s = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux * ux + uy * uy + c1) * (vx + vy + c2))
    return s.mean(dim=(1, 2, 3))


def device_image_metrics(restored: torch.Tensor, target: torch.Tensor) -> tuple[float, float]:
    """:func:`image_metrics` computed on the tensors' device: (PSNR, SSIM) of one (3, H, W) pair.

    Clips and rounds both images to float32 as the protocol does; PSNR sums the float32 squared
    errors in float64 like scikit-image (equal to within float64 rounding), SSIM is
    :func:`device_ssim`. One host transfer of two numbers.
    """
    if restored.shape != target.shape or restored.ndim != 3 or restored.shape[0] != 3:
        raise ValueError(f"expected two (3, H, W) tensors of the same shape, got {tuple(restored.shape)} "
                         f"and {tuple(target.shape)}")
    restored, target = restored.float().clamp(0, 1), target.float().clamp(0, 1)
    mse = ((target - restored) ** 2).double().mean()
    ssim_value = device_ssim(restored[None], target[None])[0]
    mse_value, ssim_value = torch.stack([mse, ssim_value]).tolist()
    psnr_value = 10 * np.log10(1 / mse_value) if mse_value > 0 else float("inf")
    return float(psnr_value), ssim_value


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
