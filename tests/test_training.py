"""Training and evaluation end to end on the generated stand-in data, with the tiny network.

Train a few steps, evaluate last.ckpt with no prompt source; resume ends with the weights of an
uninterrupted run; a 2-process DDP validation gives the single-process numbers.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from PIL import Image

from engine.evaluate import main as evaluate_main
from engine.train import main as train_main
from net.checkpoint import read_checkpoint
from tests.helpers import compile_with

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--model", "tiny", "--patch_size", "32", "--batch_size", "2", "--num_workers", "0", "--device", "cpu",
        "--prompt_backend", "offline", "--logger", "csv"]


def _lists(data_root: Path) -> list[str]:
    """The stand-in data's own name lists (the default lists name the real benchmarks' files)."""
    return ["--data_file_dir", str(data_root / "data_file_dir")]


def _train(data_root: Path, ckpt_dir: Path, *extra: str) -> None:
    argv = ["--data_root", str(data_root), "--ckpt_dir", str(ckpt_dir), *_lists(data_root), *TINY, *extra]
    assert train_main("3D", argv) == 0


def test_train_then_evaluate_last_checkpoint_without_a_prompt_source(data_root, tmp_path, capsys):
    ckpt_dir = tmp_path / "run"
    _train(data_root, ckpt_dir, "--max_steps", "4", "--val_every", "2", "--val_tasks", "denoise_25", "derain")
    last = read_checkpoint(ckpt_dir / "last.ckpt")
    assert last.format == "lightning" and last.model_config["dim"] == 16
    assert "offline" in last.prompt_table.source and last.prompt_table.embeddings.shape == (7, 512)
    best = list(ckpt_dir.glob("best-*.ckpt"))
    assert len(best) == 1 and "psnr" in best[0].name
    assert Image.open(ckpt_dir / "curves.png").size[0] > 0  # drawn from the run's metrics.csv

    out = tmp_path / "eval"
    # No --prompt_embeddings / --prompt_backend: the table must come from the checkpoint.
    argv = ["--ckpt", str(ckpt_dir / "last.ckpt"), "--data_root", str(data_root), "--output_path", str(out),
            "--device", "cpu", "--num_workers", "0", "--tasks", "denoise_25", "derain", "dehaze"]
    assert evaluate_main("3D", argv) == 0
    results = json.loads((out / "results.json").read_text())
    assert list(results) == ["denoise_25", "derain", "dehaze", "average"]
    for task in ("denoise_25", "derain", "dehaze"):
        assert set(results[task]) == {"psnr", "ssim", "n"} and results[task]["n"] == 4
        assert 5 < results[task]["psnr"] < 60 and 0 < results[task]["ssim"] <= 1
        assert len(list((out / task).glob("*.png"))) == 4
    mean = sum(results[t]["psnr"] for t in ("denoise_25", "derain", "dehaze")) / 3
    assert set(results["average"]) == {"psnr", "ssim"} and results["average"]["psnr"] == pytest.approx(mean)
    table = (out / "results.md").read_text()
    assert "31.47 / 0.893" in table and "this run" in table  # published CBSD68 s25 beside ours
    for task in ("denoise_25", "derain", "dehaze"):  # best, median and worst of 4 images: 3 rows
        assert f"(compare_{task}.png)" in table and Image.open(out / f"compare_{task}.png").size[1] > 3 * 192
    assert "this run" in capsys.readouterr().out


def _weights(path: Path) -> dict[str, torch.Tensor]:
    return read_checkpoint(path).state_dict


@pytest.mark.parametrize("stop_at", [3, 4], ids=["mid_epoch", "epoch_boundary"])
def test_interrupted_and_resumed_run_ends_with_the_weights_of_an_uninterrupted_one(data_root, tmp_path, stop_at):
    # dehaze alone: 8 samples, batch 2 -> 4 steps per epoch, so 6 steps cross an epoch boundary
    # (and the per-epoch cosine schedule steps once in between).
    common = ("--de_type", "dehaze", "--val_every", "0", "--lr", "1e-3", "--lr_schedule_epochs", "2")
    _train(data_root, tmp_path / "straight", *common, "--max_steps", "6")
    _train(data_root, tmp_path / "resumed", *common, "--max_steps", str(stop_at))
    _train(data_root, tmp_path / "resumed", *common, "--max_steps", "6", "--resume", "auto")
    straight, resumed = _weights(tmp_path / "straight" / "last.ckpt"), _weights(tmp_path / "resumed" / "last.ckpt")
    assert straight.keys() == resumed.keys()
    changed = [k for k in straight if not torch.equal(straight[k], resumed[k])]
    assert not changed, f"{len(changed)} tensors differ, e.g. {changed[:3]}"
    start = read_checkpoint(tmp_path / "resumed" / "last.ckpt")
    assert torch.load(start.path, weights_only=True)["global_step"] == 6


def _validation_metrics(ckpt_dir: Path) -> dict[str, str]:
    rows = list(csv.DictReader(open(next(ckpt_dir.glob("logs/version_*/metrics.csv")))))
    return {k: v for row in rows for k, v in row.items() if k.startswith("val_") and v}


def test_ddp_validation_equals_single_process(data_root, tmp_path):
    """Two CPU processes (gloo): every test image scored once, the same means as one process."""
    results = {}
    for devices in ("1", "2"):
        ckpt_dir = tmp_path / f"devices{devices}"
        # lr 0: both runs validate the same (seeded) initial weights after one step.
        argv = [sys.executable, str(ROOT / "train_3D_DFPIR.py"), "--data_root", str(data_root), "--ckpt_dir",
                str(ckpt_dir), *_lists(data_root), *TINY, "--devices", devices, "--max_steps", "1", "--val_every", "1",
                "--val_rule", "global_step", "--lr", "0", "--val_tasks", "denoise_15", "derain", "dehaze"]
        env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
        proc = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stderr[-3000:]
        results[devices] = _validation_metrics(ckpt_dir)
    assert results["1"] and results["1"] == results["2"]
    assert {"val_psnr", "val_ssim", "val_derain_psnr", "val_dehaze_ssim"} <= set(results["1"])


def test_check_data_flag_reports_and_exits(data_root, capsys):
    assert train_main("5D", ["--data_root", str(data_root), "--check_data", "--patch_size", "32",
                             *_lists(data_root)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "task=derain images=4 repeat=80 samples=320" in lines
    assert "task=lowlight images=4 repeat=60 samples=240" in lines
    assert "test=deblur pairs=4" in lines


def test_check_data_with_the_default_lists_stops_on_files_they_list(data_root, capsys):
    # The stand-in data is not the authors' data: the default (their lists) must refuse it clearly.
    assert train_main("3D", ["--data_root", str(data_root), "--check_data", "--patch_size", "32"]) == 2
    err = capsys.readouterr().err
    assert "5144 of the 5144 images listed in" in err and "data/name_lists/denoise.txt" in err
    assert "--data_file_dir none" in err
    assert train_main("3D", ["--data_root", str(data_root), "--check_data", "--patch_size", "32",
                             "--data_file_dir", "none"]) == 0
    captured = capsys.readouterr()
    assert "paper=derain found=4 expected=200 DIFFERS FROM THE PAPER" in captured.out
    assert "WARNING: the training data differs from the paper's" in captured.err


def test_check_data_names_a_missing_ground_truth(data_root, tmp_path, capsys):
    import shutil

    root = tmp_path / "deblur_lowlight_rain"
    shutil.copytree(data_root, root)
    missing = root / "Train" / "Derain" / "gt" / "norain-2.png"
    missing.unlink()
    assert train_main("3D", ["--data_root", str(root), "--check_data", "--patch_size", "32",
                             "--data_file_dir", "none"]) != 0
    assert str(missing) in capsys.readouterr().err


@pytest.mark.parametrize("rule, every, expected", [
    # dehaze alone: 4 steps per epoch. The authors' rule: the epoch's step counter (0 at its first step)
    # is 2 after step 3 and step 7 (counter 2 of epoch 1); plus every epoch's end (steps 4, 8).
    ("epoch_step", 2, [3, 4, 7]),
    # Steps of the whole run: 3 and 6, plus the end of epoch 0 (step 4).
    ("global_step", 3, [3, 4, 6]),
])
def test_validation_happens_at_exactly_the_steps_of_the_rule(data_root, tmp_path, rule, every, expected):
    ckpt_dir = tmp_path / "run"
    _train(data_root, ckpt_dir, "--de_type", "dehaze", "--max_steps", "7", "--val_every", str(every),
           "--val_rule", rule, "--val_tasks", "dehaze")
    rows = list(csv.DictReader(open(next(ckpt_dir.glob("logs/version_*/metrics.csv")))))
    # Lightning logs a validation under the step count before the step that preceded it.
    validated_after = [int(r["step"]) + 1 for r in rows if r.get("val_psnr")]
    assert validated_after == expected
    assert len(list(ckpt_dir.glob("best-*.ckpt"))) == 1  # the best average PSNR is kept


def test_validation_schedule_fails_loudly_if_lightning_ignores_it():
    from types import SimpleNamespace

    from engine.train import ValidationSchedule

    schedule = ValidationSchedule("epoch_step", 2)
    trainer = SimpleNamespace(val_check_batch=4, num_training_batches=4, global_step=3, sanity_checking=False,
                              should_stop=False)
    schedule.on_train_batch_end(trainer, None, None, None, batch_idx=2)
    assert trainer.val_check_batch == 1  # validate now
    trainer.global_step = 4  # ... but the next step comes without a validation
    with pytest.raises(RuntimeError, match="did not validate after step 3 as requested"):
        schedule.on_train_batch_end(trainer, None, None, None, batch_idx=3)
    schedule = ValidationSchedule("epoch_step", 2)
    with pytest.raises(RuntimeError, match="validated after step 4, which was not requested"):
        schedule.on_validation_start(trainer, None)


def test_authors_checkpoint_with_a_prompt_file_scores_like_the_same_weights_in_a_lightning_checkpoint(
        data_root, tmp_path):
    from net.prompts import PromptTable, save_prompt_file

    ckpt_dir = tmp_path / "run"
    _train(data_root, ckpt_dir, "--max_steps", "2", "--val_every", "0")
    ours = read_checkpoint(ckpt_dir / "last.ckpt")
    authors = tmp_path / "model.pth.tar"
    torch.save({"epoch": 1, "state_dict": ours.state_dict, "optimizer": {}, "scheduler": {}}, authors)
    prompts = tmp_path / "prompts.pt"
    save_prompt_file(prompts, PromptTable(ours.prompt_table.prompts, ours.prompt_table.embeddings, "copy"))

    common = ["--data_root", str(data_root), "--device", "cpu", "--num_workers", "0", "--no_save_images",
              "--tasks", "denoise_15", "derain"]
    ours_argv = ["--ckpt", str(ckpt_dir / "last.ckpt"), "--output_path", str(tmp_path / "a")]
    assert evaluate_main("3D", [*common, *ours_argv]) == 0
    assert evaluate_main("3D", [*common, "--pretrained_1", str(authors), "--model", "tiny",
                                "--prompt_embeddings", str(prompts), "--output_path", str(tmp_path / "b")]) == 0
    a, b = (json.loads((tmp_path / d / "results.json").read_text()) for d in ("a", "b"))
    assert a == b
    assert not (tmp_path / "b" / "derain").exists()  # --no_save_images


LEGACY_CKPT = ROOT / "tests" / "fixtures" / "legacy" / "lightning_ac9f1e9.ckpt"  # see its README


def test_a_checkpoint_written_before_the_engine_move_still_loads_evaluates_and_resumes(data_root, tmp_path):
    import shutil

    legacy = read_checkpoint(LEGACY_CKPT)
    assert legacy.format == "lightning" and legacy.model_config["dim"] == 4 and legacy.prompt_table is not None
    out = tmp_path / "eval"
    argv = ["--ckpt", str(LEGACY_CKPT), "--data_root", str(data_root), "--output_path", str(out), "--device", "cpu",
            "--num_workers", "0", "--tasks", "derain", "--no_save_images"]
    assert evaluate_main("3D", argv) == 0
    assert json.loads((out / "results.json").read_text())["derain"]["n"] == 4

    ckpt_dir = tmp_path / "run"
    ckpt_dir.mkdir()
    shutil.copy(LEGACY_CKPT, ckpt_dir / "last.ckpt")
    argv = ["--data_root", str(data_root), "--ckpt_dir", str(ckpt_dir), *_lists(data_root), "--patch_size", "32",
            "--batch_size", "2", "--num_workers", "0", "--device", "cpu", "--logger", "csv", "--de_type", "derain",
            "--val_every", "0", "--max_steps", "3", "--resume", "auto"]
    assert train_main("3D", argv) == 0
    resumed = torch.load(ckpt_dir / "last.ckpt", weights_only=True)
    assert resumed["global_step"] == 3
    assert read_checkpoint(ckpt_dir / "last.ckpt").prompt_table.source == "synthetic fixture"
    assert not torch.equal(resumed["state_dict"]["net.output.weight"],
                           torch.load(LEGACY_CKPT, weights_only=True)["state_dict"]["net.output.weight"])


def test_compiled_training_is_one_graph_resumes_exactly_and_evaluates(data_root, tmp_path, monkeypatch):
    """--compile: the whole training forward is one graph (no graph break), last.ckpt keeps the released
    key names, an interrupted compiled run resumes to the weights of an uninterrupted one, and the
    checkpoint evaluates. Inductor's code generation is replaced by aot_eager here (compiling C++
    kernels takes minutes on 2 cores); DFPIR_SLOW_TESTS=1 runs the same with Inductor."""
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path / "inductor"))
    slow = bool(os.environ.get("DFPIR_SLOW_TESTS"))
    graphs = compile_with(monkeypatch, "inductor" if slow else "aot_eager")
    common = ("--de_type", "dehaze", "--val_every", "0", "--lr", "1e-3", "--compile")
    try:
        _train(data_root, tmp_path / "straight", *common, "--max_steps", "5")
        assert len(graphs) == 1, f"{len(graphs)} graphs: the training step has graph breaks"
        _train(data_root, tmp_path / "resumed", *common, "--max_steps", "3")
        _train(data_root, tmp_path / "resumed", *common, "--max_steps", "5", "--resume", "auto")
    finally:
        torch._dynamo.reset()
    straight, resumed = _weights(tmp_path / "straight" / "last.ckpt"), _weights(tmp_path / "resumed" / "last.ckpt")
    from net.registry import create_model

    assert list(straight) == list(create_model("tiny").state_dict())  # no "_orig_mod." or other prefix
    changed = [k for k in straight if not torch.equal(straight[k], resumed[k])]
    assert not changed, f"{len(changed)} tensors differ, e.g. {changed[:3]}"
    out = tmp_path / "eval"
    argv = ["--ckpt", str(tmp_path / "resumed" / "last.ckpt"), "--data_root", str(data_root), "--output_path",
            str(out), "--device", "cpu", "--num_workers", "0", "--tasks", "dehaze", "--no_save_images"]
    assert evaluate_main("3D", argv) == 0
    assert json.loads((out / "results.json").read_text())["dehaze"]["n"] == 4


def test_adam_is_foreach_on_cpu_and_follows_the_device_after_a_resume():
    from types import SimpleNamespace

    from engine.module import RestorationModule
    from net.prompts import PromptTable
    from net.registry import create_model

    table = PromptTable(["a"], torch.zeros(1, 512), "test")
    module = RestorationModule(create_model("tiny").config.to_dict(), table.to_dict())
    optimizer = module.configure_optimizers()["optimizer"]
    assert optimizer.param_groups[0]["foreach"] is True and not optimizer.param_groups[0]["fused"]
    state = optimizer.state_dict()
    state["param_groups"][0].update(fused=True, foreach=None)  # saved by a CUDA run
    optimizer.load_state_dict(state)
    module._trainer = SimpleNamespace(optimizers=[optimizer])
    module.on_train_start()
    assert optimizer.param_groups[0]["foreach"] is True and not optimizer.param_groups[0]["fused"]


def test_initial_weights_depend_on_the_seed_only_not_on_the_prompt_backend(data_root, tmp_path, monkeypatch):
    """offline, a prompt file and CLIP give bit-identical initial weights: those of the seed alone."""
    import random

    import lightning as L
    import numpy as np
    import open_clip

    from net import prompts
    from net.registry import create_model as create_network

    real_create_model = open_clip.create_model

    def create_model(name, pretrained=None, **kwargs):
        if pretrained is None:  # the offline backend's random-init tower
            return real_create_model(name, pretrained=None, **kwargs)
        torch.randn(1000), np.random.rand(10), random.random()  # consumes the global streams, as building CLIP does
        clip = SimpleNamespace(encode_text=lambda tokens: tokens[:, 1:2].float().repeat(1, 512).half())
        clip.eval = lambda: clip
        return clip

    monkeypatch.setattr(open_clip, "create_model", create_model)
    monkeypatch.setattr(prompts, "_clip_weights_available", lambda: True)
    initial: dict[str, dict[str, torch.Tensor]] = {}

    def capture(trainer, module, *args, **kwargs):  # the weights Trainer.fit would start from
        initial[backend] = {k: v.clone() for k, v in module.net.state_dict().items()}

    monkeypatch.setattr(L.Trainer, "fit", capture)
    prompt_file = tmp_path / "prompts.pt"
    prompts.save_prompt_file(prompt_file, prompts.build_prompt_table("detailed", "offline"))
    backends = {"offline": ["--prompt_backend", "offline"], "file": ["--prompt_embeddings", str(prompt_file)],
                "clip": ["--prompt_backend", "clip"]}
    for backend, flags in backends.items():
        argv = ["--data_root", str(data_root), "--ckpt_dir", str(tmp_path / backend), *_lists(data_root), *TINY,
                "--de_type", "dehaze", "--val_every", "0", "--seed", "3", *flags]
        assert train_main("3D", argv) == 0
    torch.manual_seed(3)
    expected = create_network("tiny").state_dict()
    for backend, weights in initial.items():
        assert weights.keys() == expected.keys()
        assert all(torch.equal(weights[k], expected[k]) for k in expected), backend
