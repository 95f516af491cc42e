"""``python -m net.hub``: convert any checkpoint to a Hugging Face Hub folder, and upload it.

The format is ``net/checkpoint/hub_folder.py``; saving, loading and the model card of every registered
network are ``net/hub_model.py`` (one path: a network is written with its architecture name and
configuration, and without a prompt table if it takes no text prompts).
``python -m net.hub --ckpt FILE --out DIR [--push_to_hub USER/NAME]`` reads FILE in any format
(``net.checkpoint.read_checkpoint``), writes the folder with its model card, and uploads it. A
non-empty ``--out`` is refused unless ``--overwrite`` is given, which replaces the files the
conversion writes (atomically, each moved into place once all are written) and keeps every other
file of the folder.
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import NamedTuple

from huggingface_hub import HfApi, constants
from torch import nn

from net.checkpoint import CheckpointError, load_pretrained, read_checkpoint
from net.checkpoint.hub_folder import CARD_FILE, HUB_FILES, hub_reachable
from net.hub_model import save_pretrained
from net.prompts import PromptError, PromptOptions, PromptTable, build_prompt_table
from net.registry import NetworkError, resolve_network
from net.run_options import ModelOption, checkpoint_option
from net.space import check_space_dir, write_space
from utils.config import build_parser as build_config_parser
from utils.config import opt, read_command_line, resolve
from utils.outputs import OutputError, check_not_input, check_output_dir, check_separate_folders, staged_folder
from utils.run_options import overwrite_option


# --------------------------------------------------------------------------------------- conversion
def _embedded_images(markdown: str) -> list[str]:
    """Relative image paths a markdown text embeds (![..](path))."""
    return [p for p in re.findall(r"!\[[^\]]*\]\(([^)\s]+)\)", markdown) if "://" not in p]


def _results_images(results: Path, markdown: str) -> list[PurePath]:
    """The pictures ``markdown`` (the text of ``results``) embeds that are files inside the results folder,
    relative to it. One that leaves the folder (``../x.png``, an absolute path, a link leading out) is
    skipped with a warning: it is never read nor copied."""
    folder = results.parent.resolve()
    images = []
    for name in _embedded_images(markdown):
        source = (results.parent / name).resolve()
        if PurePath(name).is_absolute() or not source.is_relative_to(folder):
            print(f"warning: --results {results} embeds {name}, which is not inside {results.parent}; "
                  "not copied into --out", file=sys.stderr)
        elif source.is_file():
            images.append(source.relative_to(folder))
    return images


def _check_out(out: Path, overwrite: bool, inputs: list[Path]) -> None:
    """Refuse ``out`` before converting: a file, unwritable, or (without ``overwrite``) a non-empty folder;
    with ``overwrite``, a Hub file there that is one of the ``inputs`` (the checkpoint's own files)."""
    check_output_dir(out)
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise OutputError(f"--out {out} exists and is not an empty folder; pass --overwrite to replace the Hub "
                          "files in it (its other files are kept), or choose a new folder")
    for name in (*HUB_FILES, CARD_FILE):
        check_not_input(out / name, inputs)


class Converted(NamedTuple):
    """What :func:`convert` wrote: the loaded network, its prompt table (None: it takes no text prompts)
    and the files of the Hub folder it wrote, relative to it (the only ones ``--push_to_hub`` uploads)."""

    net: nn.Module
    table: PromptTable | None
    files: list[str]


def convert(ckpt: str | Path, out: str | Path, *, model: str | None = None, prompt_set: str = "detailed",
            prompt_embeddings: str | Path | None = None, prompt_backend: str = "clip",
            results: str | Path | None = None, overwrite: bool = False) -> Converted:
    """Any checkpoint of any registered network -> a Hub folder at ``out`` (new or empty; ``overwrite``:
    its Hub files are replaced, its other files kept); returns the loaded network, its prompt table
    (None for a network without text prompts) and the files written. ``out`` is checked before the
    checkpoint is read.

    The network (``net.registry.resolve_network``: recorded, ``model``, or recognised by its key
    layout) and the prompt table come from the checkpoint when it records them (this project's
    .ckpt, a Hub folder), else from the prompt options (authors' files, bare state dicts). A network
    without text prompts (PromptIR) gets no prompt table: the prompt options are not used.
    ``results``: a results.md embedded in the model card, with the pictures it shows.
    """
    out = Path(out)
    _check_out(out, overwrite, [Path(ckpt), *(Path(ckpt) / name for name in HUB_FILES)])
    source = read_checkpoint(ckpt)
    network = resolve_network(model, source)
    net = network.build()
    load_pretrained(net, source)
    table, table_set = None, None
    if network.uses_text_prompts and source.prompt_table is not None:
        table, table_set = source.prompt_table, source.prompt_set
    elif network.uses_text_prompts:
        table, table_set = build_prompt_table(prompt_set, prompt_backend, prompt_embeddings), prompt_set
    card_results: str | None = None
    images: list[PurePath] = []
    if results is not None:
        results = Path(results)
        if not results.is_file():
            raise CheckpointError(f"--results {results} does not exist (give the results.md of a test run)")
        card_results = results.read_text()
        images = _results_images(results, card_results)
    with staged_folder(out) as staging:
        save_pretrained(staging, net, network, table, table_set, results=card_results,
                        source=f"`{Path(str(ckpt)).name}` ({source.format} format)")
        for image in images:
            (staging / image).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(results.parent / image, staging / image)
        files = sorted(path.relative_to(staging).as_posix() for path in staging.rglob("*") if path.is_file())
    return Converted(net, table, files)


@dataclass(frozen=True, kw_only=True)
class HubConfig(ModelOption, PromptOptions):
    """``python -m net.hub``'s options (the network's and the prompts' shared with the other commands)."""

    ckpt: str = checkpoint_option()
    out: str = opt("--out", default=None, required=True, metavar="DIR", help="the Hub folder to write (new or empty)")
    overwrite: bool = overwrite_option("the Hub files (and --space files) in a non-empty --out (other files are kept)")
    results: str | None = opt("--results", default=None, metavar="FILE",
                              help="results.md of a test run, embedded in the model card (with its comparison figures)")
    push_to_hub: str | None = opt("--push_to_hub", default=None, metavar="USER/NAME",
                                  help="also upload the folder to this Hub repository (log in first: hf auth login)")
    private: bool = opt("--private", default=False, help="create the Hub repository as private")
    space: str | None = opt("--space", default=None, metavar="DIR",
                            help="also write a Hugging Face Space serving app.py on the folder into DIR (net/space.py)")


def build_parser() -> argparse.ArgumentParser:
    return build_config_parser(
        HubConfig,
        "Convert a DFPIR checkpoint (authors' .pth.tar, this project's .ckpt, a bare state dict) to a Hugging Face "
        "Hub folder (model.safetensors, prompt table, config, model card).",
        prog="python -m net.hub",
    )


def main(argv: list[str] | None = None) -> int:
    args = resolve(HubConfig, read_command_line(build_parser(), HubConfig, argv))
    try:
        check_separate_folders(("--out", args.out), ("--space", args.space))
        if args.space:
            check_space_dir(args.space, args.overwrite)  # before converting
        converted = convert(args.ckpt, args.out, model=args.model, prompt_set=args.prompt_set,
                            prompt_embeddings=args.prompt_embeddings, prompt_backend=args.prompt_backend,
                            results=args.results, overwrite=args.overwrite)
        table = converted.table
        print(f"wrote {args.out}/: {', '.join(converted.files)} "
              f"(prompts: {table.source if table is not None else 'none, the network takes no text prompts'})")
        if args.space:
            print(f"wrote the Space {write_space(args.out, args.space, args.push_to_hub, args.overwrite)}/; "
                  f"push it with: hf upload --repo-type space USER/NAME {args.space}")
    except (CheckpointError, PromptError, NetworkError, OutputError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if args.push_to_hub:
        if not hub_reachable():
            print(f"error: {constants.ENDPOINT} cannot be reached; upload {args.out} later with "
                  f"hf upload {args.push_to_hub} {args.out}", file=sys.stderr)
            return 2
        api = HfApi()
        repo = api.create_repo(args.push_to_hub, private=args.private or None, exist_ok=True).repo_id
        # Only what this conversion wrote: other files of a reused --out (kept by --overwrite) stay private.
        api.upload_folder(repo_id=repo, folder_path=args.out, allow_patterns=converted.files,
                          commit_message="DFPIR model (python -m net.hub)")
        print(f"pushed to {constants.ENDPOINT}/{repo}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
