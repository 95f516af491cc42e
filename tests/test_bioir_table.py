"""One table for three networks (issue 29 item 4): test_3D_DFPIR.py with a tiny DFPIR, a tiny PromptIR and a
tiny BioIR checkpoint scores them on the same stand-in inputs and prints one table with each network's
published row (BioIR's from its secondary source, labelled as such) and the side-by-side figures."""

from __future__ import annotations

import json

import pytest
from PIL import Image

from engine.evaluate import main as evaluate_script
from tests.helpers import lightning_file
from utils.paper import BIOIR_SOURCE
from utils.tasks import SETTINGS

pytestmark = pytest.mark.usefixtures("one_thread")


def test_bioirs_published_rows_are_in_the_records_with_their_source():
    for setting, average in (("3D", (32.87, 0.921)), ("5D", (30.99, 0.922))):
        row = SETTINGS[setting].published_for("bioir")
        assert row["average"] == average and set(row) == {*SETTINGS[setting].test_tasks, "average"}
        assert SETTINGS[setting].published_source("bioir") == BIOIR_SOURCE
        assert SETTINGS[setting].published_source("promptir") == "paper"
    assert SETTINGS["5D"].published_for("bioir")["deblur"] == (29.61, 0.889)


def test_three_networks_in_one_table_with_their_published_rows_and_figures(data_root, tmp_path, capsys):
    folder = tmp_path / "checkpoints"
    folder.mkdir()
    labels = {"DFPIR-tiny": lightning_file(folder / "dfpir.ckpt", "tiny", 0),
              "PromptIR-tiny": lightning_file(folder / "promptir.ckpt", "promptir_tiny", 1),
              "BioIR-tiny": lightning_file(folder / "bioir.ckpt", "bioir_tiny", 2)}
    common = ["--data_root", str(data_root), "--device", "cpu", "--num_workers", "0", "--tasks", "denoise_15",
              "derain"]
    out = tmp_path / "three"
    argv = [*common, "--output_path", str(out)]
    for label, path in labels.items():
        argv += ["--ckpt", str(path), "--label", label]
    assert evaluate_script("3D", argv) == 0
    printed = capsys.readouterr().out

    results = json.loads((out / "results.json").read_text())
    entries = results["checkpoints"]
    assert list(entries) == list(labels)
    assert [entries[label]["architecture"] for label in labels] == ["dfpir", "promptir", "bioir"]
    assert all(entries[label]["results"]["derain"]["n"] == 4 for label in labels)
    assert results["paper"]["bioir"]["derain"] == {"psnr": 38.63, "ssim": 0.984}

    markdown = (out / "results.md").read_text()
    for row in ("| DFPIR 3D (paper) |", "| PromptIR 3D (paper) |", f"| BioIR 3D ({BIOIR_SOURCE}) |",
                "| BioIR-tiny |", "| BioIR-tiny - BioIR paper |"):
        assert row in markdown and row in printed
    for label in labels:  # one folder of restored images per checkpoint
        assert len(list((out / label / "derain").glob("*.png"))) == 4
    one = tmp_path / "one"
    assert evaluate_script("3D", [*common, "--output_path", str(one), "--ckpt", str(labels["BioIR-tiny"]),
                                  "--no_save_images"]) == 0
    for task in ("derain", "denoise_15"):  # the side-by-side figures: a column per checkpoint
        assert Image.open(out / f"compare_{task}.png").width > Image.open(one / f"compare_{task}.png").width
