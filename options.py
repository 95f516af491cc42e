"""The run configurations of the training, test and recogniser scripts, and their generated parsers.

Each script's options are the fields of one frozen dataclass (``utils/config.py``): the options these
share with the other commands are mixins declared once beside what they configure (hardware and
tiling in ``utils/run_options.py``, data in ``data/run_options.py``, network, checkpoint and
recogniser in ``net/run_options.py``, prompts in ``net/prompts/``); those of one script alone are
declared here. The parsers are generated from them (:func:`build_train_parser` ...), and
``engine/`` receives the resolved configuration, never the argparse Namespace.

Flags keep the authors' names where they have one (``--batch_size``, ``--patch_size``, ``--lr``,
``--epochs``, ``--de_type``, ``--num_workers``, ``--denoise_dir`` ... ``--lowlight_path``,
``--data_file_dir``, ``--output_path``, ``--pretrained_1``). Defaults reproduce the training of the
released checkpoints (docs/protocol.md section 3); where the network's recipe decides
(``net/recipe.py``), the default shown is DFPIR's. Task names, dataset-folder flags and prompt sets
come from the records of ``utils/tasks.py``, networks from the registry of ``net/registry.py``.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

from data.run_options import DataOptions, NameListsOption, PatchSizeOption, PreloadOption
from net.prompts import PromptOptions
from net.recipe import PAPER_RECIPE as PAPER
from net.run_options import ModelOption, RecognizerOption, checkpoint_option
from utils.config import Rule, above, at_least, build_parser, opt, resume_keys
from utils.run_options import ChannelsLastOption, HardwareOptions, SeedOption, TilingOptions, overwrite_option
from utils.tasks import SETTINGS, TASKS

PRECISIONS = ("32", "bf16-mixed", "16-mixed")
VAL_RULES = ("epoch_step", "global_step")  # engine/callbacks.py::should_validate


def _setting(context) -> object:
    return SETTINGS[context["setting"]]


def _setting_field():
    """The setting of a script (train_3D_DFPIR.py: 3D), from its name: not a flag; a config file may state it."""
    return opt(default=None, keep_on_resume=True)


def _allow_config_change_help(context) -> str:
    kept = [f"--{name}" for name in resume_keys(TrainConfig) if name != "setting"]
    return (f"let a resumed run change {', '.join(kept)}, the process count or the setting (refused otherwise)")


@dataclass(frozen=True, kw_only=True)
class TrainConfig(SeedOption, PatchSizeOption, PreloadOption, ModelOption, HardwareOptions, ChannelsLastOption,
                  PromptOptions, DataOptions, NameListsOption):
    """``train_<setting>_DFPIR.py``: a training run (``engine/train.py``)."""

    setting: str = _setting_field()
    de_type: list[str] = opt("--de_type", default=None, keep_on_resume=True, group="training",
                             choices=lambda context: list(_setting(context).train_repeats), help="training tasks")
    batch_size: int | None = opt("--batch_size", default=None, keep_on_resume=True, group="training",
                                 rule=at_least(1, "must be at least 1 (images per optimizer step and process)"),
                                 help="images per step and process (default: the network's recipe; DFPIR: "
                                 f"{PAPER.batch_size})")
    lr: float | None = opt("--lr", default=None, keep_on_resume=True, group="training",
                           rule=at_least(0, "must be a finite learning rate >= 0"),
                           help=f"learning rate of the recipe's optimiser (default: the network's recipe; DFPIR: "
                           f"Adam {PAPER.lr:g})")
    epochs: int | None = opt("--epochs", default=None, group="training", rule=at_least(1),
                             help=f"epochs to train (default: the network's recipe; DFPIR: {PAPER.epochs}, where the "
                             "authors stopped)")
    lr_schedule_epochs: int | None = opt("--lr_schedule_epochs", default=None, keep_on_resume=True, group="training",
                                         rule=at_least(1),
                                         help="length of the recipe's schedule in epochs (default: the network's "
                                         f"recipe; DFPIR: T_max {PAPER.lr_schedule_epochs} of the per-epoch cosine)")
    max_steps: int = opt("--max_steps", default=-1, group="training",
                         rule=Rule(lambda v: v == -1 or v >= 1, "must be -1 (no limit) or at least 1"),
                         help="stop after this many optimizer steps in total (counting resumed ones); -1: no limit")
    precision: str = opt("--precision", default="32", choices=PRECISIONS, keep_on_resume=True, group="training",
                         help="32 reproduces the paper; mixed precision is faster but changes the function")
    compile: bool = opt("--compile", default=False, group="training",
                        help="torch.compile the network's blocks for training (minutes to compile, faster steps)")

    val_every: int | None = opt("--val_every", default=None, group="validation and checkpoints",
                                rule=at_least(0, "must be 0 (no validation) or a number of steps"),
                                help=lambda context: "validate on the test sets every this many training steps, "
                                "counted as --val_rule says, and after every epoch; 0: never (default: the network's "
                                f"recipe; DFPIR: the setting's, {_setting(context).val_every})")
    val_rule: str = opt("--val_rule", default="epoch_step", choices=VAL_RULES, group="validation and checkpoints",
                        help="epoch_step (the authors'): when the step counter of the current epoch, 0 at its first "
                        "step, is a non-zero multiple of --val_every; global_step: when the number of steps of the "
                        "whole run is a multiple of --val_every")
    val_tasks: list[str] = opt("--val_tasks", default=None, choices=lambda context: list(TASKS),
                               group="validation and checkpoints", help="test sets used for validation")
    select_best_on_test: bool | None = opt("--select_best_on_test", default=None, negatable=True,
                                           group="validation and checkpoints",
                                           help="keep the checkpoint with the best average PSNR on the validation "
                                           "sets (default: the network's recipe; DFPIR: yes, PromptIR: no)")
    keep_every_epoch: bool | None = opt("--keep_every_epoch", default=None, negatable=True,
                                        group="validation and checkpoints",
                                        help="keep a checkpoint of every epoch, epoch{E}-step{S}.ckpt (default: the "
                                        "network's recipe; DFPIR: no, PromptIR: yes, as its authors did)")
    ckpt_dir: str | None = opt("--ckpt_dir", default=None, group="validation and checkpoints",
                               help=lambda context: "checkpoints, logs and the run's config.yaml (default: "
                               f"checkpoints/<network>_{context['setting']}, named after the network once it is "
                               f"known: checkpoints/DFPIR_{context['setting']}, checkpoints/PromptIR_"
                               f"{context['setting']} ...)")
    ckpt_every: int = opt("--ckpt_every", default=1000, group="validation and checkpoints",
                          rule=at_least(0, "must be 0 (only at epoch ends) or a number of steps"),
                          help="training steps between saves of last.ckpt")
    resume: str | None = opt("--resume", default=None, metavar="auto|PATH", group="validation and checkpoints",
                             help="continue a run: 'auto' takes <ckpt_dir>/last.ckpt if it exists")
    allow_config_change: bool = opt("--allow_config_change", default=False, group="validation and checkpoints",
                                    help=_allow_config_change_help)
    init_from: str | None = opt("--init_from", default=None, metavar="CKPT", group="validation and checkpoints",
                                help="start from these weights (any checkpoint format, e.g. an authors' .pth.tar, "
                                "or a Hub folder or repo id)")
    logger: str = opt("--logger", default="tensorboard", choices=("tensorboard", "csv"),
                      group="validation and checkpoints", help="training logs' format")
    check_data: bool = opt("--check_data", default=False, group="validation and checkpoints",
                           help="validate every training and test folder, print the counts and exit")

    devices: str = opt("--devices", default="1", group="distributed",
                       rule=Rule(lambda v: v == "auto" or (v.isdigit() and int(v) >= 1),
                                 "must be a number of devices per node (1, 2, ...) or 'auto'"),
                       help="devices per node (an int, or 'auto')")
    num_nodes: int = opt("--num_nodes", default=1, group="distributed", rule=at_least(1), help="nodes")

    @property
    def context(self) -> dict:
        return {"setting": self.setting}

    @property
    def world_size(self) -> int | None:
        """Processes of the run (--devices x --num_nodes); None when --devices auto leaves it to the machine."""
        return int(self.devices) * self.num_nodes if self.devices.isdigit() else None

    @property
    def parsed_devices(self) -> int | str:
        """--devices as Lightning takes it: a count, or 'auto'."""
        return self.devices if self.devices == "auto" else int(self.devices)


def train_setting_defaults(setting: str) -> dict:
    """What the setting gives a training run (the "setting" layer of ``utils.config.resolve``)."""
    spec = SETTINGS[setting]
    return {"setting": setting, "de_type": list(spec.train_repeats), "val_tasks": list(spec.test_tasks),
            "val_every": spec.val_every}


def _legacy_noise_help(context) -> str:
    sigmas = ", then ".join(map(str, _setting(context).legacy_sigmas or ()))
    return ("denoising noise drawn as the authors' test script does (numpy seeded with 0 once, images in "
            f"os.listdir order, sigma {sigmas}), to compare with numbers made by their script; default: per-image "
            "seeded noise, independent of file order")


@dataclass(frozen=True, kw_only=True)
class EvalConfig(TilingOptions, ModelOption, RecognizerOption, HardwareOptions, ChannelsLastOption, PromptOptions,
                 DataOptions):
    """``test_<setting>_DFPIR.py``: an evaluation (``engine/evaluate.py``)."""

    setting: str = _setting_field()
    ckpt: list[str] = checkpoint_option(several="repeat it to evaluate several checkpoints (DFPIR and PromptIR "
                                        "mixed) on the same inputs in one table")
    label: list[str] | None = opt("--label", default=None, append=True, metavar="NAME",
                                  help="with several --ckpt: the name of each checkpoint's row and restored-image "
                                  "folder, one per --ckpt in the same order (default: the checkpoint's file name)")
    tasks: list[str] = opt("--tasks", default=None, choices=lambda context: list(TASKS), help="test sets to run")
    output_path: str | None = opt("--output_path", default=None, metavar="DIR",
                                  help=lambda context: "restored images, results.json, results.md and the run's "
                                  f"config.yaml (default: outputs/<network>_{context['setting']}, named after the "
                                  f"network once it is known: outputs/DFPIR_{context['setting']} ...)")
    no_save_images: bool = opt("--no_save_images", default=False, help="do not write restored PNGs")
    allow_untrained_tasks: bool = opt("--allow_untrained_tasks", default=False,
                                      help="evaluate a checkpoint also on tasks its training run did not train on "
                                      "(it records them); their rows are marked 'not trained on this task'")
    overwrite: bool = overwrite_option("the results.json, results.md, config.yaml, figures and restored images of an "
                                       "earlier run in --output_path")
    legacy_noise: bool = opt("--legacy_noise", default=False, help=_legacy_noise_help)
    blind: bool = opt("--blind", default=False, group="blind restoration",
                      help="restore every image with the prompt of the degradation the --recognizer predicts; the "
                      "known-degradation scores come from the same run")

    @property
    def context(self) -> dict:
        return {"setting": self.setting, "split": "test"}


def eval_setting_defaults(setting: str) -> dict:
    return {"setting": setting, "tasks": list(SETTINGS[setting].test_tasks)}


@dataclass(frozen=True, kw_only=True)
class RecognizerConfig(SeedOption, PatchSizeOption, PreloadOption, HardwareOptions, DataOptions, NameListsOption):
    """``train_recognizer.py``: the degradation recogniser's training (``engine/recognizer_training.py``)."""

    setting: str = opt("--setting", default=None, required=True, choices=lambda context: list(SETTINGS),
                       help="the DFPIR setting whose degradation ids the recogniser predicts")
    de_type: list[str] | None = opt("--de_type", default=None, choices=lambda context: list(TASKS), group="training",
                                    help="training tasks (default: every task of the setting)")
    batch_size: int = opt("--batch_size", default=32, group="training", rule=at_least(2),
                          help="samples per step (balanced over the tasks)")
    max_steps: int = opt("--max_steps", default=400, group="training", rule=at_least(1), help="optimizer steps")
    lr: float = opt("--lr", default=2e-3, group="training", rule=above(0, "must be a finite learning rate > 0"),
                    help="AdamW learning rate (cosine decay to 0)")
    val_tasks: list[str] | None = opt("--val_tasks", default=None, metavar="TASK", group="training",
                                      help="test sets on which the accuracy is measured after training (default: "
                                      "every task of the setting); 'none' skips it")
    output: str | None = opt("--output", default=None, metavar="FILE", group="training",
                             help="recogniser checkpoint to write (default: checkpoints/recognizer_<setting>.pt)")
    overwrite: bool = overwrite_option("an existing --output file")


def build_train_parser(setting: str) -> argparse.ArgumentParser:
    """Parser of ``train_<setting>_DFPIR.py`` (setting '3D' or '5D')."""
    return build_parser(TrainConfig, f"Train DFPIR on the {setting} mixture (defaults: the released checkpoints' "
                        "protocol).", {"setting": setting}, train_setting_defaults(setting), config_file=True)


def build_test_parser(setting: str) -> argparse.ArgumentParser:
    """Parser of ``test_<setting>_DFPIR.py``."""
    return build_parser(EvalConfig, f"Evaluate DFPIR checkpoints (or another registered network's, e.g. "
                        f"PromptIR's) on the {setting} test sets and compare with the paper.",
                        {"setting": setting, "split": "test"}, eval_setting_defaults(setting), config_file=True)


def build_recognizer_train_parser() -> argparse.ArgumentParser:
    """Parser of ``train_recognizer.py``: the dataset flags of DFPIR training, and the recogniser's own."""
    return build_parser(RecognizerConfig, "Train the degradation recogniser used for blind restoration (--blind, "
                        "--degradation auto) on the training mixture of a setting; the label of each sample is its "
                        "task's degradation id.", config_file=True)
