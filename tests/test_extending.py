"""Extending the code without editing it (docs/extending.md): this module registers a new degradation
task (desnow: its own dataset layout, stand-in synthesis and prompt) and a new network (a toy
FiLM-conditioned CNN), then generates stand-in data, trains, evaluates and restores through the
same entry points the scripts call. It also adds a setting of existing tasks plus desnow (5D + snow:
one record), a degradation synthesised online (JPEG at quality q, like the noise of denoising) and a
network with its own training recipe (MSE loss, SGD, a per-epoch closed-form schedule, its own
defaults). No file of the package knows about any of them.
"""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

import demo
from data import online, synthesis
from data.evalsets import EvalSet
from data.layouts import DatasetPaths
from data.sample import make_sample_dataset
from data.synthesis import each
from engine.evaluate import main as evaluate_main
from engine.train import main as train_main
from net.checkpoint import read_checkpoint
from net.recipe import Recipe, per_epoch_lambda, step_at_epoch
from net.registry import ARCHITECTURES, MODELS, register_architecture, register_model
from options import build_train_parser
from utils import tasks
from utils.image_io import read_rgb, write_png
from utils.tasks import (
    SETTINGS,
    Dataset,
    Layout,
    Online,
    Setting,
    StandIn,
    Task,
    register_dataset,
    register_setting,
    register_task,
)


