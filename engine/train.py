"""The training run behind train_3D_DFPIR.py / train_5D_DFPIR.py (docs/protocol.md section 3).

Order of work: parse options -> the network, and the defaults its recipe gives to the training
options the user did not set (``net/recipe.py``: ``--lr``, ``--batch_size``, ``--epochs``,
``--lr_schedule_epochs``) -> check every flag and file (``engine/preflight.py``; a resumed run must
keep its configuration) -> lock ``--ckpt_dir`` (one training per folder, ``utils/run_lock.py``) ->
validate every dataset folder (``--check_data`` stops here; a batch larger than the training set is
refused) ->
network and prompt table (from the checkpoint when resuming, so a run never changes its prompt
codes) -> Lightning ``Trainer.fit`` with the callbacks of ``engine/callbacks.py``: validation by
``--val_rule`` every ``--val_every`` steps and after every epoch, the best checkpoint by average
PSNR (``--select_best_on_test``), a checkpoint of every epoch (``--keep_every_epoch``), and
``last.ckpt`` for resuming. The recipe gives the defaults of these three options too. Ctrl-C and
SIGTERM save ``last.ckpt`` and end the run with exit status 130 / 143.
"""

from __future__ import annotations

import inspect
import os
import signal
import sys
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback, LearningRateMonitor, ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger
from lightning.pytorch.strategies import DDPStrategy
from lightning.pytorch.utilities.exceptions import SIGTERMException

from data.check import DataReport, check_data
from data.datamodule import DFPIRDataModule
from engine.callbacks import LAST, LastCheckpoint, ProgressBar, RecordRunConfig, RunSummary, ValidationSchedule
from engine.common import accelerator, apply_speed_options, prompt_table_for, run_cli
from engine.curves import CURVES_NAME, LOGS_DIR, write_curves
from engine.module import RestorationModule
from engine.preflight import (
    Preflight,
    TrainFlags,
    UsageError,
    batch_problem,
    flag_problems,
    read_resume_checkpoint,
    same_file,
    writable_dir,
)
from net.checkpoint import Checkpoint, load_pretrained, read_checkpoint
from net.prompts import load_prompt_file, prompt_list
from net.registry import NetworkSpec, resolve_network
from options import build_train_parser, dataset_paths, parse_devices
from utils import signals
from utils.precision import precision_problem
from utils.run_lock import LockError, RunLock
from utils.tasks import SETTINGS


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
        raise UsageError(f"--resume {path}: no such checkpoint (--resume auto continues <ckpt_dir>/{LAST})")
    return path


def run_config(args, setting: str) -> dict:
    """The options that fix a run's data order and optimisation, which a resumed run must keep.

    world_size (processes) is None when --devices auto leaves it to the machine.
    """
    devices = int(args.devices) if args.devices.isdigit() else None  # 'auto' (or a mistake, reported elsewhere)
    return {
        "setting": setting,
        "de_type": list(dict.fromkeys(args.de_type)),
        "batch_size": args.batch_size,
        "patch_size": args.patch_size,
        "seed": args.seed,
        "lr": args.lr,
        "lr_schedule_epochs": args.lr_schedule_epochs,
        "precision": args.precision,
        "world_size": None if devices is None else devices * args.num_nodes,
    }


def _change(key: str, saved, now) -> str:
    """One line of what changed since the checkpoint, in the user's terms."""
    if key == "setting":
        return f"the setting: {saved} in the checkpoint, {now} now (train_{now}_DFPIR.py)"
    if key == "world_size":
        return f"processes (--devices x --num_nodes): {saved} in the checkpoint, {now} now"
    if key == "de_type":
        saved, now = " ".join(saved), " ".join(now)
    return f"--{key}: {saved} in the checkpoint, {now} now"


def resume_config_problems(args, setting: str, checkpoint: Checkpoint) -> list[str]:
    """What differs between this run's options and the run saved in ``checkpoint`` (--resume).

    The network never changes on resume (``net.registry.resolve_network`` refuses another --model);
    the other options may with --allow_config_change.
    """
    problems = []
    saved, now = checkpoint.run_config or {}, run_config(args, setting)
    changes = [_change(key, saved[key], value) for key, value in now.items()
               if saved.get(key) is not None and value is not None and saved[key] != value]
    if changes and not args.allow_config_change:
        problems.append(f"--resume {checkpoint.path}: this run's configuration differs from the checkpoint's: "
                        f"{'; '.join(changes)}. Resume with the checkpoint's values, or pass --allow_config_change "
                        "to continue with the new ones (the run then no longer matches an uninterrupted one)")
    elif changes:
        print(f"--allow_config_change: continuing {checkpoint.path} with {'; '.join(changes)}", file=sys.stderr)
    return problems


