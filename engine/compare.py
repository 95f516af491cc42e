"""Comparison figures of an evaluation: per task, the best, median and worst image by PSNR.

Each figure ``<output_path>/compare_<task>.png`` has one row per chosen image: the degraded input,
the restoration and the ground truth, each captioned with its PSNR/SSIM against the ground truth
(the scores of the whole image; the panels show the same centre crop of large images).

The three images are restored again after scoring (3 extra forwards per task) rather than kept
from the evaluation: which image is the median is known only once every image is scored, and
keeping every restoration until then would hold a whole test set in memory (GoPro: 1,111 images
of 1280x720). The evaluation is deterministic, so the pictures show what was scored.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch

from data.evalsets import EvalSet, pair_name
from engine.module import RestorationModule
from engine.scoring import ImageRecord
from utils.figures import CROP, FigureRow, Panel, comparison_figure
from utils.metrics import image_metrics, tensor_to_image
from utils.tasks import TASKS

FIGURE_NAME = "compare_{task}.png"


def pick_examples(records: list[ImageRecord]) -> list[tuple[str, ImageRecord]]:
    """[("best", r), ("median", r), ("worst", r)] by PSNR (fewer rows for fewer than three images).

    Ties are broken by name, so the choice does not depend on the order images were scored in.
    """
    ranked = sorted(records, key=lambda r: (-r.psnr, r.name))
    if not ranked:
        return []
    picks = [("best", ranked[0]), ("median", ranked[(len(ranked) - 1) // 2]), ("worst", ranked[-1])]
    chosen: list[tuple[str, ImageRecord]] = []
    for rank, record in picks:
        if all(record is not r for _, r in chosen):
            chosen.append((rank, record))
    return chosen


def example_row(rank: str, record: ImageRecord, degraded: torch.Tensor, restored: torch.Tensor,
                clean: torch.Tensor, note: str | None = None) -> FigureRow:
    """One figure row from (3, H, W) tensors in [0, 1]; the restoration's scores are the recorded ones."""
    input_psnr, input_ssim = image_metrics(degraded, clean)
    return FigureRow(
        title=f"{rank}: {record.name}",
        note=note,
        panels=[
            Panel(tensor_to_image(degraded), f"input\n{input_psnr:.2f} dB / {input_ssim:.4f}"),
            Panel(tensor_to_image(restored), f"DFPIR\n{record.psnr:.2f} dB / {record.ssim:.4f}"),
            Panel(tensor_to_image(clean), "ground truth\nPSNR / SSIM"),
        ],
    )


@torch.inference_mode()
def write_comparisons(module: RestorationModule, eval_sets: list[EvalSet], records: list[ImageRecord],
                      output_dir: str | Path, device: torch.device,
                      note_for: Callable[[ImageRecord], str | None] | None = None) -> dict[str, str]:
    """Write output_dir/compare_<task>.png for every test set with scored images; {task: file name}.

    The chosen images are restored again by ``module.restore`` (its tiling options) on ``device``.
    note_for: an optional note shown after a row's title (e.g. the degradation a recogniser predicted).
    """
    output_dir = Path(output_dir)
    module = module.to(device).eval()
    written: dict[str, str] = {}
    for eval_set in eval_sets:
        task = eval_set.task.name
        scored = [r for r in records if r.task == task]
        index = {pair_name(pair): i for i, pair in enumerate(eval_set.pairs)}
        rows, cropped = [], False
        for rank, record in pick_examples(scored):
            item = eval_set[index[record.name]]
            # A blind evaluation restored (and scored) the image with its predicted degradation.
            de_id = torch.tensor([item["de_id"] if record.predicted is None else record.predicted], device=device)
            restored = module.restore_for_scoring(item["degraded"][None].to(device), de_id)[0]
            rows.append(example_row(rank, record, item["degraded"], restored, item["clean"],
                                    note_for(record) if note_for else None))
            cropped |= max(item["clean"].shape[-2:]) > CROP
        if not rows:
            continue
        crops = f"; large images: centre {CROP}x{CROP} crops" if cropped else ""
        title = f"{TASKS[task].test_set}: best, median and worst of {len(scored)} images by PSNR{crops}"
        name = FIGURE_NAME.format(task=task)
        output_dir.mkdir(parents=True, exist_ok=True)
        comparison_figure(rows, title).save(output_dir / name, optimize=True)
        written[task] = name
    return written
