"""The degradation recogniser: its statistics, any input size, checkpoints and refusals, training end to end."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from data.transforms import add_gaussian_noise, to_tensor
from demo import main as demo_main
from engine.evaluate import main as evaluate_main
from engine.recognizer_training import BRIGHTEN_GAMMA, BRIGHTEN_PROBABILITY, augment_samples
from engine.recognizer_training import main as train_recognizer_main
from net.dfpir import DFPIR, DFPIRConfig
from net.prompts import PromptTable
from net.recognizer import (
    NUM_STATISTICS,
    DegradationRecognizer,
    RecognizerError,
    degradation_statistics,
    load_recognizer,
    local_detail,
    save_recognizer,
    setting_ids,
)
from utils.tasks import TASKS, degradation_choices

TRAIN = ["--patch_size", "32", "--batch_size", "7", "--num_workers", "0", "--device", "cpu", "--preload_gb", "0",
         "--data_file_dir", "none"]


@pytest.fixture(scope="module")
def trained_5d(data_root, tmp_path_factory) -> Path:
    """A recogniser trained a few steps by the script's own entry point."""
    output = tmp_path_factory.mktemp("recognizer") / "recognizer_5D.pt"
    argv = ["--setting", "5D", "--data_root", str(data_root), "--max_steps", "3", "--output", str(output), *TRAIN]
    assert train_recognizer_main(argv) == 0
    return output


def test_setting_ids_are_the_prompt_table_rows_of_the_setting():
    assert setting_ids("3D") == [0, 1, 2, 3, 4]
    assert setting_ids("5D") == [0, 1, 2, 3, 4, 5, 6]


def test_the_noise_statistic_measures_sigma_on_a_plain_image():
    """Low quantiles of the block standard deviation of the unit-gain residual estimate sigma (0-255 -> 0-1)."""
    flat = np.full((96, 96, 3), 128, np.uint8)
    for sigma in (15, 25, 50):
        noisy = add_gaussian_noise(flat, sigma, np.random.default_rng(sigma))
        stats = degradation_statistics(to_tensor(noisy)[None])
        assert stats.shape == (1, NUM_STATISTICS)
        estimate = float(torch.exp(stats[0, 1]))  # 0.2 quantile of the block standard deviation
        assert estimate == pytest.approx(sigma / 255, rel=0.12)


STREAK_ASYMMETRY = 40  # column of degradation_statistics: bright over dark ridges, full resolution


def test_streak_asymmetry_tells_bright_streaks_from_dark_lines():
    """Rain adds bright thin lines: at the dominant orientation bright ridges outweigh dark ones (> 0); dark lines
    of the same shape give the opposite sign."""
    rng = np.random.default_rng(0)
    lines = np.zeros((96, 96))
    for column in rng.choice(np.arange(4, 92, 3), 15, replace=False):
        top = int(rng.integers(0, 70))
        lines[top : top + 20, column] = 1.0
    noise = rng.normal(0, 0.01, (96, 96))
    asymmetry = {}
    for name, sign in (("bright", 1), ("dark", -1)):
        image = np.clip(0.45 + sign * 0.3 * lines + noise, 0, 1)
        x = torch.from_numpy(np.repeat(image[None], 3, 0)).float()[None]
        asymmetry[name] = float(degradation_statistics(x)[0, STREAK_ASYMMETRY])
    assert asymmetry["bright"] > 1.0 and asymmetry["dark"] < -1.0, asymmetry


def test_the_cnn_input_divides_out_brightness_and_contrast():
    """local_detail is (nearly) invariant to a x + b: the scene's exposure and contrast are not a degradation cue."""
    torch.manual_seed(0)
    scene = torch.rand(1, 3, 70, 70) * 0.8 + 0.1  # textured (detail well above the amplitude floor)
    reference = local_detail(scene)
    for gain, offset in ((0.8, 0.15), (1.2, -0.05)):
        changed = local_detail(gain * scene + offset)
        assert (changed - reference).abs().mean() < 0.03 * reference.abs().mean()
    assert (scene * 0.8 + 0.15 - scene).abs().mean() > 0.05  # while the raw image changes a lot


def test_only_rain_samples_are_brightened_and_black_and_white_stay():
    images = torch.rand(2000, 3, 2, 2).clamp(0.02, 0.98)
    images[:, :, 0, 0], images[:, :, 0, 1] = 0.0, 1.0
    de_ids = torch.tensor([TASKS["derain"].de_id, TASKS["dehaze"].de_id] * 1000)
    brightened = augment_samples(images, de_ids, torch.Generator().manual_seed(0))
    changed = (brightened != images).flatten(1).any(1)
    assert not changed[1::2].any()  # haze samples untouched
    assert abs(changed[::2].float().mean() - BRIGHTEN_PROBABILITY) < 0.05
    # I ** g with g in BRIGHTEN_GAMMA: brighter, but black stays black and white stays white (no veil)
    assert (brightened[changed] >= images[changed]).all()
    assert (brightened[:, :, 0, 0] == 0).all() and (brightened[:, :, 0, 1] == 1).all()
    assert (brightened[changed] <= images[changed] ** BRIGHTEN_GAMMA[0] + 1e-6).all()


