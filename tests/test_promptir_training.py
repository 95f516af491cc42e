"""Training PromptIR with its own recipe (docs/protocol.md section 7.2, docs/baselines.md "Training
PromptIR"): the recipe's defaults, the learning rate of each of the first 17 epochs under the
installed Lightning, exact resume, no prompt table, and a kept checkpoint per epoch."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from engine.module import RestorationModule
from engine.train import main as train_main
from net.checkpoint import read_checkpoint
from net.promptir import PROMPTIR_RECIPE
from net.registry import recipe_of

BASE_LR = 2e-4
# promptir_tiny on the stand-in dehaze set (8 pairs) at the recipe's batch 8: 1 step per epoch. No prompt flag.
TINY = ["--model", "promptir_tiny", "--patch_size", "32", "--num_workers", "0",
        "--device", "cpu", "--logger", "csv", "--data_file_dir", "none", "--de_type", "dehaze"]


pytestmark = pytest.mark.usefixtures("one_thread")


def expected_lr(epoch: int) -> float:
    """The lr epoch ``epoch`` trains with under Lightning 2.6 (docs/baselines.md): Lightning calls
    ``lr_scheduler_step`` at the end of epoch e *before* incrementing current_epoch, so
    ``scheduler.step(e)`` sets lr(e) for epoch e + 1; epoch 0 trains with the schedule's initial lr(0) = 0.
    lr(e) = e * base / 14 for e < 15, else 0.5 * base * (1 + cos(pi * (e - 15) / 135))."""
    e = max(epoch - 1, 0)
    return e * BASE_LR / 14 if e < 15 else 0.5 * BASE_LR * (1 + math.cos(math.pi * (e - 15) / 135))


def _record_lrs(monkeypatch) -> list[tuple[int, float]]:
    """(epoch, lr) of every training step, read from the optimizer inside training_step."""
    seen: list[tuple[int, float]] = []
    step = RestorationModule.training_step

    def recording_step(self, batch, batch_idx):
        seen.append((self.current_epoch, self.optimizers().param_groups[0]["lr"]))
        return step(self, batch, batch_idx)

    monkeypatch.setattr(RestorationModule, "training_step", recording_step)
    return seen


def _train(data_root: Path, ckpt_dir: Path, *extra: str) -> None:
    assert train_main("3D", ["--data_root", str(data_root), "--ckpt_dir", str(ckpt_dir), *TINY, *extra]) == 0


def test_promptir_is_registered_with_its_authors_recipe():
    recipe = recipe_of("promptir")
    assert recipe is PROMPTIR_RECIPE
    assert (recipe.lr, recipe.batch_size, recipe.epochs, recipe.lr_schedule_epochs, recipe.val_every) == \
        (2e-4, 8, 120, 150, 0)
    assert not recipe.select_best_on_test and recipe.keep_every_epoch and recipe.find_unused_parameters
    optimizer = recipe.optimizer([torch.nn.Parameter(torch.zeros(2))], {"lr": 2e-4})
    assert type(optimizer) is torch.optim.AdamW
    assert optimizer.defaults["betas"] == (0.9, 0.999) and optimizer.defaults["weight_decay"] == 0.01


def test_the_lr_of_each_of_the_first_17_epochs_and_after_a_resume(data_root, tmp_path, monkeypatch):
    seen = _record_lrs(monkeypatch)
    _train(data_root, tmp_path / "straight", "--epochs", "17")
    straight = list(seen)
    assert [e for e, _ in straight] == list(range(17))  # one step per epoch
    for epoch, lr in straight:
        assert lr == pytest.approx(expected_lr(epoch), rel=1e-12, abs=1e-20), f"epoch {epoch}"
    assert [round(lr / BASE_LR * 14, 9) for _, lr in straight[:3]] == [0, 0, 1]  # epochs 0, 1, 2

    last = read_checkpoint(tmp_path / "straight" / "last.ckpt")
    assert last.architecture == "promptir" and last.prompt_table is None  # no prompt table stored
    assert sorted(p.name for p in (tmp_path / "straight").glob("epoch*.ckpt"))[:2] == \
        ["epoch0-step1.ckpt", "epoch1-step2.ckpt"]
    assert len(list((tmp_path / "straight").glob("epoch*.ckpt"))) == 17  # one per epoch, as the authors kept
    sources = torch.load(last.path, weights_only=True)["dfpir_run"]["option_sources"]
    assert sources == {"lr": "recipe", "batch_size": "recipe", "epochs": "flag", "lr_schedule_epochs": "recipe",
                       "val_every": "recipe", "select_best_on_test": "recipe", "keep_every_epoch": "recipe"}

    # Interrupted at the end of epoch 7 (after its one step; before Lightning steps the schedule), resumed.
    seen.clear()
    _train(data_root, tmp_path / "resumed", "--epochs", "17", "--max_steps", "8", "--no-keep_every_epoch")
    _train(data_root, tmp_path / "resumed", "--epochs", "17", "--resume", "auto", "--no-keep_every_epoch")
    assert seen == straight
    resumed = read_checkpoint(tmp_path / "resumed" / "last.ckpt").state_dict
    assert all(torch.equal(resumed[k], v) for k, v in last.state_dict.items())
    assert not list((tmp_path / "resumed").glob("epoch*.ckpt"))  # the flag overrides the recipe


def test_a_run_interrupted_mid_epoch_resumes_exactly(data_root, tmp_path):
    """Batch 4: 2 steps per epoch; stopped after step 5 (mid epoch 2, the first with a non-zero lr), resumed
    to the end of epoch 3."""
    common = ("--batch_size", "4", "--epochs", "4", "--no-keep_every_epoch")
    _train(data_root, tmp_path / "straight", *common)
    _train(data_root, tmp_path / "resumed", *common, "--max_steps", "5")
    _train(data_root, tmp_path / "resumed", *common, "--resume", "auto")
    straight = read_checkpoint(tmp_path / "straight" / "last.ckpt").state_dict
    resumed = read_checkpoint(tmp_path / "resumed" / "last.ckpt").state_dict
    assert all(torch.equal(resumed[k], v) for k, v in straight.items())


def test_the_5d_mixture_trains_promptir(data_root, tmp_path):
    argv = ["--data_root", str(data_root), "--ckpt_dir", str(tmp_path / "run"), "--model", "promptir_tiny",
            "--patch_size", "32", "--batch_size", "2", "--num_workers", "0", "--device", "cpu", "--logger", "csv",
            "--data_file_dir", "none", "--max_steps", "2", "--no-keep_every_epoch"]
    assert train_main("5D", argv) == 0
    last = read_checkpoint(tmp_path / "run" / "last.ckpt")
    assert last.architecture == "promptir" and last.run_config["setting"] == "5D" and last.prompt_table is None
