"""The training run behind train_3D_DFPIR.py / train_5D_DFPIR.py (spec section 3).

Order of work: parse options -> check every flag and file (``engine/checks.py``; a resumed run must
keep its configuration) -> validate every dataset folder (``--check_data`` stops here) ->
network and prompt table (from the checkpoint when resuming, so a run never changes its prompt
codes) -> Lightning ``Trainer.fit`` with validation by ``--val_rule`` every ``--val_every`` steps
and after every epoch, the best checkpoint by average PSNR, and ``last.ckpt`` for resuming. Ctrl-C
and SIGTERM save ``last.ckpt`` and end the run with exit status 130 / 143.
"""

from __future__ import annotations

import inspect
import os
import resource
import signal
import sys
import time
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback, LearningRateMonitor, ModelCheckpoint, TQDMProgressBar
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger
from lightning.pytorch.strategies import DDPStrategy
from lightning.pytorch.utilities.exceptions import SIGTERMException

from data.check import check_data
from data.datamodule import DFPIRDataModule
from engine.checks import Preflight, UsageError, flag_problems, read_resume_checkpoint, same_file, writable_dir
from engine.common import accelerator, apply_speed_options, prompt_table_for, run_cli
from engine.curves import CURVES_NAME, LOGS_DIR, write_curves
from engine.module import RestorationModule
from net.checkpoint import RUN_KEY, Checkpoint, load_pretrained, read_checkpoint
from net.prompts import load_prompt_file, prompt_list
from net.registry import NetworkSpec, resolve_network
from options import VAL_RULES, build_train_parser, dataset_paths, parse_devices

LAST = "last.ckpt"


class LastCheckpoint(Callback):
    """Keeps ``<dirpath>/last.ckpt``: every ``every`` steps, at the end of each epoch, at the final step,
    and when training stops (an exception, Ctrl-C, SIGTERM) after a step that is not saved yet.

    last.ckpt is only ever replaced by a later state of the same run: a run that stops before its
    first new step (while preloading data, restoring a checkpoint, ...) leaves it as it was. It is
    written to a temporary file, then renamed, so an interruption while saving never truncates it.
    """

    def __init__(self, dirpath: Path, every: int):
        self.path = Path(dirpath) / LAST
        self.every = every
        self.saved_step: int | None = None  # step of the state last.ckpt holds; None until training starts
        self.stopped_by: BaseException | None = None

    def save(self, trainer: L.Trainer) -> None:
        tmp = self.path.with_suffix(".ckpt.tmp")
        trainer.save_checkpoint(tmp, weights_only=False)  # the full training state, for --resume
        if trainer.is_global_zero:
            os.replace(tmp, self.path)
        self.saved_step = trainer.global_step

    def on_train_start(self, trainer, pl_module) -> None:
        self.saved_step = trainer.global_step  # 0, or the step of the checkpoint this run resumed

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        step = trainer.global_step
        if (self.every and step % self.every == 0) or step == trainer.max_steps or \
                batch_idx + 1 == trainer.num_training_batches:
            self.save(trainer)

    def on_exception(self, trainer, pl_module, exception) -> None:
        self.stopped_by = exception
        reason = "SIGTERM" if isinstance(exception, SIGTERMException) else type(exception).__name__
        if self.saved_step is None:  # before training (re)started: what last.ckpt holds is still the latest state
            if self.path.is_file():
                print(f"\ntraining stopped ({reason}) before its first step; {self.path} is unchanged", file=sys.stderr)
            return
        if trainer.global_step > self.saved_step:
            self.save(trainer)
        print(f"\ntraining stopped ({reason}) at step {trainer.global_step}; {self.path} holds step "
              f"{self.saved_step}: continue with --resume auto", file=sys.stderr)


class RecordRunConfig(Callback):
    """Stores in every checkpoint the options a resumed run must keep (see ``resume_config_problems``)."""

    def __init__(self, config: dict):
        self.config = config

    def on_save_checkpoint(self, trainer, pl_module, checkpoint: dict) -> None:
        checkpoint[RUN_KEY] = {**self.config, "world_size": trainer.world_size}


