"""Validation of every configured dataset before training or testing (``--check_data``).

Runs at the start of every training too: a bad file found hours into an epoch costs the run.
Every image is decoded fully (in threads, with a progress bar on stderr), so truncated and corrupt
files are found, not just missing ones. All problems are collected and reported together.
"""

from __future__ import annotations

from dataclasses import dataclass

from data.evalsets import duplicate_names
from data.layouts import DataError, DatasetPaths, Pair, scan_pairs, size_mismatch
from data.transforms import CROP_BASE
from utils.image_io import ImageReadError, parallel_map, read_rgb
from utils.tasks import SETTINGS, TASKS


@dataclass(frozen=True)
class _Decoded:
    """Outcome of decoding one file: its (H, W, 3) shape, or the problem line."""

    shape: tuple[int, ...] | None
    problem: str | None


def _decode(path: str) -> _Decoded:
    try:
        return _Decoded(read_rgb(path).shape, None)
    except ImageReadError as err:
        return _Decoded(None, str(err))


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
) -> list[str]:
    """Validate the training data of ``train_tasks`` under ``setting`` and the test data of ``test_tasks``.

    Checks: missing or empty folders, missing name lists and listed files, images without their
    partner, unreadable or corrupt images (each decoded fully by ``num_workers`` threads), pairs
    of different sizes, training images smaller than ``patch_size`` and test images smaller than
    16 pixels after cropping to a multiple of 16, test images sharing a name.

    Returns the report, one line per training task then one per test task::

        task=<name> images=<n> repeat=<r> samples=<n*r>
        test=<name> pairs=<n>

    (each denoise task counts the clean images of the shared denoise folder). Raises DataError
    with one line per problem, each naming the offending path, if anything is wrong.
    """
    if setting not in SETTINGS:
        raise ValueError(f"unknown setting {setting!r}; choose from {list(SETTINGS)}")
    repeats = SETTINGS[setting].train_repeats
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

    files = list(dict.fromkeys(
        str(path) for found in pairs.values() for pair in found for path in (pair.degraded, pair.clean) if path
    ))
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
    report = []
    for task in train_tasks:
        images, repeat = len(pairs["train", TASKS[task].kind]), repeats[task]
        report.append(f"task={task} images={images} repeat={repeat} samples={images * repeat}")
    report += [f"test={task} pairs={len(pairs['test', TASKS[task].kind])}" for task in test_tasks]
    return report
