"""utils.metrics: exactly scikit-image's PSNR / SSIM with the protocol's options."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from utils.metrics import device_image_metrics, device_ssim, image_metrics, psnr, ssim, tensor_to_image


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


def photo_like_pair(height: int, width: int, noise: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A smooth (3, H, W) float32 target in [0, 1] and a noisy, partly clipped restoration of it."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(1, 3, height // 16 + 2, width // 16 + 2, generator=g)
    target = torch.nn.functional.interpolate(coarse, size=(height, width), mode="bicubic")[0].clamp(0, 1)
    restored = target + noise * torch.randn(target.shape, generator=g)
    return restored, target


@pytest.mark.parametrize(("height", "width", "noise"), [(7, 7, 0.1), (40, 33, 0.05), (64, 64, 0.4),
                                                        (321, 481, 0.02), (460, 620, 0.08)])
def test_device_metrics_equal_scikit_image_to_1e6(height, width, noise):
    """The GPU evaluation's metrics, run here on the CPU in float64, against scikit-image itself."""
    restored, target = photo_like_pair(height, width, noise, seed=height)
    expected_psnr, expected_ssim = image_metrics(restored, target)
    got_psnr, got_ssim = device_image_metrics(restored, target)
    assert abs(got_ssim - expected_ssim) < 1e-6
    assert got_psnr == pytest.approx(expected_psnr, rel=1e-12)


def test_device_ssim_scores_a_batch_image_by_image():
    pairs = [photo_like_pair(24, 30, 0.1, seed) for seed in range(3)]
    restored, target = (torch.stack(t).clamp(0, 1) for t in zip(*pairs, strict=True))
    batch = device_ssim(restored, target)
    assert batch.dtype == torch.float64 and batch.shape == (3,)
    for i in range(3):
        assert batch[i].item() == pytest.approx(ssim(tensor_to_image(restored[i]), tensor_to_image(target[i])),
                                                abs=1e-6)
    assert device_ssim(target, target).tolist() == pytest.approx([1.0] * 3, abs=1e-12)
