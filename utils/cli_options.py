"""The command-line options that several commands share: each one's flags, default and help, once.

Every command builds its parser from these (docs/commands.md lists the commands): ``options.py``
the training, test and recogniser scripts' parsers; ``demo.py``, ``app.py``, ``quickstart.py``;
``python -m data.prepare``, ``data.sample``, ``net.hub``, ``net.prompts``; ``benchmarks/bench_data.py``.
An option that only one command has is defined in that command's parser, also once.

A leaf module: it imports no network and no data code. What only a higher module knows is passed
in by the command that builds its parser: the registered networks (``net.registry.model_names``,
``DEFAULT_MODEL``), the prompt backends (``net.prompts.BACKENDS``), the shipped name lists
(``data.layouts.AUTHORS_NAME_LISTS``).

    parser = new_parser("Restore your own images.")
    add_checkpoint_option(parser)
    add_tiling_options(parser)
    PATCH_SIZE.add(parser)
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from utils.tasks import DATASETS, folder_flags

Parser = argparse.ArgumentParser | argparse._ArgumentGroup
"""A parser or one of its argument groups: both take ``add_argument``."""


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows each flag's default, unless its help already says it, the flag is required or it has none (None)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        if "default:" in (action.help or "") or action.required or action.default is None:
            return action.help
        return super()._get_help_string(action)


def new_parser(description: str, prog: str | None = None) -> argparse.ArgumentParser:
    """A command's parser: its description, and ``--help`` showing every flag's default."""
    return argparse.ArgumentParser(prog=prog, description=description, formatter_class=HelpFormatter)


@dataclass(frozen=True)
class Option:
    """One command-line option: its flags and the keywords of ``add_argument`` (default, help, type ...)."""

    flags: tuple[str, ...]
    settings: Mapping[str, Any]

    @property
    def default(self) -> Any:
        return self.settings.get("default")

    def add(self, parser: Parser, **given: Any) -> argparse.Action:
        """Add the option to ``parser``. ``given``: what the command supplies and this module cannot know
        (``choices`` from a registry, a default path of a higher module) or sets for itself (``required``)."""
        return parser.add_argument(*self.flags, **{**self.settings, **given})


def option(*flags: str, **settings: Any) -> Option:
    return Option(flags, settings)


# --------------------------------------------------------------------------------------------------
# Data

DATA_ROOT = option("--data_root", default="datasets", help="root of the standard dataset layout")
DATA_FILE_DIR = option(
    "--data_file_dir", metavar="DIR|none",
    help="folder of the name lists ({lists}) that select the training images; default: the authors' lists "
    "shipped in data/name_lists/ (every listed image must exist); 'none': every image found in each folder")
PATCH_SIZE = option("--patch_size", type=int, default=128,
                    help="training crop in pixels (the paper's 128; the dataset check requires images this large)")
SEED = option("--seed", type=int, default=0, help="random seed (the same seed, the same result)")
PRELOAD_GB = option("--preload_gb", type=float, default=4.0,
                    help="decode the most revisited training sets (Rain100L, LOL, GoPro) into RAM up to this many "
                    "GB; 0 disables")


def add_data_options(parser: argparse.ArgumentParser, split: str | None, name_lists: str | Path | None) -> None:
    """The ``datasets`` group: ``--data_root`` and a flag per dataset folder of ``split`` ('test', or None:
    training and test folders), and with ``name_lists`` (the default of ``--data_file_dir``,
    ``data.layouts.AUTHORS_NAME_LISTS``) the name-list folder of the training images."""
    group = parser.add_argument_group(
        "datasets",
        "Folders default to the standard layout under --data_root (see docs/datasets.md); "
        "each flag overrides one folder.",
    )
    DATA_ROOT.add(group)
    for flag in folder_flags(split):
        group.add_argument(f"--{flag}", default=None, metavar="DIR")
    if name_lists is not None:
        add_name_lists_option(group, name_lists)


def add_name_lists_option(parser: Parser, name_lists: str | Path) -> None:
    """``--data_file_dir``, defaulting to ``name_lists`` (``data.layouts.AUTHORS_NAME_LISTS``)."""
    lists = ", ".join(d.train.name_list for d in DATASETS.values() if d.train.name_list)
    DATA_FILE_DIR.add(parser, default=str(name_lists), help=DATA_FILE_DIR.settings["help"].format(lists=lists))


# --------------------------------------------------------------------------------------------------
# Hardware

DEVICES = ("auto", "cpu", "cuda")
DEVICE = option("--device", default="auto", choices=list(DEVICES), help="accelerator (auto: CUDA when present)")
NUM_WORKERS = option("--num_workers", type=int, default=min(4, os.cpu_count() or 1),
                     help="data-loading worker processes (the dataset check: decoding threads)")
CHANNELS_LAST = option("--channels_last", action=argparse.BooleanOptionalAction, default=True,
                       help="channels_last memory format (same function, faster convolutions)")


def add_hardware_options(parser: argparse.ArgumentParser, channels_last: bool = True) -> None:
    """The ``hardware`` group: ``--device``, ``--num_workers`` and (``channels_last``) ``--channels_last``."""
    group = parser.add_argument_group("hardware")
    DEVICE.add(group)
    NUM_WORKERS.add(group)
    if channels_last:
        CHANNELS_LAST.add(group)


# --------------------------------------------------------------------------------------------------
# Prompts

PROMPT_SET = option("--prompt_set", default="detailed",
                    help="degradation prompts, unless a checkpoint brings its prompt table (the 3D 'simple' "
                    "checkpoint uses 'simple')")
PROMPT_EMBEDDINGS = option("--prompt_embeddings", default=None, metavar="FILE",
                           help="prompt-table file ({prompt: 512-d tensor}) instead of running CLIP; make one with: "
                           "python -m net.prompts --export FILE")
PROMPT_BACKEND = option("--prompt_backend", default="clip",
                        help="how to compute prompt codes without a file: CLIP (needs its weights once), offline "
                        "(random-init text tower: tests/demos only), auto (CLIP, else offline with a warning)")


def add_prompt_options(parser: argparse.ArgumentParser, prompt_sets: Sequence[str], backends: Sequence[str],
                       embeddings: bool = True) -> None:
    """The ``prompts`` group: ``--prompt_set`` (one of ``prompt_sets``), ``--prompt_embeddings``
    (``embeddings``) and ``--prompt_backend`` (one of ``backends``, ``net.prompts.BACKENDS``)."""
    group = parser.add_argument_group("prompts")
    PROMPT_SET.add(group, choices=list(prompt_sets))
    if embeddings:
        PROMPT_EMBEDDINGS.add(group)
    PROMPT_BACKEND.add(group, choices=list(backends))


# --------------------------------------------------------------------------------------------------
# Network and checkpoints

MODEL = option("--model", default=None,
               help="network (net/registry.py); default: the one the checkpoint records (a resumed run keeps its "
               "network), else {default_model} (the authors' files record none)")
CKPT = option("--ckpt", "--pretrained_1", dest="ckpt", required=True, metavar="PATH",
              help="checkpoint: authors' .pth.tar, this project's .ckpt, a bare state dict, or a Hugging Face Hub "
              "folder or repo id (python -m net.hub)")
RECOGNIZER = option("--recognizer", default=None, metavar="FILE",
                    help="degradation recogniser for blind restoration (train_recognizer.py --output)")


def add_model_option(parser: Parser, models: Sequence[str], default_model: str) -> None:
    """``--model``: one of ``models`` (``net.registry.model_names()``); unset: the checkpoint's network, else
    ``default_model`` (``net.registry.DEFAULT_MODEL``)."""
    MODEL.add(parser, choices=list(models), help=MODEL.settings["help"].format(default_model=default_model))


def add_checkpoint_option(parser: Parser, fallback: str | None = None) -> argparse.Action:
    """``--ckpt`` (alias ``--pretrained_1``, the authors' name): required, unless the command has a
    ``fallback`` (described in words; ``--ckpt`` is then None when not given)."""
    if fallback is None:
        return CKPT.add(parser)
    return CKPT.add(parser, required=False, default=None, help=f"{CKPT.settings['help']}; default: {fallback}")


# --------------------------------------------------------------------------------------------------
# Tiling

TILE = option("--tile", type=int, default=None, metavar="N",
              help="restore in N x N tiles (bounded memory; N a multiple of the network's size multiple, 8 for "
              "DFPIR); default: whole image")
TILE_OVERLAP = option("--tile_overlap", type=int, default=32, metavar="M", help="overlap between tiles")


def add_tiling_options(parser: Parser) -> None:
    """``--tile`` and ``--tile_overlap``."""
    TILE.add(parser)
    TILE_OVERLAP.add(parser)


# --------------------------------------------------------------------------------------------------
# Outputs


def add_overwrite_flag(parser: Parser, what: str) -> argparse.Action:
    """``--overwrite``: let the command replace ``what`` (e.g. "an existing --output file"), which it refuses
    to do otherwise."""
    return parser.add_argument("--overwrite", action="store_true", help=f"replace {what} (refused otherwise)")
