"""Training and test sets that share images (issue 30, case 1): every score measured on such a test set is meaningless.

A test image is the same as a training image when it is the same file: the same folder given twice,
the same folder through a symlink, or file sets that overlap through symlinks or hard links (the same
device and inode once links are followed). This is exact and costs one ``stat`` per file, before any
image is read. Byte-identical copies in other files are not refused: stand-in and synthetic data
repeat bytes across splits by construction (the same seed per index), so equal bytes alone do not
prove a leak, and a re-encoded copy could not be found without decoding and comparing every pair.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

SHOWN = 3
"""How many shared files a refusal names."""


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        status = os.stat(path)  # follows symlinks: a link and its target are one file
    except OSError:
        return None  # a missing file is the data check's problem, not an overlap
    return status.st_dev, status.st_ino


def shared_files(train: Iterable[Path], test: Iterable[Path]) -> list[tuple[Path, Path]]:
    """(training file, test file) for each test file that is one of the training files (links followed)."""
    by_identity = {key: path for path in train if (key := _identity(path)) is not None}
    return [(by_identity[key], path) for path in dict.fromkeys(test) if (key := _identity(path)) in by_identity]


def overlap_problem(what: str, shared: list[tuple[Path, Path]], total: int,
                    training: str = "its training set") -> str | None:
    """One line naming the overlap of ``what`` (e.g. 'the derain test set') with ``training``, or None."""
    if not shared:
        return None
    examples = ", ".join(f"{test} is {train}" for train, test in shared[:SHOWN])
    return (f"{what} shares {len(shared)} of its {total} images with {training} ({examples}"
            f"{', ...' if len(shared) > SHOWN else ''}): scores measured on it would be meaningless; "
            "give the benchmark's own test images")
