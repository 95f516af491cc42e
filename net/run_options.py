"""The network, checkpoint and recogniser options several commands share, declared once.

Fields of configuration mixins (``utils/config.py``); the prompt options live with the prompts
(:class:`net.prompts.PromptOptions`). ``--ckpt`` has one declaration, :func:`checkpoint_option`:
required (demo, ``python -m net.hub``), repeatable (the test scripts: several checkpoints in one
table) or with a fallback (the web app).
"""

from __future__ import annotations

from dataclasses import dataclass

from net.registry import DEFAULT_MODEL, model_names
from utils.config import Config, opt

CKPT_FLAGS = ("--ckpt", "--pretrained_1")  # --pretrained_1: the authors' name
CKPT_HELP = ("checkpoint: authors' .pth.tar, this project's .ckpt, a bare state dict, or a Hugging Face Hub "
             "folder or repo id (python -m net.hub)")


def checkpoint_option(several: str | None = None, fallback: str | None = None):
    """``--ckpt`` (alias ``--pretrained_1``): required; with ``several`` (help saying how several are used)
    repeatable, a list; with a ``fallback`` (described in words) optional, None when not given."""
    if several is not None:
        return opt(*CKPT_FLAGS, default=[], append=True, required=True, metavar="PATH",
                   help=f"{CKPT_HELP}; {several}")
    if fallback is not None:
        return opt(*CKPT_FLAGS, default=None, metavar="PATH", help=f"{CKPT_HELP}; default: {fallback}")
    return opt(*CKPT_FLAGS, default=None, required=True, metavar="PATH", help=CKPT_HELP)


@dataclass(frozen=True, kw_only=True)
class ModelOption(Config):
    model: str | None = opt("--model", default=None, choices=lambda context: model_names(), group="network",
                            help="network (net/registry.py); default: the one the checkpoint records (a resumed run "
                            f"keeps its network), else {DEFAULT_MODEL} (the authors' files record none)")


@dataclass(frozen=True, kw_only=True)
class RecognizerOption(Config):
    recognizer: str | None = opt("--recognizer", default=None, metavar="FILE", group="network",
                                 help="degradation recogniser for blind restoration (train_recognizer.py --output)")
