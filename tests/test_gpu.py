"""Checks that need a CUDA device (skipped without one); ``benchmarks/gpu_train.sh`` runs them.

- the GPU evaluation's SSIM/PSNR against scikit-image on images of the test sets' real sizes;
- ``--compile`` training on CUDA (whole step compiled, CUDA graphs, fused Adam): no host
  synchronisation between two progress-bar refreshes, last.ckpt with the released key names, and
  a resume to the weights of an uninterrupted run.
"""

from __future__ import annotations

import warnings

import pytest
import torch

from benchmarks.bench_data import write_stand_in_prompt_file
from data.sample import make_sample_dataset
from engine.callbacks import ProgressBar
from engine.train import main as train_main
from net.checkpoint import read_checkpoint
from net.registry import create_model
from utils.metrics import device_image_metrics, image_metrics

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")

TINY_CUDA = ["--model", "tiny", "--patch_size", "32", "--batch_size", "2", "--num_workers", "2", "--device", "cuda",
             "--logger", "csv", "--val_every", "0", "--ckpt_every", "0"]


@pytest.mark.parametrize(("height", "width"), [(460, 620), (321, 481)])
def test_device_metrics_on_cuda_equal_scikit_image(height, width):
    g = torch.Generator().manual_seed(height)
    coarse = torch.rand(1, 3, height // 16 + 2, width // 16 + 2, generator=g)
    target = torch.nn.functional.interpolate(coarse, size=(height, width), mode="bicubic")[0].clamp(0, 1)
    restored = target + 0.05 * torch.randn(target.shape, generator=g)
    expected_psnr, expected_ssim = image_metrics(restored, target)
    got_psnr, got_ssim = device_image_metrics(restored.cuda(), target.cuda())
    assert abs(got_ssim - expected_ssim) < 1e-6
    assert got_psnr == pytest.approx(expected_psnr, rel=1e-9)


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("sample")
    make_sample_dataset(root, train_size=48, test_size=32, scale=3)
    write_stand_in_prompt_file(root / "prompts.pt")  # the GPU machine may lack open_clip
    return root


def test_compiled_cuda_training_never_waits_for_the_gpu_between_refreshes(data_root, tmp_path, monkeypatch):
    """Sync debug mode 'warn' during the steps strictly between two refreshes of the progress bar (which
    reads the loss) and away from the logger's steps; a synchronising call in the loop would warn."""
    refresh = ProgressBar.GPU_REFRESH_STEPS
    window = range(refresh + 1, 2 * refresh - 1)  # batch indices; the bar reads the loss after 2*refresh-1

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        torch.cuda.set_sync_debug_mode("warn" if batch_idx in window else "default")

    monkeypatch.setattr(ProgressBar, "on_train_batch_start", on_train_batch_start, raising=False)
    ckpt_dir = tmp_path / "run"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            assert train_main("3D", ["--data_root", str(data_root), "--ckpt_dir", str(ckpt_dir), *TINY_CUDA,
                                     "--prompt_embeddings", str(data_root / "prompts.pt"),
                                     "--compile", "--max_steps", str(2 * refresh + 5)]) == 0
        finally:
            torch.cuda.set_sync_debug_mode("default")
    syncs = [str(w.message) for w in caught if "synchroniz" in str(w.message).lower()]
    assert not syncs, syncs[:3]
    assert list(read_checkpoint(ckpt_dir / "last.ckpt").state_dict) == list(create_model("tiny").state_dict())


def test_compiled_cuda_training_resumes_exactly(data_root, tmp_path):
    common = ["--data_root", str(data_root), *TINY_CUDA, "--prompt_embeddings", str(data_root / "prompts.pt"),
              "--compile", "--de_type", "dehaze", "--lr", "1e-3"]
    assert train_main("3D", [*common, "--ckpt_dir", str(tmp_path / "straight"), "--max_steps", "6"]) == 0
    assert train_main("3D", [*common, "--ckpt_dir", str(tmp_path / "resumed"), "--max_steps", "3"]) == 0
    assert train_main("3D", [*common, "--ckpt_dir", str(tmp_path / "resumed"), "--max_steps", "6",
                             "--resume", "auto"]) == 0
    straight = read_checkpoint(tmp_path / "straight" / "last.ckpt").state_dict
    resumed = read_checkpoint(tmp_path / "resumed" / "last.ckpt").state_dict
    # A checkpoint of a run without fused Adam (earlier versions, CPU runs) resumes with fused Adam.
    old = torch.load(tmp_path / "resumed" / "last.ckpt", weights_only=True)
    for group in old["optimizer_states"][0]["param_groups"]:
        group.update(fused=None, foreach=None)
    for state in old["optimizer_states"][0]["state"].values():
        state["step"] = state["step"].cpu()
    torch.save(old, tmp_path / "unfused.ckpt")
    assert train_main("3D", [*common, "--ckpt_dir", str(tmp_path / "unfused"), "--max_steps", "8",
                             "--resume", str(tmp_path / "unfused.ckpt")]) == 0
    # cuDNN may pick other (equally valid) algorithms in another process: equal up to their rounding;
    # a resume that lost state (step, optimizer moments, data order) differs by about lr.
    for key in straight:
        torch.testing.assert_close(resumed[key], straight[key], rtol=1e-4, atol=1e-5, msg=key)
