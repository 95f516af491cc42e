"""Does a training run learn every task? Trains registered networks on the same data and scores them as it goes.

    python benchmarks/convergence.py [--model tiny promptir_tiny ...] [--steps 400] [--eval_every 100]
        [--output_dir convergence] [--overwrite] [--data_root DIR | --derain_dir DIR ...] [--data_file_dir DIR]
        [--setting 3D] [--schedule cosine|recipe] [--lr RATE] [--loss recipe|mse] [--batch_size 4]
        [--patch_size 32] [--seed 0] [--device auto]

Each network (``--model``, repeatable; default: every tiny preset, ``net.registry.tiny_models``) is trained
from the same seed on the same batches (the training run's mixture and sampler, ``data/datamodule.py``)
with its own recipe (``net/recipe.py``: loss and optimiser; by default from a learning rate of 1e-3
annealed by a cosine to 0 over the budget, with ``--schedule recipe`` its own rate and schedule,
stepped as the training run steps it; ``--loss mse``: the squared error instead of the recipe's loss, a diagnostic,
:data:`LOSSES`), with the fast path of the training run (``net/speed.py``). Before the first
step and every ``--eval_every`` steps it is scored on the setting's test sets as the test scripts
score it (``trainer.test`` of ``engine/module.py``: whole images, clipped, PSNR/SSIM of
``engine/scoring.py``). Per task the table gives the restored PSNR/SSIM, the degraded input's
PSNR (the same scoring of the unrestored input), the gain (restored - input) and for denoising a
classical reference on the same noisy images: scikit-image's non-local means with the settings of its
own example and the noise level estimated from the image (``estimate_sigma``'s estimator).

Data: the training scripts' data options (``--data_root``, the per-dataset folder flags,
``--data_file_dir``); with none of them, the stand-in dataset generated as ``quickstart.py`` does
(``data/sample.py``, in a temporary folder removed afterwards). What the numbers of the stand-in
mean, and the curve to compare a real run's first hour with: docs/training.md.

Written into ``--output_dir`` (refused if there already, unless ``--overwrite``; atomic writes):
``convergence.json`` ({network: {task: {psnr, ssim, input_psnr, gain, [reference_psnr,] series:
[{step, psnr, ssim, gain}, ...]}}}), ``convergence.md`` (the table, and under it every task a network ends at
its input or below it, :func:`at_input_notes`) and ``convergence.png`` (the gain against steps, one panel per
task, one line per network, the non-local-means gain dashed).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

if __package__ in (None, ""):  # run as a script: the repository root holds the packages
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import lightning as L  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from skimage.restoration import denoise_nl_means  # noqa: E402
from tqdm import tqdm  # noqa: E402

from data.check import check_data  # noqa: E402
from data.datamodule import DFPIRDataModule, eval_loaders  # noqa: E402
from data.layouts import DatasetPaths  # noqa: E402
from data.run_options import DataOptions, NameListsOption, PatchSizeOption  # noqa: E402
from data.sample import make_sample_dataset  # noqa: E402
from engine.cli import run_cli  # noqa: E402
from engine.module import RestorationModule  # noqa: E402
from engine.preflight import Preflight, network_problems  # noqa: E402
from engine.prompt_tables import prompt_table_for  # noqa: E402
from engine.scoring import Scorer  # noqa: E402
from net.prompts import PromptOptions  # noqa: E402
from net.registry import NetworkSpec, model_names, tiny_models  # noqa: E402
from net.speed import prepare_for_speed  # noqa: E402
from utils.config import above, at_least, opt, problems, read_command_line, resolve  # noqa: E402
from utils.config import build_parser as build_config_parser  # noqa: E402
from utils.devices import device_problem, lightning_accelerator, resolve_device  # noqa: E402
from utils.figures import line_chart, stack  # noqa: E402
from utils.outputs import atomic_write, check_output, check_output_dir  # noqa: E402
from utils.run_options import HardwareOptions, SeedOption, overwrite_option  # noqa: E402
from utils.tasks import SETTINGS, TASKS  # noqa: E402

OUTPUT_FILES = ("convergence.json", "convergence.md", "convergence.png")
DEFAULT_STEPS = 800
DEFAULT_EVAL_EVERY = 100


def training_loss(module: RestorationModule, batch: dict) -> torch.Tensor:
    """The training run's loss of one batch (``RestorationModule.training_step`` minimises the same):
    the recipe's loss of the network's restoration (``Recipe.training_loss``, its total); batch: the
    mixture's ``degraded``, ``clean`` (B, 3, P, P) and ``de_id`` (B,) -> scalar."""
    return module.loss_terms(batch["degraded"], batch["de_id"], batch["clean"]).total


