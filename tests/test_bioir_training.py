"""Training BioIR with its authors' recipe (docs/baselines.md "Training BioIR"): the loss of one batch
(L1 + 0.1 x the L1 of the unnormalised 2-D DFTs) against the formula computed by hand, its terms
logged; the learning rate of each epoch under the installed Lightning; exact resume; its own 5D
mixture. --compile: the registry-wide tests/test_contract.py."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import pytest
import torch

import data.datamodule
from engine.module import RestorationModule
from engine.train import main as train_main
from net.bioir import BIOIR_RECIPE
from net.checkpoint import read_checkpoint
from net.recipe import TrainingBatch
from net.registry import create_model, recipe_of
from utils.tasks import SETTINGS

BASE_LR = 2e-4
# bioir_tiny on the stand-in dehaze set (8 pairs) at batch 8: 1 step per epoch. No prompt flag (blind network).
TINY = ["--model", "bioir_tiny", "--patch_size", "32", "--num_workers", "0", "--device", "cpu", "--logger", "csv",
        "--data_file_dir", "none"]
DEHAZE = ["--de_type", "dehaze", "--batch_size", "8"]

pytestmark = pytest.mark.usefixtures("one_thread")


def expected_lr(epoch: int) -> float:
    """The lr training epoch ``epoch`` (from 0) runs at under Lightning 2.x: Lightning calls
    ``lr_scheduler_step`` at the end of epoch e before the epoch counter advances, so
    ``scheduler.step(e)`` sets lr(e) for epoch e + 1 and epoch 0 runs at lr(0) = 0; lr(e) = e * base / 14
    for e < 15, else base / 2 * (1 + cos(pi (e - 15) / 165)) (the cosine stretched to 180 epochs)."""
    e = max(epoch - 1, 0)
    return e * BASE_LR / 14 if e < 15 else 0.5 * BASE_LR * (1 + math.cos(math.pi * (e - 15) / 165))


def _train(data_root: Path, ckpt_dir: Path, *extra: str, setting: str = "3D") -> None:
    assert train_main(setting, ["--data_root", str(data_root), "--ckpt_dir", str(ckpt_dir), *TINY, *extra]) == 0


def _dft2(x: torch.Tensor) -> torch.Tensor:
    """The unnormalised 2-D DFT over the last two axes by its definition, X[u, v] = sum_yx x[y, x]
    exp(-2 pi i (u y / H + v x / W)), as (..., H, W, 2) real and imaginary parts."""
    h, w = x.shape[-2:]

    def matrix(n: int) -> torch.Tensor:
        k = torch.arange(n, dtype=torch.float64)
        return torch.polar(torch.ones(n, n, dtype=torch.float64), -2 * math.pi * torch.outer(k, k) / n)

    spectrum = matrix(h) @ x.to(torch.complex128) @ matrix(w).T
    return torch.stack([spectrum.real, spectrum.imag], dim=-1)


@pytest.mark.filterwarnings("ignore:Detected call of `lr_scheduler.step\\(\\)` before")  # no training step here
def test_bioir_is_registered_with_its_authors_recipe():
    recipe = recipe_of("bioir")
    assert recipe is BIOIR_RECIPE
    assert (recipe.lr, recipe.batch_size, recipe.epochs, recipe.lr_schedule_epochs, recipe.val_every) == \
        (2e-4, 16, 150, 180, 0)
    assert not recipe.select_best_on_test and recipe.keep_every_epoch and recipe.find_unused_parameters
    optimizer = recipe.optimizer([torch.nn.Parameter(torch.zeros(2))], {"lr": 2e-4})
    assert type(optimizer) is torch.optim.AdamW
    assert optimizer.defaults["betas"] == (0.9, 0.999) and optimizer.defaults["eps"] == 1e-8
    assert optimizer.defaults["weight_decay"] == 0.01
    # The last of 150 epochs (index 149) runs at lr(148) = 1.80e-5, not 0: the cosine is stretched to 180.
    scheduler = recipe.scheduler(optimizer, {"lr_schedule_epochs": 180})
    recipe.scheduler_step(scheduler, 148, None)
    assert optimizer.param_groups[0]["lr"] == pytest.approx(1.80e-5, abs=5e-8)


def test_the_5d_mixture_is_the_authors_and_3d_is_the_settings():
    assert BIOIR_RECIPE.train_repeats("3D") == dict(SETTINGS["3D"].train_repeats)
    assert BIOIR_RECIPE.train_repeats("5D") == {"denoise_15": 3, "denoise_25": 3, "denoise_50": 3, "derain": 120,
                                                "dehaze": 1, "deblur": 5, "lowlight": 20}
    assert SETTINGS["5D"].train_repeats["deblur"] == 30  # DFPIR's own mixture is unchanged
    assert recipe_of("dfpir").train_repeats("5D") == dict(SETTINGS["5D"].train_repeats)


def test_the_loss_of_one_batch_is_l1_plus_a_tenth_of_the_l1_of_the_spectra():
    torch.manual_seed(0)
    network = create_model("bioir_tiny").double()
    degraded, clean = torch.rand(2, 3, 16, 20, dtype=torch.float64), torch.rand(2, 3, 16, 20, dtype=torch.float64)
    batch = TrainingBatch(degraded, clean, torch.tensor([3, 4]), None)
    total, terms = BIOIR_RECIPE.training_loss(network, batch)

    restored = network(degraded)
    l1 = (restored - clean).abs().mean()
    fft = (_dft2(restored) - _dft2(clean)).abs().mean()  # over B x 3 x H x W x 2 entries
    assert set(terms) == {"l1", "fft"}
    assert terms["l1"].item() == pytest.approx(l1.item(), rel=1e-12)
    assert terms["fft"].item() == pytest.approx(0.1 * fft.item(), rel=1e-10)
    assert total.item() == pytest.approx(l1.item() + 0.1 * fft.item(), rel=1e-10)
    total.backward()  # the loss reaches every parameter the forward pass uses
    unused = {f"reduce_chan_level2.{k}" for k in network.reduce_chan_level2.state_dict()}
    assert all((p.grad is None) == (name in unused) for name, p in network.named_parameters())


def test_the_lr_of_each_of_the_first_18_epochs_and_after_a_resume(data_root, tmp_path, monkeypatch):
    seen: list[tuple[int, float]] = []
    step = RestorationModule.training_step

    def recording_step(self, batch, batch_idx):
        seen.append((self.current_epoch, self.optimizers().param_groups[0]["lr"]))
        return step(self, batch, batch_idx)

    monkeypatch.setattr(RestorationModule, "training_step", recording_step)
    _train(data_root, tmp_path / "straight", *DEHAZE, "--epochs", "18", "--no-keep_every_epoch")
    straight = list(seen)
    assert [e for e, _ in straight] == list(range(18))  # one step per epoch
    for epoch, lr in straight:
        assert lr == pytest.approx(expected_lr(epoch), rel=1e-12, abs=1e-20), f"epoch {epoch}"
    assert [round(lr / BASE_LR * 14, 9) for _, lr in straight[:3]] == [0, 0, 1]  # epochs 0, 1, 2
    last = read_checkpoint(tmp_path / "straight" / "last.ckpt")
    assert last.architecture == "bioir" and last.prompt_table is None

    # Interrupted at the end of epoch 7 (after its one step, before Lightning steps the schedule), resumed.
    seen.clear()
    _train(data_root, tmp_path / "resumed", *DEHAZE, "--epochs", "18", "--max_steps", "8", "--no-keep_every_epoch")
    _train(data_root, tmp_path / "resumed", *DEHAZE, "--epochs", "18", "--resume", "auto", "--no-keep_every_epoch")
    assert seen == straight
    resumed = read_checkpoint(tmp_path / "resumed" / "last.ckpt").state_dict
    assert all(torch.equal(resumed[k], v) for k, v in last.state_dict.items())


def test_a_5d_run_mixes_the_authors_repeats_and_logs_every_loss_term(data_root, tmp_path, monkeypatch, capsys):
    mixtures = []

    class RecordingMixture(data.datamodule.TrainMixture):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            mixtures.append(self.summary())

    monkeypatch.setattr(data.datamodule, "TrainMixture", RecordingMixture)
    _train(data_root, tmp_path / "run", "--batch_size", "2", "--max_steps", "2", "--ckpt_every", "1",
           "--no-keep_every_epoch", setting="5D")
    assert {task: repeat for task, _, repeat in mixtures[0]} == BIOIR_RECIPE.train_repeats("5D")
    out = capsys.readouterr().out
    assert "task=deblur" in out and "repeat=5 " in out and "repeat=20 " in out  # the data check agrees

    (metrics,) = (tmp_path / "run").glob("logs/*/metrics.csv")
    rows = [row for row in csv.DictReader(metrics.open()) if row.get("loss")]
    assert len(rows) == 2
    for row in rows:
        assert float(row["loss"]) == pytest.approx(float(row["loss_l1"]) + float(row["loss_fft"]), rel=1e-5)
