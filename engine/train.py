"""The training run behind train_3D_DFPIR.py / train_5D_DFPIR.py (spec section 3).

Order of work: parse options -> validate every dataset folder (``--check_data`` stops here) ->
network and prompt table (from the checkpoint when resuming, so a run never changes its prompt
codes) -> Lightning ``Trainer.fit`` with validation every ``--val_every`` steps and after every
epoch, the best checkpoint by average PSNR, and ``last.ckpt`` for resuming.
"""

from __future__ import annotations

import os
import resource
import sys
import time
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback, LearningRateMonitor, ModelCheckpoint, TQDMProgressBar
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger
from lightning.pytorch.strategies import DDPStrategy

from data.check import check_data
from data.datamodule import DFPIRDataModule
from engine.common import UsageError, accelerator, apply_speed_options, prompt_table_for, run_cli
from engine.module import RestorationModule
from net.checkpoint import load_pretrained, read_checkpoint
from net.dfpir import PRESETS
from options import build_train_parser, dataset_paths, parse_devices

LAST = "last.ckpt"


class LastCheckpoint(Callback):
    """Keeps ``<dirpath>/last.ckpt``: every ``every`` steps, at the end of each epoch, at the final step,
    and when training stops on an exception or Ctrl-C. Written to a temporary file, then renamed,
    so an interruption while saving never leaves a truncated last.ckpt."""

    def __init__(self, dirpath: Path, every: int):
        self.path = Path(dirpath) / LAST
        self.every = every

    def save(self, trainer: L.Trainer) -> None:
        tmp = self.path.with_suffix(".ckpt.tmp")
        trainer.save_checkpoint(tmp)
        if trainer.is_global_zero:
            os.replace(tmp, self.path)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        step = trainer.global_step
        if (self.every and step % self.every == 0) or step == trainer.max_steps or \
                batch_idx + 1 == trainer.num_training_batches:
            self.save(trainer)

    def on_exception(self, trainer, pl_module, exception) -> None:
        self.save(trainer)
        print(f"\ntraining stopped ({type(exception).__name__}); resume with --resume auto ({self.path})",
              file=sys.stderr)


class ValidateAtEpochEnd(Callback):
    """Validation after the last batch of every epoch too (spec section 3: every N steps and every epoch)."""

    def __init__(self, every: int):
        self.every = every

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        epoch_done = batch_idx + 1 == trainer.num_training_batches
        if epoch_done and trainer.global_step % self.every != 0:  # a multiple of every validates anyway
            # What Lightning's training epoch loop does around its own in-epoch validation (2.5-2.6).
            connector = trainer._logger_connector
            first_loop_iter = connector._first_loop_iter
            trainer.validating = True
            trainer.fit_loop.epoch_loop.val_loop.run()
            trainer.training = True
            connector._first_loop_iter = first_loop_iter


class RunSummary(Callback):
    """Prints the training speed (after a warm-up) and the peak memory when training ends."""

    WARMUP_STEPS = 10

    def __init__(self):
        self.start: tuple[int, float] | None = None
        self.end: tuple[int, float] | None = None

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        # No explicit CUDA sync needed: the progress bar reads the loss (.item()) after every step.
        now = (trainer.global_step, time.perf_counter())
        if self.start is None and batch_idx + 1 >= self.WARMUP_STEPS:
            self.start = now
        self.end = now

    def on_train_end(self, trainer, pl_module) -> None:
        if not trainer.is_global_zero or self.start is None or self.end[0] <= self.start[0]:
            return
        steps, seconds = self.end[0] - self.start[0], self.end[1] - self.start[1]
        rate = steps / seconds
        if pl_module.device.type == "cuda":
            memory = f"peak GPU memory {torch.cuda.max_memory_allocated(pl_module.device) / 2**30:.2f} GiB"
        else:
            memory = f"peak process memory {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f} GiB"
        epoch_hours = trainer.num_training_batches / rate / 3600
        print(f"speed: {rate:.2f} steps/s over steps {self.start[0]}-{self.end[0]} "
              f"({epoch_hours:.2f} h per epoch of {trainer.num_training_batches} steps); {memory}")


def _resume_path(args) -> Path | None:
    if args.resume is None:
        return None
    if args.resume == "auto":
        path = Path(args.ckpt_dir) / LAST
        if path.is_file():
            return path
        print(f"--resume auto: no {path} yet, starting a new run")
        return None
    path = Path(args.resume)
    if not path.is_file():
        raise UsageError(f"--resume {path}: no such checkpoint")
    return path


