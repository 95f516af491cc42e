"""The training run behind train_recognizer.py: the degradation recogniser for blind restoration.

The data are DFPIR's training mixture (``data/mixture.py``: the same folders, name lists, repeat
factors, crops, flips and noise), drawn task-balanced (``TaskBalancedSampler``); the label of each
sample is its task's degradation id. One addition for the recogniser alone: each task's
``recognizer_augmentation`` (rain: most samples brightened, :func:`brighten`, on the training
device). AdamW with a cosine decay, cross-entropy. After training, the accuracy on the setting's
test sets is printed with a confusion matrix and stored in the checkpoint.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader
from tqdm import tqdm

from data.check import check_data
from data.datamodule import TaskBalancedSampler, eval_loaders
from data.layouts import DatasetPaths
from data.mixture import DEFAULT_PRELOAD_BYTES, TrainMixture
from engine.cli import run_cli
from engine.preflight import Preflight, UsageError, config_problems, print_config_and_exit, read_config
from engine.report import confusion_table
from net.recognizer import DegradationRecognizer, save_recognizer
from options import RecognizerConfig, build_recognizer_train_parser
from utils.config import resolve
from utils.devices import device_problem, resolve_device
from utils.outputs import check_output
from utils.tasks import SETTINGS, TASKS

BRIGHTEN_PROBABILITY = 0.7
BRIGHTEN_GAMMA = (0.35, 1.0)


def brighten(images: torch.Tensor, selected: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Re-expose a random ``BRIGHTEN_PROBABILITY`` of the ``selected`` samples with a brightening gamma:
    I ** g, log g uniform in log ``BRIGHTEN_GAMMA`` per sample (the rain task's augmentation).

    images (B, 3, H, W) in [0, 1] on any device, selected (B,) bool on the CPU -> (B, 3, H, W).

    Rain streaks are the evidence of rain whatever the scene's brightness, but a training set's few
    rainy scenes may all be dark: a pale rainy photo then looks hazy to the recogniser, and its haze
    prompt ruins the restoration. A gamma keeps black at 0, white at 1 and the streaks visible, so it
    brightens the scene without the lifted blacks and lost contrast of haze (a veil I t + A (1 - t),
    tried instead, taught the recogniser that hazy texture can be rain). On data.sample's stand-in (seed
    1 for training, seed 2 for testing), 2 of the 20 Rain100L images were taken for haze with 30% of the
    rain veiled, none with the gamma (recognisers of seeds 0, 1 and 2).
    """
    chosen = selected & (torch.rand(len(selected), generator=generator) < BRIGHTEN_PROBABILITY)
    if not chosen.any():
        return images
    log_low, log_high = (math.log(g) for g in BRIGHTEN_GAMMA)
    gamma = torch.empty(int(chosen.sum()), 1, 1, 1).uniform_(log_low, log_high, generator=generator).exp()
    chosen, images = chosen.to(images.device), images.clone()
    images[chosen] = images[chosen].clamp_min(0).pow(gamma.to(images))
    return images


AUGMENTATIONS: dict[str, Callable[[torch.Tensor, torch.Tensor, torch.Generator], torch.Tensor]] = {
    "brighten": brighten,
}
"""Augmentation name (a task record's ``recognizer_augmentation``) -> (images, selected, generator) -> images."""