def should_validate(rule: str, every: int, batch_idx: int, global_step: int, last_batch: bool) -> bool:
    """Whether to validate after this training step (validation also follows every epoch's last step).

    rule 'epoch_step' (the authors'): when the step counter of the current epoch, 0 at its first step
    (``batch_idx``), is a non-zero multiple of ``every``, i.e. after steps every+1, 2*every+1, ... of
    each epoch. Rule 'global_step': when the number of steps done in the whole run (``global_step``)
    is a multiple of ``every``.
    """
    if last_batch:
        return True
    if rule == "epoch_step":
        return batch_idx > 0 and batch_idx % every == 0
    if rule == "global_step":
        return global_step % every == 0
    raise ValueError(f"unknown validation rule {rule!r}; choose from {list(VAL_RULES)}")


class ValidationSchedule(Callback):
    """Validation after the steps :func:`should_validate` picks, through Lightning's own validation loop.

    Lightning validates after a training batch when ``(batch_idx + 1) % trainer.val_check_batch == 0``
    (with ``check_val_every_n_epoch=1``); before that check this callback sets ``val_check_batch`` to 1
    (validate now) or to the epoch's length (only after its last batch). ``val_check_batch`` is a public
    Trainer attribute but its use is not a documented API, so every validation is checked against the
    request: if Lightning ever stops honouring it, the run stops with an error instead of silently
    validating at other steps (tested with Lightning 2.6).
    """

    def __init__(self, rule: str, every: int):
        if rule not in VAL_RULES:
            raise ValueError(f"unknown validation rule {rule!r}; choose from {list(VAL_RULES)}")
        self.rule = rule
        self.every = every
        self._requested: int | None = None  # global step of a requested validation that has not run yet

    def _broken(self, what: str) -> RuntimeError:
        return RuntimeError(
            f"Lightning {L.__version__} {what}: engine/train.py::ValidationSchedule steers validation through "
            "Trainer.val_check_batch, as Lightning 2.6 uses it. Install lightning>=2.5,<2.7 (or pass --val_every 0 "
            "to train without validation) and report this.")

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if self._requested is not None:
            raise self._broken(f"did not validate after step {self._requested} as requested")
        if not isinstance(getattr(trainer, "val_check_batch", None), (int, float)):
            raise self._broken("has no Trainer.val_check_batch")
        last_batch = batch_idx + 1 == trainer.num_training_batches
        if should_validate(self.rule, self.every, batch_idx, trainer.global_step, last_batch):
            self._requested = trainer.global_step
            trainer.val_check_batch = 1
        else:
            trainer.val_check_batch = trainer.num_training_batches

    def on_validation_start(self, trainer, pl_module) -> None:
        if trainer.sanity_checking:
            return
        # Lightning also validates before a requested stop (Trainer.should_stop): legitimate.
        if self._requested != trainer.global_step and not trainer.should_stop:
            raise self._broken(f"validated after step {trainer.global_step}, which was not requested")
        self._requested = None


class ProgressBar(TQDMProgressBar):
    """Lightning's progress bar with the loss of the step it refreshes at. Reading the loss waits for
    the GPU (a host synchronisation), so on a GPU the bar refreshes every ``GPU_REFRESH_STEPS`` steps
    and the steps in between run without a pause; on a CPU, where waiting costs nothing, every step."""

    GPU_REFRESH_STEPS = 20

    def setup(self, trainer, pl_module, stage: str) -> None:
        super().setup(trainer, pl_module, stage)
        if trainer.strategy.root_device.type == "cuda":
            self._refresh_rate = self.GPU_REFRESH_STEPS

    def get_metrics(self, trainer, pl_module) -> dict:
        metrics = super().get_metrics(trainer, pl_module)
        loss = trainer.callback_metrics.get("loss")
        if loss is not None and trainer.training:
            metrics["loss"] = f"{loss.item():.4g}"
        return metrics


