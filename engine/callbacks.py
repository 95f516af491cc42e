"""The callbacks of a training run (``engine/train.py``): ``last.ckpt`` for resuming, the run
configuration in every checkpoint, the validation schedule (``--val_every``, ``--val_rule``), the
progress bar and the speed summary printed at the end."""

from __future__ import annotations

import contextlib
import os
import resource
import sys
import time
from collections.abc import Callable
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback, TQDMProgressBar
from lightning.pytorch.utilities.exceptions import SIGTERMException

from engine.preflight import UsageError
from net.checkpoint import RUN_KEY
from options import VAL_RULES
from utils import signals

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
        self.write_failed = False  # a save failed: saving again on the way out would fail the same way

    def save(self, trainer: L.Trainer) -> None:
        """Write last.ckpt; on an OS error (a full disk ...) remove the temporary file and stop the run
        with a UsageError (exit 2) naming the path; last.ckpt keeps the earlier state."""
        tmp = self.path.with_suffix(".ckpt.tmp")
        try:
            trainer.save_checkpoint(tmp, weights_only=False)  # the full training state, for --resume
            if trainer.is_global_zero:
                os.replace(tmp, self.path)
        except OSError as err:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
            self.write_failed = True
            earlier = (f"{self.path} still holds step {self.saved_step}: continue with --resume auto"
                       if self.path.is_file() else f"no {LAST} was written")
            raise UsageError(f"cannot write {self.path} at step {trainer.global_step}: {err.strerror or err}; "
                             f"{earlier} once the problem is fixed (e.g. space freed)") from err
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
        if self.write_failed:
            return
        reason = ("SIGTERM" if isinstance(exception, SIGTERMException) else signals.NAMES[exception.signum]
                  if isinstance(exception, signals.Stopped) else type(exception).__name__)
        if self.saved_step is None:  # before training (re)started: what last.ckpt holds is still the latest state
            if self.path.is_file():
                print(f"\ntraining stopped ({reason}) before its first step; {self.path} is unchanged", file=sys.stderr)
            return
        if trainer.global_step > self.saved_step:
            self.save(trainer)
        print(f"\ntraining stopped ({reason}) at step {trainer.global_step}; {self.path} holds step "
              f"{self.saved_step}: continue with --resume auto", file=sys.stderr)


class RecordRunConfig(Callback):
    """Stores in every checkpoint the options a resumed run must keep (``engine.train.run_config``,
    compared by ``resume_config_problems``) and, under ``option_sources``, where the options the
    network's recipe gives defaults to came from ({"lr": "flag" | "recipe", ...}; not compared), and
    under ``config`` / ``config_sources`` the run's whole resolved configuration and where each value
    came from (``options.TrainConfig.to_dict``: what its ``config.yaml`` holds). ``write_config``, called
    by the first process once, with the run's first checkpoint: writes that ``config.yaml`` (so a folder's
    config.yaml is always that of the run that wrote its checkpoints, and a run that saved nothing
    changed nothing)."""

    def __init__(self, config: dict, option_sources: dict[str, str] | None = None, resolved: dict | None = None,
                 resolved_sources: dict[str, str] | None = None, write_config: Callable[[], object] | None = None):
        self.config = config
        self.option_sources = dict(option_sources or {})
        self.resolved = dict(resolved or {})
        self.resolved_sources = dict(resolved_sources or {})
        self.write_config = write_config

    def on_save_checkpoint(self, trainer, pl_module, checkpoint: dict) -> None:
        if self.write_config is not None and trainer.is_global_zero:
            self.write_config()
            self.write_config = None
        checkpoint[RUN_KEY] = {**self.config, "world_size": trainer.world_size, "option_sources": self.option_sources,
                               "config": self.resolved, "config_sources": self.resolved_sources}


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
            f"Lightning {L.__version__} {what}: engine/callbacks.py::ValidationSchedule steers validation through "
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
