"""How a registered network is trained: its loss, optimiser, learning-rate schedule and the training
defaults they imply, declared with the architecture (``register_architecture(name, recipe=...)``,
``net/registry.py``) and used by ``engine/module.py`` and the training run.

A :class:`Recipe` is data and plain callables; nothing here imports Lightning:

- ``loss(restored, clean) -> scalar``: restored, clean (B, 3, P, P);
- ``optimizer(params, hparams) -> torch.optim.Optimizer``: params the trainable parameters (on the
  training device), hparams the run's hyper-parameters (a mapping with at least ``lr`` and
  ``lr_schedule_epochs``);
- ``scheduler(optimizer, hparams) -> LR scheduler``, stepped every ``interval`` ('epoch' or 'step',
  Lightning's names); ``scheduler_step(scheduler, epoch, metric)``, if given, replaces Lightning's
  ``scheduler.step()`` (e.g. PromptIR's ``scheduler.step(current_epoch)``: a schedule evaluated in
  closed form at the epoch, see :func:`per_epoch_lambda`);
- ``device_options(device) -> dict``: optimiser options that depend on the device (fused Adam on
  CUDA), applied to the param groups when training starts, so a run resumed on another device
  keeps working;
- the defaults of the options of :data:`DEFAULTED_OPTIONS` when the user gives none
  (:meth:`Recipe.defaults`: below the command line and a config file, above the setting):
  ``--lr``, ``--batch_size``, ``--epochs``, ``--lr_schedule_epochs``, ``--val_every`` (None:
  the setting's), ``--select_best_on_test`` (keep the checkpoint with the best average PSNR on
  the validation sets) and ``--keep_every_epoch`` (keep a checkpoint of every epoch, as
  PromptIR's authors did); and whether DDP must allow parameters without gradients.

Registering a network from outside the package::

    from net.recipe import Recipe
    from net.registry import register_architecture, register_model

    register_architecture("mine", recipe=Recipe(
        loss=torch.nn.functional.mse_loss,
        optimizer=lambda params, hp: torch.optim.SGD(params, lr=hp["lr"], momentum=0.9),
        scheduler=lambda optimizer, hp: torch.optim.lr_scheduler.ConstantLR(optimizer, factor=1.0),
        lr=1e-2, batch_size=8, epochs=10))(MyNet)
    register_model("mine", "mine", lambda: {"width": 32})
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

import torch
import torch.nn.functional as F

Loss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
OptimizerFactory = Callable[[Iterable[torch.nn.Parameter], Mapping], torch.optim.Optimizer]
SchedulerFactory = Callable[[torch.optim.Optimizer, Mapping], torch.optim.lr_scheduler.LRScheduler]
SchedulerStep = Callable[[torch.optim.lr_scheduler.LRScheduler, int, object], None]

# The training options a recipe gives defaults to (flags and Recipe fields of the same names).
DEFAULTED_OPTIONS = ("lr", "batch_size", "epochs", "lr_schedule_epochs", "val_every", "select_best_on_test",
                     "keep_every_epoch")


def adam_device_options(device: torch.device) -> dict[str, bool | None]:
    """Adam's ``fused``/``foreach`` options for ``device``: fused on CUDA (a few kernel launches for all
    parameters), foreach elsewhere. Both compute the same Adam update."""
    return {"fused": True, "foreach": None} if device.type == "cuda" else {"fused": None, "foreach": True}


def adam(params: Iterable[torch.nn.Parameter], hparams: Mapping) -> torch.optim.Adam:
    """Adam with lr ``hparams["lr"]``, default betas, no weight decay, fused on CUDA / foreach elsewhere."""
    params = list(params)
    return torch.optim.Adam(params, lr=hparams["lr"], **adam_device_options(params[0].device))


def adamw(params: Iterable[torch.nn.Parameter], hparams: Mapping) -> torch.optim.AdamW:
    """AdamW with lr ``hparams["lr"]``, PyTorch's default betas and weight decay (0.01), fused on CUDA /
    foreach elsewhere."""
    params = list(params)
    return torch.optim.AdamW(params, lr=hparams["lr"], **adam_device_options(params[0].device))


def cosine_annealing(optimizer: torch.optim.Optimizer, hparams: Mapping) -> torch.optim.lr_scheduler.LRScheduler:
    """CosineAnnealingLR with T_max ``hparams["lr_schedule_epochs"]`` (to eta_min 0)."""
    return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=hparams["lr_schedule_epochs"])


def per_epoch_lambda(lr_factor: Callable[[int, Mapping], float]) -> SchedulerFactory:
    """A schedule factory for ``lr = base_lr * lr_factor(epoch, hparams)``, evaluated in closed form:
    a LambdaLR, to be stepped with :func:`step_at_epoch` (so the lr of an epoch never depends on how
    many times the schedule was stepped before, e.g. after a resume)."""

    def factory(optimizer: torch.optim.Optimizer, hparams: Mapping) -> torch.optim.lr_scheduler.LambdaLR:
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda epoch: lr_factor(epoch, hparams))

    return factory


def step_at_epoch(scheduler: torch.optim.lr_scheduler.LRScheduler, epoch: int, metric: object = None) -> None:
    """``scheduler.step(epoch)``: the schedule evaluated at the trainer's current epoch (PyTorch's
    deprecation warning for the epoch argument is silenced: the closed form is what is wanted)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The epoch parameter in `scheduler.step", category=UserWarning)
        scheduler.step(epoch)


def warmup_cosine_factor(epoch: int, warmup_epochs: int, max_epochs: int) -> float:
    """Linear warm-up from 0 over ``warmup_epochs``, then cosine to 0 at ``max_epochs`` (closed form):
    ``e / (warmup - 1)`` for e < warmup, else ``0.5 * (1 + cos(pi * (e - warmup) / (max - warmup)))``."""
    if epoch < warmup_epochs:
        return epoch / max(1, warmup_epochs - 1)
    return 0.5 * (1 + math.cos(math.pi * (epoch - warmup_epochs) / (max_epochs - warmup_epochs)))


@dataclass(frozen=True)
class Recipe:
    """A network's training protocol (see the module docstring). The defaults are DFPIR's, the
    paper's: L1, Adam lr 1e-4, CosineAnnealingLR(T_max=500) stepped per epoch, batch 5, 80 epochs,
    the best checkpoint by average PSNR on the test sets."""

    loss: Loss = F.l1_loss
    optimizer: OptimizerFactory = adam
    scheduler: SchedulerFactory = cosine_annealing
    interval: str = "epoch"  # when Lightning steps the schedule: 'epoch' or 'step'
    scheduler_step: SchedulerStep | None = None  # None: Lightning's scheduler.step()
    device_options: Callable[[torch.device], dict] | None = adam_device_options
    lr: float = 1e-4
    batch_size: int = 5  # per process
    epochs: int = 80
    lr_schedule_epochs: int = 500  # the schedule's length in epochs (T_max of the cosine)
    val_every: int | None = None  # training steps between validations; 0: none; None: the setting's
    select_best_on_test: bool = True  # keep the checkpoint with the best average PSNR on the validation sets
    keep_every_epoch: bool = False  # keep a checkpoint of every epoch (epoch{E}-step{S}.ckpt) besides last.ckpt
    find_unused_parameters: bool = False  # DDP: the network has parameters that get no gradient

    def __post_init__(self):
        if self.interval not in ("epoch", "step"):
            raise ValueError(f"Recipe.interval must be 'epoch' or 'step', not {self.interval!r}")

    def defaults(self) -> dict:
        """This recipe's values of the options of :data:`DEFAULTED_OPTIONS` (None: none, the setting's
        applies): the "recipe" layer of a training run's configuration (``utils.config.resolve``)."""
        return {name: getattr(self, name) for name in DEFAULTED_OPTIONS}


PAPER_RECIPE = Recipe()  # DFPIR's training protocol; also that of a network registered without a recipe
