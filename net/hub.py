"""The Hugging Face Hub format of DFPIR: one folder (or Hub repository) that holds a trained network.

```
<folder>/
  model.safetensors         the network's tensors under the authors' key names
  prompt_table.safetensors  "embeddings": (N, 512) float32, row i = text code of degradation id i
  config.json               {"architecture": "DFPIR", "model_config": {DFPIRConfig fields},
                             "prompt_set": "detailed", "prompt_table": {"prompts": [N strings], "source": ...}}
  README.md                 the model card (configuration, prompts, usage, results table if given)
```

Like a ``.ckpt`` of this project it is self-contained (evaluating it needs neither CLIP nor a
prompt file), and reading it runs no code: tensors come from safetensors files, the rest is JSON.

- Write: ``net.prompt_table = table; net.save_pretrained(dir)`` or ``net.push_to_hub(repo_id)``
  (huggingface_hub's ``PyTorchModelHubMixin``), or convert any checkpoint file:
  ``python -m net.hub --ckpt FILE --out DIR [--push_to_hub USER/NAME]``.
- Read: ``DFPIR.from_pretrained(dir_or_repo_id)``, or pass the folder or repo id wherever a
  checkpoint is accepted (``--ckpt``, ``--init_from``, the demo): ``net.checkpoint.read_checkpoint``
  turns it into the same ``Checkpoint`` record as a file, loaded as strictly.

A repo id is fetched from the local Hugging Face cache when it is there (so it works offline once
downloaded); otherwise the Hub is contacted only after a quick reachability check, so a machine
without internet gets a clear error at once instead of minutes of retries.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import socket
import sys
from pathlib import Path
from urllib.parse import urlparse
from urllib.request import getproxies, proxy_bypass

import torch
from huggingface_hub import HfApi, ModelCard, ModelCardData, constants, snapshot_download
from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from net.checkpoint import Checkpoint, CheckpointError, load_pretrained, read_checkpoint
from net.dfpir import DFPIR
from net.prompts import BACKENDS, PromptError, PromptTable, build_prompt_table
from net.registry import NetworkError, model_names, resolve_network
from net.space import space_problem, write_space
from utils.tasks import prompt_set_names

ARCHITECTURE = "DFPIR"
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
PROMPTS_FILE = "prompt_table.safetensors"
HUB_FILES = (CONFIG_FILE, WEIGHTS_FILE, PROMPTS_FILE)
CARD_FILE = "README.md"
# "namespace/name" on the Hub; a path ending like a checkpoint file is never taken for a repo id.
_REPO_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")
_FILE_SUFFIXES = (".ckpt", ".pth", ".tar", ".pt", ".bin", ".safetensors", ".json")
_REACH_TIMEOUT_S = 3


# --------------------------------------------------------------------------------------- writing
def hub_config(net: DFPIR) -> dict:
    """config.json of a network whose ``prompt_table`` is set."""
    return {
        "architecture": ARCHITECTURE,
        "model_config": net.config.to_dict(),
        "prompt_set": net.prompt_set,
        "prompt_table": {"prompts": list(net.prompt_table.prompts), "source": net.prompt_table.source},
    }


def write_hub_files(net: DFPIR, directory: Path) -> None:
    """model.safetensors, prompt_table.safetensors and config.json of ``net`` into ``directory``."""
    if net.prompt_table is None:
        raise ValueError("set net.prompt_table (and net.prompt_set) before save_pretrained/push_to_hub: "
                         "a Hub model carries the prompt codes it was trained with")
    directory = Path(directory)
    weights = {k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()}
    save_file(weights, str(directory / WEIGHTS_FILE), metadata={"format": "pt"})
    save_file({"embeddings": net.prompt_table.embeddings.contiguous()}, str(directory / PROMPTS_FILE),
              metadata={"format": "pt"})
    (directory / CONFIG_FILE).write_text(json.dumps(hub_config(net), indent=2) + "\n")


def model_card(net: DFPIR, card_data: ModelCardData, results: str | None = None,
               source: str | None = None) -> ModelCard:
    """README.md of a Hub folder.

    results: markdown shown under "Results" (e.g. a test run's results.md); source: where the weights came from.
    """
    cfg = net.config
    params = sum(p.numel() for p in net.parameters())
    prompts = "\n".join(f"| {i} | {p} |" for i, p in enumerate(net.prompt_table.prompts))
    lines = [
        "---", card_data.to_yaml(), "---", "",
        "# DFPIR", "",
        ("DFPIR (Degradation-Aware Feature Perturbation for All-in-One Image Restoration, Tian et al., CVPR 2025): "
         "one network that removes noise, rain, haze, motion blur and low light, steered by the CLIP text code "
         "of a degradation prompt."), "",
        *([f"Converted from {source}.", ""] if source else []),
        "| | |", "| --- | --- |",
        f"| architecture | {ARCHITECTURE} ({params:,} parameters) |",
        (f"| configuration | dim {cfg.dim}, blocks {cfg.num_blocks}, refinement {cfg.num_refinement_blocks}, "
         f"heads {cfg.heads} |"),
        f"| prompt set | {net.prompt_set or 'unknown'} |",
        f"| prompt codes | {net.prompt_table.source} |", "",
        "Prompts by degradation id (the codes are in `prompt_table.safetensors`):", "",
        "| id | prompt |", "| --- | --- |", prompts, "",
        "## Use", "",
        "With the DFPIR code (`MODEL` is this repository's id or a local copy of it):", "",
        "```bash",
        "python test_3D_DFPIR.py --ckpt MODEL --data_root /data/dfpir",
        "python demo.py --ckpt MODEL --degradation rain --input photo.jpg",
        "```", "",
        "```python",
        "from net import DFPIR",
        'net = DFPIR.from_pretrained("MODEL")  # strict, safetensors only',
        "code = net.prompt_table.embeddings[3][None]  # id 3: rain",
        "restored = net(image, code)  # image: (1, 3, H, W) in [0, 1], H and W multiples of 8",
        "```", "",
    ]
    if results:
        lines += ["## Results", "", results.strip(), ""]
    return ModelCard("\n".join(lines))


# --------------------------------------------------------------------------------------- reading
def is_hub_reference(ref: str | Path) -> bool:
    """Whether a checkpoint argument names a Hub folder (an existing directory) or a repo id."""
    path = Path(ref)
    if path.is_dir():
        return True
    text = str(ref)
    return not path.exists() and _REPO_ID.fullmatch(text) is not None and not text.endswith(_FILE_SUFFIXES)


def hub_reachable(timeout: float = _REACH_TIMEOUT_S) -> bool:
    """Whether the Hugging Face endpoint (``HF_ENDPOINT``), or the proxy to it, accepts a connection
    within ``timeout`` seconds."""
    url = urlparse(constants.ENDPOINT)
    proxy = getproxies().get(url.scheme) or getproxies().get("all")
    if proxy and not proxy_bypass(url.hostname or ""):
        url = urlparse(proxy if "://" in proxy else f"http://{proxy}")
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        socket.create_connection((url.hostname, port), timeout=timeout).close()
        return True
    except OSError:
        return False


def fetch_hub_folder(ref: str | Path, *, revision: str | None = None, cache_dir: str | Path | None = None,
                     force_download: bool = False, local_files_only: bool = False,
                     token: str | bool | None = None) -> Path:
    """A local folder holding the Hub files of ``ref`` (a folder, or a repo id: from the cache, else downloaded)."""
    if Path(ref).is_dir():
        return Path(ref)
    repo_id = str(ref)
    fetch = {"repo_id": repo_id, "revision": revision, "cache_dir": cache_dir, "token": token,
             "allow_patterns": [*HUB_FILES, CARD_FILE]}
    if not force_download:
        try:
            return Path(snapshot_download(**fetch, local_files_only=True))
        except LocalEntryNotFoundError:
            pass
    not_here = f"{repo_id} is not a local file or folder, and as a Hugging Face Hub repo id it"
    if local_files_only or constants.HF_HUB_OFFLINE:
        raise CheckpointError(f"{not_here} is not in the local cache (offline mode: HF_HUB_OFFLINE or "
                              "local_files_only); download it where there is internet, or pass a local folder")
    if not hub_reachable():
        raise CheckpointError(f"{not_here} cannot be fetched: {constants.ENDPOINT} cannot be reached. Download it "
                              f"where there is internet (hf download {repo_id} --local-dir DIR) and pass DIR")
    try:
        return Path(snapshot_download(**fetch, force_download=force_download))
    except (HfHubHTTPError, OSError, ValueError) as err:
        raise CheckpointError(f"{not_here} could not be fetched: {err}") from err


def read_hub_checkpoint(ref: str | Path, **fetch_options) -> Checkpoint:
    """Read a Hub folder or repo id into a Checkpoint (format 'hub'); CheckpointError naming the problem."""
    folder = fetch_hub_folder(ref, **fetch_options)
    missing = [name for name in HUB_FILES if not (folder / name).is_file()]
    if missing:
        raise CheckpointError(
            f"{ref} is a folder but not a DFPIR Hub folder (no {', '.join(missing)}): pass a checkpoint file "
            "inside it (e.g. last.ckpt), or a folder written by python -m net.hub / save_pretrained")
    try:
        config = json.loads((folder / CONFIG_FILE).read_text())
        architecture, model_config = config["architecture"], config["model_config"]
        table = config["prompt_table"]
        prompts, source = list(table["prompts"]), str(table["source"])
    except (json.JSONDecodeError, KeyError, TypeError, UnicodeDecodeError) as err:
        raise CheckpointError(
            f"{folder / CONFIG_FILE} is not a DFPIR Hub config ({type(err).__name__}: {err})") from err
    if architecture != ARCHITECTURE:
        raise CheckpointError(f"{ref} holds a {architecture!r} network; this code reads {ARCHITECTURE!r}")
    state_dict = _read_safetensors(folder / WEIGHTS_FILE)
    embeddings = _read_safetensors(folder / PROMPTS_FILE).get("embeddings")
    if embeddings is None:
        raise CheckpointError(f"{folder / PROMPTS_FILE} has no 'embeddings' tensor")
    try:
        prompt_table = PromptTable(prompts, embeddings, source)
    except PromptError as err:
        raise CheckpointError(f"{folder}: {err}") from err
    return Checkpoint(path=folder, state_dict=state_dict, format="hub", model_config=model_config,
                      prompt_table=prompt_table, prompt_set=config.get("prompt_set"))


def _read_safetensors(path: Path) -> dict[str, torch.Tensor]:
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as err:
        raise CheckpointError(f"{path} is not a readable safetensors file (truncated or another file?): {err}") from err


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
