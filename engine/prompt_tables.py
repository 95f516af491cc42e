"""The prompt table a run uses: the checkpoint's own, else one built from the prompt options, else (for a
network without text prompts) the empty table."""

from __future__ import annotations

import sys

import torch

from net.checkpoint import Checkpoint
from net.prompts import PromptOptions, PromptTable, build_prompt_table
from utils.devices import resolve_device

NO_PROMPTS = "none (the network takes no text prompts)"  # the source of a network's empty prompt table


def no_prompt_table() -> PromptTable:
    """The empty prompt table of a network without text prompts (``uses_text_prompts = False``):
    no prompts, codes (0, 0); never stored in its checkpoints."""
    return PromptTable([], torch.zeros(0, 0), NO_PROMPTS)


def prompt_table_for(args: PromptOptions, checkpoint: Checkpoint | None, tasks: list[str],
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
        table = build_prompt_table(args.prompt_set, args.prompt_backend, args.prompt_embeddings,
                                   device=str(resolve_device(args.device)))
    table.covers(tasks)
    table.check_width(text_dim)
    return table