def training_module(name: str, setting: str, tasks: list[str], prompt_args: argparse.Namespace,
                    lr: float | None = None, loss: str = "recipe") -> RestorationModule:
    """The model ``name`` freshly initialised in the training run's module, on the CPU, with its prompt
    table for ``tasks`` (``prompt_args``: the prompt options, ``--device``) and the fast path;
    ``lr``: the recipe's optimiser's learning rate (None: the recipe's); ``loss="mse"``: the recipe with the
    squared error of the restoration as its whole loss, the diagnostic of :data:`LOSSES`."""
    spec = NetworkSpec.of_model(name)
    table = prompt_table_for(prompt_args, None, tasks, spec.text_dim)
    module = RestorationModule(spec.config, table.to_dict(), prompt_args.prompt_set, setting, tasks, lr=lr,
                               architecture=spec.architecture)
    if loss == "mse":
        module.recipe = replace(module.recipe, loss=F.mse_loss, objective=None)
    prepare_for_speed(module.net)
    return module


# --------------------------------------------------------------------------------------------------
# Options and refusals


SCHEDULES = ("cosine", "recipe")
LOSSES = ("recipe", "mse")
"""--loss: the recipe's (what a training run minimises), or the mean squared error as a diagnostic. An L1 loss
(DFPIR's and PromptIR's recipes) can hold a network at its input on a task whose residual is sparse (thin rain
streaks on unchanged pixels): at the identity, any change of the output costs L1 on every unchanged pixel, at
full rate however small, and gains only on the few degraded ones, so a network whose features are not already
sparse there stays put. The squared error charges small changes quadratically and has no such trap; a task that
learns with mse and not with the recipe's loss has learnable, correctly paired data (docs/training.md)."""
BUDGET_LR = 1e-3
"""--lr with --schedule cosine: 5-10x the recipes' rates (DFPIR 1e-4, PromptIR and BioIR 2e-4), as the
overfit test (tests/test_overfit.py), so that a budget of a few hundred steps shows every task learning."""


@dataclass(frozen=True, kw_only=True)
class ConvergenceConfig(SeedOption, PatchSizeOption, HardwareOptions, PromptOptions, DataOptions, NameListsOption):
    """The benchmark's options: the training scripts' data, prompt and hardware options, and its own run."""

    model: list[str] | None = opt("--model", default=None, choices=lambda context: model_names(), group="run",
                                  help="networks to train (default: every tiny preset, net.registry.tiny_models)")
    setting: str = opt("--setting", default="3D", choices=lambda context: list(SETTINGS), group="run",
                       help="training mixture and test sets")
    steps: int = opt("--steps", default=DEFAULT_STEPS, rule=at_least(1), group="run",
                     help="optimizer steps per network")
    eval_every: int = opt("--eval_every", default=DEFAULT_EVAL_EVERY, rule=at_least(1), group="run",
                          help="score on the test sets every this many steps (and before the first)")
    lr: float | None = opt("--lr", default=None, rule=above(0, "must be a finite learning rate > 0"), group="run",
                           help="learning rate of every network's recipe optimiser (default: 1e-3 with --schedule "
                           "cosine, each recipe's own with --schedule recipe)")
    schedule: str = opt("--schedule", default="cosine", choices=SCHEDULES, group="run",
                        help="cosine: the recipe's loss and optimiser from --lr, annealed by a cosine to 0 over "
                        "--steps, which a short budget needs (the recipes' schedules span 80-150 epochs; PromptIR's "
                        "and BioIR's warm up from lr 0 over 15 epochs); recipe: the recipe's own rate and schedule, "
                        "stepped as the training run steps it")
    loss: str = opt("--loss", default="recipe", choices=LOSSES, group="run",
                    help="recipe: each network's own loss (what a training run minimises); mse: the mean squared "
                    "error of the same restoration, a diagnostic for a task that stays at its input under an L1 "
                    "loss (docs/training.md)")
    batch_size: int = opt("--batch_size", default=4, rule=at_least(1), group="run", help="images per step")
    output_dir: str = opt("--output_dir", default="convergence", group="run",
                          help="folder of the table, json and figure")
    overwrite: bool = overwrite_option("the outputs of an earlier run in --output_dir")


