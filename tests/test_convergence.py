"""benchmarks/convergence.py: its outputs and their keys after a few steps, and its refusals before any work."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from benchmarks.convergence import OUTPUT_FILES, main, noise_sigma
from utils.tasks import SETTINGS, TASKS


def convergence_args(data_root, output_dir) -> list[str]:
    return ["--model", "tiny", "--steps", "2", "--eval_every", "2", "--batch_size", "2", "--patch_size", "32",
            "--num_workers", "0", "--device", "cpu", "--data_root", str(data_root), "--data_file_dir", "none",
            "--output_dir", str(output_dir)]


def test_convergence_writes_table_json_and_figure_and_refuses_to_replace_them(data_root, tmp_path, capsys,
                                                                              one_thread):
    out = tmp_path / "convergence"
    assert main(convergence_args(data_root, out)) == 0
    assert sorted(p.name for p in out.iterdir()) == sorted(OUTPUT_FILES)

    results = json.loads((out / "convergence.json").read_text())
    tasks = list(SETTINGS["3D"].test_tasks)
    assert list(results) == ["tiny"] and list(results["tiny"]) == tasks
    for task, entry in results["tiny"].items():
        assert [p["step"] for p in entry["series"]] == [0, 2]
        assert entry["gain"] == pytest.approx(entry["psnr"] - entry["input_psnr"])
        assert entry["series"][-1]["psnr"] == entry["psnr"]
        assert ("reference_psnr" in entry) == (TASKS[task].kind == "denoise")
    table = (out / "convergence.md").read_text()
    assert all(f"| tiny | {task} |" in table for task in tasks)
    assert (out / "convergence.png").read_bytes().startswith(b"\x89PNG")

    written = {name: (out / name).read_bytes() for name in OUTPUT_FILES}
    capsys.readouterr()
    assert main(convergence_args(data_root, out)) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and "--overwrite" in error
    assert {name: (out / name).read_bytes() for name in OUTPUT_FILES} == written


@pytest.mark.parametrize("flags, named", [(["--steps", "0"], "--steps"), (["--eval_every", "0"], "--eval_every"),
                                          (["--patch_size", "30"], "--patch_size")])
def test_convergence_refuses_bad_flags_before_any_work(data_root, tmp_path, capsys, flags, named):
    out = tmp_path / "convergence"
    assert main([*convergence_args(data_root, out), *flags]) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and named in error
    assert not out.exists()


def test_noise_sigma_estimates_gaussian_noise():
    rng = np.random.default_rng(0)
    flat = np.full((96, 96, 3), 0.5)
    for sigma in (15, 25, 50):
        assert noise_sigma(flat + rng.normal(0, sigma / 255, flat.shape)) * 255 == pytest.approx(sigma, rel=0.1)


def test_the_mse_diagnostic_scores_the_same_restoration_the_recipes_loss_scores(one_thread):
    from benchmarks.convergence import read_options, training_loss, training_module

    tasks = list(SETTINGS["3D"].train_repeats)
    module = training_module("tiny", "3D", tasks, read_options(["--device", "cpu"]))
    diagnosed = training_module("tiny", "3D", tasks, read_options(["--device", "cpu"]), loss="mse")
    diagnosed.net.load_state_dict(module.net.state_dict())
    generator = torch.Generator().manual_seed(0)
    clean = torch.rand(2, 3, 32, 32, generator=generator)
    batch = {"degraded": (clean + 0.1 * torch.randn(2, 3, 32, 32, generator=generator)).clamp(0, 1), "clean": clean,
             "de_id": torch.tensor([0, 3])}
    with torch.no_grad():
        restored = module.net(batch["degraded"], module.text_codes(batch["de_id"]))
        assert training_loss(diagnosed, batch).item() == pytest.approx(((restored - clean) ** 2).mean().item())
        assert training_loss(module, batch).item() == pytest.approx((restored - clean).abs().mean().item())  # L1


def test_a_task_left_at_its_input_is_explained_under_the_table():
    from benchmarks.convergence import at_input_notes

    results = {"tiny": {"derain": {"gain": -0.01}, "dehaze": {"gain": 2.2}},
               "bioir_tiny": {"derain": {"gain": 1.5}, "dehaze": {"gain": -0.4}}}
    notes = at_input_notes(results, "recipe")
    assert notes[:3] == ["- tiny on derain: -0.01 dB, it returns its input",
                         "- bioir_tiny on dehaze: -0.40 dB, worse than its input", ""]
    assert len(notes) == 4 and "--loss mse" in notes[3]  # what it means, once
    assert "--check_data" in at_input_notes(results, "mse")[-1]  # the squared error too: the data are suspect
    assert at_input_notes({"tiny": {"derain": {"gain": 0.1}}}, "recipe") == []