def _preflight(args, setting: str) -> tuple[Path | None, Checkpoint | None, Checkpoint | None, NetworkSpec,
                                           dict[str, str]]:
    """Every flag and file of a training run, all problems at once (engine/preflight.py); fills the options
    left to the network's recipe (``Recipe.fill_defaults``) -> (resume path, its checkpoint, the
    --init_from checkpoint, the network to build, where each recipe-defaulted option came from)."""
    checks = Preflight()
    if args.resume and args.init_from:
        checks.add("--resume and --init_from exclude each other: --resume continues a run, --init_from starts a "
                   "new one from weights")
    resume = checks.run(_resume_path, args)
    source = checks.run(read_resume_checkpoint, resume) if resume else None
    init = checks.run(read_checkpoint, args.init_from) if args.init_from else None
    network = checks.run(resolve_network, args.model, source or init)
    setting_defaults = {"val_every": SETTINGS[setting].val_every}
    option_sources = network.recipe.fill_defaults(args, setting_defaults) if network is not None else {}
    checks.add(flag_problems(TrainFlags.of(args), network))
    checks.add(precision_problem(args.precision, args.device, torch.cuda.is_available()))
    if source is not None:
        checks.add(resume_config_problems(args, setting, source))
    if args.prompt_embeddings and network is not None and network.uses_text_prompts and \
            not any(c is not None and c.prompt_table is not None for c in (source, init)):
        checks.run(load_prompt_file, args.prompt_embeddings, prompt_list(args.prompt_set))
    if not args.check_data:
        ckpt_dir = Path(args.ckpt_dir)
        problem = writable_dir(ckpt_dir, "ckpt_dir")
        checks.add(problem)
        last = ckpt_dir / LAST
        if not problem and last.is_file() and not (resume and same_file(resume, last)):
            checks.add(f"--ckpt_dir {ckpt_dir} already holds the {LAST} of another run, which this run would "
                       "replace; continue it with --resume auto, or choose another --ckpt_dir")
    checks.raise_if_any()
    return resume, source, init, network, option_sources


def _draw_curves(ckpt_dir: Path) -> None:
    try:
        print(f"training curves: {write_curves(ckpt_dir)}")
    except Exception as err:  # a picture must never turn a finished run into a failed one
        print(f"warning: could not draw {ckpt_dir / CURVES_NAME} ({type(err).__name__}: {err}); "
              f"try python -m engine.curves --ckpt_dir {ckpt_dir}", file=sys.stderr)


def _run_data_check(args, paths) -> DataReport | None:
    """Print the data report (stdout) and its warnings (stderr) and return it; DataError if anything is wrong."""
    # Only the first process of a node checks (DDP launches the script again on the other ranks).
    if os.environ.get("LOCAL_RANK", "0") != "0":
        return None
    test_tasks = args.val_tasks if args.val_every or args.check_data else []  # test sets a run will read
    report = check_data(args.de_type, args.setting, test_tasks, paths,
                        args.patch_size, num_workers=max(args.num_workers, 1))
    for line in report.lines:
        print(line)
    for warning in report.warnings:
        print(f"WARNING: {warning}", file=sys.stderr)
    return report


RANK_VARIABLES = ("RANK", "LOCAL_RANK", "NODE_RANK", "SLURM_PROCID", "JSM_NAMESPACE_RANK", "OMPI_COMM_WORLD_RANK",
                  "PMI_RANK")
"""Where launchers (Lightning's DDP, torchrun, srun, jsrun, mpirun) tell a process its rank."""


def _checkpoint_folder_lock(args) -> RunLock | None:
    """The lock of --ckpt_dir (utils/run_lock.py: one training per folder), taken by the launching process
    only (global rank 0: the other ranks are its own); None for --check_data, which writes nothing.
    UsageError naming the running process if another training holds it."""
    if args.check_data or any(os.environ.get(name, "0") != "0" for name in RANK_VARIABLES):
        return None
    try:
        return RunLock(args.ckpt_dir, purpose="checkpoint folder --ckpt_dir").acquire()
    except LockError as err:
        raise UsageError(str(err)) from None


def train(setting: str, argv: list[str] | None = None) -> int:
    args = build_train_parser(setting).parse_args(argv)
    paths = dataset_paths(args)
    resume, source, init, network, option_sources = _preflight(args, setting)
    lock = _checkpoint_folder_lock(args)
    try:
        return _checked_train(args, setting, paths, resume, source, init, network, option_sources)
    finally:
        if lock is not None:
            lock.release()


