"""The parsers of the training, test and recogniser scripts, built inside functions.

The options these share with the other commands (data folders, prompts, hardware, network,
tiling) are defined once in ``utils/cli_options.py``; those of one script alone are defined here.

Flags keep the authors' names where they have one (``--batch_size``, ``--patch_size``, ``--lr``,
``--epochs``, ``--de_type``, ``--num_workers``, ``--denoise_dir`` ... ``--lowlight_path``,
``--data_file_dir``, ``--output_path``, ``--pretrained_1``). Defaults reproduce the training of the
released checkpoints (docs/protocol.md section 3). Task names, dataset-folder flags and prompt sets come from
the records of ``utils/tasks.py``, networks from the registry of ``net/registry.py``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from data.layouts import AUTHORS_NAME_LISTS, DatasetPaths
from net.prompts import BACKENDS
from net.recipe import PAPER_RECIPE as PAPER
from net.registry import DEFAULT_MODEL, model_names
from utils.cli_options import (
    PATCH_SIZE,
    PRELOAD_GB,
    RECOGNIZER,
    SEED,
    add_data_options,
    add_hardware_options,
    add_model_option,
    add_overwrite_flag,
    add_prompt_options,
    add_tiling_options,
    new_parser,
)
from utils.tasks import SETTINGS, TASKS, folder_flags

PRECISIONS = ("32", "bf16-mixed", "16-mixed")
VAL_RULES = ("epoch_step", "global_step")  # engine/callbacks.py::should_validate


def build_train_parser(setting: str) -> argparse.ArgumentParser:
    """Parser of ``train_<setting>_DFPIR.py`` (setting '3D' or '5D')."""
    spec = SETTINGS[setting]
    parser = new_parser(f"Train DFPIR on the {setting} mixture (defaults: the released checkpoints' protocol).")
    group = parser.add_argument_group("training")
    group.add_argument("--de_type", nargs="+", default=list(spec.train_repeats), choices=list(spec.train_repeats),
                       help="training tasks")
    # Default None: the network's recipe decides (net/recipe.py, Recipe.fill_defaults; DFPIR's values shown).
    group.add_argument("--batch_size", type=int, default=None,
                       help=f"images per step and process (default: the network's recipe; DFPIR: {PAPER.batch_size})")
    PATCH_SIZE.add(group)
    group.add_argument("--lr", type=float, default=None,
                       help=f"learning rate of the recipe's optimiser (default: the network's recipe; DFPIR: Adam "
                       f"{PAPER.lr:g})")
    group.add_argument("--epochs", type=int, default=None,
                       help=f"epochs to train (default: the network's recipe; DFPIR: {PAPER.epochs}, where the "
                       "authors stopped)")
    group.add_argument("--lr_schedule_epochs", type=int, default=None,
                       help="length of the recipe's schedule in epochs (default: the network's recipe; DFPIR: T_max "
                       f"{PAPER.lr_schedule_epochs} of the per-epoch cosine)")
    group.add_argument("--max_steps", type=int, default=-1,
                       help="stop after this many optimizer steps in total (counting resumed ones); -1: no limit")
    SEED.add(group)
    add_model_option(group, model_names(), DEFAULT_MODEL)
    group.add_argument("--precision", default="32", choices=PRECISIONS,
                       help="32 reproduces the paper; mixed precision is faster but changes the function")
    group.add_argument("--compile", action="store_true",
                       help="torch.compile the network's blocks for training (minutes to compile, faster steps)")
    PRELOAD_GB.add(group)

    group = parser.add_argument_group("validation and checkpoints")
    group.add_argument("--val_every", type=int, default=None,
                       help="validate on the test sets every this many training steps, counted as --val_rule says, "
                       f"and after every epoch; 0: never (default: the network's recipe; DFPIR: the setting's, "
                       f"{spec.val_every})")
    group.add_argument("--val_rule", default="epoch_step", choices=list(VAL_RULES),
                       help="epoch_step (the authors'): when the step counter of the current epoch, 0 at its first "
                       "step, is a non-zero multiple of --val_every; global_step: when the number of steps of the "
                       "whole run is a multiple of --val_every")
    group.add_argument("--val_tasks", nargs="+", default=list(spec.test_tasks), choices=list(TASKS),
                       help="test sets used for validation")
    group.add_argument("--select_best_on_test", action=argparse.BooleanOptionalAction, default=None,
                       help="keep the checkpoint with the best average PSNR on the validation sets (default: the "
                       "network's recipe; DFPIR: yes, PromptIR: no)")
    group.add_argument("--keep_every_epoch", action=argparse.BooleanOptionalAction, default=None,
                       help="keep a checkpoint of every epoch, epoch{E}-step{S}.ckpt (default: the network's recipe; "
                       "DFPIR: no, PromptIR: yes, as its authors did)")
    group.add_argument("--ckpt_dir", default=f"checkpoints/DFPIR_{setting}", help="checkpoints and logs")
    group.add_argument("--ckpt_every", type=int, default=1000, help="training steps between saves of last.ckpt")
    group.add_argument("--resume", default=None, metavar="auto|PATH",
                       help="continue a run: 'auto' takes <ckpt_dir>/last.ckpt if it exists")
    group.add_argument("--allow_config_change", action="store_true",
                       help="let a resumed run change --batch_size, --patch_size, --de_type, --seed, --lr, "
                       "--lr_schedule_epochs, the process count or the setting (refused otherwise)")
    group.add_argument("--init_from", default=None, metavar="CKPT",
                       help="start from these weights (any checkpoint format, e.g. an authors' .pth.tar, "
                       "or a Hub folder or repo id)")
    group.add_argument("--logger", default="tensorboard", choices=["tensorboard", "csv"])
    group.add_argument("--check_data", action="store_true",
                       help="validate every training and test folder, print the counts and exit")

    group = parser.add_argument_group("distributed")
    group.add_argument("--devices", default="1", help="devices per node (an int, or 'auto')")
    group.add_argument("--num_nodes", type=int, default=1)

    add_hardware_options(parser)
    add_prompt_options(parser, spec.prompt_sets(), BACKENDS)
    add_data_options(parser, None, AUTHORS_NAME_LISTS)
    parser.set_defaults(setting=setting)
    return parser


def build_test_parser(setting: str) -> argparse.ArgumentParser:
    """Parser of ``test_<setting>_DFPIR.py``."""
    parser = new_parser(f"Evaluate DFPIR checkpoints (or another registered network's, e.g. PromptIR's) on the "
                        f"{setting} test sets and compare with the paper.")
    parser.add_argument("--ckpt", "--pretrained_1", dest="ckpt", required=True, action="append", metavar="PATH",
                        help="checkpoint: authors' .pth.tar, this project's .ckpt, a bare state dict, "
                        "or a Hugging Face Hub folder or repo id (python -m net.hub); repeat it to evaluate "
                        "several checkpoints (DFPIR and PromptIR mixed) on the same inputs in one table")
    parser.add_argument("--label", action="append", default=None, metavar="NAME",
                        help="with several --ckpt: the name of each checkpoint's row and restored-image folder, "
                        "one per --ckpt in the same order (default: the checkpoint's file name)")
    parser.add_argument("--tasks", nargs="+", default=list(SETTINGS[setting].test_tasks), choices=list(TASKS),
                        help="test sets to run")
    parser.add_argument("--output_path", default=f"outputs/DFPIR_{setting}", metavar="DIR",
                        help="restored images, results.json and results.md")
    parser.add_argument("--no_save_images", action="store_true", help="do not write restored PNGs")
    parser.add_argument("--allow_untrained_tasks", action="store_true",
                        help="evaluate a checkpoint also on tasks its training run did not train on (it records "
                        "them); their rows are marked 'not trained on this task'")
    add_overwrite_flag(parser, "the results.json, results.md, figures and restored images of an earlier run in "
                       "--output_path")
    legacy_sigmas = ", then ".join(map(str, SETTINGS[setting].legacy_sigmas or ()))
    parser.add_argument("--legacy_noise", action="store_true",
                        help="denoising noise drawn as the authors' test script does (numpy seeded with 0 once, "
                        f"images in os.listdir order, sigma {legacy_sigmas}"
                        + "), to compare with numbers made by their script; default: per-image seeded noise, "
                        "independent of file order")
    add_tiling_options(parser)
    add_model_option(parser, model_names(), DEFAULT_MODEL)
    group = parser.add_argument_group("blind restoration")
    group.add_argument("--blind", action="store_true",
                       help="restore every image with the prompt of the degradation the --recognizer predicts; "
                       "the known-degradation scores come from the same run")
    RECOGNIZER.add(group)
    add_hardware_options(parser)
    add_prompt_options(parser, SETTINGS[setting].prompt_sets(), BACKENDS)
    add_data_options(parser, "test", None)
    parser.set_defaults(setting=setting)
    return parser


def build_recognizer_train_parser() -> argparse.ArgumentParser:
    """Parser of ``train_recognizer.py``: the dataset flags of DFPIR training, and the recogniser's own."""
    parser = new_parser("Train the degradation recogniser used for blind restoration (--blind, --degradation "
                        "auto) on the training mixture of a setting; the label of each sample is its task's "
                        "degradation id.")
    parser.add_argument("--setting", required=True, choices=list(SETTINGS),
                        help="the DFPIR setting whose degradation ids the recogniser predicts")
    group = parser.add_argument_group("training")
    group.add_argument("--de_type", nargs="+", default=None, choices=list(TASKS),
                       help="training tasks (default: every task of the setting)")
    group.add_argument("--batch_size", type=int, default=32, help="samples per step (balanced over the tasks)")
    PATCH_SIZE.add(group)
    group.add_argument("--max_steps", type=int, default=400, help="optimizer steps")
    group.add_argument("--lr", type=float, default=2e-3, help="AdamW learning rate (cosine decay to 0)")
    SEED.add(group)
    PRELOAD_GB.add(group)
    group.add_argument("--val_tasks", nargs="+", default=None, metavar="TASK",
                       help="test sets on which the accuracy is measured after training (default: every task "
                       "of the setting); 'none' skips it")
    group.add_argument("--output", default=None, metavar="FILE",
                       help="recogniser checkpoint to write (default: checkpoints/recognizer_<setting>.pt)")
    add_overwrite_flag(group, "an existing --output file")
    add_hardware_options(parser, channels_last=False)
    add_data_options(parser, None, AUTHORS_NAME_LISTS)
    return parser


def dataset_paths(args: argparse.Namespace) -> DatasetPaths:
    """The dataset folders from --data_root and the per-folder flags."""
    overrides = {f: Path(getattr(args, f)) for f in folder_flags() if getattr(args, f, None)}
    data_file_dir = getattr(args, "data_file_dir", None)
    if data_file_dir is not None and str(data_file_dir).lower() == "none":
        data_file_dir = None
    return DatasetPaths.from_root(args.data_root, data_file_dir, **overrides)


def parse_devices(value: str) -> int | str:
    return value if value == "auto" else int(value)
