"""The entry points' wrapper: quiet the notices every run would print, and turn a user's mistake (or an
out-of-memory error) into one line and exit status 2."""

from __future__ import annotations

import logging
import sys
import warnings
from collections.abc import Callable

import torch

from engine.preflight import USER_ERRORS
from utils import signals


class _NoAdverts(logging.Filter):
    """Drops Lightning's product tips ("Tip: ... try installing litlogger") from the run's output."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "Tip:" not in record.getMessage()


def quiet_expected_notices() -> None:
    """Silence what every run of these scripts would print to no purpose (entry points call it once):
    a resumed run's checkpoint folder is not empty, Lightning's own use of a deprecated
    torch.utils._pytree API, and Lightning's product tips."""
    warnings.filterwarnings("ignore", message=r"Checkpoint directory .* exists and is not empty")
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)")
    rank_zero_logger = logging.getLogger("lightning.pytorch.utilities.rank_zero")
    if not any(isinstance(f, _NoAdverts) for f in rank_zero_logger.filters):
        rank_zero_logger.addFilter(_NoAdverts())


TILE_HINT = "restore large images tile by tile with --tile 512 (or smaller)"


def is_out_of_memory(err: BaseException) -> bool:
    """A CUDA or CPU allocation failure (torch raises RuntimeError for the CPU's)."""
    if isinstance(err, (MemoryError, getattr(torch, "OutOfMemoryError", MemoryError))):
        return True
    text = str(err)
    return isinstance(err, RuntimeError) and ("can't allocate memory" in text or "out of memory" in text.lower())


def run_cli(run: Callable[[], int], out_of_memory_hint: str) -> int:
    """The entry points' wrapper: quiet the expected notices, call run(), and turn a user's mistake
    into a one-line message and exit status 2 (an out-of-memory error too, with
    ``out_of_memory_hint``: what to change). Ctrl-C, SIGTERM and SIGHUP end it with one line and status
    130, 143, 129 (``utils.signals``)."""
    quiet_expected_notices()

    def checked() -> int:
        try:
            return run()
        except USER_ERRORS as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
        except Exception as err:
            if not is_out_of_memory(err):
                raise
            first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            print(f"error: out of memory ({first_line[:160]}); {out_of_memory_hint}", file=sys.stderr)
            return 2

    return signals.run_stoppable(checked)
