"""How a registered network is trained: its loss, optimiser, learning-rate schedule and the training
defaults they imply, declared with the architecture (``register_architecture(name, recipe=...)``,
``net/registry.py``) and used by ``engine/module.py`` and the training run.

A :class:`Recipe` is data and plain callables; nothing here imports Lightning:

- the training contract, :meth:`Recipe.training_loss` ``(network, batch) -> LossTerms``: the
  recipe computes the loss of one training batch from the registered network and the batch
  (:class:`TrainingBatch`: degraded, clean, de_id and the samples' text codes, None for a blind
  network) and returns :class:`LossTerms`: the total to minimise and named terms the training logs
  beside it (``loss`` and ``loss_<name>``). Two ways to declare it:

  - ``loss(restored, clean) -> scalar`` (restored, clean (B, 3, P, P)): an image-pair loss between
    ``network(degraded, text_code)`` and the clean patch, with no other term (DFPIR's L1);
  - ``objective(network, batch) -> LossTerms``, which replaces it: any loss with auxiliary terms
    (BioIR's L1 + frequency-domain term, a routing balance term read from the network ...);
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
  PromptIR's authors did); and whether DDP must allow parameters without gradients;
- ``train_repeat_overrides``: setting -> task -> repeat factor, where the network's authors mixed
  the setting's training tasks differently (:meth:`Recipe.train_repeats`).

Registering a network from outside the package::

    from net.registry import register_architecture, register_model

    from net.recipe import LossTerms, Recipe, restore_batch

    def mse_plus_tv(network, batch):  # an auxiliary term: total variation of the output, logged apart
        restored = restore_batch(network, batch)  # network(batch.degraded, batch.text_code)
        mse = torch.nn.functional.mse_loss(restored, batch.clean)
        tv = 0.01 * (restored.diff(dim=-1).abs().mean() + restored.diff(dim=-2).abs().mean())
        return LossTerms(mse + tv, {"mse": mse, "tv": tv})  # logged as loss, loss_mse, loss_tv

    register_architecture("mine", recipe=Recipe(
        objective=mse_plus_tv,  # or, for an image-pair loss alone: loss=torch.nn.functional.mse_loss
        optimizer=lambda params, hp: torch.optim.SGD(params, lr=hp["lr"], momentum=0.9),
        scheduler=lambda optimizer, hp: torch.optim.lr_scheduler.ConstantLR(optimizer, factor=1.0),
        lr=1e-2, batch_size=8, epochs=10))(MyNet)
    register_model("mine", "mine", lambda: {"width": 32})
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from utils.tasks import SETTINGS


class TrainingBatch(NamedTuple):
    """One training batch as a recipe sees it (:meth:`Recipe.training_loss`)."""

    degraded: torch.Tensor  # (B, 3, P, P) in [0, 1]: the network's input
    clean: torch.Tensor  # (B, 3, P, P) in [0, 1]: the target
    de_id: torch.Tensor  # (B,) int: the samples' degradation ids
    text_code: torch.Tensor | None  # (B, D): the samples' prompt codes; None for a blind network


class LossTerms(NamedTuple):
    """The loss of one training batch: ``total`` (scalar) is minimised and logged as ``loss``; each of
    ``terms`` (name -> scalar, e.g. the weighted summands of total) is logged as ``loss_<name>``."""

    total: torch.Tensor
    terms: dict[str, torch.Tensor]


def restore_batch(network: nn.Module, batch: TrainingBatch) -> torch.Tensor:
    """The registry protocol's forward on a training batch: ``network(degraded, text_code)`` (B, 3, P, P)."""
    return network(batch.degraded, batch.text_code)


Loss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
Objective = Callable[[nn.Module, TrainingBatch], LossTerms]
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


def linear_warmup_cosine(warmup_epochs: int) -> SchedulerFactory:
    """The linear-warmup cosine schedule of PromptIR's and BioIR's authors in closed form, per epoch
    (:func:`per_epoch_lambda`, stepped with :func:`step_at_epoch`): from lr 0, warm-up over
    ``warmup_epochs``, cosine to 0 at ``hparams["lr_schedule_epochs"]`` (:func:`warmup_cosine_factor`)."""
    return per_epoch_lambda(lambda epoch, hparams: warmup_cosine_factor(epoch, warmup_epochs,
                                                                        hparams["lr_schedule_epochs"]))


@dataclass(frozen=True)
class Recipe:
    """A network's training protocol (see the module docstring). The defaults are DFPIR's, the
    paper's: L1, Adam lr 1e-4, CosineAnnealingLR(T_max=500) stepped per epoch, batch 5, 80 epochs,
    the best checkpoint by average PSNR on the test sets."""

    loss: Loss = F.l1_loss  # image-pair loss of the default objective: loss(network output, clean)
    objective: Objective | None = None  # (network, batch) -> LossTerms; replaces `loss` when given
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
    # setting -> task -> repeat factor replacing the setting's (utils/paper.py) in this network's mixture
    train_repeat_overrides: Mapping[str, Mapping[str, int]] = field(default_factory=dict, hash=False)

    def __post_init__(self):
        if self.interval not in ("epoch", "step"):
            raise ValueError(f"Recipe.interval must be 'epoch' or 'step', not {self.interval!r}")

    def defaults(self) -> dict:
        """This recipe's values of the options of :data:`DEFAULTED_OPTIONS` (None: none, the setting's
        applies): the "recipe" layer of a training run's configuration (``utils.config.resolve``)."""
        return {name: getattr(self, name) for name in DEFAULTED_OPTIONS}

    def training_loss(self, network: nn.Module, batch: TrainingBatch) -> LossTerms:
        """The training contract: the loss of one batch for ``network`` (a registered network, called
        as ``network(degraded, text_code)``), with its named terms: ``objective(network, batch)``, or
        ``loss(restored, clean)`` alone."""
        if self.objective is not None:
            return self.objective(network, batch)
        return LossTerms(self.loss(restore_batch(network, batch), batch.clean), {})

    def train_repeats(self, setting: str) -> dict[str, int]:
        """The training mixture of ``setting`` for this network: task -> repeat factor, the setting's
        (``Setting.train_repeats``) with this recipe's ``train_repeat_overrides`` applied."""
        repeats = dict(SETTINGS[setting].train_repeats)
        overrides = self.train_repeat_overrides.get(setting, {})
        unknown = [task for task in overrides if task not in repeats]
        if unknown:
            raise ValueError(f"train_repeat_overrides[{setting!r}]: {unknown} are not training tasks of {setting} "
                             f"({list(repeats)})")
        return {**repeats, **overrides}


PAPER_RECIPE = Recipe()  # DFPIR's training protocol; also that of a network registered without a recipe