def test_any_image_size_gives_probabilities_over_the_setting_ids():
    model = DegradationRecognizer("3D").eval()
    for height, width in ((16, 16), (17, 45), (130, 97), (1100, 70)):
        ids, probabilities = model.predict(torch.rand(2, 3, height, width))
        assert probabilities.shape == (2, 5) and torch.allclose(probabilities.sum(1), torch.ones(2))
        assert set(ids.tolist()) <= {0, 1, 2, 3, 4}


def test_checkpoint_round_trip_is_self_contained_and_safe(tmp_path):
    torch.manual_seed(0)
    model = DegradationRecognizer("5D", cnn_channels=[8, 8], hidden=16)
    model.train()
    model(torch.rand(4, 3, 40, 40))  # moves the statistics' running mean/variance
    model.eval()
    path = tmp_path / "r.pt"
    save_recognizer(path, model, {"steps": 1})
    raw = torch.load(path, weights_only=True)
    assert raw["setting"] == "5D" and raw["de_ids"] == list(range(7)) and raw["config"]["cnn_channels"] == [8, 8]
    assert raw["tasks"][1] == "denoise_25" and raw["training"] == {"steps": 1}
    loaded = load_recognizer(path, setting="5D")
    assert not loaded.training and loaded.config == model.config
    x = torch.rand(2, 3, 48, 64)
    torch.testing.assert_close(loaded(x), model(x), rtol=0, atol=0)


def test_refusals_name_the_file_and_the_way_out(tmp_path):
    model = DegradationRecognizer("3D", cnn_channels=[4], hidden=8)
    path = tmp_path / "r3.pt"
    save_recognizer(path, model)
    with pytest.raises(RecognizerError, match="3D recogniser .* cannot steer a 5D DFPIR.*--setting 5D"):
        load_recognizer(path, setting="5D")
    with pytest.raises(RecognizerError, match="does not exist; train one"):
        load_recognizer(tmp_path / "missing.pt")
    dfpir = tmp_path / "dfpir.pth.tar"
    torch.save({"state_dict": {"w": torch.zeros(1)}, "epoch": 1}, dfpir)
    with pytest.raises(RecognizerError, match="is a DFPIR checkpoint"):
        load_recognizer(dfpir)
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"<html>not a checkpoint</html>")
    with pytest.raises(RecognizerError, match="not a readable recogniser checkpoint"):
        load_recognizer(garbage)
    payload = torch.load(path, weights_only=True)
    payload["state_dict"]["head.0.extra"] = torch.zeros(1)
    torch.save(payload, tmp_path / "edited.pt")
    with pytest.raises(RecognizerError, match="unexpected keys .*head.0.extra"):
        load_recognizer(tmp_path / "edited.pt")
    payload = torch.load(path, weights_only=True)
    payload["version"] = 99
    torch.save(payload, tmp_path / "future.pt")
    with pytest.raises(RecognizerError, match="version 99"):
        load_recognizer(tmp_path / "future.pt")


def test_training_writes_a_checkpoint_that_loads_strictly(trained_5d, capsys):
    model = load_recognizer(trained_5d, setting="5D")
    training = torch.load(trained_5d, weights_only=True)["training"]
    assert training["steps"] == 3 and training["batch_size"] == 7
    assert set(training["test_accuracy"]) == {*model.task_names, "all"}
    assert int(model.normalise.num_batches_tracked) == 3  # statistics standardised over the training batches


