"""The Hugging Face Hub format: one folder (or Hub repository) that holds a trained network, of any
registered architecture.

```
<folder>/
  model.safetensors         the network's tensors under the authors' key names
  prompt_table.safetensors  "embeddings": (N, D) float32, row i = text code of degradation id i
                            (absent for a network without text prompts, e.g. PromptIR)
  config.json               {"architecture": NAME, "model_config": {...}, "prompt_set": "detailed",
                             "prompt_table": {"prompts": [N strings], "source": ...}}  (null: no prompts)
  README.md                 the model card (``net/hub_model.py``)
```

Like a ``.ckpt`` of this project it is self-contained (evaluating it needs neither CLIP nor a
prompt file), and reading it runs no code: tensors come from safetensors files, the rest is JSON.
``NAME`` is the registered architecture (``net/registry.py``); DFPIR's folders say ``"DFPIR"``, as
they always have.

A repo id is fetched from the local Hugging Face cache when it is there (so it works offline once
downloaded); otherwise the Hub is contacted only after a quick reachability check, so a machine
without internet gets a clear error at once instead of minutes of retries.
"""

from __future__ import annotations

import json
import re
import socket
from pathlib import Path
from urllib.parse import urlparse
from urllib.request import getproxies, proxy_bypass

import torch
from huggingface_hub import constants, snapshot_download
from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError
from safetensors import SafetensorError
from safetensors.torch import load_file
from safetensors.torch import save as save_safetensors

from net.checkpoint.record import UNNAMED_ARCHITECTURE, Checkpoint, CheckpointError, check_finite, metadata_field
from net.prompts import PromptError, PromptTable
from utils.outputs import atomic_write

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
PROMPTS_FILE = "prompt_table.safetensors"
HUB_FILES = (CONFIG_FILE, WEIGHTS_FILE, PROMPTS_FILE)
CARD_FILE = "README.md"
# config.json's "architecture" -> the registered name, where they differ (DFPIR's folders name the class).
_REGISTERED_NAMES = {"DFPIR": UNNAMED_ARCHITECTURE}
_HUB_NAMES = {registered: hub for hub, registered in _REGISTERED_NAMES.items()}
# "namespace/name" on the Hub; a path ending like a checkpoint file is never taken for a repo id.
_REPO_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")
_FILE_SUFFIXES = (".ckpt", ".pth", ".tar", ".pt", ".bin", ".safetensors", ".json")
_REACH_TIMEOUT_S = 3


# --------------------------------------------------------------------------------------- writing
def hub_architecture_name(architecture: str) -> str:
    """config.json's "architecture" of a registered architecture (see the module docstring)."""
    return _HUB_NAMES.get(architecture, architecture)


def write_hub_files(directory: str | Path, state_dict: dict[str, torch.Tensor], architecture: str,
                    model_config: dict, prompt_table: PromptTable | None, prompt_set: str | None) -> None:
    """model.safetensors, prompt_table.safetensors (not for a network without text prompts: ``prompt_table``
    None) and config.json into ``directory`` (which exists), each written atomically
    (``utils.outputs.atomic_write``: an earlier file is replaced whole or left unchanged).

    architecture: the registered name (config.json records :func:`hub_architecture_name`); prompt_table None: a
    network without text prompts (no prompt_table.safetensors, ``"prompt_table": null``).
    """
    directory = Path(directory)
    weights = {k: v.detach().cpu().contiguous() for k, v in state_dict.items()}
    atomic_write(directory / WEIGHTS_FILE, save_safetensors(weights, metadata={"format": "pt"}))
    if prompt_table is not None:
        atomic_write(directory / PROMPTS_FILE, save_safetensors({"embeddings": prompt_table.embeddings.contiguous()},
                                                                metadata={"format": "pt"}))
    config = {
        "architecture": hub_architecture_name(architecture),
        "model_config": model_config,
        "prompt_set": prompt_set,
        "prompt_table": None if prompt_table is None else {"prompts": list(prompt_table.prompts),
                                                           "source": prompt_table.source},
    }
    atomic_write(directory / CONFIG_FILE, json.dumps(config, indent=2) + "\n")


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
    """Read a Hub folder or repo id into a Checkpoint (format 'hub'); CheckpointError naming the problem.

    fetch_options: those of :func:`fetch_hub_folder` (revision, cache_dir, ...).
    """
    folder = fetch_hub_folder(ref, **fetch_options)
    missing = [name for name in (CONFIG_FILE, WEIGHTS_FILE) if not (folder / name).is_file()]
    if missing:
        raise CheckpointError(
            f"{ref} is a folder but not a DFPIR Hub folder (no {', '.join(missing)}): pass a checkpoint file "
            "inside it (e.g. last.ckpt), or a folder written by python -m net.hub / save_pretrained")
    try:
        config = json.loads((folder / CONFIG_FILE).read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise CheckpointError(
            f"{folder / CONFIG_FILE} is not a DFPIR Hub config ({type(err).__name__}: {err})") from err
    if not isinstance(config, dict):
        raise CheckpointError(f"{folder / CONFIG_FILE} is not a DFPIR Hub config (it holds a {type(config).__name__})")
    where = f"the {CONFIG_FILE}"
    architecture = metadata_field(folder, where, config, "architecture", str, required=True)
    model_config = metadata_field(folder, where, config, "model_config", dict, required=True)
    prompt_set = metadata_field(folder, where, config, "prompt_set", str)
    if "prompt_table" not in config:
        raise CheckpointError(f"{folder / CONFIG_FILE}: the {CONFIG_FILE} has no 'prompt_table' (null for a network "
                              "without text prompts): the folder was not written by python -m net.hub")
    table = metadata_field(folder, where, config, "prompt_table", dict)  # None: a network without text prompts
    state_dict = _read_safetensors(folder / WEIGHTS_FILE)
    check_finite(folder, state_dict)
    prompt_table = None if table is None else _read_prompt_table(folder, f"{where} 'prompt_table'", table)
    return Checkpoint(path=folder, state_dict=state_dict, format="hub",
                      architecture=_REGISTERED_NAMES.get(architecture, architecture), model_config=model_config,
                      prompt_table=prompt_table, prompt_set=prompt_set)


def _read_prompt_table(folder: Path, where: str, table: dict) -> PromptTable:
    """The prompt table a Hub folder's config describes (``table``) with its codes from prompt_table.safetensors."""
    prompts = metadata_field(folder, where, table, "prompts", list, required=True)
    source = metadata_field(folder, where, table, "source", str, required=True)
    if not (folder / PROMPTS_FILE).is_file():
        raise CheckpointError(f"{folder} is a folder but not a DFPIR Hub folder (no {PROMPTS_FILE}, which its "
                              f"{CONFIG_FILE} names): copy the whole folder again")
    embeddings = _read_safetensors(folder / PROMPTS_FILE).get("embeddings")
    if embeddings is None:
        raise CheckpointError(f"{folder / PROMPTS_FILE} has no 'embeddings' tensor")
    try:
        return PromptTable(prompts, embeddings, source)
    except PromptError as err:
        raise CheckpointError(f"{folder}: {err}") from err


def _read_safetensors(path: Path) -> dict[str, torch.Tensor]:
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as err:
        raise CheckpointError(f"{path} is not a readable safetensors file (truncated or another file?): {err}") from err
