"""The DFPIR network, its prompt table and checkpoint loading."""

from net.checkpoint import Checkpoint, CheckpointError, load_pretrained, read_checkpoint
from net.dfpir import DFPIR, PRESETS, DFPIRConfig
from net.prompts import PromptError, PromptTable, build_prompt_table

__all__ = [
    "DFPIR",
    "DFPIRConfig",
    "PRESETS",
    "Checkpoint",
    "CheckpointError",
    "load_pretrained",
    "read_checkpoint",
    "PromptError",
    "PromptTable",
    "build_prompt_table",
]
