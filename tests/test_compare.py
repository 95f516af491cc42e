"""Several checkpoints in one evaluation (issue 22 item 4) and the test scripts' refusal to replace an
earlier run's outputs (issue 25 item 1).

A tiny DFPIR and a tiny PromptIR checkpoint (this project's Lightning format, random weights, a
random prompt table) are scored on the stand-in test sets in one run: one table, every checkpoint on
the same inputs, the paper rows of both networks, the figure with both restorations side by side.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from PIL import Image

from engine.evaluate import main as evaluate_main
from engine.report import CheckpointResults, comparison_table, with_average
from net.registry import NetworkSpec
from tests.helpers import lightning_file
from utils.tasks import SETTINGS

COMMON = ["--device", "cpu", "--num_workers", "0", "--tasks", "denoise_15", "derain"]


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("checkpoints")
    return {"dfpir": lightning_file(folder / "dfpir_tiny.ckpt", "tiny", 0),
            "promptir": lightning_file(folder / "promptir_tiny.ckpt", "promptir_tiny", 1)}


def _evaluate(data_root: Path, out: Path, *extra: str, setting: str = "3D") -> int:
    return evaluate_main(setting, ["--data_root", str(data_root), "--output_path", str(out), *COMMON, *extra])


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_two_networks_in_one_table_on_the_same_inputs(data_root, checkpoints, tmp_path, capsys):
    out = tmp_path / "both"
    assert _evaluate(data_root, out, "--ckpt", str(checkpoints["dfpir"]), "--ckpt", str(checkpoints["promptir"]),
                     "--label", "DFPIR-tiny", "--label", "PromptIR-tiny") == 0
    printed = capsys.readouterr().out
    results = json.loads((out / "results.json").read_text())
    assert results["setting"] == "3D" and list(results["checkpoints"]) == ["DFPIR-tiny", "PromptIR-tiny"]
    both = results["checkpoints"]
    assert both["PromptIR-tiny"]["architecture"] == "promptir" and both["DFPIR-tiny"]["architecture"] == "dfpir"
    assert both["PromptIR-tiny"]["checkpoint"] == str(checkpoints["promptir"])
    for entry in both.values():
        assert list(entry["results"]) == ["denoise_15", "derain", "average"]
        assert all(entry["results"][t]["n"] == 4 for t in ("denoise_15", "derain"))
    assert both["DFPIR-tiny"]["results"]["derain"]["psnr"] != both["PromptIR-tiny"]["results"]["derain"]["psnr"]
    assert results["paper"]["promptir"]["derain"] == {"psnr": 36.37, "ssim": 0.972}
    assert results["paper"]["dfpir"]["denoise_15"] == {"psnr": 34.14, "ssim": 0.935}

    markdown = (out / "results.md").read_text()
    for row in ("| DFPIR 3D (paper) |", "| PromptIR 3D (paper) |", "| DFPIR-tiny |", "| PromptIR-tiny |",
                "| PromptIR-tiny - PromptIR paper |"):
        assert row in markdown and row in printed
    for label in ("DFPIR-tiny", "PromptIR-tiny"):  # restored images: one folder per checkpoint
        assert len(list((out / label / "derain").glob("*.png"))) == 4
    assert not (out / "derain").exists()
    figure = Image.open(out / "compare_derain.png")
    one = tmp_path / "one"
    assert _evaluate(data_root, one, "--ckpt", str(checkpoints["dfpir"]), "--no_save_images") == 0
    assert figure.width > Image.open(one / "compare_derain.png").width  # a column per checkpoint


def test_each_checkpoint_scores_as_it_does_alone_with_the_legacy_noise_draw(data_root, checkpoints, tmp_path):
    """The authors' one-stream draw (--legacy_noise) is made once and every checkpoint gets it."""
    flags = ["--no_save_images", "--legacy_noise", "--tasks", "denoise_15"]
    alone = {}
    for name, path in checkpoints.items():
        assert _evaluate(data_root, tmp_path / name, "--ckpt", str(path), *flags) == 0
        alone[path.name] = json.loads((tmp_path / name / "results.json").read_text())
    out = tmp_path / "both"
    assert _evaluate(data_root, out, "--ckpt", str(checkpoints["dfpir"]), "--pretrained_1",
                     str(checkpoints["promptir"]), *flags) == 0
    together = json.loads((out / "results.json").read_text())["checkpoints"]
    assert {label: entry["results"] for label, entry in together.items()} == alone  # labels: file names


def test_one_checkpoint_keeps_the_single_layout(data_root, checkpoints, tmp_path):
    """A lone checkpoint is a comparison of one (issue 28 item 3: this pins the new contract): the single
    results.json layout, its table that of a one-entry comparison."""
    out = tmp_path / "one"
    assert _evaluate(data_root, out, "--ckpt", str(checkpoints["promptir"])) == 0
    results = json.loads((out / "results.json").read_text())
    assert list(results) == ["denoise_15", "derain", "average"]
    entry = CheckpointResults("promptir_tiny.ckpt", str(checkpoints["promptir"]), "promptir", "", results)
    assert comparison_table([entry], "3D", ["denoise_15", "derain"]) in (out / "results.md").read_text()
    assert len(list((out / "derain").glob("*.png"))) == 4


