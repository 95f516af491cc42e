"""The training run behind train_3D_DFPIR.py / train_5D_DFPIR.py (docs/protocol.md section 3).

Order of work: the configuration (``options.TrainConfig``: flags > ``--config`` file > the
network's recipe, ``net/recipe.py`` > the setting; ``utils.config.resolve``) -> check every option
and file (``engine/preflight.py``; a resumed run must keep its configuration) -> lock ``--ckpt_dir``
(one training per folder, ``utils/run_lock.py``) -> validate every dataset folder (``--check_data``
stops here; a batch larger than the training set is refused) -> network and prompt table (from the
checkpoint when resuming, so a run never changes its prompt codes) -> Lightning ``Trainer.fit`` with
the callbacks of ``engine/callbacks.py``: validation by ``--val_rule`` every ``--val_every`` steps
and after every epoch, the best checkpoint by average PSNR (``--select_best_on_test``), a
checkpoint of every epoch (``--keep_every_epoch``), and ``last.ckpt`` for resuming. The recipe
gives the defaults of these three options too. Every checkpoint stores the resolved configuration,
also written with the first one as ``<ckpt_dir>/config.yaml``. Ctrl-C and
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
from engine.cli import run_cli
from engine.curves import CURVES_NAME, LOGS_DIR, write_curves
from engine.module import RestorationModule, apply_speed_options
from engine.preflight import (
    Preflight,
    UsageError,
    batch_problem,
    cluster_problems,
    config_problems,
    network_problems,
    print_config_and_exit,
    read_config,
    read_resume_checkpoint,
    same_file,
    writable_dir,
    write_run_config,
)
from engine.prompt_tables import prompt_table_for
from net.checkpoint import Checkpoint, load_pretrained, read_checkpoint
from net.prompts import load_prompt_file, prompt_list
from net.recipe import DEFAULTED_OPTIONS
from net.registry import NetworkSpec, resolve_network
from options import TrainConfig, build_train_parser, train_setting_defaults
from utils import signals
from utils.config import resolve, resume_keys
from utils.devices import device_problem, lightning_accelerator
from utils.precision import precision_problem
from utils.run_lock import LockError, RunLock


def _resume_path(config: TrainConfig) -> Path | None:
    if config.resume is None:
        return None
    if config.resume == "auto":
        path = Path(config.ckpt_dir) / LAST
        if path.is_file():
            return path
        print(f"--resume auto: no {path} yet, starting a new run")
        return None
    path = Path(config.resume)
    if not path.is_file():
        raise UsageError(f"--resume {path}: no such checkpoint (--resume auto continues <ckpt_dir>/{LAST})")
    return path


def run_config(config: TrainConfig) -> dict:
    """The options that fix a run's data order and optimisation, which a resumed run must keep (the fields
    declared ``keep_on_resume``), and the number of processes (None when --devices auto leaves it to the
    machine)."""
    kept = {name: getattr(config, name) for name in resume_keys(TrainConfig)}
    kept["de_type"] = list(dict.fromkeys(config.de_type))
    return {**kept, "world_size": config.world_size}


def _change(key: str, saved, now) -> str:
    """One line of what changed since the checkpoint, in the user's terms."""
    if key == "setting":
        return f"the setting: {saved} in the checkpoint, {now} now (train_{now}_DFPIR.py)"
    if key == "world_size":
        return f"processes (--devices x --num_nodes): {saved} in the checkpoint, {now} now"
    if key == "de_type":
        saved, now = " ".join(saved), " ".join(now)
    return f"--{key}: {saved} in the checkpoint, {now} now"


def resume_config_problems(config: TrainConfig, checkpoint: Checkpoint) -> list[str]:
    """What differs between this run's options and the run saved in ``checkpoint`` (--resume).

    The network never changes on resume (``net.registry.resolve_network`` refuses another --model);
    the other options may with --allow_config_change.
    """
    problems = []
    saved, now = checkpoint.run_config or {}, run_config(config)
    changes = [_change(key, saved[key], value) for key, value in now.items()
               if saved.get(key) is not None and value is not None and saved[key] != value]
    if changes and not config.allow_config_change:
        problems.append(f"--resume {checkpoint.path}: this run's configuration differs from the checkpoint's: "
                        f"{'; '.join(changes)}. Resume with the checkpoint's values, or pass --allow_config_change "
                        "to continue with the new ones (the run then no longer matches an uninterrupted one)")
    elif changes:
        print(f"--allow_config_change: continuing {checkpoint.path} with {'; '.join(changes)}", file=sys.stderr)
    return problems


def default_ckpt_dir(network: NetworkSpec, setting: str) -> str:
    """--ckpt_dir when not given: named after the network (checkpoints/DFPIR_3D, checkpoints/PromptIR_5D)."""
    return f"checkpoints/{network.display_name}_{setting}"