def augment_samples(images: torch.Tensor, de_ids: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Each task's ``recognizer_augmentation`` applied to its samples (tasks in registry order).

    images (B, 3, H, W) in [0, 1] on any device, de_ids (B,) on the CPU -> (B, 3, H, W).
    """
    for task in TASKS.values():
        if task.recognizer_augmentation is not None:
            if task.recognizer_augmentation not in AUGMENTATIONS:
                raise ValueError(f"task {task.name!r}: no recogniser augmentation {task.recognizer_augmentation!r} "
                                 f"(choose from {sorted(AUGMENTATIONS)})")
            images = AUGMENTATIONS[task.recognizer_augmentation](images, de_ids == task.de_id, generator)
    return images


RECOGNIZER_PATCH_MIN = 32  # the recogniser's smallest input crop


def _check_options(argv: list[str] | None) -> tuple[RecognizerConfig, list[str], list[str], Path] | None:
    """(the resolved configuration, training tasks, validation tasks, output path), None after
    --print_config; UsageError naming the flag otherwise, OutputError for an --output that exists
    (without --overwrite) or cannot be written. Creates nothing."""
    checks = Preflight()
    given = read_config(RecognizerConfig, build_recognizer_train_parser(), argv, {}, checks)
    args = resolve(RecognizerConfig, given)
    checks.add(config_problems(args, given))
    checks.add(device_problem(args.device))
    if print_config_and_exit(args, given, checks, "train_recognizer.py"):
        return None
    checks.raise_if_any()
    setting_tasks = list(SETTINGS[args.setting].train_repeats)
    de_type = list(dict.fromkeys(args.de_type or setting_tasks))
    foreign = [t for t in de_type if t not in setting_tasks]
    if foreign:
        raise UsageError(f"--de_type {' '.join(foreign)}: not a task of the {args.setting} setting "
                         f"({' '.join(setting_tasks)})")
    if args.val_tasks is not None and [t.lower() for t in args.val_tasks] == ["none"]:
        val_tasks = []
    else:
        val_tasks = list(dict.fromkeys(args.val_tasks or setting_tasks))
        unknown = [t for t in val_tasks if t not in setting_tasks]
        if unknown:
            raise UsageError(f"--val_tasks {' '.join(unknown)}: not a task of the {args.setting} setting "
                             f"({' '.join(setting_tasks)}), or 'none'")
    if args.patch_size < RECOGNIZER_PATCH_MIN:
        raise UsageError(f"--patch_size {args.patch_size}: must be at least {RECOGNIZER_PATCH_MIN}")
    output = Path(args.output or f"checkpoints/recognizer_{args.setting}.pt")
    if output.is_dir():
        raise UsageError(f"--output {output} is a folder; give a file name, e.g. {output / 'recognizer.pt'}")
    check_output(output, overwrite=args.overwrite)  # before training: an existing file needs --overwrite
    return args, de_type, val_tasks, output


def _check_data(args: RecognizerConfig, de_type: list[str], val_tasks: list[str], paths: DatasetPaths) -> None:
    """The training scripts' data check (``data/check.py``: folders, pairs, counts, every image decoded, none
    smaller than --patch_size) on the training and test sets, before the first step; DataError otherwise."""
    report = check_data(de_type, args.setting, val_tasks, paths, args.patch_size, num_workers=max(args.num_workers, 1))
    for warning in report.warnings:
        print(f"WARNING: {warning}", file=sys.stderr)


@torch.inference_mode()
def recognise_test_sets(model: DegradationRecognizer, tasks: list[str], paths: DatasetPaths, num_workers: int,
                        device: torch.device) -> dict[str, dict[int, int]]:
    """Predicted-id counts per test set: {task: {predicted de_id: images}} (whole images, batch 1)."""
    counts: dict[str, dict[int, int]] = {}
    for task, loader in zip(tasks, eval_loaders(tasks, paths, num_workers), strict=True):
        counts[task] = {}
        for batch in tqdm(loader, desc=f"recognising {task}", unit="image", leave=False):
            ids, _ = model.predict(batch["degraded"].to(device))
            for de_id in ids.tolist():
                counts[task][de_id] = counts[task].get(de_id, 0) + 1
    return counts


def overall_accuracy(counts: dict[str, dict[int, int]]) -> float:
    """Correctly recognised images / all images, over every test set."""
    total = sum(sum(p.values()) for p in counts.values())
    correct = sum(p.get(TASKS[t].de_id, 0) for t, p in counts.items())
    return correct / total if total else float("nan")


def train_recognizer(argv: list[str] | None = None) -> int:
    checked = _check_options(argv)
    if checked is None:  # --print_config
        return 0
    args, de_type, val_tasks, output = checked
    device = resolve_device(args.device)
    paths = args.dataset_paths()
    _check_data(args, de_type, val_tasks, paths)
    dataset = TrainMixture(de_type, args.setting, paths, args.patch_size, args.seed,
                           preload=args.preload_gb > 0,
                           preload_bytes=int(args.preload_gb * 2**30) if args.preload_gb > 0 else DEFAULT_PRELOAD_BYTES)
    print("training data: " + ", ".join(f"{t} {n} images x{r}" for t, n, r in dataset.summary())
          + " (drawn task-balanced)")

    torch.manual_seed(args.seed)
    model = DegradationRecognizer(args.setting).to(device)
    label_of = torch.full((max(model.de_ids) + 1,), -1, dtype=torch.long)
    label_of[model.de_ids] = torch.arange(len(model.de_ids))
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: 0.5 * (1 + math.cos(math.pi * min(step, args.max_steps) / args.max_steps)))
    loader = DataLoader(dataset, batch_size=args.batch_size,
                        sampler=TaskBalancedSampler(dataset, args.batch_size, args.max_steps, args.seed),
                        num_workers=args.num_workers, pin_memory=device.type == "cuda")

    model.train()
    augment_generator = torch.Generator().manual_seed(args.seed)
    start = time.perf_counter()
    progress = tqdm(loader, total=args.max_steps, desc=f"training the {args.setting} recogniser", unit="step")
    running_loss, running_accuracy = None, None
    for batch in progress:
        images = augment_samples(batch["degraded"].to(device, non_blocking=True), batch["de_id"], augment_generator)
        labels = label_of[batch["de_id"]].to(device)
        logits = model(images)
        loss = F.cross_entropy(logits, labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        accuracy = (logits.argmax(1) == labels).float().mean().item()
        running_loss = loss.item() if running_loss is None else 0.95 * running_loss + 0.05 * loss.item()
        running_accuracy = accuracy if running_accuracy is None else 0.95 * running_accuracy + 0.05 * accuracy
        progress.set_postfix(loss=f"{running_loss:.3f}", acc=f"{running_accuracy:.1%}")
    seconds = time.perf_counter() - start
    print(f"trained {args.max_steps} steps of batch {args.batch_size} in {seconds:.0f} s "
          f"(final running loss {running_loss:.3f}, batch accuracy {running_accuracy:.1%})")

    model.eval()
    training = {
        "steps": args.max_steps, "batch_size": args.batch_size, "patch_size": args.patch_size, "lr": args.lr,
        "seed": args.seed, "de_type": de_type, "seconds": round(seconds, 1), "rain_brighten": BRIGHTEN_PROBABILITY,
    }
    if val_tasks:
        counts = recognise_test_sets(model, val_tasks, paths, args.num_workers, device)
        training["test_accuracy"] = {t: p.get(TASKS[t].de_id, 0) / sum(p.values()) for t, p in counts.items()}
        training["test_accuracy"]["all"] = overall_accuracy(counts)
        print(f"\ntest sets, predicted degradation (accuracy over all {sum(sum(p.values()) for p in counts.values())} "
              f"images: {overall_accuracy(counts):.1%}):\n{confusion_table(counts, model.de_ids)}\n")
    save_recognizer(output, model.cpu(), training)
    print(f"recogniser: {output} ({args.setting}, ids {model.de_ids}); use it with "
          f"test_{args.setting}_DFPIR.py --blind --recognizer {output}")
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_cli(lambda: train_recognizer(argv), out_of_memory_hint="lower --batch_size or --patch_size")