@pytest.mark.parametrize("argv, message", [
    (["--setting", "3D", "--de_type", "deblur"], "--de_type deblur: not a task of the 3D setting"),
    (["--setting", "3D", "--val_tasks", "lowlight"], "--val_tasks lowlight: not a task of the 3D setting"),
    (["--setting", "3D", "--batch_size", "1"], "--batch_size 1: must be at least 2"),
    (["--setting", "3D", "--output", "."], "--output . is a folder"),
])
def test_user_mistakes_exit_2_with_one_line(data_root, capsys, argv, message):
    assert train_recognizer_main([*argv, "--data_root", str(data_root), "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_missing_training_data_is_a_usage_error(tmp_path, capsys):
    assert train_recognizer_main(["--setting", "3D", "--data_root", str(tmp_path), "--device", "cpu"]) == 2
    assert "error:" in capsys.readouterr().err


def _tiny_dfpir(path: Path, setting: str | None) -> Path:
    """A tiny DFPIR checkpoint: this project's format recording ``setting``, or the authors' (None)."""
    torch.manual_seed(0)
    net = DFPIR(**DFPIRConfig.tiny().to_dict())
    if setting is None:
        torch.save({"state_dict": net.state_dict(), "epoch": 1}, path)
        return path
    table = PromptTable([f"prompt {i}" for i in range(7)], torch.randn(7, 512), "random (test)")
    state_dict = {f"net.{k}": v for k, v in net.state_dict().items()}
    torch.save({"pytorch-lightning_version": "2.5.0", "state_dict": state_dict,
                "dfpir": {"model_config": net.config.to_dict(), "prompt_set": "detailed",
                          "prompt_table": table.to_dict(), "setting": setting}}, path)
    return path


def test_blind_evaluation_end_to_end(data_root, trained_5d, tmp_path, capsys):
    ckpt = _tiny_dfpir(tmp_path / "dfpir5d.ckpt", "5D")
    out = tmp_path / "blind"
    argv = ["--ckpt", str(ckpt), "--data_root", str(data_root), "--output_path", str(out), "--device", "cpu",
            "--num_workers", "0", "--tasks", "derain", "denoise_25", "--blind", "--recognizer", str(trained_5d)]
    assert evaluate_main("5D", argv) == 0
    results = json.loads((out / "results.json").read_text())
    assert list(results) == ["derain", "denoise_25", "average"]
    predicted_total = 0
    for task in ("derain", "denoise_25"):
        entry = results[task]
        assert {"psnr", "ssim", "n", "recognition_accuracy", "predicted_ids", "known"} == set(entry)
        assert sum(entry["predicted_ids"].values()) == entry["n"] == 4
        right = entry["predicted_ids"].get(str(TASKS[task].de_id), 0)
        assert entry["recognition_accuracy"] == right / 4
        if right == 4:  # every image restored with its own prompt: blind and known scores are the same numbers
            assert entry["psnr"] == entry["known"]["psnr"] and entry["ssim"] == entry["known"]["ssim"]
        predicted_total += entry["n"]
        assert len(list((out / task).glob("*.png"))) == 4
    average = results["average"]
    assert set(average) == {"psnr", "ssim", "recognition_accuracy", "known"}
    assert average["recognition_accuracy"] == pytest.approx(
        sum(results[t]["recognition_accuracy"] for t in ("derain", "denoise_25")) / 2)
    markdown = (out / "results.md").read_text()
    assert "this run, blind (recognised degradation)" in markdown and "this run, known degradation" in markdown
    assert "37.62 / 0.978" in markdown  # published Rain100L (5D) beside both
    assert "| true \\ predicted |" in markdown and "| derain |" in markdown and "deblur (5)" in markdown


def test_blind_refusals_exit_2(data_root, trained_5d, tmp_path, capsys):
    authors = _tiny_dfpir(tmp_path / "authors.pth.tar", None)
    ours_3d = _tiny_dfpir(tmp_path / "dfpir3d.ckpt", "3D")
    common = ["--data_root", str(data_root), "--device", "cpu", "--num_workers", "0", "--model", "tiny",
              "--prompt_backend", "offline", "--output_path", str(tmp_path / "o")]
    cases = [
        ("3D", ["--ckpt", str(authors), "--blind"], "--blind needs --recognizer FILE"),
        ("3D", ["--ckpt", str(authors), "--recognizer", str(trained_5d)], "--recognizer is used with --blind"),
        ("3D", ["--ckpt", str(authors), "--blind", "--recognizer", str(trained_5d)],
         "is a 5D recogniser (ids [0, 1, 2, 3, 4, 5, 6]) and cannot steer a 3D DFPIR"),
        ("3D", ["--ckpt", str(authors), "--blind", "--recognizer", str(authors)], "is a DFPIR checkpoint"),
    ]
    for setting, argv, message in cases:
        assert evaluate_main(setting, [*argv, *common]) == 2
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err, err
    image = data_root / "test" / "derain" / "Rain100L" / "input" / "rain-001.png"
    demo = ["--ckpt", str(ours_3d), "--input", str(image), "--output_dir", str(tmp_path / "d"), "--device", "cpu"]
    assert demo_main([*demo, "--degradation", "auto", "--recognizer", str(trained_5d)]) == 2
    assert "is a 5D recogniser but" in capsys.readouterr().err
    assert demo_main([*demo, "--degradation", "auto"]) == 2
    assert "--degradation auto needs --recognizer FILE" in capsys.readouterr().err


def test_demo_auto_prints_the_predicted_degradation_and_restores_with_it(data_root, trained_5d, tmp_path, capsys):
    authors = _tiny_dfpir(tmp_path / "authors.pth.tar", None)  # any checkpoint of the setting, authors' included
    folder = data_root / "test" / "derain" / "Rain100L" / "input"
    out = tmp_path / "restored"
    argv = ["--ckpt", str(authors), "--model", "tiny", "--prompt_backend", "offline", "--degradation", "auto",
            "--recognizer", str(trained_5d), "--input", str(folder), "--output_dir", str(out), "--device", "cpu"]
    assert demo_main(argv) == 0
    printed = capsys.readouterr().out
    lines = [line for line in printed.splitlines() if line.startswith("rain-")]
    assert len(lines) == 4 and all("(probability 0." in line or "(probability 1.00)" in line for line in lines)
    assert {line.split(": ")[1].split(" (")[0] for line in lines} <= set(degradation_choices())
    assert len(list(out.glob("*.png"))) == 4
