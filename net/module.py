"""The LightningModule shared by training, validation and testing (spec sections 3 and 4).

- Training: L1 between DFPIR(degraded, text code) and the clean patch; the text code of each
  sample is a row of the prompt table, indexed by the sample's degradation id (no CLIP per step).
  Adam (lr 1e-4, default betas, no weight decay) and CosineAnnealingLR stepped once per epoch.
- Validation and testing: the evaluation protocol, whole images at batch 1, output clipped to
  [0, 1], PSNR/SSIM per image (``utils/metrics.py``), mean per test set and the average over
  test sets. The CPU-bound metrics run on a scoring thread, overlapping the next image's forward
  on the GPU. Under DDP every process scores its shard and the per-image records are gathered,
  so the numbers equal a single-process run.
- Checkpoints are self-contained: ``checkpoint["dfpir"]`` holds the model config, the prompt
  set and the prompt table (see ``net/checkpoint.py``).
"""

from __future__ import annotations

import contextlib
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import lightning as L
import torch
import torch.distributed as dist
import torch.nn.functional as F

from net.checkpoint import EXTRA_KEY
from net.dfpir import DFPIR
from net.prompts import PromptTable
from utils.image_io import write_png
from utils.metrics import image_metrics
from utils.tiling import restore_image

MAX_PENDING_IMAGES = 8  # restored images waiting for their metrics on the scoring thread


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
    task: str
    name: str
    psnr: float
    ssim: float


def _eager_if_compiled():
    """Evaluation images differ in size: a compiled network (``--compile``) would recompile for each
    new size, so evaluation runs it eagerly (torch >= 2.6; older releases recompile)."""
    set_stance = getattr(torch.compiler, "set_stance", None)
    return set_stance("force_eager") if set_stance is not None else contextlib.nullcontext()


def summarise(records: list[ImageRecord], tasks: list[str]) -> dict[str, dict[str, float]]:
    """Per-task means and their average: {task: {psnr, ssim, n}, ..., "average": {psnr, ssim}}."""
    results: dict[str, dict[str, float]] = {}
    for task in tasks:
        rows = [r for r in records if r.task == task]
        if rows:
            results[task] = {
                "psnr": sum(r.psnr for r in rows) / len(rows),
                "ssim": sum(r.ssim for r in rows) / len(rows),
                "n": len(rows),
            }
    if results:
        results["average"] = {
            "psnr": sum(r["psnr"] for r in results.values()) / len(results),
            "ssim": sum(r["ssim"] for r in results.values()) / len(results),
        }
    return results