class _Clock:
    """Time points of the work queued so far: CUDA events on a GPU (recording one does not wait for
    the GPU), the host clock otherwise."""

    def __init__(self, device: torch.device):
        self.cuda = device.type == "cuda"

    def now(self):
        if not self.cuda:
            return time.perf_counter()
        event = torch.cuda.Event(enable_timing=True)
        event.record()
        return event

    def seconds(self, start, end) -> float:
        if not self.cuda:
            return end - start
        end.synchronize()
        return start.elapsed_time(end) / 1000


class RunSummary(Callback):
    """Prints, when training ends, the training speed (after a warm-up, validation excluded), the
    first step's time (on ``--compile``: the compilation), the validation time and the peak memory."""

    WARMUP_STEPS = 10

    def __init__(self):
        self.clock: _Clock | None = None
        self.first_step: list = []  # [start, end] time points of the run's first step
        self.start: tuple[int, object] | None = None
        self.end: tuple[int, object] | None = None
        self.validation_seconds: list[float] = []
        self.excluded_seconds = 0.0  # validation time between start and end: not training
        self._unaccounted = 0.0  # validation time since the last step
        self._validation_start = 0.0

    def on_train_start(self, trainer, pl_module) -> None:
        self.clock = _Clock(pl_module.device)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if not self.first_step:
            self.first_step.append(self.clock.now())

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        now = (trainer.global_step, self.clock.now())
        if len(self.first_step) == 1:
            self.first_step.append(now[1])
        if self.start is None and batch_idx + 1 >= self.WARMUP_STEPS:
            self.start = now
        elif self.start is not None:
            self.excluded_seconds += self._unaccounted
        self._unaccounted = 0.0
        self.end = now

    def on_validation_start(self, trainer, pl_module) -> None:
        if pl_module.device.type == "cuda":
            torch.cuda.synchronize(pl_module.device)  # the training steps queued so far are not validation
        self._validation_start = time.perf_counter()

    def on_validation_end(self, trainer, pl_module) -> None:
        seconds = time.perf_counter() - self._validation_start
        self.validation_seconds.append(seconds)
        self._unaccounted += seconds

    def on_train_end(self, trainer, pl_module) -> None:
        if not trainer.is_global_zero or len(self.first_step) < 2:
            return
        parts = [f"first step {self.clock.seconds(*self.first_step):.1f} s"
                 + (" (compilation included)" if getattr(pl_module, "compiled_training", False) else "")]
        rate = None
        if self.start is not None and self.end[0] > self.start[0]:
            steps = self.end[0] - self.start[0]
            rate = steps / (self.clock.seconds(self.start[1], self.end[1]) - self.excluded_seconds)
            epoch_hours = trainer.num_training_batches / rate / 3600
            parts.insert(0, f"{rate:.2f} steps/s, {1000 / rate:.1f} ms/step over steps {self.start[0]}-"
                            f"{self.end[0]} ({epoch_hours:.2f} h per epoch of {trainer.num_training_batches} steps)")
        if self.validation_seconds:
            mean = sum(self.validation_seconds) / len(self.validation_seconds)
            text = f"validation {mean:.1f} s ({len(self.validation_seconds)} run(s))"
            every = trainer.val_check_interval
            if rate is not None and isinstance(every, int):
                text += f" = {100 * mean * rate / every:.1f}% of the training time of the {every} steps between two"
            parts.append(text)
        if pl_module.device.type == "cuda":
            parts.append(f"peak GPU memory {torch.cuda.max_memory_allocated(pl_module.device) / 2**30:.2f} GiB")
        else:
            parts.append(f"peak process memory {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f} GiB")
        print("\nspeed: " + "; ".join(parts))  # on a line of its own, after the progress bar's


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


def _preflight(args, setting: str) -> tuple[Path | None, Checkpoint | None, Checkpoint | None, NetworkSpec]:
    """Every flag and file of a training run, all problems at once (engine/checks.py):
    -> (resume path, its checkpoint, the --init_from checkpoint, the network to build)."""
    checks = Preflight()
    if args.resume and args.init_from:
        checks.add("--resume and --init_from exclude each other: --resume continues a run, --init_from starts a "
                   "new one from weights")
    resume = checks.run(_resume_path, args)
    source = checks.run(read_resume_checkpoint, resume) if resume else None
    init = checks.run(read_checkpoint, args.init_from) if args.init_from else None
    network = checks.run(resolve_network, args.model, source or init)
    checks.add(flag_problems(args, network))
    if source is not None:
        checks.add(resume_config_problems(args, setting, source))
    if args.prompt_embeddings and not any(c is not None and c.prompt_table is not None for c in (source, init)):
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
    return resume, source, init, network


