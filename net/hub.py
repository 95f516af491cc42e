"""``python -m net.hub``: convert any checkpoint to a Hugging Face Hub folder, and upload it.

The format is ``net/checkpoint/hub_folder.py``; DFPIR's ``save_pretrained`` / ``from_pretrained`` and
its model card are ``net/dfpir_hub.py``. ``python -m net.hub --ckpt FILE --out DIR
[--push_to_hub USER/NAME]`` reads FILE in any format (``net.checkpoint.read_checkpoint``), writes
the folder with its model card, and uploads it.
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
from pathlib import Path

from huggingface_hub import HfApi, constants

from net.checkpoint import CheckpointError, load_pretrained, read_checkpoint
from net.checkpoint.hub_folder import hub_reachable
from net.dfpir import DFPIR
from net.prompts import BACKENDS, PromptError, build_prompt_table
from net.registry import DEFAULT_MODEL, NetworkError, model_names, resolve_network
from net.space import space_problem, write_space
from utils.cli_options import add_checkpoint_option, add_model_option, add_prompt_options, new_parser
from utils.tasks import prompt_set_names


# --------------------------------------------------------------------------------------- conversion
def _embedded_images(markdown: str) -> list[str]:
    """Relative image paths a markdown text embeds (![..](path))."""
    return [p for p in re.findall(r"!\[[^\]]*\]\(([^)\s]+)\)", markdown) if "://" not in p]


def convert(ckpt: str | Path, out: str | Path, *, model: str | None = None, prompt_set: str = "detailed",
            prompt_embeddings: str | Path | None = None, prompt_backend: str = "clip",
            results: str | Path | None = None) -> DFPIR:
    """Any checkpoint -> a Hub folder at ``out`` (which must be new or empty); returns the loaded network.

    The network (``net.registry.resolve_network``) and the prompt table come from the checkpoint when
    it records them (this project's .ckpt, a Hub folder), else from ``model`` (default paper) and the
    prompt options (authors' files, bare state dicts). The Hub format holds DFPIR networks only.
    ``results``: a results.md embedded in the model card, with the pictures it shows.
    """
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise CheckpointError(f"--out {out} exists and is not an empty folder; choose a new folder or remove it")
    source = read_checkpoint(ckpt)
    net = resolve_network(model, source).build()
    if not isinstance(net, DFPIR):
        raise NetworkError(f"{ckpt} holds a {type(net).__name__} network; the Hub format holds DFPIR networks only")
    load_pretrained(net, source)
    if source.prompt_table is not None:
        net.prompt_table, net.prompt_set = source.prompt_table, source.prompt_set
    else:
        net.prompt_table = build_prompt_table(prompt_set, prompt_backend, prompt_embeddings)
        net.prompt_set = prompt_set
    card: dict[str, str] = {"source": f"`{Path(str(ckpt)).name}` ({source.format} format)"}
    images: list[Path] = []
    if results is not None:
        results = Path(results)
        if not results.is_file():
            raise CheckpointError(f"--results {results} does not exist (give the results.md of a test run)")
        card["results"] = results.read_text()
        images = [results.parent / p for p in _embedded_images(card["results"]) if (results.parent / p).is_file()]
    net.save_pretrained(out, model_card_kwargs=card)
    for image in images:
        target = out / image.relative_to(results.parent)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(image, target)
    return net


def build_parser() -> argparse.ArgumentParser:
    parser = new_parser(
        "Convert a DFPIR checkpoint (authors' .pth.tar, this project's .ckpt, a bare state dict) to a Hugging Face "
        "Hub folder (model.safetensors, prompt table, config, model card).",
        prog="python -m net.hub",
    )
    add_checkpoint_option(parser)
    parser.add_argument("--out", required=True, metavar="DIR", help="the Hub folder to write (new or empty)")
    add_model_option(parser, model_names(), DEFAULT_MODEL)
    add_prompt_options(parser, prompt_set_names(), BACKENDS)
    parser.add_argument("--results", default=None, metavar="FILE",
                        help="results.md of a test run, embedded in the model card (with its comparison figures)")
    parser.add_argument("--push_to_hub", default=None, metavar="USER/NAME",
                        help="also upload the folder to this Hub repository (log in first: hf auth login)")
    parser.add_argument("--private", action="store_true", help="create the Hub repository as private")
    parser.add_argument("--space", default=None, metavar="DIR",
                        help="also write a Hugging Face Space serving app.py on the folder into DIR (net/space.py)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.space and (problem := space_problem(args.space)):
        print(f"error: {problem}", file=sys.stderr)
        return 2
    try:
        net = convert(args.ckpt, args.out, model=args.model, prompt_set=args.prompt_set,
                      prompt_embeddings=args.prompt_embeddings, prompt_backend=args.prompt_backend,
                      results=args.results)
    except (CheckpointError, PromptError, NetworkError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"wrote {args.out}/: {', '.join(sorted(p.name for p in Path(args.out).iterdir()))} "
          f"(prompts: {net.prompt_table.source})")
    if args.space:
        print(f"wrote the Space {write_space(args.out, args.space, args.push_to_hub)}/; push it with: "
              f"hf upload --repo-type space USER/NAME {args.space}")
    if args.push_to_hub:
        if not hub_reachable():
            print(f"error: {constants.ENDPOINT} cannot be reached; upload {args.out} later with "
                  f"hf upload {args.push_to_hub} {args.out}", file=sys.stderr)
            return 2
        api = HfApi()
        repo = api.create_repo(args.push_to_hub, private=args.private or None, exist_ok=True).repo_id
        api.upload_folder(repo_id=repo, folder_path=args.out, commit_message="DFPIR model (python -m net.hub)")
        print(f"pushed to {constants.ENDPOINT}/{repo}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