def _preflight(setting: str, argv: list[str] | None) -> tuple[TrainConfig, Path | None, Checkpoint | None,
                                                              Checkpoint | None, NetworkSpec] | None:
    """Every option and file of a training run, all problems at once (engine/preflight.py) -> (the resolved
    configuration, resume path, its checkpoint, the --init_from checkpoint, the network to build); None
    after --print_config.

    The configuration is resolved twice: first without the network (its --model, --resume, --init_from
    and --ckpt_dir, the folder named after --model's network or the --init_from checkpoint's), then with
    the defaults of the network's recipe (``utils.config.resolve``)."""
    checks = Preflight()
    context = {"setting": setting}
    given = read_config(TrainConfig, build_train_parser(setting), argv, context, checks)
    setting_defaults = train_setting_defaults(setting)
    draft = resolve(TrainConfig, given, None, setting_defaults, context)
    if draft.resume and draft.init_from:
        checks.add("--resume and --init_from exclude each other: --resume continues a run, --init_from starts a "
                   "new one from weights")
    init = checks.run(read_checkpoint, draft.init_from) if draft.init_from else None
    folder_network = checks.run(resolve_network, draft.model, init)
    if folder_network is not None:
        setting_defaults["ckpt_dir"] = default_ckpt_dir(folder_network, setting)
        draft = resolve(TrainConfig, given, None, setting_defaults, context)
    resume = checks.run(_resume_path, draft) if draft.ckpt_dir else None
    source = checks.run(read_resume_checkpoint, resume) if resume else None
    network = checks.run(resolve_network, draft.model, source or init)
    config = resolve(TrainConfig, given, network.recipe.defaults() if network else None, setting_defaults, context)
    checks.add(config_problems(config, given))
    checks.add(network_problems(config, network))
    checks.add(device_problem(config.device))
    checks.add(precision_problem(config.precision, config.device, torch.cuda.is_available()))
    checks.add(cluster_problems(config.num_nodes))
    if print_config_and_exit(config, given, checks, f"train_{setting}_DFPIR.py"):
        return None
    if source is not None:
        checks.add(resume_config_problems(config, source))
    if config.prompt_embeddings and network is not None and network.uses_text_prompts and \
            not any(c is not None and c.prompt_table is not None for c in (source, init)):
        checks.run(load_prompt_file, config.prompt_embeddings, prompt_list(config.prompt_set))
    if not config.check_data and config.ckpt_dir:
        ckpt_dir = Path(config.ckpt_dir)
        problem = writable_dir(ckpt_dir, "ckpt_dir")
        checks.add(problem)
        last = ckpt_dir / LAST
        if not problem and last.is_file() and not (resume and same_file(resume, last)):
            checks.add(f"--ckpt_dir {ckpt_dir} already holds the {LAST} of another run, which this run would "
                       "replace; continue it with --resume auto, or choose another --ckpt_dir")
    checks.raise_if_any()
    return config, resume, source, init, network


def _draw_curves(ckpt_dir: Path) -> None:
    try:
        print(f"training curves: {write_curves(ckpt_dir)}")
    except Exception as err:  # a picture must never turn a finished run into a failed one
        print(f"warning: could not draw {ckpt_dir / CURVES_NAME} ({type(err).__name__}: {err}); "
              f"try python -m engine.curves --ckpt_dir {ckpt_dir}", file=sys.stderr)


def _run_data_check(args: TrainConfig, paths, repeats: dict[str, int]) -> DataReport | None:
    """Print the data report (stdout) and its warnings (stderr) and return it; DataError if anything is wrong."""
    # Only the first process of a node checks (DDP launches the script again on the other ranks).
    if os.environ.get("LOCAL_RANK", "0") != "0":
        return None
    test_tasks = args.val_tasks if args.val_every or args.check_data else []  # test sets a run will read
    report = check_data(args.de_type, args.setting, test_tasks, paths,
                        args.patch_size, num_workers=max(args.num_workers, 1), repeats=repeats)
    for line in report.lines:
        print(line)
    for warning in report.warnings:
        print(f"WARNING: {warning}", file=sys.stderr)
    return report


RANK_VARIABLES = ("RANK", "LOCAL_RANK", "NODE_RANK", "SLURM_PROCID", "JSM_NAMESPACE_RANK", "OMPI_COMM_WORLD_RANK",
                  "PMI_RANK")
"""Where launchers (Lightning's DDP, torchrun, srun, jsrun, mpirun) tell a process its rank."""


def _checkpoint_folder_lock(args: TrainConfig) -> RunLock | None:
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
    checked = _preflight(setting, argv)
    if checked is None:  # --print_config
        return 0
    config, resume, source, init, network = checked
    lock = _checkpoint_folder_lock(config)
    try:
        return _checked_train(config, resume, source, init, network)
    finally:
        if lock is not None:
            lock.release()


def _checked_train(args: TrainConfig, resume: Path | None, source: Checkpoint | None, init: Checkpoint | None,
                   network: NetworkSpec) -> int:
    """The training after the preflight, while this process holds the --ckpt_dir lock."""
    setting, paths = args.setting, args.dataset_paths()
    repeats = network.recipe.train_repeats(setting)  # the setting's mixture, or the network's own
    report = _run_data_check(args, paths, repeats)
    if report is not None:
        problem = batch_problem(args.batch_size, args.world_size, report.train_samples)
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
                                 preload_bytes=int(args.preload_gb * 2**30), repeats=repeats)
    ckpt_dir = Path(args.ckpt_dir)
    last = LastCheckpoint(ckpt_dir, args.ckpt_every)
    callbacks: list[Callback] = [
        RunSummary(),  # first: its step times exclude the checkpoint saves below
        last,
        # the resolved configuration, in every checkpoint and (with the first) as <ckpt_dir>/config.yaml
        RecordRunConfig(run_config(args), {name: args.source(name) for name in DEFAULTED_OPTIONS},
                        args.to_dict(), dict(args.sources),
                        write_config=lambda: write_run_config(ckpt_dir, args, f"train_{setting}_DFPIR.py")),
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
    devices = args.parsed_devices
    multi_process = args.num_nodes > 1 or devices == "auto" or (isinstance(devices, int) and devices > 1)
    trainer = L.Trainer(
        accelerator=lightning_accelerator(args.device),
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