def test_a_lone_promptir_checkpoint_is_reported_beside_promptirs_published_row(data_root, checkpoints, tmp_path,
                                                                               capsys):
    out = tmp_path / "one"
    assert _evaluate(data_root, out, "--ckpt", str(checkpoints["promptir"]), "--no_save_images") == 0
    printed = capsys.readouterr().out
    markdown = (out / "results.md").read_text()
    derain = SETTINGS["3D"].published_for("promptir")["derain"]
    assert markdown.startswith("## PromptIR 3D: promptir_tiny.ckpt\n")
    for text in (markdown, printed):
        assert "| PromptIR 3D (paper) |" in text and f"{derain[0]:.2f} / {derain[1]:.3f}" in text
        assert "| this run |" in text and "| difference |" in text
        assert "DFPIR" not in text.split("### ")[0]  # neither DFPIR's title nor its published row


def test_a_lone_checkpoint_of_a_network_not_published_in_the_setting_says_so():
    results = with_average({"derain": {"psnr": 30.0, "ssim": 0.9, "n": 2}})
    table = comparison_table([CheckpointResults("b", "b.ckpt", "promptir", "", results)], "5D", ["derain"])
    assert "| PromptIR 5D (paper): not published | - | - |" in table
    assert "| this run | 30.00 / 0.9000 | 30.00 / 0.9000 |" in table
    assert "difference" not in table and "DFPIR" not in table


def test_a_checkpoint_that_does_not_fit_is_refused_before_any_image_is_decoded(data_root, checkpoints, tmp_path,
                                                                              capsys, monkeypatch):
    import data.evalsets

    def no_decoding(*args, **kwargs):
        raise AssertionError("a test image was decoded")

    monkeypatch.setattr(data.evalsets, "load_test_images", no_decoding)
    misfit = tmp_path / "misfit.pt"  # the tiny DFPIR's weights, one tensor short: no registered network fits them
    state = NetworkSpec.of_model("tiny").build().state_dict()
    torch.save({k: v for k, v in state.items() if k != "output.weight"}, misfit)
    out = tmp_path / "out"
    assert _evaluate(data_root, out, "--ckpt", str(checkpoints["dfpir"]), "--ckpt", str(misfit)) == 2
    err = capsys.readouterr().err
    assert f"{misfit} records no network and its 204 tensors fit no registered network" in err
    assert "tiny (dfpir, 205 tensors: 1 missing" in err and "Traceback" not in err
    assert not out.exists()


@pytest.mark.parametrize("labels, expected", [
    (["a"], "--label was given 1 times for 2 --ckpt"),
    (["a", "a"], "several --ckpt have the label 'a'"),
    (["a", "x/y"], "--label 'x/y'"),
    (None, "several --ckpt have the label"),
])
def test_labels_must_name_each_checkpoint_once(data_root, checkpoints, tmp_path, capsys, labels, expected):
    flags = [f for label in labels or [] for f in ("--label", label)]
    path = str(checkpoints["dfpir"])
    assert _evaluate(data_root, tmp_path / "out", "--ckpt", path, "--ckpt", path, *flags) == 2
    assert expected in capsys.readouterr().err


def test_a_5d_comparison_says_promptir_is_not_published():
    results = with_average({"derain": {"psnr": 30.0, "ssim": 0.9, "n": 2}})
    entries = [CheckpointResults("a", "a.ckpt", "dfpir", "paper (dfpir)", results),
               CheckpointResults("b", "b.ckpt", "promptir", "promptir (promptir)", results)]
    table = comparison_table(entries, "5D", ["derain", "deblur"])
    assert "| PromptIR 5D (paper): not published | - | - | - |" in table
    assert "| DFPIR 5D (paper) | 37.62 / 0.978 | 28.82 / 0.873 | 33.22 / 0.925 |" in table
    assert "| a - DFPIR paper | -7.62 / -0.0780 | - | - |" in table
    assert "| a | 30.00 / 0.9000 | - | - |" in table  # deblur not run yet: no average
    assert SETTINGS["5D"].published_for("promptir") is None


# ----------------------------------------------------------------------------- no silent replacement
@pytest.mark.parametrize("several", [False, True], ids=["one", "several"])
def test_an_earlier_run_is_refused_without_overwrite_and_replaced_with_it(data_root, checkpoints, tmp_path, capsys,
                                                                           several):
    flags = ["--ckpt", str(checkpoints["dfpir"])] + (["--ckpt", str(checkpoints["promptir"])] if several else [])
    out = tmp_path / "out"
    assert _evaluate(data_root, out, *flags) == 0
    before = _snapshot(out)
    assert "results.json" in before and "compare_derain.png" in before
    capsys.readouterr()

    assert _evaluate(data_root, out, *flags) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--overwrite" in err and "results.json" in err and str(out) in err
    assert _snapshot(out) == before  # every file byte-identical

    (out / "results.json").unlink()
    (out / "results.md").unlink()
    for figure in out.glob("compare_*.png"):
        figure.unlink()
    assert _evaluate(data_root, out, *flags) == 2  # the restored images alone are refused too
    assert "derain/" in capsys.readouterr().err

    assert _evaluate(data_root, out, *flags, "--overwrite") == 0
    assert (out / "results.json").exists() and not list(out.rglob("*.tmp"))


def test_a_user_file_named_like_an_output_is_refused(data_root, checkpoints, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "results.md").write_text("my notes")
    assert _evaluate(data_root, out, "--ckpt", str(checkpoints["dfpir"]), "--no_save_images") == 2
    assert "results.md" in capsys.readouterr().err
    assert _snapshot(out) == {"results.md": b"my notes"}
