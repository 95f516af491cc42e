"""The options several commands share that need nothing but ``utils/``: hardware, tiling, ``--overwrite``.

Each is a field of a small configuration mixin (``utils/config.py``); a command's configuration
class inherits the mixins it has, so an option is declared once for every command. The options of
the data (``data/run_options.py``), of the network, checkpoint and recogniser
(``net/run_options.py``) and of the prompts (``net/prompts/``: :class:`net.prompts.PromptOptions`)
live beside what they configure.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from utils.config import Config, Rule, at_least, opt

DEVICES = ("auto", "cpu", "cuda")


@dataclass(frozen=True, kw_only=True)
class DeviceOption(Config):
    device: str = opt("--device", default="auto", choices=DEVICES, group="hardware",
                      help="accelerator (auto: CUDA when present)")


@dataclass(frozen=True, kw_only=True)
class NumWorkersOption(Config):
    num_workers: int = opt("--num_workers", default=min(4, os.cpu_count() or 1), group="hardware",
                           rule=at_least(0, "must be 0 (load data in the main process) or more"),
                           help="data-loading worker processes (the dataset check: decoding threads)")


@dataclass(frozen=True, kw_only=True)
class HardwareOptions(DeviceOption, NumWorkersOption):
    """--device and --num_workers."""


@dataclass(frozen=True, kw_only=True)
class ChannelsLastOption(Config):
    channels_last: bool = opt("--channels_last", default=True, negatable=True, group="hardware",
                              help="channels_last memory format (same function, faster convolutions)")


@dataclass(frozen=True, kw_only=True)
class TilingOptions(Config):
    """Whole-image restoration in tiles; that ``--tile`` fits the network is checked with the network
    (``engine.preflight.network_problems``)."""

    tile: int | None = opt("--tile", default=None, metavar="N",
                           help="restore in N x N tiles (bounded memory; N a multiple of the network's size "
                           "multiple, 8 for DFPIR); default: whole image")
    tile_overlap: int = opt("--tile_overlap", default=32, metavar="M", rule=at_least(0, "must be 0 or more"),
                            help="overlap between tiles")


def overwrite_option(what: str | Callable[[Mapping], str]):
    """``--overwrite``: let the command replace ``what`` (e.g. "an existing --output file"; or a function of
    the parser's context giving it), which it refuses to do otherwise. Each command declares its own,
    saying what it replaces."""
    return opt("--overwrite", default=False,
               help=lambda context: f"replace {what(context) if callable(what) else what} (refused otherwise)")


SEED_LIMIT = 2**32
"""``--seed`` must be below this: numpy and the data workers take seeds in [0, 2**32)."""

SEED_RULE = Rule(lambda seed: 0 <= seed < SEED_LIMIT, f"must be from 0 to {SEED_LIMIT - 1} (2**32 - 1)")


@dataclass(frozen=True, kw_only=True)
class SeedOption(Config):
    seed: int = opt("--seed", default=0, rule=SEED_RULE, keep_on_resume=True, group="training",
                    help="random seed (the same seed, the same result)")
