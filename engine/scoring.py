"""The evaluation protocol's bookkeeping, reusable by any LightningModule (docs/protocol.md section 4).

A :class:`Scorer` takes restored images as a validation/test loop produces them, computes
PSNR/SSIM per image (``utils/metrics.py``: on a GPU where the images are, on a CPU with
scikit-image on a background thread, overlapping the next image's forward), optionally writes the
restored PNGs (on that thread), and at the end gathers
the per-image records of every DDP process, so the numbers equal a single-process run:
the mean per test set, and the average over the test sets (:func:`summarise`).
"""

from __future__ import annotations

from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.distributed as dist

from utils.image_io import write_png
from utils.metrics import device_image_metrics, image_metrics
from utils.tasks import TASKS

MAX_PENDING_IMAGES = 8  # restored images waiting for their metrics on the scoring thread

Results = dict[str, dict]
"""{task: {"psnr", "ssim", "n"}, ..., "average": {"psnr", "ssim"}} (the layout of results.json).

Blind evaluations (a degradation recogniser chose each image's prompt) add per task
"recognition_accuracy", "predicted_ids" ({de_id as a string: images}) and "known" ({"psnr", "ssim"}
with the task's own prompt), and to the average "recognition_accuracy" (over all images) and "known".
"""


@dataclass
class EvalOptions:
    """How validation/test images are restored and saved.

    save_dir: write restored PNGs to save_dir/<task>/<name>.png (None: do not save).
    tile, tile_overlap: restore in tiles of this size (None: whole image).
    """

    save_dir: Path | None = None
    tile: int | None = None
    tile_overlap: int = 32


@dataclass(frozen=True)
class ImageRecord:
    """The scores of one test image.

    Blind evaluation: ``psnr``/``ssim`` score the restoration with the recognised degradation id
    ``predicted``; ``known_psnr``/``known_ssim`` the one with the task's own id (equal when
    ``predicted`` is the task's id). Otherwise these three are None.
    """

    task: str
    name: str
    psnr: float
    ssim: float
    predicted: int | None = None
    known_psnr: float | None = None
    known_ssim: float | None = None


def summarise(records: list[ImageRecord], tasks: list[str]) -> Results:
    """Per-task means (in the order of ``tasks``) and their average over the tasks that have images."""
    results: Results = {}
    for task in tasks:
        rows = [r for r in records if r.task == task]
        if rows:
            results[task] = {
                "psnr": sum(r.psnr for r in rows) / len(rows),
                "ssim": sum(r.ssim for r in rows) / len(rows),
                "n": len(rows),
            }
            if all(r.predicted is not None for r in rows):
                results[task].update(_recognition_summary(task, rows))
    if results:
        results["average"] = average(list(results.values()))
    return results


def average(per_task: list[dict]) -> dict:
    """The "average" entry of results over per-task entries: mean PSNR and SSIM over the tasks; for a
    blind evaluation also the recognition accuracy over all images and the mean known-degradation scores."""
    entry = {m: sum(r[m] for r in per_task) / len(per_task) for m in ("psnr", "ssim")}
    if all("known" in r for r in per_task):
        correct = sum(r["recognition_accuracy"] * r["n"] for r in per_task)
        entry["recognition_accuracy"] = correct / sum(r["n"] for r in per_task)
        entry["known"] = {m: sum(r["known"][m] for r in per_task) / len(per_task) for m in ("psnr", "ssim")}
    return entry


def _recognition_summary(task: str, rows: list[ImageRecord]) -> dict:
    """The blind-evaluation entries of one task: accuracy, predicted-id counts, known-degradation scores."""
    counts: dict[str, int] = {}
    for r in sorted(rows, key=lambda r: r.predicted):
        counts[str(r.predicted)] = counts.get(str(r.predicted), 0) + 1
    return {
        "recognition_accuracy": counts.get(str(TASKS[task].de_id), 0) / len(rows),
        "predicted_ids": counts,
        "known": {"psnr": sum(r.known_psnr for r in rows) / len(rows),
                  "ssim": sum(r.known_ssim for r in rows) / len(rows)},
    }


