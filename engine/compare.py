"""Comparison figures of an evaluation: per task, the best, median and worst image by PSNR.

Each figure ``<output_path>/compare_<task>.png`` has one row per chosen image: the degraded input,
the restoration of every evaluated checkpoint side by side (one, or several ``--ckpt``), and the
ground truth, each captioned with its PSNR/SSIM against the ground truth (the scores of the whole
image; the panels show the same centre crop of large images). With several checkpoints the images
are chosen by the first checkpoint's scores, and every checkpoint restores those same images.

The chosen images are restored again after scoring (3 extra forwards per task and checkpoint)
rather than kept from the evaluation: which image is the median is known only once every image is
scored, and keeping every restoration until then would hold a whole test set in memory (GoPro:
1,111 images of 1280x720). The evaluation is deterministic, so the pictures show what was scored.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from data.evalsets import EvalSet, pair_name
from engine.module import RestorationModule
from engine.scoring import ImageRecord
from utils.figures import CROP, FigureRow, Panel, comparison_figure, to_uint8
from utils.metrics import image_metrics, tensor_to_image
from utils.outputs import atomic_write
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


@dataclass
class Restoration:
    """One checkpoint's restoration of a chosen image: its caption's name, the (H, W, 3) uint8 image and the
    image's recorded scores; ``note``: an optional remark (e.g. the degradation a recogniser predicted)."""

    label: str
    image: np.ndarray
    record: ImageRecord
    note: str | None = None


@dataclass
class Example:
    """A chosen test image of a figure: its rank ("best", "median", "worst"), its name, the (3, H, W)
    degraded input and ground truth in [0, 1], its task's degradation id, and every checkpoint's
    restoration of it so far (in the order the checkpoints were evaluated)."""

    rank: str
    name: str
    degraded: torch.Tensor
    clean: torch.Tensor
    de_id: int
    restorations: list[Restoration] = field(default_factory=list)


def example_row(example: Example) -> FigureRow:
    """One figure row: the input, each restoration (captioned with its recorded scores), the ground truth.

    The row's note is the restoration's note (one checkpoint), or each checkpoint's, named (several).
    """
    input_psnr, input_ssim = image_metrics(example.degraded, example.clean)
    notes = [(r.label, r.note) for r in example.restorations if r.note]
    note = (notes[0][1] if len(example.restorations) == 1 else "; ".join(f"{label}: {n}" for label, n in notes)
            ) if notes else None
    return FigureRow(
        title=f"{example.rank}: {example.name}",
        note=note,
        panels=[
            Panel(tensor_to_image(example.degraded), f"input\n{input_psnr:.2f} dB / {input_ssim:.4f}"),
            *(Panel(r.image, f"{r.label}\n{r.record.psnr:.2f} dB / {r.record.ssim:.4f}")
              for r in example.restorations),
            Panel(tensor_to_image(example.clean), "ground truth\nPSNR / SSIM"),
        ],
    )


class ComparisonFigure:
    """The figure of one test set: the images chosen by the first checkpoint's scores (:func:`pick_examples`),
    a column added per checkpoint (:meth:`add`), written with :meth:`save`."""

    def __init__(self, eval_set: EvalSet, records: list[ImageRecord]) -> None:
        self.task = eval_set.task.name
        scored = [r for r in records if r.task == self.task]
        self.image_count = len(scored)
        index = {pair_name(pair): i for i, pair in enumerate(eval_set.pairs)}
        self.examples: list[Example] = []
        for rank, record in pick_examples(scored):
            item = eval_set[index[record.name]]
            self.examples.append(Example(rank, record.name, item["degraded"], item["clean"], int(item["de_id"])))

    @torch.inference_mode()
    def add(self, label: str, module: RestorationModule, records: list[ImageRecord], device: torch.device,
            note_for: Callable[[ImageRecord], str | None] | None = None) -> None:
        """Restore every chosen image with ``module`` (its tiling options, on ``device``) and add the
        column ``label``, captioned with the scores in ``records`` (that checkpoint's)."""
        module = module.to(device).eval()
        by_name = {r.name: r for r in records if r.task == self.task}
        for example in self.examples:
            record = by_name[example.name]
            # A blind evaluation restored (and scored) the image with its predicted degradation.
            de_id = torch.tensor([example.de_id if record.predicted is None else record.predicted], device=device)
            restored = module.restore_for_scoring(example.degraded[None].to(device), de_id)[0]
            example.restorations.append(Restoration(label, to_uint8(tensor_to_image(restored)), record,
                                                    note_for(record) if note_for else None))

    def save(self, output_dir: str | Path) -> str | None:
        """Write output_dir/compare_<task>.png atomically (``utils.outputs.atomic_write``); its file name,
        None when the test set had no scored image."""
        if not self.examples:
            return None
        rows = [example_row(example) for example in self.examples]
        cropped = any(max(example.clean.shape[-2:]) > CROP for example in self.examples)
        crops = f"; large images: centre {CROP}x{CROP} crops" if cropped else ""
        chosen = " (chosen by the first checkpoint)" if len(self.examples[0].restorations) > 1 else ""
        title = (f"{TASKS[self.task].test_set}: best, median and worst of {self.image_count} images by PSNR"
                 f"{chosen}{crops}")
        name = FIGURE_NAME.format(task=self.task)
        figure = comparison_figure(rows, title)
        atomic_write(Path(output_dir) / name, lambda file: figure.save(file, format="PNG", optimize=True))
        return name
