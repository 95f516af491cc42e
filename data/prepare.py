"""From the official downloads to the dataset layout in one command (docs/datasets.md).

    python -m data.prepare --out DATA_ROOT [--wed DIR] [--bsd400 DIR] [--rain100l_train DIR]
        [--rain100l_test DIR] [--reside_ots DIR] [--sots_outdoor DIR] [--gopro DIR] [--lol DIR]
        [--cbsd68 DIR] [--copy] [--data_file_dir DIR|none] [--patch_size N] [--no_check]

Each dataset flag takes the folder where one official archive was unpacked (any subset of them). The
images are found inside it by rules on folder and file names, not by one fixed path, because the
archives circulate re-packed in many ways (each dataset record names its downloads,
:mod:`data.finders` holds each one's rule). They are linked (``--copy``: copied) into the layout of
:mod:`data.layouts` under the names the authors' name lists use: GoPro frames flattened to
``<SEQUENCE>_<frame>`` (``train/GOPR0372_07_00/blur/000047.png`` ->
``blur/GOPR0372_07_00_000047.png``), BSD400 images with the ``a`` prefix of ``denoise.txt``
(``117025.jpg`` -> ``a117025.jpg``), Rain100L training numbers without padding
(``rainy/rain-7.png``), RESIDE hazy images out of their ``part1..part4`` folders into
``synthetic/``. Finally the result is checked exactly as ``--check_data`` checks it.

Nothing is ever written in a download folder. Re-running is safe: a link (or copy) already in
place is kept, any other file at a target is reported as a conflict and left untouched. A target
that is a file, lies below one or is read-only is refused before anything is read; one run at a
time per target (``utils.run_lock``: a second run exits 2 naming the first, before placing anything).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from data.check import check_data
from data.finders import SHOWN, ImageTree, PrepareError, find_download
from data.layouts import DataError, DatasetPaths, task_folder
from data.overlap import overlap_problem, shared_files
from data.placement import deduplicate, place
from data.run_options import NameListsOption, PatchSizeOption
from utils.config import build_parser as build_config_parser
from utils.config import opt, read_command_line, resolve
from utils.outputs import OutputError, check_output_dir
from utils.run_lock import LockError, RunLock
from utils.run_options import NumWorkersOption
from utils.signals import run_stoppable
from utils.tasks import DATASETS, SETTINGS, TASKS, Download

CHECK_SETTING = "5D"
"""The setting whose training tasks the final check covers (5D trains on every task)."""


def downloads() -> list[Download]:
    """Every registered dataset's downloads, in record order: the dataset flags of this command."""
    return [download for dataset in DATASETS.values() for download in dataset.downloads]


# --------------------------------------------------------------------------------------------------
# The final check


def _flags_feeding(split: str, kind: str) -> str:
    return " and ".join(f"--{d.flag}" for d in DATASETS[kind].downloads if split in d.splits)


def check_prepared(out: Path, data_file_dir: Path | None, patch_size: int, num_workers: int) -> tuple[list[str], bool]:
    """Run ``--check_data``'s check on every task folder present under ``out``, one dataset at a time.

    Returns (report lines, whether every present folder passed). The lines are the check's own
    (``task=``, ``paper=`` found against the paper's count with what is missing and a hint,
    ``test=`` with the benchmark's size beside it) and its warnings. A folder that is absent is
    listed with the flags that would fill it, not counted as a failure.
    """
    paths = DatasetPaths.from_root(out, data_file_dir)
    lines, ok = [], True
    for split in ("train", "test"):
        for kind in DATASETS:
            folder, _ = task_folder(kind, split, paths)
            if not folder.exists():
                lines.append(f"{split} {kind}: not prepared ({folder}; pass {_flags_feeding(split, kind)})")
                continue
            tasks = [name for name, task in TASKS.items() if task.kind == kind]
            trained = SETTINGS[CHECK_SETTING].train_repeats
            train_tasks, test_tasks = ([t for t in tasks if t in trained], []) if split == "train" else ([], tasks)
            try:
                report = check_data(train_tasks, CHECK_SETTING, test_tasks, paths, patch_size, num_workers)
                if report.left_out:  # a prepared root must hold every file of the lists it is checked with
                    raise DataError(report.left_out)
            except DataError as error:
                ok = False
                lines.append(f"{split} {kind}: FAILED, {len(error.problems)} problem(s), e.g.:")
                lines += [f"    {problem}" for problem in error.problems[:SHOWN]]
                lines.append(f"    hint: the files come from {_flags_feeding(split, kind)} (docs/datasets.md); "
                             "re-run with the missing download, or fix the files named above")
                continue
            # task= and test= lines as --check_data prints them; paper= lines: the training images against the
            # paper's (data.check.compare_with_paper), with what is missing and why.
            lines += [f"{line}   (the benchmark has {DATASETS[kind].test_size})" if line.startswith("test=") else line
                      for line in report.lines]
            lines += [f"WARNING: {warning}" for warning in report.warnings]
    return lines, ok


# --------------------------------------------------------------------------------------------------
# Command line


@dataclass(frozen=True, kw_only=True)
class PrepareConfig(NameListsOption, PatchSizeOption, NumWorkersOption):
    """``python -m data.prepare``'s options (the name lists, crop and workers shared with training)."""

    out: Path = opt("--out", default=None, required=True, metavar="DATA_ROOT",
                    help="dataset root to fill (then train with --data_root DATA_ROOT)")
    downloads: dict[str, Path | None] = opt(default={}, keys=lambda context: [d.flag for d in downloads()],
                                            group="downloads (the folder where each official archive was unpacked)",
                                            help=lambda context: {d.flag: d.archive for d in downloads()})
    copy: bool = opt("--copy", default=False, help="copy the files instead of linking them")
    no_check: bool = opt("--no_check", default=False, help="skip the final check (decodes every image)")


