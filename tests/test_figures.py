"""Pictures of results: comparison figures, the demo's side-by-side, training curves from both loggers."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

import demo
from engine.compare import pick_examples
from engine.curves import read_run_logs, running_mean, write_curves
from engine.scoring import ImageRecord
from net.prompts import PromptTable, prompt_list
from net.registry import create_model
from utils.figures import CROP, FigureRow, Panel, comparison_figure, line_chart


def _records(psnrs: dict[str, float]) -> list[ImageRecord]:
    return [ImageRecord("derain", name, psnr, 0.5) for name, psnr in psnrs.items()]


def test_best_median_worst_by_psnr_ties_broken_by_name():
    picks = pick_examples(_records({"a": 30.0, "b": 20.0, "c": 25.0, "d": 25.0, "e": 10.0}))
    assert [(rank, r.name) for rank, r in picks] == [("best", "a"), ("median", "d"), ("worst", "e")]
    assert [rank for rank, _ in pick_examples(_records({"a": 1.0, "b": 2.0}))] == ["best", "worst"]
    assert [rank for rank, _ in pick_examples(_records({"a": 1.0}))] == ["best"]
    assert pick_examples([]) == []


def _row(h: int, w: int, note: str | None = None) -> FigureRow:
    rng = np.random.default_rng(0)
    return FigureRow("best: x", [Panel(rng.random((h, w, 3), dtype=np.float32), f"panel {i}") for i in range(3)],
                     note)


def test_comparison_figure_crops_large_images_to_the_same_window_and_enlarges_small_ones():
    large = comparison_figure([_row(600, 900), _row(300, 280)], title="t")
    assert large.width < 3 * CROP + 40  # every panel shows at most CROP pixels per side
    small = comparison_figure([_row(32, 40, note="predicted: rain")])
    assert small.width > 3 * 40 * 4  # enlarged by an integer factor so the captions fit
    with pytest.raises(ValueError, match="differ in size"):
        comparison_figure([FigureRow("r", [Panel(np.zeros((8, 8, 3)), "a"), Panel(np.zeros((8, 9, 3)), "b")])])


def test_demo_compare_writes_input_and_restoration_side_by_side(tmp_path):
    torch.manual_seed(0)
    net = create_model("tiny")
    net.prompt_table, net.prompt_set = PromptTable(prompt_list("detailed"), torch.randn(7, 512), "t"), "detailed"
    net.save_pretrained(tmp_path / "hub")
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (30, 44, 3), dtype=np.uint8)).save(tmp_path / "a.png")
    out = tmp_path / "out"
    assert demo.main(["--ckpt", str(tmp_path / "hub"), "--degradation", "haze", "--input", str(tmp_path / "a.png"),
                      "--output_dir", str(out), "--device", "cpu", "--compare"]) == 0
    side_by_side = Image.open(out / "a_compare.png")
    assert side_by_side.width > 2 * side_by_side.height > 0 and Image.open(out / "a.png").size == (44, 30)


def _write_tensorboard(version_dir, points):
    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(str(version_dir))
    for tag, step, value in points:
        writer.add_scalar(tag, value, step)
    writer.close()


def test_curves_join_resumed_runs_from_tensorboard_and_csv(tmp_path):
    logs = tmp_path / "run" / "logs"
    # version_0 was interrupted after step 30; version_1 resumed from the checkpoint of step 20.
    _write_tensorboard(logs / "version_0", [("loss", s, 1.0) for s in (10, 20, 30)] + [("val_derain_psnr", 20, 25.0)])
    (logs / "version_1").mkdir(parents=True)
    (logs / "version_1" / "metrics.csv").write_text(
        "epoch,loss,step,val_derain_psnr,val_psnr\n0,0.5,25,,\n0,0.4,30,,\n0,,30,27.5,27.5\n")
    metrics = read_run_logs(logs)
    assert metrics["loss"] == [(10, 1.0), (20, 1.0), (25, 0.5), (30, 0.4)]
    assert metrics["val_derain_psnr"] == [(20, 25.0), (30, 27.5)] and metrics["val_psnr"] == [(30, 27.5)]
    assert running_mean([(1, 1.0), (2, 3.0), (3, 5.0)], 2) == [(1, 1.0), (2, 2.0), (3, 4.0)]
    path = write_curves(tmp_path / "run")
    assert Image.open(path).size[1] > 400


def test_a_chart_with_nothing_logged_is_still_drawn():
    assert line_chart({}, "empty", "step", "L1").size == (640, 300)


def test_tick_labels_carry_the_decimals_of_their_step():
    from utils.figures import _tick_label

    assert [_tick_label(v, 2.5) for v in (-5.0, -2.5, 0.0, 2.5)] == ["-5.0", "-2.5", "0.0", "2.5"]
    assert [_tick_label(v, 0.25) for v in (0.25, 0.5)] == ["0.25", "0.50"]
    assert [_tick_label(v, 200) for v in (0, 200)] == ["0", "200"]


def test_a_reference_level_is_drawn_dashed_even_above_every_line():
    from utils.figures import MUTED

    def muted_pixels(image):
        return int((np.asarray(image) == MUTED).all(axis=-1).sum())

    lines = {"net": [(0, -5.0), (800, 3.4)]}
    plain = line_chart(lines, "t", "step", "dB", size=(640, 230))
    with_level = line_chart(lines, "t", "step", "dB", size=(640, 230), levels={"non-local means": 4.7})
    assert muted_pixels(with_level) > muted_pixels(plain) + 200  # the dashes across the frame and in the legend
