"""The networks (DFPIR, PromptIR, BioIR and the registry of architectures with their training recipes), the
prompt table and checkpoint loading."""

from net.checkpoint import Checkpoint, CheckpointError, load_pretrained, read_checkpoint
from net.dfpir import DFPIR, DFPIRConfig
from net.promptir import PromptIR, PromptIRConfig
from net.prompts import PromptError, PromptTable, build_prompt_table
from net.recipe import PAPER_RECIPE, Recipe
from net.registry import (
    NetworkError,
    NetworkSpec,
    create_model,
    model_names,
    recipe_of,
    register_architecture,
    register_model,
    resolve_network,
)

# isort: split
# Registered after DFPIR and PromptIR: --model lists the models in registration order.
from net.bioir import BioIR, BioIRConfig

__all__ = [
    "BioIR",
    "BioIRConfig",
    "DFPIR",
    "DFPIRConfig",
    "PromptIR",
    "PromptIRConfig",
    "NetworkError",
    "NetworkSpec",
    "PAPER_RECIPE",
    "Recipe",
    "create_model",
    "model_names",
    "recipe_of",
    "register_architecture",
    "register_model",
    "resolve_network",
    "Checkpoint",
    "CheckpointError",
    "load_pretrained",
    "read_checkpoint",
    "PromptError",
    "PromptTable",
    "build_prompt_table",
]