def gather_records(records: list[ImageRecord]) -> list[ImageRecord]:
    """Every process's records, on every process (just ``records`` outside DDP), sorted by (task, name).

    The sort gives the same summation order on any number of processes. RuntimeError if an image
    was scored twice (an evaluation loader padded or repeated samples).
    """
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        gathered: list[list[ImageRecord]] = [[] for _ in range(dist.get_world_size())]
        dist.all_gather_object(gathered, records)
        records = [r for shard in gathered for r in shard]
    records = sorted(records, key=lambda r: (r.task, r.name))
    keys = [(r.task, r.name) for r in records]
    if len(set(keys)) != len(keys):
        raise RuntimeError("an image was evaluated twice; evaluation loaders must not pad or repeat samples")
    return records


class Scorer:
    """Scores restored images on a background thread; :meth:`finish` returns the gathered summary.

    ``add`` per evaluation batch, ``finish`` once at the end of the validation/test epoch (on every
    process under DDP: it is a collective).
    """

    def __init__(self, save_dir: Path | None = None) -> None:
        self.save_dir = save_dir
        self._records: list[ImageRecord] = []
        self._pending: deque[Future[ImageRecord]] = deque()
        self._thread: ThreadPoolExecutor | None = None
        self.records: list[ImageRecord] = []  # after finish: every process's records, sorted by (task, name)

    def add(self, restored: torch.Tensor, clean: torch.Tensor, tasks: list[str], names: list[str],
            predicted: list[int] | None = None, known: torch.Tensor | None = None) -> None:
        """restored, clean: (B, 3, H, W) in [0, 1] (restored already clipped); one task and name per image.

        CUDA tensors are scored on the GPU (``device_image_metrics``, equal to scikit-image's), which
        keeps validation short; CPU tensors with scikit-image itself, on the scoring thread.
        Blind evaluation: ``predicted`` holds the recognised degradation id of each image (``restored``
        used it) and ``known`` the restoration with the task's own id, or None where it is
        ``restored`` itself (every prediction right); scored on the scoring thread.
        """
        if restored.is_cuda and predicted is None:
            scores = [device_image_metrics(r, c) for r, c in zip(restored, clean.to(restored.device), strict=True)]
            if self.save_dir is not None:
                restored = restored.float().cpu()
        else:
            scores = [None] * len(restored)
            restored, clean = restored.float().cpu(), clean.float().cpu()
            known = None if known is None else known.float().cpu()
        if self._thread is None:
            self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="dfpir-metrics")
        for i, (task, name) in enumerate(zip(tasks, names, strict=True)):
            blind = None if predicted is None else (predicted[i], None if known is None else known[i])
            self._pending.append(self._thread.submit(self._score, task, name, restored[i], clean[i], scores[i],
                                                     blind))
        while len(self._pending) > MAX_PENDING_IMAGES:  # bound the images held in memory
            self._records.append(self._pending.popleft().result())

    def _score(self, task: str, name: str, restored: torch.Tensor, clean: torch.Tensor,
               scores: tuple[float, float] | None,
               blind: tuple[int, torch.Tensor | None] | None = None) -> ImageRecord:
        """The metrics (unless already computed: ``scores``) and the PNG of one (3, H, W) image; runs
        on the scoring thread. blind: (predicted id, restoration with the known id or None if
        ``restored`` is it)."""
        psnr, ssim = scores if scores is not None else image_metrics(restored, clean)
        if self.save_dir is not None:
            write_png(Path(self.save_dir) / task / f"{name}.png", restored.permute(1, 2, 0).numpy())
        if blind is None:
            return ImageRecord(task, name, psnr, ssim)
        predicted, known = blind
        known_psnr, known_ssim = (psnr, ssim) if known is None else image_metrics(known, clean)
        return ImageRecord(task, name, psnr, ssim, predicted, known_psnr, known_ssim)

    def finish(self, tasks: list[str]) -> Results:
        """Wait for the pending scores, gather every process's records and summarise them over ``tasks``."""
        records = self._records + [future.result() for future in self._pending]
        self._records, self._pending = [], deque()
        if self._thread is not None:
            self._thread.shutdown()
            self._thread = None
        self.records = gather_records(records)
        return summarise(self.records, tasks)
