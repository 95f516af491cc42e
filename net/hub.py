"""``python -m net.hub``: convert any checkpoint to a Hugging Face Hub folder, and upload it.

The format is ``net/checkpoint/hub_folder.py``; DFPIR's ``save_pretrained`` / ``from_pretrained`` and
its model card are ``net/dfpir_hub.py``; any other registered network (PromptIR) is written with its
architecture name and configuration, and without a prompt table if it takes no text prompts.
``python -m net.hub --ckpt FILE --out DIR [--push_to_hub USER/NAME]`` reads FILE in any format
(``net.checkpoint.read_checkpoint``), writes the folder with its model card, and uploads it.
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
from pathlib import Path

from huggingface_hub import HfApi, constants
from torch import nn

from net.checkpoint import CheckpointError, load_pretrained, read_checkpoint
from net.checkpoint.hub_folder import CARD_FILE, hub_reachable, write_hub_files
from net.dfpir import DFPIR
from net.prompts import BACKENDS, PromptError, PromptTable, build_prompt_table
from net.registry import NetworkError, NetworkSpec, model_names, resolve_network
from net.space import space_problem, write_space
from utils.tasks import prompt_set_names


# --------------------------------------------------------------------------------------- conversion
def _embedded_images(markdown: str) -> list[str]:
    """Relative image paths a markdown text embeds (![..](path))."""
    return [p for p in re.findall(r"!\[[^\]]*\]\(([^)\s]+)\)", markdown) if "://" not in p]


def convert(ckpt: str | Path, out: str | Path, *, model: str | None = None, prompt_set: str = "detailed",
            prompt_embeddings: str | Path | None = None, prompt_backend: str = "clip",
            results: str | Path | None = None) -> tuple[nn.Module, PromptTable | None]:
    """Any checkpoint of any registered network -> a Hub folder at ``out`` (which must be new or empty);
    returns the loaded network and its prompt table (None for a network without text prompts).

    The network (``net.registry.resolve_network``: recorded, ``model``, or recognised by its key
    layout) and the prompt table come from the checkpoint when it records them (this project's
    .ckpt, a Hub folder), else from the prompt options (authors' files, bare state dicts). A network
    without text prompts (PromptIR) gets no prompt table: the prompt options are not used.
    ``results``: a results.md embedded in the model card, with the pictures it shows.
    """
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise CheckpointError(f"--out {out} exists and is not an empty folder; choose a new folder or remove it")
    source = read_checkpoint(ckpt)
    network = resolve_network(model, source)
    net = network.build()
    load_pretrained(net, source)
    table, table_set = None, None
    if network.uses_text_prompts and source.prompt_table is not None:
        table, table_set = source.prompt_table, source.prompt_set
    elif network.uses_text_prompts:
        table, table_set = build_prompt_table(prompt_set, prompt_backend, prompt_embeddings), prompt_set
    card: dict[str, str] = {"source": f"`{Path(str(ckpt)).name}` ({source.format} format)"}
    images: list[Path] = []
    if results is not None:
        results = Path(results)
        if not results.is_file():
            raise CheckpointError(f"--results {results} does not exist (give the results.md of a test run)")
        card["results"] = results.read_text()
        images = [results.parent / p for p in _embedded_images(card["results"]) if (results.parent / p).is_file()]
    if isinstance(net, DFPIR):
        net.prompt_table, net.prompt_set = table, table_set
        net.save_pretrained(out, model_card_kwargs=card)
    else:
        out.mkdir(parents=True, exist_ok=True)
        write_hub_files(out, net.state_dict(), network.architecture, network.config, table, table_set)
        (out / CARD_FILE).write_text(_model_card(network, net, **card))
    for image in images:
        target = out / image.relative_to(results.parent)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(image, target)
    return net, table


def _model_card(network: NetworkSpec, net: nn.Module, source: str, results: str | None = None) -> str:
    """README.md of the Hub folder of a network other than DFPIR (DFPIR's: ``net/dfpir_hub.py``)."""
    params = sum(p.numel() for p in net.parameters())
    lines = [f"# {network.describe()}", "", f"Converted from {source} with the DFPIR code (`python -m net.hub`).", "",
             f"| architecture | {network.architecture} ({params:,} parameters) |", "| --- | --- |",
             f"| text prompts | {'yes' if network.uses_text_prompts else 'none (blind)'} |", "",
             "## Use", "", "```bash", "python test_3D_DFPIR.py --ckpt MODEL --data_root /data/dfpir",
             "python demo.py --ckpt MODEL --input photo.jpg --degradation auto",
             "```", ""]
    if results:
        lines += ["## Results", "", results.strip(), ""]
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m net.hub",
        description="Convert a DFPIR checkpoint (authors' .pth.tar, this project's .ckpt, a bare state dict) "
        "to a Hugging Face Hub folder (model.safetensors, prompt table, config, model card).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--ckpt", required=True, metavar="FILE", help="the checkpoint to convert")
    parser.add_argument("--out", required=True, metavar="DIR", help="the Hub folder to write (new or empty)")
    parser.add_argument("--model", default=None, choices=model_names(),
                        help="network for checkpoints that do not record theirs (authors' files; default: paper)")
    parser.add_argument("--prompt_set", default="detailed", choices=prompt_set_names(),
                        help="prompt set of a checkpoint without a prompt table (the 3D 'simple' checkpoint: simple)")
    parser.add_argument("--prompt_embeddings", default=None, metavar="FILE",
                        help="prompt-table file for a checkpoint without a prompt table "
                        "(python -m net.prompts --export)")
    parser.add_argument("--prompt_backend", default="clip", choices=list(BACKENDS),
                        help="how to compute the prompt table without a file")
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
        _, table = convert(args.ckpt, args.out, model=args.model, prompt_set=args.prompt_set,
                           prompt_embeddings=args.prompt_embeddings, prompt_backend=args.prompt_backend,
                           results=args.results)
    except (CheckpointError, PromptError, NetworkError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"wrote {args.out}/: {', '.join(sorted(p.name for p in Path(args.out).iterdir()))} "
          f"(prompts: {table.source if table is not None else 'none, the network takes no text prompts'})")
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