COMMAND_DEFAULTS = {"patch_size": 32, "prompt_backend": "offline"}
"""Where the benchmark's defaults differ from the training scripts': a 32-pixel crop keeps a CPU run of the tiny
presets short (the paper: 128); the offline prompt encoder needs no download (a real run: --prompt_backend clip or
--prompt_embeddings)."""


def build_parser() -> argparse.ArgumentParser:
    return build_config_parser(ConvergenceConfig, __doc__.split("\n\n")[0], defaults=COMMAND_DEFAULTS,
                               prog="python benchmarks/convergence.py")


def read_options(argv: list[str] | None) -> ConvergenceConfig:
    """The resolved options: the command line over :data:`COMMAND_DEFAULTS` over the fields' defaults. A
    ``--data_root`` that carries its own name lists (``<data_root>/data_file_dir``, as ``python -m data.sample``
    writes them) selects its training images with them unless ``--data_file_dir`` is given."""
    given = read_command_line(build_parser(), ConvergenceConfig, argv)
    own_lists = Path(given.flags.get("data_root", "")) / "data_file_dir"
    defaults = {**COMMAND_DEFAULTS, **({"data_file_dir": str(own_lists)} if "data_root" in given.flags and
                                       own_lists.is_dir() else {})}
    return resolve(ConvergenceConfig, given, None, defaults)


def uses_stand_in(config: ConvergenceConfig) -> bool:
    """No data option given: train and score on a generated stand-in dataset."""
    return config.source("data_root") == "default" and not any(config.folders.values())


def output_paths(config: ConvergenceConfig) -> list[Path]:
    """The three outputs; OutputError (one line) if the folder cannot be written or holds an earlier run's
    outputs without --overwrite. Creates nothing."""
    folder = check_output_dir(config.output_dir)
    return [check_output(folder / name, overwrite=config.overwrite) for name in OUTPUT_FILES]


def check_flags(config: ConvergenceConfig) -> list[Path]:
    """Every option (the fields' rules, the crop against each network's size multiple, --device) and the output
    folder, all problems at once (UsageError) -> the output paths."""
    checks = Preflight()
    checks.add(problems(config))
    for name in config.model or tiny_models():
        checks.add(network_problems(config, NetworkSpec.of_model(name)))
    checks.add(device_problem(config.device))
    outputs = checks.run(output_paths, config)
    checks.raise_if_any()
    return outputs


@contextmanager
def training_data(args: ConvergenceConfig) -> Iterator[tuple[DatasetPaths, str]]:
    """The dataset folders and what they are: the data options', or a stand-in generated for this run."""
    if not uses_stand_in(args):
        yield args.dataset_paths(), f"--data_root {args.data_root}" if args.data_root else "the given folders"
        return
    with tempfile.TemporaryDirectory(prefix="convergence_stand_in_") as folder:
        root = Path(folder)
        print(f"stand-in dataset (python -m data.sample, seed {args.seed}) -> {root}")
        make_sample_dataset(root, seed=args.seed)
        yield DatasetPaths.from_root(root, root / "data_file_dir"), f"the stand-in dataset (seed {args.seed})"


# --------------------------------------------------------------------------------------------------
# Scores


def is_denoising(task: str) -> bool:
    return TASKS[task].kind == "denoise"