def _draw_curves(ckpt_dir: Path) -> None:
    try:
        print(f"training curves: {write_curves(ckpt_dir)}")
    except Exception as err:  # a picture must never turn a finished run into a failed one
        print(f"warning: could not draw {ckpt_dir / CURVES_NAME} ({type(err).__name__}: {err}); "
              f"try python -m engine.curves --ckpt_dir {ckpt_dir}", file=sys.stderr)


def _run_data_check(args, paths) -> None:
    """Print the data report (stdout) and its warnings (stderr); DataError if anything is wrong."""
    # Only the first process of a node checks (DDP launches the script again on the other ranks).
    if os.environ.get("LOCAL_RANK", "0") != "0":
        return
    test_tasks = args.val_tasks if args.val_every or args.check_data else []  # test sets a run will read
    report = check_data(args.de_type, args.setting, test_tasks, paths,
                        args.patch_size, num_workers=max(args.num_workers, 1))
    for line in report.lines:
        print(line)
    for warning in report.warnings:
        print(f"WARNING: {warning}", file=sys.stderr)


def train(setting: str, argv: list[str] | None = None) -> int:
    args = build_train_parser(setting).parse_args(argv)
    paths = dataset_paths(args)
    resume, source, init, network = _preflight(args, setting)
    _run_data_check(args, paths)
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
        RecordRunConfig(run_config(args, setting)),
        LearningRateMonitor(logging_interval="epoch"),
        ProgressBar(),
    ]
    if args.val_every:
        callbacks += [
            ModelCheckpoint(dirpath=ckpt_dir, monitor="val_psnr", mode="max", save_top_k=1,
                            filename="best-epoch{epoch}-step{step}-psnr{val_psnr:.2f}-ssim{val_ssim:.4f}",
                            auto_insert_metric_name=False),
            ValidationSchedule(args.val_rule, args.val_every),
        ]
    logger = (TensorBoardLogger if args.logger == "tensorboard" else CSVLogger)(ckpt_dir, name=LOGS_DIR)
    devices = parse_devices(args.devices)
    multi_process = args.num_nodes > 1 or devices == "auto" or (isinstance(devices, int) and devices > 1)
    trainer = L.Trainer(
        accelerator=accelerator(args.device),
        devices=devices,
        num_nodes=args.num_nodes,
        strategy=DDPStrategy(find_unused_parameters=False) if multi_process else "auto",
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
        enable_checkpointing=bool(args.val_every),
        log_every_n_steps=min(50, args.ckpt_every or 50),
    )
    # Resuming loads only tensors and plain types (weights_only=True) where Lightning takes the argument (2.6).
    safe_load = {"weights_only": True} if "weights_only" in inspect.signature(trainer.fit).parameters else {}
    try:
        trainer.fit(module, datamodule=datamodule, ckpt_path=resume, **safe_load)
    except SystemExit:  # Lightning's way out after Ctrl-C (exit 1) and SIGTERM (exit 0): both stop the run
        if isinstance(last.stopped_by, SIGTERMException):
            return 128 + signal.SIGTERM
        if isinstance(last.stopped_by, KeyboardInterrupt):
            return 128 + signal.SIGINT
        raise
    if trainer.is_global_zero:
        print(f"checkpoints: {ckpt_dir}/ (last: {ckpt_dir / LAST})")
        _draw_curves(ckpt_dir)
    return 0


def main(setting: str, argv: list[str] | None = None) -> int:
    """Run a training; returns the exit status (0 done, 2 a user's mistake, 130/143 stopped by SIGINT/SIGTERM)."""
    return run_cli(lambda: train(setting, argv), out_of_memory_hint=(
        "lower --batch_size or --patch_size, or train with --precision bf16-mixed"))