class DFPIRModule(L.LightningModule):
    """DFPIR with its prompt table, loss, optimiser, schedule and evaluation protocol.

    model_config: ``DFPIRConfig`` fields. prompt_table: ``PromptTable.to_dict()``.
    eval_tasks: the test sets validation/testing iterate over, in dataloader order.
    """

    def __init__(
        self,
        model_config: dict,
        prompt_table: dict,
        prompt_set: str = "detailed",
        setting: str = "3D",
        eval_tasks: list[str] | None = None,
        lr: float = 1e-4,
        lr_schedule_epochs: int = 500,
    ):
        super().__init__()
        self.save_hyperparameters(ignore=["prompt_table"])
        self.net = DFPIR(**model_config)
        self.prompt_table = PromptTable.from_dict(prompt_table)
        self.register_buffer("prompt_codes", self.prompt_table.embeddings.clone(), persistent=False)
        self.eval_tasks = list(eval_tasks or [])
        self.eval_options = EvalOptions()
        self.eval_results: dict[str, dict[str, float]] = {}
        self._records: list[ImageRecord] = []
        self._pending: deque[Future[ImageRecord]] = deque()
        self._scorer: ThreadPoolExecutor | None = None

    # ----------------------------------------------------------------------------- network
    def forward(self, img: torch.Tensor, de_id: torch.Tensor) -> torch.Tensor:
        """img (B, 3, H, W) in [0, 1], de_id (B,) int -> restored (B, 3, H, W) (not clipped)."""
        codes = self.prompt_codes[de_id.to(self.prompt_codes.device)]
        return self.net(img, codes)

    def restore(self, img: torch.Tensor, de_id: torch.Tensor) -> torch.Tensor:
        """forward for whole images of any size, tiled as ``eval_options`` says."""
        opts = self.eval_options
        return restore_image(lambda x: self(x, de_id), img, opts.tile, opts.tile_overlap)

    def setup(self, stage: str) -> None:
        # Every process must index the same table: take rank 0's (CLIP may differ across hosts).
        if self.trainer is not None and self.trainer.world_size > 1:
            self.prompt_codes = self.trainer.strategy.broadcast(self.prompt_codes.cpu()).to(self.prompt_codes.device)

    # ----------------------------------------------------------------------------- training
    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        restored = self(batch["degraded"], batch["de_id"])
        loss = F.l1_loss(restored, batch["clean"])
        self.log("loss", loss, prog_bar=True, batch_size=batch["degraded"].shape[0])
        return loss

    def configure_optimizers(self):
        trainable = [p for p in self.net.parameters() if p.requires_grad]
        optimizer = torch.optim.Adam(trainable, lr=self.hparams.lr)
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=self.hparams.lr_schedule_epochs)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "epoch"}}

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint[EXTRA_KEY] = {
            "model_config": self.net.config.to_dict(),
            "prompt_set": self.hparams.prompt_set,
            "prompt_table": PromptTable(self.prompt_table.prompts, self.prompt_codes.cpu(),
                                        self.prompt_table.source).to_dict(),
            "setting": self.hparams.setting,
        }

    # ----------------------------------------------------------------------------- evaluation
    def _evaluate(self, batch: dict) -> None:
        with _eager_if_compiled():
            restored = self.restore(batch["degraded"], batch["de_id"]).float().clamp(0, 1).cpu()
        clean = batch["clean"].cpu()
        if self._scorer is None:
            self._scorer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="dfpir-metrics")
        for i, (task, name) in enumerate(zip(batch["task"], batch["name"])):
            self._pending.append(self._scorer.submit(self._score, task, name, restored[i], clean[i]))
        while len(self._pending) > MAX_PENDING_IMAGES:  # bound the images held in memory
            self._records.append(self._pending.popleft().result())

    def _score(self, task: str, name: str, restored: torch.Tensor, clean: torch.Tensor) -> ImageRecord:
        """Metrics (and the PNG) of one image, (3, H, W) on the CPU; runs on the scoring thread."""
        psnr, ssim = image_metrics(restored, clean)
        if self.eval_options.save_dir is not None:
            write_png(Path(self.eval_options.save_dir) / task / f"{name}.png", restored.permute(1, 2, 0).numpy())
        return ImageRecord(task, name, psnr, ssim)

    def _finish_evaluation(self) -> dict[str, dict[str, float]]:
        records = self._records + [future.result() for future in self._pending]
        self._records, self._pending = [], deque()
        if self._scorer is not None:
            self._scorer.shutdown()
            self._scorer = None
        if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            gathered: list[list[ImageRecord]] = [[] for _ in range(dist.get_world_size())]
            dist.all_gather_object(gathered, records)
            records = [r for shard in gathered for r in shard]
        records.sort(key=lambda r: (r.task, r.name))  # same summation order on any number of processes
        keys = [(r.task, r.name) for r in records]
        if len(set(keys)) != len(keys):
            raise RuntimeError("an image was evaluated twice; evaluation loaders must not pad or repeat samples")
        self.eval_results = summarise(records, self.eval_tasks)
        return self.eval_results

    def validation_step(self, batch: dict, batch_idx: int, dataloader_idx: int = 0) -> None:
        self._evaluate(batch)

    def on_validation_epoch_end(self) -> None:
        results = self._finish_evaluation()
        if not results:
            return
        metrics = {f"val_{task}_{m}": v[m] for task, v in results.items() if task != "average" for m in ("psnr", "ssim")}
        self.log_dict(metrics, sync_dist=False)
        self.log("val_psnr", results["average"]["psnr"], prog_bar=True, sync_dist=False)
        self.log("val_ssim", results["average"]["ssim"], sync_dist=False)

    def test_step(self, batch: dict, batch_idx: int, dataloader_idx: int = 0) -> None:
        self._evaluate(batch)

    def on_test_epoch_end(self) -> None:
        self._finish_evaluation()
