"""The training recipe registered with a network: DFPIR's is the paper's protocol, a recipe can carry
PromptIR's (AdamW, a closed-form warm-up cosine per epoch), and its defaults fill unset options."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from engine.module import RestorationModule
from net.prompts import PromptTable
from net.recipe import (
    PAPER_RECIPE,
    LossTerms,
    Recipe,
    TrainingBatch,
    per_epoch_lambda,
    restore_batch,
    step_at_epoch,
    warmup_cosine_factor,
)
from net.registry import create_model, recipe_of


def test_dfpir_trains_with_the_papers_protocol():
    assert recipe_of("dfpir") is PAPER_RECIPE
    assert (PAPER_RECIPE.loss, PAPER_RECIPE.interval, PAPER_RECIPE.lr, PAPER_RECIPE.batch_size, PAPER_RECIPE.epochs,
            PAPER_RECIPE.lr_schedule_epochs) == (F.l1_loss, "epoch", 1e-4, 5, 80, 500)
    assert PAPER_RECIPE.select_best_on_test and not PAPER_RECIPE.find_unused_parameters
    table = PromptTable(["a"], torch.zeros(1, 512), "test")
    module = RestorationModule(create_model("tiny").config.to_dict(), table.to_dict())
    assert (module.hparams.lr, module.hparams.lr_schedule_epochs) == (1e-4, 500)  # the recipe's
    configured = module.configure_optimizers()
    optimizer, schedule = configured["optimizer"], configured["lr_scheduler"]
    assert type(optimizer) is torch.optim.Adam and optimizer.defaults["weight_decay"] == 0
    assert optimizer.defaults["betas"] == (0.9, 0.999) and optimizer.param_groups[0]["lr"] == 1e-4
    assert type(schedule["scheduler"]) is torch.optim.lr_scheduler.CosineAnnealingLR
    assert schedule["scheduler"].T_max == 500 and schedule["interval"] == "epoch"


@pytest.mark.filterwarnings("ignore:Detected call of `lr_scheduler.step\\(\\)` before")  # no training step here
def test_a_recipe_carries_promptirs_protocol():
    """AdamW lr 2e-4 (default weight decay), batch 8, 120 epochs, no model selection, unused parameters
    allowed, and lr(e) = e * base / 14 for e < 15, else 0.5 * base * (1 + cos(pi * (e - 15) / 135))."""
    recipe = Recipe(
        optimizer=lambda params, hp: torch.optim.AdamW(params, lr=hp["lr"]),
        scheduler=per_epoch_lambda(lambda epoch, hp: warmup_cosine_factor(epoch, 15, hp["lr_schedule_epochs"])),
        scheduler_step=step_at_epoch, device_options=None,
        lr=2e-4, batch_size=8, epochs=120, lr_schedule_epochs=150,
        select_best_on_test=False, find_unused_parameters=True,
    )
    hparams = {"lr": recipe.lr, "lr_schedule_epochs": recipe.lr_schedule_epochs}
    optimizer = recipe.optimizer([torch.nn.Parameter(torch.zeros(2))], hparams)
    assert type(optimizer) is torch.optim.AdamW and optimizer.defaults["weight_decay"] == 0.01
    scheduler = recipe.scheduler(optimizer, hparams)
    for epoch in (3, 0, 14, 15, 16, 80, 149, 5):  # closed form: any order, no accumulated state
        recipe.scheduler_step(scheduler, epoch, None)
        expected = epoch * 2e-4 / 14 if epoch < 15 else 0.5 * 2e-4 * (1 + math.cos(math.pi * (epoch - 15) / 135))
        assert optimizer.param_groups[0]["lr"] == pytest.approx(expected, rel=1e-12, abs=1e-18)


def test_the_recipe_fills_the_options_not_given_and_says_where_each_came_from():
    # The recipe is one layer of the merge (utils.config.resolve): below the flags, above the setting.
    from options import TrainConfig, build_train_parser, train_setting_defaults
    from utils.config import read_command_line, resolve

    given = read_command_line(build_train_parser("3D"), TrainConfig, ["--batch_size", "2", "--lr_schedule_epochs", "7"])
    config = resolve(TrainConfig, given, PAPER_RECIPE.defaults(), train_setting_defaults("3D"), {"setting": "3D"})
    assert (config.lr, config.batch_size, config.epochs, config.lr_schedule_epochs) == (1e-4, 2, 80, 7)
    assert {name: config.source(name) for name in ("lr", "batch_size", "epochs", "lr_schedule_epochs", "val_every")} \
        == {"lr": "recipe", "batch_size": "flag", "epochs": "recipe", "lr_schedule_epochs": "flag",
            "val_every": "setting"}
    with pytest.raises(ValueError, match="interval"):
        Recipe(interval="batch")


def test_the_training_contract_gives_the_loss_and_its_named_terms():
    """recipe.training_loss(network, batch) -> LossTerms: ``loss(restored, clean)`` alone (no terms), or an
    ``objective`` with named terms; the network is called as the registry's forward(img, text_code)."""
    torch.manual_seed(0)
    network = create_model("tiny")
    batch = TrainingBatch(torch.rand(2, 3, 16, 16), torch.rand(2, 3, 16, 16), torch.tensor([0, 3]),
                          torch.randn(2, 512))
    total, terms = PAPER_RECIPE.training_loss(network, batch)
    assert terms == {} and torch.equal(total, F.l1_loss(network(batch.degraded, batch.text_code), batch.clean))

    def objective(net, b):
        restored = restore_batch(net, b)
        return LossTerms(restored.abs().mean(), {"mean": restored.mean()})

    total, terms = Recipe(objective=objective).training_loss(network, batch)
    restored = network(batch.degraded, batch.text_code)
    assert torch.equal(total, restored.abs().mean()) and torch.equal(terms["mean"], restored.mean())


def test_a_recipe_may_mix_a_settings_tasks_with_its_own_repeat_factors():
    assert PAPER_RECIPE.train_repeats("3D") == {"denoise_15": 3, "denoise_25": 3, "denoise_50": 3, "derain": 120,
                                                "dehaze": 1}
    assert Recipe(train_repeat_overrides={"3D": {"derain": 7}}).train_repeats("3D")["derain"] == 7
    with pytest.raises(ValueError, match=r"\['deblur'\] are not training tasks of 3D"):
        Recipe(train_repeat_overrides={"3D": {"deblur": 5}}).train_repeats("3D")