def build_parser() -> argparse.ArgumentParser:
    """The command-line parser of ``python -m data.prepare``."""
    return build_config_parser(
        PrepareConfig,
        "Arrange the official dataset downloads into the layout the training and test scripts expect (links by "
        "default), then check it as --check_data does. Each dataset flag takes the folder where its archive was "
        "unpacked; pass any subset. Nothing is written in a download folder.",
        prog="python -m data.prepare",
    )


def _refuse_overlap(out: Path, flag: str, download: Path) -> None:
    """PrepareError if writing under ``out`` could write in ``download`` (or the layout would hold it)."""
    out_real, download_real = out.resolve(), download.resolve()
    if out_real == download_real or out_real.is_relative_to(download_real):
        raise PrepareError(f"--out {out} is inside --{flag} {download}: choose a DATA_ROOT outside the download "
                           "(nothing is ever written in a download folder)")
    if any(download_real.is_relative_to(out_real / top) for top in ("Train", "test")):
        raise PrepareError(f"--{flag} {download} is inside the layout of --out {out}: move the download elsewhere")


def main(argv: list[str] | None = None) -> int:
    """Find, place, check; exit 0 when everything placed passed the check, 1 when problems remain
    (conflicts, unpaired images, a failed check), 2 for a download that cannot be used as given, a
    target that cannot be written, or a target another run is preparing; 130/143/129 when stopped by Ctrl-C,
    SIGTERM, SIGHUP (``utils.signals``: what was placed stays, and a rerun keeps it)."""
    return run_stoppable(lambda: _prepare(argv))


def _prepare(argv: list[str] | None) -> int:
    """Parse, check, find, place and check (:func:`main`)."""
    parser = build_parser()
    args = resolve(PrepareConfig, read_command_line(parser, PrepareConfig, argv))
    chosen = [(d, args.downloads[d.flag]) for d in downloads() if args.downloads.get(d.flag) is not None]
    if not chosen:
        parser.error("give at least one download, e.g. --gopro ~/downloads/GOPRO_Large (see --help)")
    try:
        check_output_dir(args.out)
        found = _find_downloads(parser, args.out, chosen)
        _refuse_train_test_overlap(found)
        with RunLock(args.out, purpose="dataset folder --out"):
            return _place_and_check(args, found)
    except (OutputError, LockError, PrepareError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


def _find_downloads(parser: argparse.ArgumentParser, out: Path, chosen: list[tuple[Download, Path]]) -> list:
    """(download, folder, what its finder found) for each chosen download; exit 2 naming every unusable one."""
    errors, found = [], []
    for download, folder in chosen:
        try:
            if not folder.is_dir():
                raise PrepareError(f"no such folder {folder}; give the folder where the archive was unpacked")
            _refuse_overlap(out, download.flag, folder)
            found.append((download, folder, find_download(download.flag)(ImageTree(folder))))
        except PrepareError as error:
            errors.append(f"--{download.flag}: {error}")
    if errors:
        parser.error("\n".join(errors))
    return found


def _refuse_train_test_overlap(found: list) -> None:
    """PrepareError (one line) when a test set would share images with its training set (:mod:`data.overlap`):
    the same folder given to a training and a test flag, through a link, or overlapping file sets."""
    relative = DatasetPaths.from_root("")
    for kind in DATASETS:
        sides: dict[str, list[tuple[str, Path]]] = {"train": [], "test": []}
        for download, folder, result in found:
            for split, files in sides.items():
                top = PurePosixPath(task_folder(kind, split, relative)[0].as_posix())
                files += [(f"--{download.flag} {folder}", p.source) for p in result.placements
                          if p.target.is_relative_to(top)]
        shared = shared_files([path for _, path in sides["train"]], [path for _, path in sides["test"]])
        if shared:
            train_flag, test_flag = (dict((path, flag) for flag, path in sides[split])[path]
                                     for split, path in zip(("train", "test"), shared[0], strict=True))
            raise PrepareError(overlap_problem(f"the {kind} test set of {test_flag}", shared, len(sides["test"]),
                                               f"the training set of {train_flag}") + "; nothing was placed")


def _place_and_check(args: PrepareConfig, found: list) -> int:
    """Place what was found under ``args.out`` and check it (the exit status of :func:`main`)."""
    placements, problems = [], []
    for download, folder, result in found:
        print(f"--{download.flag} {folder}")
        for line in result.report:
            print(f"  {line}")
        for problem in result.problems:
            print(f"  PROBLEM: {problem}")
        placements += result.placements
        problems += result.problems
    placements, duplicates = deduplicate(placements)
    problems += duplicates
    for problem in duplicates:
        print(f"PROBLEM: {problem}")

    summary = place(placements, args.out, args.copy)
    print(f"{'copied' if args.copy else 'linked'} into {args.out}: created {summary.created}, kept {summary.kept}, "
          f"conflicts {len(summary.conflicts)}")
    for conflict in summary.conflicts:
        print(f"  CONFLICT: {conflict}")

    ok = not problems and not summary.conflicts
    if not args.no_check:
        data_file_dir = None if args.data_file_dir.lower() == "none" else Path(args.data_file_dir)
        print(f"check (as --check_data, name lists: {data_file_dir or 'none, every image'}):")
        lines, checked = check_prepared(args.out, data_file_dir, args.patch_size, max(args.num_workers, 1))
        for line in lines:
            print(f"  {line}")
        ok = ok and checked
    if ok:
        print(f"ready: train and test with --data_root {args.out}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