def noise_sigma(image: np.ndarray) -> float:
    """The Gaussian noise level of an (H, W, 3) image, averaged over the channels: Donoho's robust wavelet
    estimator, median(|HH|) / 0.6745 of the finest diagonal wavelet coefficients, as scikit-image's
    ``estimate_sigma`` computes it, with the Haar wavelet (``estimate_sigma`` needs PyWavelets, which is not
    a dependency of this project)."""
    height, width = (image.shape[0] // 2) * 2, (image.shape[1] // 2) * 2
    x = image[:height, :width]
    diagonal = (x[0::2, 0::2] - x[0::2, 1::2] - x[1::2, 0::2] + x[1::2, 1::2]) / 2  # orthonormal Haar HH
    return float(np.mean(np.median(np.abs(diagonal), axis=(0, 1)) / 0.6745))


def non_local_means(degraded: torch.Tensor) -> torch.Tensor:
    """scikit-image's non-local means of a noisy (1, 3, H, W) image in [0, 1], with the settings of
    scikit-image's denoising example (h = 0.6 sigma, sigma given, fast mode, 5x5 patches, distance 6) and
    the noise level estimated from the image (:func:`noise_sigma`) -> (1, 3, H, W)."""
    image = degraded[0].clamp(0, 1).permute(1, 2, 0).double().numpy()
    sigma = noise_sigma(image)
    restored = denoise_nl_means(image, h=0.6 * sigma, sigma=sigma, fast_mode=True, patch_size=5, patch_distance=6,
                                channel_axis=-1)
    return torch.from_numpy(restored).permute(2, 0, 1)[None].float()


def reference_scores(tasks: list[str], loaders: list) -> dict[str, dict]:
    """Per task the scores of the unrestored inputs (``input_psnr``, ``input_ssim``) and, for denoising, of
    non-local means (``reference_psnr``), scored as the restorations are (``engine/scoring.py``)."""
    scores = {}
    for task, loader in zip(tasks, loaders, strict=True):
        inputs, reference = Scorer(), Scorer() if is_denoising(task) else None
        for batch in tqdm(loader, desc=f"reference scores {task}", leave=False):
            inputs.add(batch["degraded"].clamp(0, 1), batch["clean"], batch["task"], batch["name"])
            if reference is not None:
                reference.add(non_local_means(batch["degraded"]), batch["clean"], batch["task"], batch["name"])
        scored = inputs.finish([task])[task]
        scores[task] = {"input_psnr": scored["psnr"], "input_ssim": scored["ssim"]}
        if reference is not None:
            scores[task]["reference_psnr"] = reference.finish([task])[task]["psnr"]
    return scores


def scores_now(module: RestorationModule, tester: L.Trainer, tasks: list[str], loaders: list,
                device: torch.device) -> dict[str, dict]:
    """{task: {psnr, ssim}} of ``module`` now, as the test scripts score it (engine/evaluate.py)."""
    scores = {}
    for task, loader in zip(tasks, loaders, strict=True):
        tester.test(module, dataloaders=loader, verbose=False)
        scores[task] = {m: module.eval_results[task][m] for m in ("psnr", "ssim")}
    module.to(device).train()  # Lightning may hand the module back on the CPU
    return scores


# --------------------------------------------------------------------------------------------------
# Training


def step_schedule(module: RestorationModule, scheduler, step: int, steps_per_epoch: int) -> None:
    """Step the recipe's schedule after optimizer step ``step`` (1-based) as the training run does:
    every step, or at the end of every epoch (``Recipe.interval``), through ``Recipe.scheduler_step``
    where the recipe has one."""
    recipe = module.recipe
    if recipe.interval == "epoch" and step % steps_per_epoch:
        return
    if recipe.scheduler_step is not None:
        recipe.scheduler_step(scheduler, step // steps_per_epoch, None)
    else:
        scheduler.step()


def train_and_score(name: str, args: ConvergenceConfig, paths: DatasetPaths, tasks: list[str],
                    loaders: list, device: torch.device) -> list[dict]:
    """Train ``name`` for ``--steps`` steps -> its scores [{step, scores: {task: {psnr, ssim}}}, ...] at step 0
    and every ``--eval_every`` steps (and the last)."""
    L.seed_everything(args.seed, verbose=False)
    setting = SETTINGS[args.setting]
    train_tasks = list(setting.train_repeats)
    budget = args.schedule == "cosine"
    lr = args.lr if args.lr is not None or not budget else BUDGET_LR
    module = training_module(name, args.setting, list(dict.fromkeys(train_tasks + tasks)), args, lr,
                             args.loss).to(device)
    if budget:  # the recipe's optimiser, its rate annealed over the step budget
        optimizer = module.recipe.optimizer([p for p in module.net.parameters() if p.requires_grad], module.hparams)
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=args.steps)
    else:
        configured = module.configure_optimizers()
        optimizer, scheduler = configured["optimizer"], configured["lr_scheduler"]["scheduler"]
    data = DFPIRDataModule(paths, args.setting, train_tasks, [], args.batch_size, args.patch_size,
                           args.num_workers, args.seed, repeats=module.recipe.train_repeats(args.setting))
    data.setup("fit")
    loader = data.train_dataloader()
    tester = L.Trainer(accelerator=lightning_accelerator(args.device), devices=1, precision="32", logger=False,
                       enable_checkpointing=False, enable_model_summary=False, enable_progress_bar=False)
    series = [{"step": 0, "scores": scores_now(module, tester, tasks, loaders, device)}]
    step = 0
    with tqdm(total=args.steps, desc=name, unit="step") as bar:
        while step < args.steps:
            for batch in loader:
                batch = {k: v.to(device) if torch.is_tensor(v) else v for k, v in batch.items()}
                loss = training_loss(module, batch)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                step += 1
                if budget:
                    scheduler.step()
                else:
                    step_schedule(module, scheduler, step, loader.sampler.steps_per_epoch)
                bar.update()
                bar.set_postfix(loss=f"{loss.item():.4f}")
                if step % args.eval_every == 0 or step == args.steps:
                    series.append({"step": step, "scores": scores_now(module, tester, tasks, loaders, device)})
                if step == args.steps:
                    break
    return series


def summary(series: list[dict], references: dict[str, dict]) -> dict[str, dict]:
    """{task: {psnr, ssim, input_psnr, gain, [reference_psnr,] series}} of one network (convergence.json)."""
    entries = {}
    for task, reference in references.items():
        last = series[-1]["scores"][task]
        entries[task] = {"psnr": last["psnr"], "ssim": last["ssim"], "input_psnr": reference["input_psnr"],
                         "gain": last["psnr"] - reference["input_psnr"]}
        if "reference_psnr" in reference:
            entries[task]["reference_psnr"] = reference["reference_psnr"]
        entries[task]["series"] = [
            {"step": point["step"], "psnr": point["scores"][task]["psnr"], "ssim": point["scores"][task]["ssim"],
             "gain": point["scores"][task]["psnr"] - reference["input_psnr"]} for point in series]
    return entries


# --------------------------------------------------------------------------------------------------
# Outputs

AT_INPUT_DB = 0.1
"""A final gain within this many dB of 0: the network returns its input on that task."""


def at_input_notes(results: dict[str, dict], loss: str) -> list[str]:
    """One line per network and task that does not end above its input by :data:`AT_INPUT_DB` (at its input,
    or worse), then one line on what that means and what to run next; [] when every task ends above it."""
    lines = []
    for network, tasks in results.items():
        for task, e in tasks.items():
            if e["gain"] < AT_INPUT_DB:
                where = "it returns its input" if e["gain"] > -AT_INPUT_DB else "worse than its input"
                lines.append(f"- {network} on {task}: {e['gain']:+.2f} dB, {where}")
    if not lines:
        return []
    if loss == "recipe":
        meaning = ("Under an L1 loss a network can stay at its input on a task for a long time (the tiny DFPIR on thin "
                   "rain streaks does), which alone is no sign of faulty data: rerun with --loss mse; a task that "
                   "learns then has learnable, correctly paired data")
    else:
        meaning = ("With the squared error too: a task that stays there over more --steps points to its data and "
                   "pairing (the training scripts' --check_data)")
    return [*lines, "", f"{meaning} (docs/training.md)."]


def markdown_table(results: dict[str, dict]) -> str:
    rows = ["| network | task | input PSNR | restored PSNR | SSIM | gain (dB) | gain at the first score | "
            "non-local means PSNR |", "|---|---|---|---|---|---|---|---|"]
    for network, tasks in results.items():
        for task, e in tasks.items():
            reference = f"{e['reference_psnr']:.2f}" if "reference_psnr" in e else "-"
            rows.append(f"| {network} | {task} | {e['input_psnr']:.2f} | {e['psnr']:.2f} | {e['ssim']:.4f} | "
                        f"{e['gain']:+.2f} | {e['series'][0]['gain']:+.2f} | {reference} |")
    return "\n".join(rows)


def gain_figure(results: dict[str, dict], tasks: list[str]):
    """The gain against steps, one panel per task, one line per network; non-local means dashed."""
    panels = []
    for task in tasks:
        series = {network: [(p["step"], p["gain"]) for p in entries[task]["series"]]
                  for network, entries in results.items()}
        first = next(iter(results.values()))[task]
        levels = ({"non-local means": first["reference_psnr"] - first["input_psnr"]}
                  if "reference_psnr" in first else None)
        title = f"{task} ({TASKS[task].test_set}): gain over the degraded input"
        panels.append(line_chart(series, title, "training step", "PSNR gain (dB)", size=(640, 230), levels=levels))
    return stack(panels)


def write_outputs(outputs: list[Path], results: dict[str, dict], tasks: list[str], header: str, loss: str) -> str:
    """Write the json, the table (with :func:`at_input_notes` under it) and the figure -> the table and notes."""
    json_path, md_path, png_path = outputs
    table = "\n\n".join(filter(None, [markdown_table(results), "\n".join(at_input_notes(results, loss))]))
    outputs[0].parent.mkdir(parents=True, exist_ok=True)
    atomic_write(json_path, json.dumps(results, indent=2) + "\n")
    atomic_write(md_path, f"{header}\n\n{table}\n")
    figure = gain_figure(results, tasks)
    atomic_write(png_path, lambda f: figure.save(f, format="PNG", optimize=True))
    return table


def schedule_text(args: ConvergenceConfig) -> str:
    if args.schedule == "cosine":
        lr = args.lr if args.lr is not None else BUDGET_LR
        return f" from lr {lr:g}, cosine-annealed over the {args.steps} steps"
    return f" and its schedule{f' at lr {args.lr:g}' if args.lr is not None else ''}"


def convergence(argv: list[str] | None = None) -> int:
    args = read_options(argv)
    outputs = check_flags(args)
    models = list(dict.fromkeys(args.model or tiny_models()))
    setting = SETTINGS[args.setting]
    tasks = list(setting.test_tasks)
    device = resolve_device(args.device)
    start = time.perf_counter()
    with training_data(args) as (paths, data_name):
        report = check_data(list(setting.train_repeats), args.setting, tasks, paths, args.patch_size,
                            num_workers=max(args.num_workers, 1))
        for line in report.lines:
            print(line)
        loaders = eval_loaders(tasks, paths, args.num_workers)
        references = reference_scores(tasks, loaders)
        results = {name: summary(train_and_score(name, args, paths, tasks, loaders, device), references)
                   for name in models}
    header = (f"Convergence on {data_name}, {args.setting} mixture: {args.steps} steps of batch {args.batch_size}, "
              f"patch {args.patch_size}, seed {args.seed}, each network with its recipe"
              f"{' (but the mean squared error as its loss, --loss mse)' if args.loss == 'mse' else ''}"
              f"{schedule_text(args)}; {device.type}, "
              f"{torch.get_num_threads()} threads, {(time.perf_counter() - start) / 60:.1f} min "
              "(benchmarks/convergence.py).")
    table = write_outputs(outputs, results, tasks, header, args.loss)
    print(f"\n{header}\n\n{table}\n\nwritten: {', '.join(str(p) for p in outputs)}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Exit status 0, or 2 with one line for a user's mistake (before any training)."""
    return run_cli(lambda: convergence(argv), out_of_memory_hint="lower --batch_size or --patch_size")


if __name__ == "__main__":
    sys.exit(main())
