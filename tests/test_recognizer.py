"""The degradation recogniser: its statistics, any input size, checkpoints and refusals, training end to end."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from data.sample import make_sample_dataset
from data.transforms import add_gaussian_noise, to_tensor
from engine.recognizer import main as train_recognizer_main
from net.recognizer import (
    NUM_STATISTICS,
    DegradationRecognizer,
    RecognizerError,
    degradation_statistics,
    load_recognizer,
    save_recognizer,
    setting_ids,
)

TRAIN = ["--patch_size", "32", "--batch_size", "7", "--num_workers", "0", "--device", "cpu", "--preload_gb", "0"]


@pytest.fixture(scope="module")
def data_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("sample")
    make_sample_dataset(root, train_size=48, test_size=32)
    return root


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


def test_any_image_size_gives_probabilities_over_the_setting_ids():
    model = DegradationRecognizer("3D").eval()
    for height, width in ((16, 16), (17, 45), (130, 97)):
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
