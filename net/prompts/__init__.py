"""Degradation prompts and the prompt table that steers DFPIR (docs/protocol.md section 2).

The prompt of each task in each prompt set ('detailed', 'simple') is part of the task's record
(``utils/tasks.py``); :func:`prompt_list` orders a set's prompts by degradation id.

A prompt table maps each degradation id to the 512-d CLIP text feature of its prompt. It is built
once (then CLIP is freed), stored in every checkpoint this project writes, and indexed by
degradation id during training and testing: there is no CLIP forward per step.

Backends that compute a table:

- ``clip``: open_clip "ViT-B-32" with OpenAI's weights (pretrained tag "openai", QuickGELU),
  ``encode_text`` of each tokenised prompt alone (a batch of one, as the authors' scripts), the raw
  (not normalised) feature, computed in float16 as the authors did on CUDA, then cast to float32.
  The permutation inside every DGPB is a sort of a projection of this feature: a float32 feature
  (up to 4.5e-3 away) gives other permutations and another network, so the released checkpoints
  need the float16 features.
- ``file``: a prompt-table file given by the user (``--prompt_embeddings FILE``), a ``torch.save``d
  dict {prompt string: 512-d tensor}; written by ``python -m net.prompts --export FILE``.
- ``offline``: the same open_clip text tower with a fixed-seed random initialisation. For tests and
  demos without internet only: a network trained with it is steered by meaningless (but fixed and
  distinct) codes, and it is never chosen silently.
- ``auto``: ``clip`` when its weights can be had, otherwise ``offline`` with a loud warning
  (used by the quick start, which must run offline).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import logging
import random
import socket
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from net.dgpb import TEXT_DIM
from utils.config import Config, add_option, new_parser, opt
from utils.outputs import OutputError, atomic_write, check_output
from utils.run_options import overwrite_option
from utils.safe_load import load_error_text, text_kind
from utils.tasks import SETTINGS, TASK_BY_ID, TASKS, prompt_set_names, prompts_of

CLIP_MODEL = "ViT-B-32"
CLIP_PRETRAINED = "openai"
OFFLINE_SEED = 0
BACKENDS = ("clip", "offline", "auto")

class PromptError(RuntimeError):
    """A prompt table could not be built; the message says which option to use instead."""


def text_codes(codes: torch.Tensor | None, de_ids: torch.Tensor) -> torch.Tensor | None:
    """The one mapping from degradation ids to what a network's forward takes as ``text_code``.

    codes: (N, D), row i the code of degradation id i (a prompt table's embeddings), or None for a
    network without text prompts (blind: the ids are not used); de_ids: (B,) int -> (B, D) on the
    device of ``codes``, or None. No range check (no host sync in a compiled training step): a
    table is checked to cover the run's tasks when it is built (:meth:`PromptTable.covers`).
    """
    return None if codes is None else codes[de_ids.to(codes.device)]


@dataclass
class PromptTable:
    """Text codes by degradation id.

    prompts:    prompts[de_id] is the prompt string of degradation id de_id.
    embeddings: (N, 512) float32, row de_id is the text code of prompts[de_id].
    source:     how the codes were computed (recorded in checkpoints).
    """

    prompts: list[str]
    embeddings: torch.Tensor
    source: str

    def __post_init__(self) -> None:
        if self.embeddings.ndim != 2 or self.embeddings.shape[0] != len(self.prompts):
            raise PromptError(
                f"prompt table: {len(self.prompts)} prompts but embeddings of shape {tuple(self.embeddings.shape)}"
            )
        if not self.embeddings.is_floating_point():
            raise PromptError(f"prompt table ({self.source}): the codes are {self.embeddings.dtype} numbers; CLIP "
                              "text features are floating point (re-export with python -m net.prompts --export)")
        self.embeddings = self.embeddings.detach().float().cpu()
        bad = [p for p, row in zip(self.prompts, self.embeddings, strict=True) if not torch.isfinite(row).all()]
        if bad:
            raise PromptError(f"prompt table ({self.source}): the code of {bad} holds NaN or infinite values; "
                              "re-export it with python -m net.prompts --export")

    def lookup(self, de_ids: torch.Tensor) -> torch.Tensor:
        """de_ids: (B,) int -> text codes (B, D) float32 on the device of de_ids (:func:`text_codes`), after
        checking every id has a prompt (PromptError)."""
        if int(de_ids.max()) >= len(self.prompts) or int(de_ids.min()) < 0:
            raise PromptError(f"degradation id out of range: this prompt table has ids 0..{len(self.prompts) - 1}")
        return text_codes(self.embeddings.to(de_ids.device), de_ids)

    def covers(self, task_names: list[str]) -> None:
        """Raise PromptError if a task's degradation id has no prompt in this table."""
        missing = [n for n in task_names if TASKS[n].de_id >= len(self.prompts)]
        if missing:
            raise PromptError(
                f"the prompt table ({self.source}) has no prompt for {missing}; the 'simple' prompt set covers "
                "only the 3D tasks: use --prompt_set detailed"
            )

    def check_width(self, text_dim: int) -> None:
        """Raise PromptError unless every code has the network's width ``text_dim`` (512 for CLIP ViT-B/32)."""
        if self.embeddings.shape[1] != text_dim:
            raise PromptError(f"prompt table ({self.source}): codes of length {self.embeddings.shape[1]}, but the "
                              f"network takes {text_dim}-d CLIP text features; use a file written by "
                              "python -m net.prompts --export")

    def to_dict(self) -> dict:
        """For checkpoints: plain types and one tensor, loadable with weights_only=True."""
        return {"prompts": list(self.prompts), "embeddings": self.embeddings.clone(), "source": self.source}

    @classmethod
    def from_dict(cls, d: dict) -> PromptTable:
        return cls(prompts=list(d["prompts"]), embeddings=d["embeddings"], source=str(d["source"]))


def prompt_list(prompt_set: str) -> list[str]:
    """The prompts of a set, indexed by degradation id (each task record's prompt in the set)."""
    try:
        return prompts_of(prompt_set)
    except KeyError:
        raise PromptError(f"unknown prompt set {prompt_set!r}; choose from {prompt_set_names()}") from None
    except ValueError as err:
        raise PromptError(str(err)) from None


def _clip_weights_available() -> bool:
    """True when CLIP's weights are in the local cache or their host answers (checked quickly)."""
    import open_clip
    from huggingface_hub import try_to_load_from_cache

    repo = open_clip.get_pretrained_cfg(CLIP_MODEL, CLIP_PRETRAINED).get("hf_hub", "").strip("/")
    for filename in ("open_clip_model.safetensors", "open_clip_pytorch_model.bin"):
        if repo and isinstance(try_to_load_from_cache(repo, filename), str):
            return True
    try:
        socket.create_connection(("huggingface.co", 443), timeout=3).close()
        return True
    except OSError:
        return False


def _encode(model, prompts: list[str], device: torch.device) -> torch.Tensor:
    """``model.encode_text`` of each prompt alone (a batch of one, as the authors' scripts did: float16
    GEMMs may round differently with the batch size) -> (N, 512) float32 on the CPU."""
    import open_clip

    tokenizer = open_clip.get_tokenizer(CLIP_MODEL)
    with torch.no_grad():
        return torch.cat([model.encode_text(tokenizer([prompt]).to(device)).float().cpu() for prompt in prompts])


def encode_with_clip(prompts: list[str], device: str | torch.device | None = None) -> torch.Tensor:
    """CLIP ViT-B/32 (OpenAI weights, QuickGELU) text features in float16 -> (N, 512) float32.

    Runs on CUDA when present (as the authors did), else in float16 on the CPU.
    """
    import open_clip

    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    advice = (
        "Give a prompt-table file with --prompt_embeddings FILE (make it once on a machine with internet: "
        "python -m net.prompts --export FILE --prompt_set detailed), or, for tests and demos only, "
        "--prompt_backend offline."
    )
    if not _clip_weights_available():
        raise PromptError(f"CLIP {CLIP_MODEL} '{CLIP_PRETRAINED}' weights are not cached and huggingface.co "
                          f"cannot be reached. {advice}")
    try:
        model = open_clip.create_model(
            CLIP_MODEL, pretrained=CLIP_PRETRAINED, force_quick_gelu=True, precision="fp16", device=device
        )
    except Exception as err:  # download and cache errors come in many types
        raise PromptError(f"could not load CLIP {CLIP_MODEL} '{CLIP_PRETRAINED}' weights ({err}). {advice}") from err
    model.eval()
    features = _encode(model, prompts, device)
    del model
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return features


def encode_offline(prompts: list[str], seed: int = OFFLINE_SEED) -> torch.Tensor:
    """The CLIP ViT-B/32 text tower with a fixed-seed random initialisation -> (N, 512) float32.

    Deterministic for a given seed and PyTorch version; float32 on the CPU. Not CLIP's features.
    """
    return _encode_offline_cached(tuple(prompts), seed).clone()


@functools.lru_cache(maxsize=4)
def _encode_offline_cached(prompts: tuple[str, ...], seed: int) -> torch.Tensor:
    import open_clip

    logging.disable(logging.WARNING)  # open_clip warns that no pretrained weights were loaded: intended here
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = open_clip.create_model(CLIP_MODEL, pretrained=None, force_quick_gelu=True)
    finally:
        logging.disable(logging.NOTSET)
    return _encode(model.eval(), list(prompts), torch.device("cpu"))


def load_prompt_file(path: str | Path, prompts: list[str]) -> torch.Tensor:
    """Read a prompt-table file ({prompt: 512-d tensor}) -> (N, 512) float32 rows for ``prompts``."""
    path = Path(path)
    if not path.is_file():
        raise PromptError(f"prompt-table file {path} does not exist (make one with python -m net.prompts --export)")
    with open(path, "rb") as file:
        kind = text_kind(file.read(64))
    if kind is not None:
        raise PromptError(f"prompt-table file {path} is {kind}, not a file torch.save wrote; make one with "
                          "python -m net.prompts --export FILE")
    try:
        table = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise PromptError(f"{path} is not a prompt-table file readable by torch.load ({load_error_text(err)})") from err
    if not isinstance(table, dict) or not all(isinstance(k, str) and torch.is_tensor(v) for k, v in table.items()):
        raise PromptError(f"{path} must hold a dict {{prompt string: 512-d tensor}}")
    missing = [p for p in dict.fromkeys(prompts) if p not in table]
    if missing:
        raise PromptError(f"{path} has no embedding for the prompt(s) {missing}; it has {list(table)}")
    problems = []
    for prompt in dict.fromkeys(prompts):
        code = table[prompt]
        if not code.is_floating_point():
            problems.append(f"{prompt!r} has {code.dtype} values, not floating point")
        elif not torch.isfinite(code).all():
            problems.append(f"{prompt!r} holds NaN or infinite values")
        elif code.numel() != TEXT_DIM or code.squeeze().ndim != 1:
            problems.append(f"{prompt!r} has shape {tuple(code.shape)}, not a {TEXT_DIM}-d vector")
    if problems:
        raise PromptError(f"prompt-table file {path} is unusable: {'; '.join(problems)}. Write it again with "
                          "python -m net.prompts --export FILE")
    return torch.stack([table[p].detach().float().reshape(-1) for p in prompts])


def save_prompt_file(path: str | Path, table: PromptTable) -> None:
    """Write {prompt: 512-d float32 tensor} (the ``--prompt_embeddings`` format), atomically
    (``utils.outputs.atomic_write``: an earlier file is replaced whole or left unchanged)."""
    codes = {p: e.clone() for p, e in zip(table.prompts, table.embeddings, strict=True)}
    atomic_write(path, lambda file: torch.save(codes, file))


@contextlib.contextmanager
def preserved_random_streams() -> Iterator[None]:
    """Leave the global random streams (Python, NumPy, torch CPU and CUDA) as they were on entry.

    Building CLIP draws a random initialisation (then overwritten by its weights) from the global
    torch stream; without this, the network built after the prompt table would get initial weights
    that depend on the prompt backend instead of on the seed alone.
    """
    python_state, numpy_state = random.getstate(), np.random.get_state()
    cuda_devices = list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []
    try:
        with torch.random.fork_rng(devices=cuda_devices):
            yield
    finally:
        random.setstate(python_state)
        np.random.set_state(numpy_state)


def build_prompt_table(
    prompt_set: str = "detailed",
    backend: str = "clip",
    embeddings_file: str | Path | None = None,
    device: str | torch.device | None = None,
) -> PromptTable:
    """Compute the prompt table of a prompt set; ``embeddings_file`` takes precedence over ``backend``.

    The global random streams are left as they were (:func:`preserved_random_streams`), so a network
    built afterwards gets the same initial weights whatever the backend.
    """
    with preserved_random_streams():
        return _compute_prompt_table(prompt_set, backend, embeddings_file, device)


def _compute_prompt_table(
    prompt_set: str, backend: str, embeddings_file: str | Path | None, device: str | torch.device | None
) -> PromptTable:
    prompts = prompt_list(prompt_set)
    if embeddings_file is not None:
        return PromptTable(prompts, load_prompt_file(embeddings_file, prompts), f"file {Path(embeddings_file).name}")
    if backend not in BACKENDS:
        raise PromptError(f"unknown prompt backend {backend!r}; choose from {list(BACKENDS)}")
    if backend in ("clip", "auto"):
        try:
            return PromptTable(prompts, encode_with_clip(prompts, device), f"clip {CLIP_MODEL} {CLIP_PRETRAINED} fp16")
        except PromptError as err:
            if backend == "clip":
                raise
            print(
                f"WARNING: CLIP is not available: {err}\nFalling back to the OFFLINE prompt encoder "
                "(random-initialised CLIP text tower): fine for a demo, not for real results.",
                file=sys.stderr,
            )
    return PromptTable(prompts, encode_offline(prompts), f"offline random-init {CLIP_MODEL} seed {OFFLINE_SEED}")


@dataclass(frozen=True, kw_only=True)
class PromptOptions(Config):
    """The prompt options of every command that may build a prompt table (a checkpoint's own table wins).
    The prompt sets offered are the setting's (context ``{"setting": "3D"}``), else every one."""

    prompt_set: str = opt("--prompt_set", default="detailed", group="prompts",
                          choices=lambda context: (SETTINGS[context["setting"]].prompt_sets()
                                                   if context.get("setting") else prompt_set_names()),
                          help="degradation prompts, unless a checkpoint brings its prompt table (the 3D 'simple' "
                          "checkpoint uses 'simple')")
    prompt_embeddings: str | None = opt("--prompt_embeddings", default=None, metavar="FILE", group="prompts",
                                        help="prompt-table file ({prompt: 512-d tensor}) instead of running CLIP; "
                                        "make one with: python -m net.prompts --export FILE")
    prompt_backend: str = opt("--prompt_backend", default="clip", choices=BACKENDS, group="prompts",
                              help="how to compute prompt codes without a file: CLIP (needs its weights once), "
                              "offline (random-init text tower: tests/demos only), auto (CLIP, else offline with a "
                              "warning)")


def describe_tasks(table: PromptTable) -> list[str]:
    """One line per degradation id: 'id task: prompt'."""
    return [f"{i} {TASK_BY_ID[i].name}: {p}" for i, p in enumerate(table.prompts)]


@dataclass(frozen=True, kw_only=True)
class ExportOptions(Config):
    overwrite: bool = overwrite_option("an existing --export file")


def build_parser() -> argparse.ArgumentParser:
    parser = new_parser("Compute a prompt table once and write it as a --prompt_embeddings file.",
                        prog="python -m net.prompts")
    parser.add_argument("--export", required=True, metavar="FILE", help="where to write the prompt-table file")
    add_option(parser, PromptOptions, "prompt_set")
    add_option(parser, PromptOptions, "prompt_backend")
    parser.add_argument("--device", default=None, help="device for CLIP (default: cuda if present, else cpu)")
    add_option(parser, ExportOptions, "overwrite")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Export a prompt table; exit status 2 with one line for a user's mistake (an existing --export
    without --overwrite, an unwritable path: refused before CLIP is loaded)."""
    args = build_parser().parse_args(argv)
    try:
        check_output(args.export, overwrite=args.overwrite)
        table = build_prompt_table(args.prompt_set, args.prompt_backend, device=args.device)
        save_prompt_file(args.export, table)
    except (PromptError, OutputError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"wrote {args.export}: {len(table.prompts)} prompts, source: {table.source}")
    for line in describe_tasks(table):
        print(f"  {line}")
    return 0
