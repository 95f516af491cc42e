"""The recogniser's checkpoint format: one ``torch.save`` dict (format tag and version, config, setting,
degradation ids, task names, weights, how it was trained), read with ``weights_only=True`` and
loaded strictly."""

from __future__ import annotations

from pathlib import Path

import torch

from net.checkpoint import Checkpoint, CheckpointError, check_state_dict
from net.recognizer.model import DegradationRecognizer, RecognizerConfig
from utils.outputs import atomic_write
from utils.safe_load import load_error_text

FORMAT = "dfpir-degradation-recognizer"
FORMAT_VERSION = 2


class RecognizerError(CheckpointError):
    """A file is not a usable recogniser checkpoint; the message names the file and what to do."""


def save_recognizer(path: str | Path, model: DegradationRecognizer, training: dict | None = None) -> None:
    """Write a self-contained recogniser checkpoint atomically (``utils.outputs.atomic_write``: an earlier
    file is replaced whole or left unchanged, no temporary file is left; WriteError on a full disk).

    training: how it was trained (steps, batch size, data ...), kept for the record.
    """
    payload = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "config": model.config.to_dict(),
        "setting": model.setting,
        "de_ids": list(model.de_ids),
        "tasks": model.task_names,
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "training": training or {},
    }
    atomic_write(path, lambda file: torch.save(payload, file))


def load_recognizer(path: str | Path, setting: str | None = None) -> DegradationRecognizer:
    """Read a recogniser checkpoint strictly (``weights_only=True``) and return it in eval mode.

    setting: when given, a recogniser of another setting is refused.
    RecognizerError for a missing or foreign file, a DFPIR checkpoint, another version, ids that no
    longer match the setting, or weights that do not match the recorded architecture.
    """
    path = Path(path)
    if not path.is_file():
        raise RecognizerError(f"recogniser {path} does not exist; train one with: "
                              "python train_recognizer.py --setting 3D|5D --output FILE")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # any unreadable file: truncated, not torch, unsafe pickle
        raise RecognizerError(f"{path} is not a readable recogniser checkpoint ({load_error_text(err)})") from err
    if not isinstance(obj, dict) or obj.get("format") != FORMAT:
        looks_like_dfpir = isinstance(obj, dict) and ("pytorch-lightning_version" in obj or "state_dict" in obj)
        what = "a DFPIR checkpoint" if looks_like_dfpir else "not a recogniser checkpoint"
        raise RecognizerError(f"{path} is {what}; --recognizer takes a file written by train_recognizer.py --output")
    if obj.get("version") != FORMAT_VERSION:
        raise RecognizerError(f"{path} is a recogniser checkpoint of format version {obj.get('version')}; "
                              f"this code reads version {FORMAT_VERSION}: retrain it with train_recognizer.py")
    try:
        config = RecognizerConfig(**obj["config"])
        model = DegradationRecognizer(config.setting, list(config.cnn_channels), int(config.hidden))
        state_dict = obj["state_dict"]
        recorded_ids = [int(i) for i in obj["de_ids"]]
    except (KeyError, TypeError, ValueError) as err:
        raise RecognizerError(f"{path}: a damaged recogniser checkpoint ({type(err).__name__}: {err})") from err
    if recorded_ids != model.de_ids:
        raise RecognizerError(f"{path} predicts degradation ids {recorded_ids}, but the {config.setting} setting "
                              f"has ids {model.de_ids}; retrain it with train_recognizer.py")
    if setting is not None and config.setting != setting:
        raise RecognizerError(f"{path} is a {config.setting} recogniser (ids {model.de_ids}) and cannot steer a "
                              f"{setting} DFPIR; train one with: python train_recognizer.py --setting {setting}")
    try:
        check_state_dict(model, state_dict, f"recogniser {path}",
                         hint="The file is damaged or was edited; retrain it with train_recognizer.py.")
    except CheckpointError as err:
        raise RecognizerError(str(err)) from None
    model.load_state_dict(state_dict, strict=True)
    return model.eval()


def recognizer_for(path: str, setting: str | None, checkpoint: Checkpoint) -> DegradationRecognizer:
    """The recogniser in ``path`` (eval mode) for a DFPIR ``checkpoint``.

    Refused (RecognizerError, exit 2) when it belongs to another setting than
    ``setting`` (the script's; None: any) or than the one the checkpoint records (this project's
    checkpoints do; the authors' files do not, and take the script's).
    """
    recognizer = load_recognizer(path, setting)
    recorded = (checkpoint.run_config or {}).get("setting")
    if recorded is not None and recorded != recognizer.setting:
        raise RecognizerError(f"{path} is a {recognizer.setting} recogniser but {checkpoint.path} is a {recorded} "
                              f"DFPIR checkpoint; train a {recorded} recogniser: "
                              f"python train_recognizer.py --setting {recorded}")
    return recognizer