# ------------------------------------------------------------------------------------------ the new task
def add_snow(clean: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Snowflakes: sparse bright seeds, blurred into soft flakes, screen-blended. (H, W, 3) in [0, 1]."""
    height, width = clean.shape[:2]
    seeds = (rng.random((height, width)) < 0.01).astype(float)
    flakes = np.clip(F.avg_pool2d(torch.from_numpy(seeds)[None], 3, 1, 1)[0].numpy() * 4, 0, 1)
    return 1 - (1 - clean) * (1 - flakes[..., None])


SNOW = Dataset(
    "desnow",
    train=Layout("snowy", "clean", name_list="snow_train.txt", example="NAME"),
    test=Layout("snowy", "clean"),
    train_folder="Train/Desnow", test_folder="test/desnow",
    train_source="synthetic snow", test_source="synthetic snow",
    stand_in=StandIn("{i:03d}.png", "{i:03d}.png", "snow", scenes=(4, 2), name_list_folder="snow",
                     description="screen-blended snowflakes"),
)
DESNOW = Task("desnow", 7, "desnow", "Snow100", aliases=("snow",),
              prompts={"detailed": "Snow degradation with snowflakes"})
ONE_SNOW = Setting("1S", test_tasks=("desnow",), val_every=2, train_repeats={"desnow": 2})


# ------------------------------------------------------------------------------------------ the new network
class ToyNet(nn.Module):
    """img (B, 3, H, W), text_code (B, D) -> img + a residual: a stride-4 convolution, modulated by
    the text code (FiLM), and a pixel shuffle back; H and W must be multiples of 4."""

    size_multiple = 4

    def __init__(self, width: int = 8, text_dim: int = 512):
        super().__init__()
        self.down = nn.Conv2d(3, width, 4, stride=4)
        self.film = nn.Linear(text_dim, width)
        self.up = nn.Conv2d(width, 3 * 16, 1)

    def forward(self, img: torch.Tensor, text_code: torch.Tensor) -> torch.Tensor:
        features = F.gelu(self.down(img)) * (1 + self.film(text_code)[..., None, None])
        return img + F.pixel_shuffle(self.up(features), 4)


@pytest.fixture
def registered():
    """Registers the task, its dataset and setting, and the toy network; restores every registry after."""
    registries = (tasks.DATASETS, tasks.TASKS, tasks.TASK_BY_ID, tasks.SETTINGS, synthesis.SYNTHESES,
                  ARCHITECTURES, MODELS)
    saved = [dict(registry) for registry in registries]
    synthesis.register_synthesis("snow", each(add_snow))
    register_dataset(SNOW)
    register_task(DESNOW)
    register_setting(ONE_SNOW)
    register_architecture("toy")(ToyNet)
    register_model("toy", "toy", lambda: {"width": 8, "text_dim": 512})
    yield
    for registry, content in zip(registries, saved, strict=True):
        registry.clear()
        registry.update(content)


def test_a_registered_task_and_network_train_evaluate_and_restore_through_the_scripts(registered, tmp_path, capsys):
    root = tmp_path / "data"
    counts = make_sample_dataset(root, train_size=48, test_size=32)
    assert counts["train/desnow"] == 4 and counts["test/desnow"] == 2
    assert len(list((root / "Train/Desnow/snowy").glob("*.png"))) == 4
    listed = (root / "data_file_dir/snow/snow_train.txt").read_text().splitlines()
    assert listed == [f"{i:03d}.png" for i in (1, 2, 3, 4)]
    parser_flags = build_train_parser("1S").format_help()
    assert "--desnow_dir" in parser_flags and "--desnow_path" in parser_flags and "toy" in parser_flags
    assert "`--desnow_dir` | `Train/Desnow/`" in tasks.datasets_table() and "Snow100" in tasks.tasks_table()

    ckpt_dir = tmp_path / "run"
    argv = ["--data_root", str(root), "--data_file_dir", str(root / "data_file_dir"), "--ckpt_dir", str(ckpt_dir),
            "--model", "toy", "--patch_size", "32", "--batch_size", "2", "--num_workers", "0", "--device", "cpu",
            "--prompt_backend", "offline", "--logger", "csv", "--max_steps", "3"]
    assert train_main("1S", argv) == 0
    assert "task=desnow images=4 repeat=2 samples=8" in capsys.readouterr().out
    last = read_checkpoint(ckpt_dir / "last.ckpt")
    assert last.architecture == "toy" and last.model_config == {"width": 8, "text_dim": 512}
    assert last.prompt_table.prompts[7] == "Snow degradation with snowflakes"
    assert len(list(ckpt_dir.glob("best-*.ckpt"))) == 1  # validated on the desnow test set (every 2 steps)

    out = tmp_path / "eval"
    common = ["--data_root", str(root), "--device", "cpu", "--num_workers", "0", "--output_path", str(out)]
    assert evaluate_main("1S", ["--ckpt", str(ckpt_dir / "last.ckpt"), *common]) == 0
    results = json.loads((out / "results.json").read_text())
    assert list(results) == ["desnow", "average"] and results["desnow"]["n"] == 2
    assert 5 < results["desnow"]["psnr"] < 60
    assert "Snow100" in (out / "results.md").read_text()
    assert len(list((out / "desnow").glob("*.png"))) == 2

    # The checkpoint's network decides; naming another one is a clear error (exit 2, one line).
    assert evaluate_main("1S", ["--ckpt", str(ckpt_dir / "last.ckpt"), "--model", "tiny", *common]) == 2
    assert "holds a toy" in capsys.readouterr().err

    photo = tmp_path / "photo.png"
    write_png(photo, np.random.default_rng(0).random((30, 41, 3)))  # not a multiple of the toy's 4
    assert demo.main(["--ckpt", str(ckpt_dir / "last.ckpt"), "--degradation", "snow", "--input", str(photo),
                      "--output_dir", str(tmp_path / "restored"), "--device", "cpu"]) == 0
    assert read_rgb(tmp_path / "restored" / "photo.png").shape == (30, 41, 3)


def test_registration_refuses_clashes(registered):
    with pytest.raises(ValueError, match="already name"):
        register_task(Task("snowfall", 8, "desnow", "Snow200", aliases=("snow",), prompts={"detailed": "x"}))
    with pytest.raises(ValueError, match="degradation id 7"):
        register_task(Task("sleet", 7, "desnow", "Sleet", prompts={"detailed": "x"}))
    with pytest.raises(ValueError, match="register its dataset"):
        register_task(Task("hail", 9, "dehail", "Hail", prompts={"detailed": "x"}))
    with pytest.raises(ValueError, match="already registered"):
        register_model("toy", "toy", dict)


# ------------------------------------------------------------------------------------------ 5D + snow
def test_a_new_setting_of_existing_tasks_and_desnow_is_one_record(registered, tmp_path, capsys):
    """The 5D mixture plus desnow: one Setting record, no edit of the 5D tasks' records."""
    five = SETTINGS["5D"]
    register_setting(Setting("5D_snow", (*five.test_tasks, "desnow"), val_every=2,
                             train_repeats={**five.train_repeats, "desnow": 2}))
    assert tasks.TASKS["desnow"].repeats == {"1S": 2, "5D_snow": 2} and tasks.TASKS["derain"].repeats == {
        "3D": 120, "5D": 80, "5D_snow": 80}
    root = tmp_path / "data"
    make_sample_dataset(root, train_size=32, test_size=32)

    ckpt_dir = tmp_path / "run"
    argv = ["--data_root", str(root), "--data_file_dir", str(root / "data_file_dir"), "--ckpt_dir", str(ckpt_dir),
            "--model", "toy", "--patch_size", "32", "--batch_size", "2", "--num_workers", "0", "--device", "cpu",
            "--prompt_backend", "offline", "--logger", "csv", "--max_steps", "3"]
    assert train_main("5D_snow", argv) == 0
    out = capsys.readouterr().out
    for line in ("task=desnow images=4 repeat=2 samples=8", "task=deblur images=4 repeat=30 samples=120",
                 "task=lowlight images=4 repeat=60 samples=240", "task=denoise_50 images=8 repeat=3 samples=24"):
        assert line in out
    assert read_checkpoint(ckpt_dir / "last.ckpt").prompt_table.prompts[7] == "Snow degradation with snowflakes"

    evaluated = tmp_path / "eval"
    assert evaluate_main("5D_snow", ["--ckpt", str(ckpt_dir / "last.ckpt"), "--data_root", str(root), "--device",
                                     "cpu", "--num_workers", "0", "--output_path", str(evaluated),
                                     "--no_save_images"]) == 0
    results = json.loads((evaluated / "results.json").read_text())
    assert list(results) == [*five.test_tasks, "desnow", "average"]
    assert all(5 < results[t]["psnr"] < 60 for t in results)


# ------------------------------------------------------------------------------------------ online JPEG
def jpeg(clean: np.ndarray, rng: np.random.Generator, *, quality: int) -> np.ndarray:
    """(H, W, 3) uint8 -> the same image JPEG-compressed at ``quality`` and decoded (``rng`` unused)."""
    buffer = io.BytesIO()
    Image.fromarray(clean).save(buffer, "JPEG", quality=quality)
    return np.asarray(Image.open(buffer).convert("RGB"))


JPEG_SET = Dataset(
    "dejpeg",
    train=Layout(None, "clean", name_list="jpeg_train.txt"),
    test=Layout(None, "clean"),
    train_folder="Train/Dejpeg", test_folder="test/dejpeg",
    train_source="clean photos", test_source="clean photos",
    stand_in=StandIn("{i:03d}.png", "{i:03d}.png", scenes=(4, 2), name_list_folder="jpeg",
                     description="none for JPEG (the loader compresses)"),
)
DEJPEG = Task("dejpeg", 7, "dejpeg", "JPEG q10", online=Online("jpeg", {"quality": 10}),
              prompts={"detailed": "JPEG compression artifacts"})
ONE_JPEG = Setting("1J", test_tasks=("dejpeg",), val_every=2, train_repeats={"dejpeg": 2})


@pytest.fixture
def jpeg_registered():
    """Registers the online JPEG degradation, its dataset, task and setting; restores every registry after."""
    registries = (tasks.DATASETS, tasks.TASKS, tasks.TASK_BY_ID, tasks.SETTINGS, online.ONLINE_DEGRADATIONS)
    saved = [dict(registry) for registry in registries]
    online.register_online("jpeg", jpeg)
    register_dataset(JPEG_SET)
    register_task(DEJPEG)
    register_setting(ONE_JPEG)
    yield
    for registry, content in zip(registries, saved, strict=True):
        registry.clear()
        registry.update(content)


def test_an_online_degradation_added_from_outside_trains_and_evaluates(jpeg_registered, tmp_path, capsys):
    root = tmp_path / "data"
    make_sample_dataset(root, train_size=48, test_size=32)
    item = EvalSet("dejpeg", DatasetPaths.from_root(root))[0]
    clean = (item["clean"].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    assert np.array_equal((item["degraded"].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8),
                          jpeg(clean, np.random.default_rng(), quality=10))  # the test input: clean, compressed

    ckpt_dir = tmp_path / "run"
    argv = ["--data_root", str(root), "--data_file_dir", str(root / "data_file_dir"), "--ckpt_dir", str(ckpt_dir),
            "--model", "tiny", "--patch_size", "32", "--batch_size", "2", "--num_workers", "0", "--device", "cpu",
            "--prompt_backend", "offline", "--logger", "csv", "--max_steps", "3"]
    assert train_main("1J", argv) == 0
    assert "task=dejpeg images=4 repeat=2 samples=8" in capsys.readouterr().out

    evaluated = tmp_path / "eval"
    assert evaluate_main("1J", ["--ckpt", str(ckpt_dir / "last.ckpt"), "--data_root", str(root), "--device", "cpu",
                                "--num_workers", "0", "--output_path", str(evaluated)]) == 0
    results = json.loads((evaluated / "results.json").read_text())
    assert list(results) == ["dejpeg", "average"] and results["dejpeg"]["n"] == 2
    assert 5 < results["dejpeg"]["psnr"] < 60


# ------------------------------------------------------------------------------------------ a network's own recipe
LOSSES: list[str] = []  # the loss function each training step called


def mse_loss(restored: torch.Tensor, clean: torch.Tensor) -> torch.Tensor:
    LOSSES.append("mse")
    return F.mse_loss(restored, clean)


class SGDToyNet(ToyNet):
    """The toy network, trained by its own recipe."""


SGD_RECIPE = Recipe(
    loss=mse_loss,
    optimizer=lambda params, hparams: torch.optim.SGD(params, lr=hparams["lr"], momentum=0.9),
    scheduler=per_epoch_lambda(lambda epoch, hparams: 1 / (1 + epoch)),
    scheduler_step=step_at_epoch,
    device_options=None,
    lr=0.05, batch_size=3, epochs=1, lr_schedule_epochs=1,
    select_best_on_test=False,
)


def test_a_network_registered_with_its_own_recipe_trains_with_its_loss_optimiser_and_defaults(registered, tmp_path):
    register_architecture("sgd_toy", recipe=SGD_RECIPE)(SGDToyNet)
    register_model("sgd_toy", "sgd_toy", lambda: {"width": 8, "text_dim": 512})
    root = tmp_path / "data"
    make_sample_dataset(root, train_size=48, test_size=32)
    ckpt_dir = tmp_path / "run"
    LOSSES.clear()
    argv = ["--data_root", str(root), "--data_file_dir", str(root / "data_file_dir"), "--ckpt_dir", str(ckpt_dir),
            "--model", "sgd_toy", "--patch_size", "32", "--num_workers", "0", "--device", "cpu",
            "--prompt_backend", "offline", "--logger", "csv", "--max_steps", "2"]  # no --lr, --batch_size
    assert train_main("1S", argv) == 0
    assert LOSSES == ["mse", "mse"]

    saved = torch.load(ckpt_dir / "last.ckpt", map_location="cpu", weights_only=True)
    (optimizer,) = saved["optimizer_states"]
    assert optimizer["param_groups"][0]["lr"] == 0.05 and optimizer["param_groups"][0]["momentum"] == 0.9
    assert all(set(state) == {"momentum_buffer"} for state in optimizer["state"].values())  # SGD's, not Adam's
    assert saved["lr_schedulers"][0]["lr_lambdas"] == [None]  # a LambdaLR
    run = read_checkpoint(ckpt_dir / "last.ckpt").run_config
    assert run["batch_size"] == 3 and run["lr"] == 0.05  # the recipe's defaults
    assert run["option_sources"] == {"lr": "recipe", "batch_size": "recipe", "epochs": "recipe",
                                     "lr_schedule_epochs": "recipe", "val_every": "setting",
                                     "select_best_on_test": "recipe", "keep_every_epoch": "recipe"}
    assert not list(ckpt_dir.glob("best-*.ckpt"))  # the recipe selects no checkpoint on the test sets

    LOSSES.clear()
    again = tmp_path / "again"
    argv[argv.index(str(ckpt_dir))] = str(again)
    assert train_main("1S", [*argv, "--lr", "0.01", "--batch_size", "2"]) == 0
    run = read_checkpoint(again / "last.ckpt").run_config
    assert (run["lr"], run["batch_size"]) == (0.01, 2)
    assert run["option_sources"]["lr"] == "flag" and run["option_sources"]["epochs"] == "recipe"
