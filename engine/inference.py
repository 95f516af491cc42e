"""Restoring one image with a checkpoint: the inference path of ``demo.py`` and ``app.py`` alike.

A :class:`Restorer` is built once from a checkpoint (any format, ``net/checkpoint/``), the network
it holds, a prompt table and, for ``auto``, a degradation recogniser. ``restore`` takes an (H, W, 3)
uint8 image of any size and a degradation by the demo's names (``noise25``, ``rain`` ...; or
``auto``) and returns the restored uint8 image, which the demo writes with ``write_png`` and the web
app offers for download: the same pixels for the same input and options.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch

from data.transforms import to_tensor
from engine.preflight import UsageError
from engine.prompt_tables import prompt_table_for
from engine.unused_options import note_unused_recognition
from net.checkpoint import Checkpoint, load_pretrained, read_checkpoint
from net.prompts import PromptOptions, PromptTable, text_codes
from net.recognizer import DegradationRecognizer
from net.recognizer.checkpoint import recognizer_for
from net.registry import NetworkSpec, resolve_network
from net.run_options import ModelOption
from net.speed import prepare_for_speed
from utils.config import default_of
from utils.devices import resolve_device
from utils.run_options import DeviceOption, TilingOptions
from utils.tasks import SETTINGS, TASK_BY_ID, TASKS, degradation_choices
from utils.tiling import restore_image, tile_problems

AUTO = "auto"
BLIND = "blind"  # what a network without text prompts restores: whatever degradation the image has
DEFAULT_OVERLAP = default_of(TilingOptions, "tile_overlap")


@dataclass(frozen=True, kw_only=True)
class RestorerOptions(DeviceOption, ModelOption, PromptOptions):
    """--device, --model and the prompt options of a checkpoint without a prompt table (demo, web app):
    the options :func:`open_restorer` reads, with ``ckpt`` and ``recognizer``."""


def setting_of(checkpoint: Checkpoint, recognizer: DegradationRecognizer | None) -> str | None:
    """The setting (3D, 5D) the checkpoint records, else the recogniser's, else None (authors' files)."""
    return (checkpoint.run_config or {}).get("setting") or (recognizer.setting if recognizer else None)


@dataclass
class Restoration:
    """What :meth:`Restorer.restore` returns.

    image:         (H, W, 3) uint8, the input's size.
    degradation:   the degradation restored (the demo's name; the recogniser's choice for ``auto``;
                   ``blind`` for a network without text prompts).
    probabilities: for ``auto``, the recogniser's probability of each degradation it knows (by name), else None.
    seconds:       the time it took on this device (recognition and restoration).
    """

    image: np.ndarray
    degradation: str
    probabilities: dict[str, float] | None
    seconds: float


class Restorer:
    """A network ready to restore images, its prompt codes and (optionally) a recogniser, on one device."""

    def __init__(self, checkpoint: Checkpoint, network: NetworkSpec, table: PromptTable,
                 recognizer: DegradationRecognizer | None = None, device: torch.device | str = "cpu"):
        self.device = torch.device(device)
        net = network.build()
        load_pretrained(net, checkpoint)
        self.net = prepare_for_speed(net).to(self.device).eval()  # the fast path, as evaluation runs it
        self.network = network
        self.uses_text_prompts = network.uses_text_prompts  # False: blind, the degradation asked for is not used
        self.table = table
        # Row i: the code of degradation id i (net.prompts.text_codes); None: blind.
        self.codes = table.embeddings.to(self.device) if self.uses_text_prompts else None
        self.recognizer = recognizer.to(self.device).eval() if recognizer is not None else None
        self.setting = setting_of(checkpoint, recognizer)
        self._task_of = degradation_choices()
        self._name_of = {task: name for name, task in self._task_of.items()}

    @property
    def degradations(self) -> list[str]:
        """The degradations to offer by name: the setting's training tasks (when the checkpoint or the
        recogniser records the setting) that the prompt table has codes for (a network without text
        prompts: all of the setting's; it restores each blindly)."""
        trained = SETTINGS[self.setting].train_repeats if self.setting in SETTINGS else TASKS
        return [name for name, task in self._task_of.items()
                if task in trained and (not self.uses_text_prompts or TASKS[task].de_id < len(self.table.prompts))]

    def restore(self, image: np.ndarray, degradation: str = AUTO, tile: int | None = None,
                overlap: int = DEFAULT_OVERLAP) -> Restoration:
        """Restore an (H, W, 3) uint8 image; ``degradation`` by the demo's names or ``auto`` (the recogniser).

        tile: restore tile by tile (bounded memory), ``overlap`` pixels shared between tiles; None: whole.
        UsageError / PromptError (one line) for ``auto`` without a recogniser, an unknown degradation, a
        degradation without a prompt code, or bad tile options.
        """
        if tile is not None and (problems := tile_problems(tile, overlap, self.net.size_multiple)):
            raise UsageError("; ".join(problems))
        start = time.perf_counter()
        img = to_tensor(image)[None].to(self.device)
        probabilities = None
        if self.codes is None:  # blind: no degradation, no code
            degradation, code = BLIND, None
        else:
            if degradation == AUTO:
                if self.recognizer is None:
                    raise UsageError("auto needs a degradation recogniser (train one with: python train_recognizer.py)")
                predicted, probs = self.recognizer.predict(img)
                degradation = self._name_of[TASK_BY_ID[int(predicted)].name]
                probabilities = {self._name_of[task]: float(p) for task, p in
                                 zip(self.recognizer.task_names, probs[0].tolist(), strict=True)}
            if degradation not in self._task_of:
                raise UsageError(f"unknown degradation {degradation!r}; choose from {', '.join(self._task_of)}")
            task = self._task_of[degradation]
            self.table.covers([task])
            code = text_codes(self.codes, torch.tensor([TASKS[task].de_id]))
        with torch.inference_mode():
            restored = restore_image(lambda x: self.net(x, code), img, self.net.size_multiple, tile, overlap,
                                     min_size=getattr(self.net, "min_size", 0))
        return Restoration(_to_uint8(restored), degradation, probabilities, time.perf_counter() - start)


def _to_uint8(restored: torch.Tensor) -> np.ndarray:
    """(1, 3, H, W) float, not clipped -> (H, W, 3) uint8, rounded."""
    return np.round(restored[0].clamp(0, 1).permute(1, 2, 0).cpu().numpy() * 255.0).astype(np.uint8)


def open_restorer(args: RestorerOptions) -> Restorer:
    """The Restorer of ``args.ckpt`` and the recogniser file ``args.recognizer`` (or None) with the options
    of :class:`RestorerOptions`; every degradation it offers gets its prompt code (for the web app)."""
    checkpoint = read_checkpoint(args.ckpt)
    network = resolve_network(args.model, checkpoint)
    note_unused_recognition(args, network)
    model = (recognizer_for(args.recognizer, None, checkpoint)
             if args.recognizer is not None and network.uses_text_prompts else None)
    setting = setting_of(checkpoint, model)
    tasks = list(SETTINGS[setting].train_repeats) if setting in SETTINGS else []
    table = prompt_table_for(args, checkpoint, tasks, network.text_dim)
    return Restorer(checkpoint, network, table, model, resolve_device(args.device))
