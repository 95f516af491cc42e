"""Validation of every configured dataset before training or testing (``--check_data``).

Runs at the start of every training too: a bad file found hours into an epoch costs the run.
Every image is decoded fully (in threads, with a progress bar on stderr), so truncated and corrupt
files are found, not just missing ones. All problems are collected and reported together.

The training inputs of each dataset are also compared with what the paper trained on, the
authors' name lists (:func:`compare_with_paper`, also used by ``python -m data.prepare``): a
difference is reported loudly but does not stop a run that chose other data.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from data.evalsets import duplicate_names
from data.layouts import (
    AUTHORS_NAME_LISTS,
    DataError,
    DatasetPaths,
    Pair,
    TrainingInputs,
    dataset,
    list_images,
    missing_names_hints,
    read_name_list,
    scan_pairs,
    size_mismatch,
    training_inputs,
    uses_authors_lists,
)
from data.overlap import overlap_problem, shared_files
from data.transforms import CROP_BASE
from utils.image_io import ImageReadError, parallel_map, read_rgb
from utils.tasks import SETTINGS, TASKS

EXAMPLES = 5
"""How many missing names a report line shows."""


def _examples(names: tuple[PurePosixPath, ...] | list[PurePosixPath]) -> str:
    return ", ".join(str(n) for n in names[:EXAMPLES]) + (", ..." if len(names) > EXAMPLES else "")


@dataclass(frozen=True)
class PaperCount:
    """The training inputs of one dataset kind against what the paper trained on (the authors' list).

    found:    training inputs a run with these paths uses (after its name lists, if any).
    expected: inputs the paper trained on (the dataset record's ``train_size``).
    missing:  names of the authors' list without a file in the folder.
    unlisted: images in the folder that the authors' list does not name.
    hints:    the likely cause of ``missing`` and what to do (BSD400 'a' prefix, sub-folders).
    """

    kind: str
    found: int
    expected: int
    missing: tuple[PurePosixPath, ...]
    unlisted: int
    hints: tuple[str, ...] = ()

    @property
    def matches(self) -> bool:
        return self.found == self.expected and not self.missing

    def line(self) -> str:
        """``paper=<kind> found=<n> expected=<m> ok`` or ``... DIFFERS FROM THE PAPER: <what>``."""
        head = f"paper={self.kind} found={self.found} expected={self.expected}"
        if self.matches:
            return head + " ok"
        what = []
        if self.missing:
            what.append(f"{len(self.missing)} of the authors' images are missing (e.g. {_examples(self.missing)})")
        if self.unlisted:
            what.append(f"{self.unlisted} images found are not in the authors' list")
        return head + " DIFFERS FROM THE PAPER: " + ("; ".join(what) or "other name lists") + \
            "".join(f"; {h}" for h in self.hints)


def compare_with_paper(kind: str, paths: DatasetPaths) -> PaperCount | None:
    """Compare the training inputs of ``kind`` under ``paths`` with the authors' name list.

    None when the inputs cannot be listed (missing folder or name list: :func:`check_data`
    reports those as problems).
    """
    inputs, _ = training_inputs(kind, paths)
    return None if inputs is None else _compare_with_paper(kind, inputs)


def _compare_with_paper(kind: str, inputs: TrainingInputs) -> PaperCount | None:
    """None for a dataset the paper did not train on (no count, no authors' list: e.g. a registered new task)."""
    record = dataset(kind)
    layout = record.layout("train")
    if record.train_size is None or layout.name_list is None:
        return None
    authors_list = AUTHORS_NAME_LISTS / layout.name_list
    authors = read_name_list(authors_list, layout)
    on_disk = list_images(inputs.folder)
    on_disk_set, authors_set = set(on_disk), set(authors)
    missing = tuple(n for n in authors if n not in on_disk_set)
    unlisted = sum(n not in authors_set for n in on_disk)
    hints = missing_names_hints(missing, on_disk, inputs.folder, authors_list)
    return PaperCount(kind, len(inputs.names), record.train_size, missing, unlisted, tuple(hints))


@dataclass
class DataReport:
    """What :func:`check_data` found on data without problems.

    lines:    the report, printed on stdout (see :func:`check_data`).
    paper:    the comparison with the paper of each training dataset.
    left_out: one line per file that one's own name list names but that does not exist (training
              goes on without it; with the authors' lists this is an error instead).
    warnings: what differs from the paper or was left out, to print loudly (stderr).
    train_samples: samples per training epoch (images x repeat, summed over the training tasks).
    """

    lines: list[str] = field(default_factory=list)
    paper: list[PaperCount] = field(default_factory=list)
    left_out: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    train_samples: int = 0


@dataclass(frozen=True)
class _Decoded:
    """Outcome of decoding one file: its (H, W, 3) shape, or the problem line."""

    shape: tuple[int, ...] | None
    problem: str | None


_SPECIAL_FILES = ((stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISSOCK, "a socket"),
                  (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"))


def _not_a_file(path: str) -> str | None:
    """The problem of a path named like an image that is no regular file (reading a FIFO would block
    forever), found from its status without opening it; None for a regular file (or one that is gone:
    decoding reports that)."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return None
    if stat.S_ISREG(mode):
        return None
    what = next((name for test, name in _SPECIAL_FILES if test(mode)), "not a regular file")
    return f"{path} is {what}, not an image file; remove it from the data folder"


def _decode(path: str) -> _Decoded:
    problem = _not_a_file(path)
    if problem is not None:
        return _Decoded(None, problem)
    try:
        return _Decoded(read_rgb(path).shape, None)
    except ImageReadError as err:
        return _Decoded(None, str(err))


def _files(pairs: list[Pair]) -> list[Path]:
    """Every file of ``pairs`` (degraded and clean), in order."""
    return [path for pair in pairs for path in (pair.degraded, pair.clean) if path]


def _size_problem(pair: Pair, shapes: dict[str, tuple[int, ...]], min_size: int, split: str) -> str | None:
    """Problem of a decoded pair: sizes that differ, or smaller than ``min_size`` after cropping to 16."""
    height, width = shapes[str(pair.clean)][:2]
    if pair.degraded is not None:
        mismatch = size_mismatch(pair, shapes[str(pair.degraded)], shapes[str(pair.clean)])
        if mismatch:
            return mismatch
    cropped_h, cropped_w = height - height % CROP_BASE, width - width % CROP_BASE
    if cropped_h < min_size or cropped_w < min_size:
        what = f"the {min_size}x{min_size} training patch" if split == "train" else f"{CROP_BASE}x{CROP_BASE} pixels"
        return (f"{pair.degraded or pair.clean} ({width}x{height}, {cropped_w}x{cropped_h} after cropping to a "
                f"multiple of {CROP_BASE}) is smaller than {what}; remove it"
                + (" or lower --patch_size" if split == "train" else ""))
    return None


def check_data(
    train_tasks: list[str],
    setting: str,
    test_tasks: list[str],
    paths: DatasetPaths,
    patch_size: int,
    num_workers: int = 4,
    repeats: Mapping[str, int] | None = None,
) -> DataReport:
    """Validate the training data of ``train_tasks`` under ``setting`` (mixed by ``repeats``, task ->
    repeat factor; None: the setting's) and the test data of ``test_tasks``.

    Checks: missing or empty folders, missing name lists, files missing from the authors' lists
    (the default; with one's own lists they are left out with a warning), images without their
    partner, unreadable or corrupt images (each decoded fully by ``num_workers`` threads), pairs
    of different sizes, training images smaller than ``patch_size`` and test images smaller than
    16 pixels after cropping to a multiple of 16, test images sharing a name, a test set sharing images
    with the training set of its kind (:mod:`data.overlap`).

    Returns the report: one line per training task, one per training dataset against the paper's
    count (:class:`PaperCount`), then one per test task::

        task=<name> images=<n> repeat=<r> samples=<n*r>
        paper=<kind> found=<n> expected=<m> ok            (or: DIFFERS FROM THE PAPER: ...)
        test=<name> pairs=<n>

    (each denoise task counts the clean images of the shared denoise folder), with warnings for
    each difference. Raises DataError with one line per problem, each naming the offending path,
    if anything is wrong.
    """
    if setting not in SETTINGS:
        raise ValueError(f"unknown setting {setting!r}; choose from {list(SETTINGS)}")
    repeats = SETTINGS[setting].train_repeats if repeats is None else repeats
    unknown = [t for t in train_tasks if t not in repeats] + [t for t in test_tasks if t not in TASKS]
    if unknown:
        raise ValueError(f"unknown task(s) {unknown} (training tasks of {setting}: {list(repeats)}; "
                         f"test tasks: {list(TASKS)})")

    problems: list[str] = []
    pairs: dict[tuple[str, str], list[Pair]] = {}  # (split, kind) -> pairs
    for split, tasks in (("train", train_tasks), ("test", test_tasks)):
        for kind in dict.fromkeys(TASKS[t].kind for t in tasks):
            found, found_problems = scan_pairs(kind, split, paths)
            pairs[split, kind] = found
            problems += found_problems
            if split == "test":
                problems += duplicate_names(found)
    for (split, kind), found in pairs.items():
        if split == "test" and ("train", kind) in pairs:
            problem = overlap_problem(f"the {kind} test set", shared_files(_files(pairs["train", kind]), _files(found)),
                                      len(_files(found)))
            problems += [problem] if problem else []

    files = list(dict.fromkeys(str(path) for found in pairs.values() for path in _files(found)))
    shapes: dict[str, tuple[int, ...]] = {}
    decoded = parallel_map(_decode, files, num_workers, desc=f"decoding {len(files)} images")
    for path, outcome in zip(files, decoded, strict=True):
        if outcome.problem is not None:
            problems.append(outcome.problem)
        else:
            shapes[path] = outcome.shape
    for (split, _), found in pairs.items():
        min_size = patch_size if split == "train" else CROP_BASE
        for pair in found:
            if all(str(p) in shapes for p in (pair.degraded, pair.clean) if p):
                problem = _size_problem(pair, shapes, min_size, split)
                if problem:
                    problems.append(problem)

    if problems:
        raise DataError(problems, "data check failed")
    report = DataReport()
    for task in train_tasks:
        images, repeat = len(pairs["train", TASKS[task].kind]), repeats[task]
        report.lines.append(f"task={task} images={images} repeat={repeat} samples={images * repeat}")
        report.train_samples += images * repeat
    for kind in dict.fromkeys(TASKS[t].kind for t in train_tasks):
        inputs, _ = training_inputs(kind, paths)
        count = _compare_with_paper(kind, inputs)
        if count is not None:
            report.paper.append(count)
            report.lines.append(count.line())
        if inputs.missing and not uses_authors_lists(paths):
            report.left_out += [f"{inputs.folder / name} is listed in {inputs.list_path} but does not exist"
                                for name in inputs.missing]
            report.warnings.append(f"{len(inputs.missing)} images listed in {inputs.list_path} are missing from "
                                   f"{inputs.folder} and are left out (e.g. {_examples(inputs.missing)})")
    differ = [c for c in report.paper if not c.matches]
    if differ:
        report.warnings.append(
            "the training data differs from the paper's for " + ", ".join(
                f"{c.kind} ({c.found} images, the paper {c.expected})" for c in differ)
            + ": see the paper= lines. Scores will not be comparable with the paper's; "
            "the default --data_file_dir (the authors' name lists) trains on exactly their images")
    report.lines += [f"test={task} pairs={len(pairs['test', TASKS[task].kind])}" for task in test_tasks]
    return report
