"""Placing found files into the dataset layout: links (or copies), never replacing an existing file.

Nothing is ever written in a download folder or outside DATA_ROOT; re-running is safe (a link or
copy already in place is kept, any other file at a target is reported as a conflict).
"""

from __future__ import annotations

import filecmp
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from tqdm import tqdm

from data.finders import Placement
from utils.outputs import atomic_write


@dataclass
class PlaceSummary:
    """Targets created, kept (already the right file) and left alone because another file is there."""

    created: int = 0
    kept: int = 0
    conflicts: list[str] = field(default_factory=list)


def _is_placed(source: Path, target: Path) -> bool:
    """Whether ``target`` already is ``source``: a link to it, or a regular file with its content."""
    try:
        if os.path.samefile(source, target):
            return True
    except OSError:  # a dangling link
        return False
    return not target.is_symlink() and filecmp.cmp(source, target, shallow=True)


def _inside(folder: Path, out_real: Path) -> bool:
    """Whether ``folder`` (existing or not) lies inside ``out_real`` once links are followed."""
    existing = folder
    while not existing.exists() and not existing.is_symlink():
        existing = existing.parent
    return existing.resolve().is_relative_to(out_real)


def copy_file(source: Path, target: Path) -> None:
    """Copy ``source``'s bytes, permission bits and times to ``target`` (``utils.outputs.atomic_write``: a
    temporary file renamed into place, removed on any error)."""
    def copy(file) -> None:
        with open(source, "rb") as data:
            shutil.copyfileobj(data, file)

    atomic_write(target, copy)
    shutil.copystat(source, target)


def place(placements: list[Placement], out: Path, copy: bool) -> PlaceSummary:
    """Link (``copy``: copy) every source to its target under ``out``; never replace an existing file.

    Links are absolute. A copy is written atomically (:func:`copy_file`), so an interrupted or failed
    run (a full disk: WriteError) leaves no partial file at a target and no temporary file. Nothing is
    written outside ``out``: a folder of ``out`` that is a link leading elsewhere (for instance into a
    download) is reported as a conflict.
    """
    summary = PlaceSummary()
    out.mkdir(parents=True, exist_ok=True)
    out_real = out.resolve()
    writable: dict[Path, bool] = {}
    for placement in tqdm(placements, desc="copying" if copy else "linking", unit="file", dynamic_ncols=True,
                          disable=len(placements) < 1000):
        target = out / placement.target
        if target.is_symlink() or target.exists():
            if _is_placed(placement.source, target):
                summary.kept += 1
            else:
                what = f"a link to {os.readlink(target)}" if target.is_symlink() else "a different file"
                summary.conflicts.append(f"{target} is {what}, not {placement.source}: left as it is "
                                         "(remove it and re-run to place the download's file)")
            continue
        folder = target.parent
        if folder not in writable:
            writable[folder] = _inside(folder, out_real)
            if writable[folder]:
                folder.mkdir(parents=True, exist_ok=True)
            else:
                summary.conflicts.append(f"{folder} leads outside {out} (to {folder.resolve()}): nothing is written "
                                         "there; make it a plain folder")
        if not writable[folder]:
            continue
        if copy:
            copy_file(placement.source, target)
        else:
            os.symlink(placement.source, target)
        summary.created += 1
    return summary


def deduplicate(placements: list[Placement]) -> tuple[list[Placement], list[str]]:
    """One placement per target (the same file met twice, e.g. a clear image of several hazy ones,
    is placed once); two different sources for one target are reported."""
    by_target: dict[PurePosixPath, Placement] = {}
    problems = []
    for placement in placements:
        first = by_target.setdefault(placement.target, placement)
        if first.source != placement.source:
            problems.append(f"{placement.source} and {first.source} would both be {placement.target}; "
                            "the first is used")
    return list(by_target.values()), problems
