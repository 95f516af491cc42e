"""utils.metrics: exactly scikit-image's PSNR / SSIM with the protocol's options."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from utils.metrics import image_metrics, psnr, ssim, tensor_to_image


def random_pair(dtype: type, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    target = rng.random((40, 33, 3)).astype(dtype)
    restored = np.clip(target + rng.normal(0, 0.05, target.shape), 0, 1).astype(dtype)
    return restored, target


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_equal_to_scikit_image(dtype):
    restored, target = random_pair(dtype)
    assert psnr(restored, target) == peak_signal_noise_ratio(target, restored, data_range=1)
    assert ssim(restored, target) == structural_similarity(target, restored, data_range=1, channel_axis=-1)


def test_precision_follows_the_input_dtype():
    restored, target = random_pair(np.float64)
    as32 = ssim(restored.astype(np.float32), target.astype(np.float32))
    as64 = ssim(restored, target)
    assert as32 != as64 and abs(as32 - as64) < 1e-5


def test_known_values():
    target = np.full((16, 16, 3), 0.5)
    assert psnr(target + 0.1, target) == pytest.approx(20.0)
    assert ssim(target.copy(), target) == pytest.approx(1.0)


def test_shape_mismatch_is_refused():
    with pytest.raises(ValueError, match="same shape"):
        psnr(np.zeros((8, 8, 3)), np.zeros((8, 9, 3)))
    with pytest.raises(ValueError, match=r"\(H, W, 3\)"):
        ssim(np.zeros((3, 8, 8)), np.zeros((3, 8, 8)))


def test_tensor_to_image_layout_dtype_and_clamp():
    x = torch.tensor([[[-1.0, 0.25]], [[0.5, 2.0]], [[1.0, 0.0]]], dtype=torch.float64)  # (3, 1, 2)
    img = tensor_to_image(x)
    assert img.dtype == np.float32 and img.shape == (1, 2, 3)
    assert img.tolist() == [[[0.0, 0.5, 1.0], [0.25, 1.0, 0.0]]]


def test_image_metrics_clips_the_output_and_evaluates_in_float32():
    rng = np.random.default_rng(1)
    target = torch.from_numpy(rng.random((3, 24, 20), dtype=np.float32))
    restored = target + torch.from_numpy(rng.normal(0, 0.2, (3, 24, 20)).astype(np.float32))
    assert restored.min() < 0 and restored.max() > 1
    clipped = restored.clamp(0, 1).permute(1, 2, 0).numpy()
    t = target.permute(1, 2, 0).numpy()
    expected = (peak_signal_noise_ratio(t, clipped, data_range=1),
                structural_similarity(t, clipped, data_range=1, channel_axis=-1))
    assert image_metrics(restored, target) == expected
