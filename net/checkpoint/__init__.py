"""Every checkpoint format a DFPIR user meets, read and written without knowing any architecture.

Formats (tensors read with ``torch.load(..., weights_only=True)`` or safetensors: no code in a file
is ever run):

- ``authors``: the released ``.pth.tar`` files, a dict with ``state_dict`` (bare network keys),
  ``optimizer``, ``scheduler`` and ``epoch``;
- ``lightning``: this project's ``.ckpt`` files; the network's keys carry the LightningModule's
  ``net.`` prefix, and ``checkpoint["dfpir"]`` holds the network's architecture name and
  configuration (``net/registry.py``; files written before the registry hold no name: DFPIR) and
  the prompt table it was trained with (so evaluating it needs neither CLIP nor a prompt file).
  Another project's Lightning file with ``net.``-prefixed weights (PromptIR's released
  ``model.ckpt``) reads the same, without ``checkpoint["dfpir"]``: it names no network;
- ``state_dict``: a bare state dict (a ``module.`` prefix left by DataParallel/DDP is removed);
- ``hub``: a Hugging Face Hub folder or repo id (safetensors weights, config and prompt table).

Modules, by job (none imports a network; the networks and ``net/hub.py`` build on them):

- ``record.py``: :class:`Checkpoint` (what any file holds, normalised), :class:`CheckpointError`
  and the keys this project adds to a Lightning checkpoint;
- ``torch_file.py``: the three ``torch.save`` formats (authors', Lightning, bare state dict);
- ``hub_folder.py``: the Hub folder: its files, reading, writing and fetching a repo id;
- ``loading.py``: :func:`read_checkpoint` (any format) and strict loading (:func:`load_pretrained`).

A file that names no network is matched to a registered one by its key layout in
``net/registry.py`` (this package knows no architecture).

Loading is strict: a missing or unexpected key or a shape mismatch is an error that lists them.
(The authors' loader silently skips mismatched keys and evaluates a half-random network.)
"""

from net.checkpoint.loading import check_state_dict, load_pretrained, read_checkpoint
from net.checkpoint.record import (
    EXTRA_KEY,
    LIGHTNING_PREFIX,
    RUN_KEY,
    UNNAMED_ARCHITECTURE,
    Checkpoint,
    CheckpointError,
)

__all__ = [
    "EXTRA_KEY",
    "LIGHTNING_PREFIX",
    "RUN_KEY",
    "UNNAMED_ARCHITECTURE",
    "Checkpoint",
    "CheckpointError",
    "check_state_dict",
    "load_pretrained",
    "read_checkpoint",
]