def _checked_train(args, setting: str, paths, resume: Path | None, source: Checkpoint | None,
                   init: Checkpoint | None, network: NetworkSpec, option_sources: dict[str, str]) -> int:
    """The training after the preflight, while this process holds the --ckpt_dir lock."""
    report = _run_data_check(args, paths)
    if report is not None:
        problem = batch_problem(args.batch_size, run_config(args, setting)["world_size"], report.train_samples)
        if problem:
            raise UsageError(problem)
    if args.check_data:
        return 0

    L.seed_everything(args.seed, workers=True, verbose=False)
    table = prompt_table_for(args, source or init, args.de_type + args.val_tasks, network.text_dim)
    # A table taken from a checkpoint keeps that checkpoint's prompt-set name.
    prompt_set = next((c.prompt_set for c in (source, init) if c is not None and c.prompt_table is not None
                       and c.prompt_set), args.prompt_set)
    module = RestorationModule(network.config, table.to_dict(), prompt_set, setting, args.val_tasks,
                               lr=args.lr, lr_schedule_epochs=args.lr_schedule_epochs,
                               architecture=network.architecture)
    if init is not None:
        load_pretrained(module.net, init)
    apply_speed_options(module, args)
    parameters = sum(p.numel() for p in module.net.parameters())
    print(f"prompts: {table.source}; network: {network.describe()} from {network.origin} ({parameters:,} parameters)"
          + (f"; resuming {resume}" if resume else ""))

    datamodule = DFPIRDataModule(paths, setting, args.de_type, args.val_tasks if args.val_every else [],
                                 args.batch_size, args.patch_size, args.num_workers, args.seed,
                                 preload_bytes=int(args.preload_gb * 2**30))
    ckpt_dir = Path(args.ckpt_dir)
    last = LastCheckpoint(ckpt_dir, args.ckpt_every)
    callbacks: list[Callback] = [
        RunSummary(),  # first: its step times exclude the checkpoint saves below
        last,
        RecordRunConfig(run_config(args, setting), option_sources),
        LearningRateMonitor(logging_interval="epoch"),
        ProgressBar(),
    ]
    if args.val_every:
        callbacks.append(ValidationSchedule(args.val_rule, args.val_every))
        if args.select_best_on_test:
            callbacks.insert(-1, ModelCheckpoint(
                dirpath=ckpt_dir, monitor="val_psnr", mode="max", save_top_k=1,
                filename="best-epoch{epoch}-step{step}-psnr{val_psnr:.2f}-ssim{val_ssim:.4f}",
                auto_insert_metric_name=False))
    if args.keep_every_epoch:  # PromptIR's authors kept every epoch (ModelCheckpoint every_n_epochs=1, save_top_k=-1)
        callbacks.insert(-1, ModelCheckpoint(
            dirpath=ckpt_dir, every_n_epochs=1, save_top_k=-1, save_on_train_epoch_end=True,
            filename="epoch{epoch}-step{step}", auto_insert_metric_name=False))
    logger = (TensorBoardLogger if args.logger == "tensorboard" else CSVLogger)(ckpt_dir, name=LOGS_DIR)
    devices = parse_devices(args.devices)
    multi_process = args.num_nodes > 1 or devices == "auto" or (isinstance(devices, int) and devices > 1)
    trainer = L.Trainer(
        accelerator=accelerator(args.device),
        devices=devices,
        num_nodes=args.num_nodes,
        strategy=DDPStrategy(find_unused_parameters=network.recipe.find_unused_parameters) if multi_process else "auto",
        precision=args.precision,
        benchmark=True,  # cuDNN picks the fastest convolution algorithms for the static training shapes
        max_epochs=args.epochs,
        max_steps=args.max_steps,
        check_val_every_n_epoch=1,  # ValidationSchedule picks the steps
        limit_val_batches=None if args.val_every else 0,
        num_sanity_val_steps=0,
        use_distributed_sampler=False,  # DFPIRDataModule shards itself (exact resume, no padded duplicates)
        callbacks=callbacks,
        logger=logger,
        default_root_dir=ckpt_dir,
        enable_checkpointing=any(isinstance(c, ModelCheckpoint) for c in callbacks),
        log_every_n_steps=min(50, args.ckpt_every or 50),
    )
    # Resuming loads only tensors and plain types (weights_only=True) where Lightning takes the argument (2.6).
    safe_load = {"weights_only": True} if "weights_only" in inspect.signature(trainer.fit).parameters else {}
    try:
        with signals.lightning_owns_sigterm():
            trainer.fit(module, datamodule=datamodule, ckpt_path=resume, **safe_load)
    except SystemExit:  # Lightning's way out after Ctrl-C or SIGHUP (exit 1) and SIGTERM (exit 0): each stops the run
        if isinstance(last.stopped_by, SIGTERMException):
            return 128 + signal.SIGTERM
        if isinstance(last.stopped_by, KeyboardInterrupt):
            return signals.exit_status(last.stopped_by)
        raise
    if trainer.is_global_zero:
        print(f"checkpoints: {ckpt_dir}/ (last: {ckpt_dir / LAST})")
        _draw_curves(ckpt_dir)
    return 0


def main(setting: str, argv: list[str] | None = None) -> int:
    """Run a training; returns the exit status (0 done, 2 a user's mistake, 130/143 stopped by SIGINT/SIGTERM)."""
    return run_cli(lambda: train(setting, argv), out_of_memory_hint=(
        "lower --batch_size or --patch_size, or train with --precision bf16-mixed"))