def _run_data_check(args, paths) -> list[str]:
    # Only the first process of a node checks (DDP launches the script again on the other ranks).
    if os.environ.get("LOCAL_RANK", "0") != "0":
        return []
    test_tasks = args.val_tasks if args.val_every or args.check_data else []  # test sets a run will read
    return check_data(args.de_type, args.setting, test_tasks, paths,
                      args.patch_size, num_workers=max(args.num_workers, 1))


def train(setting: str, argv: list[str] | None = None) -> int:
    args = build_train_parser(setting).parse_args(argv)
    paths = dataset_paths(args)
    for line in _run_data_check(args, paths):
        print(line)
    if args.check_data:
        return 0

    L.seed_everything(args.seed, workers=True, verbose=False)
    resume = _resume_path(args)
    source = read_checkpoint(resume) if resume else None
    if resume and args.init_from:
        raise UsageError("--resume and --init_from exclude each other")
    init = read_checkpoint(args.init_from) if args.init_from else None
    model_config = (source.model_config if source else None) or PRESETS[args.model]().to_dict()
    table = prompt_table_for(args, source or init, args.de_type + args.val_tasks)
    # A table taken from a checkpoint keeps that checkpoint's prompt-set name.
    prompt_set = next((c.prompt_set for c in (source, init) if c is not None and c.prompt_table is not None
                       and c.prompt_set), args.prompt_set)
    module = RestorationModule(model_config, table.to_dict(), prompt_set, setting, args.val_tasks,
                         lr=args.lr, lr_schedule_epochs=args.lr_schedule_epochs)
    if init is not None:
        load_pretrained(module.net, init)
    apply_speed_options(module, args)
    print(f"prompts: {table.source}; network: {args.model} ({sum(p.numel() for p in module.net.parameters()):,} "
          f"parameters)" + (f"; resuming {resume}" if resume else ""))

    datamodule = DFPIRDataModule(paths, setting, args.de_type, args.val_tasks if args.val_every else [],
                                 args.batch_size, args.patch_size, args.num_workers, args.seed,
                                 preload_bytes=int(args.preload_gb * 2**30))
    ckpt_dir = Path(args.ckpt_dir)
    callbacks: list[Callback] = [
        RunSummary(),  # first: its step times exclude the checkpoint saves below
        LastCheckpoint(ckpt_dir, args.ckpt_every),
        LearningRateMonitor(logging_interval="epoch"),
        TQDMProgressBar(refresh_rate=1),
    ]
    if args.val_every:
        callbacks += [
            ModelCheckpoint(dirpath=ckpt_dir, monitor="val_psnr", mode="max", save_top_k=1,
                            filename="best-epoch{epoch}-step{step}-psnr{val_psnr:.2f}-ssim{val_ssim:.4f}",
                            auto_insert_metric_name=False),
            ValidateAtEpochEnd(args.val_every),
        ]
    logger = (TensorBoardLogger if args.logger == "tensorboard" else CSVLogger)(ckpt_dir, name="logs")
    devices = parse_devices(args.devices)
    multi_process = args.num_nodes > 1 or devices == "auto" or (isinstance(devices, int) and devices > 1)
    trainer = L.Trainer(
        accelerator=accelerator(args.device),
        devices=devices,
        num_nodes=args.num_nodes,
        strategy=DDPStrategy(find_unused_parameters=False) if multi_process else "auto",
        precision=args.precision,
        max_epochs=args.epochs,
        max_steps=args.max_steps,
        val_check_interval=args.val_every or None,
        check_val_every_n_epoch=None,
        limit_val_batches=None if args.val_every else 0,
        num_sanity_val_steps=0,
        use_distributed_sampler=False,  # DFPIRDataModule shards itself (exact resume, no padded duplicates)
        callbacks=callbacks,
        logger=logger,
        default_root_dir=ckpt_dir,
        enable_checkpointing=bool(args.val_every),
        log_every_n_steps=min(50, args.ckpt_every or 50),
    )
    trainer.fit(module, datamodule=datamodule, ckpt_path=resume)
    if trainer.is_global_zero:
        print(f"checkpoints: {ckpt_dir}/ (last: {ckpt_dir / LAST})")
    return 0


def main(setting: str, argv: list[str] | None = None) -> int:
    return run_cli(lambda: train(setting, argv))
