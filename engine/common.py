"""Pieces shared by the training and evaluation runs: device choice, prompt table, network speed options."""

from __future__ import annotations

import argparse
import logging
import sys
import warnings
from collections.abc import Callable

import torch

from engine.module import RestorationModule
from engine.preflight import USER_ERRORS, UsageError
from net.checkpoint import Checkpoint
from net.prompts import PromptTable, build_prompt_table
from net.recognizer import DegradationRecognizer, load_recognizer
from net.speed import prepare_for_speed, use_compile_cache
from utils import signals


def accelerator(device: str) -> str:
    """--device auto|cpu|cuda -> Lightning accelerator name."""
    if device == "cuda" and not torch.cuda.is_available():
        raise UsageError("--device cuda was given but PyTorch sees no CUDA device; use --device cpu")
    return {"auto": "auto", "cpu": "cpu", "cuda": "gpu"}[device]


NO_PROMPTS = "none (the network takes no text prompts)"  # the source of a network's empty prompt table


def no_prompt_table() -> PromptTable:
    """The empty prompt table of a network without text prompts (``uses_text_prompts = False``):
    no prompts, codes (0, 0); never stored in its checkpoints."""
    return PromptTable([], torch.zeros(0, 0), NO_PROMPTS)


def prompt_table_for(args: argparse.Namespace, checkpoint: Checkpoint | None, tasks: list[str],
                     text_dim: int | None) -> PromptTable:
    """The checkpoint's own prompt table if it has one, else one built from the prompt options; for a
    network without text prompts (``text_dim`` None: ``NetworkSpec.text_dim``) the empty table,
    without CLIP or a prompt file (a note if ``--prompt_embeddings`` was given).

    PromptError unless the table covers ``tasks`` with finite codes of the network's width ``text_dim``.
    """
    if text_dim is None:
        if getattr(args, "prompt_embeddings", None):
            print(f"note: the network takes no text prompts; --prompt_embeddings {args.prompt_embeddings} is not used",
                  file=sys.stderr)
        return no_prompt_table()
    if checkpoint is not None and checkpoint.prompt_table is not None:
        table = checkpoint.prompt_table
        if args.prompt_embeddings:
            print(f"note: {checkpoint.path} carries its own prompt table ({table.source}); "
                  "--prompt_embeddings is not used", file=sys.stderr)
    else:
        device = "cuda" if args.device in ("auto", "cuda") and torch.cuda.is_available() else "cpu"
        table = build_prompt_table(args.prompt_set, args.prompt_backend, args.prompt_embeddings, device=device)
    table.covers(tasks)
    table.check_width(text_dim)
    return table


def recognizer_for(path: str, setting: str | None, checkpoint: Checkpoint) -> DegradationRecognizer:
    """The recogniser in ``path`` (eval mode) for a DFPIR ``checkpoint``.

    Refused (RecognizerError / UsageError, exit 2) when it belongs to another setting than
    ``setting`` (the script's; None: any) or than the one the checkpoint records (this project's
    checkpoints do; the authors' files do not, and take the script's).
    """
    recognizer = load_recognizer(path, setting)
    recorded = (checkpoint.run_config or {}).get("setting")
    if recorded is not None and recorded != recognizer.setting:
        raise UsageError(f"{path} is a {recognizer.setting} recogniser but {checkpoint.path} is a {recorded} "
                         f"DFPIR checkpoint; train a {recorded} recogniser: "
                         f"python train_recognizer.py --setting {recorded}")
    return recognizer


def apply_speed_options(module: RestorationModule, args: argparse.Namespace) -> RestorationModule:
    """The network's fast path and channels_last (``net/speed.py``; same function); with ``--compile``
    (training), the whole training step compiled (``RestorationModule.compile_training``)."""
    prepare_for_speed(module.net, channels_last=args.channels_last)
    if getattr(args, "compile", False):
        use_compile_cache()
        module.compile_training()
    return module


class _NoAdverts(logging.Filter):
    """Drops Lightning's product tips ("Tip: ... try installing litlogger") from the run's output."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "Tip:" not in record.getMessage()


def quiet_expected_notices() -> None:
    """Silence what every run of these scripts would print to no purpose (entry points call it once):
    a resumed run's checkpoint folder is not empty, Lightning's own use of a deprecated
    torch.utils._pytree API, and Lightning's product tips."""
    warnings.filterwarnings("ignore", message=r"Checkpoint directory .* exists and is not empty")
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)")
    rank_zero_logger = logging.getLogger("lightning.pytorch.utilities.rank_zero")
    if not any(isinstance(f, _NoAdverts) for f in rank_zero_logger.filters):
        rank_zero_logger.addFilter(_NoAdverts())


TILE_HINT = "restore large images tile by tile with --tile 512 (or smaller)"


def is_out_of_memory(err: BaseException) -> bool:
    """A CUDA or CPU allocation failure (torch raises RuntimeError for the CPU's)."""
    if isinstance(err, (MemoryError, getattr(torch, "OutOfMemoryError", MemoryError))):
        return True
    text = str(err)
    return isinstance(err, RuntimeError) and ("can't allocate memory" in text or "out of memory" in text.lower())


def run_cli(run: Callable[[], int], out_of_memory_hint: str) -> int:
    """The entry points' wrapper: quiet the expected notices, call run(), and turn a user's mistake
    into a one-line message and exit status 2 (an out-of-memory error too, with
    ``out_of_memory_hint``: what to change). Ctrl-C, SIGTERM and SIGHUP end it with one line and status
    130, 143, 129 (``utils.signals``)."""
    quiet_expected_notices()

    def checked() -> int:
        try:
            return run()
        except USER_ERRORS as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
        except Exception as err:
            if not is_out_of_memory(err):
                raise
            first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            print(f"error: out of memory ({first_line[:160]}); {out_of_memory_hint}", file=sys.stderr)
            return 2

    return signals.run_stoppable(checked)

