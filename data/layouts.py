"""Where each dataset's images live and how degraded images pair with clean ones (docs/protocol.md section 5).

Each dataset's folders, layouts and name lists are facts of its record in :mod:`utils.tasks`
(``python -m utils.tasks`` prints them as the table of docs/datasets.md). By default a dataset's training
folder is ``<data_root>/<train_folder>`` and its test folder ``<data_root>/<test_folder>``
(:meth:`DatasetPaths.from_root`); ``--<name>_dir`` / ``--<name>_path`` override one folder.

Pairing works on path components relative to the task folder, never by replacing substrings of
the whole path, so a root such as ``/data/deblur_lowlight_rain/blur_low/`` pairs correctly.
Folders are searched recursively (hidden entries skipped, links to folders followed) and a degraded
image in a sub-folder pairs with the clean image at the same relative place (for dehazing:
``original/ID.ext`` whatever the sub-folder of the hazy image, e.g. the ``synthetic/part1/`` of
some OTS copies). Files without an image extension (:data:`utils.image_io.IMAGE_EXTENSIONS`) are
ignored.

Name lists (the authors' files, one name per line relative to the task's training folder; the
rain and haze lists carry the ``rainy/`` / ``synthetic/`` prefix, which is optional here for every
list) restrict the training images when ``DatasetPaths.data_file_dir`` is set. The authors' own
lists ship in ``data/name_lists/`` (:data:`AUTHORS_NAME_LISTS`, the scripts' default): with them
every listed file must exist, since the paper's mixture is defined by them; with one's own lists,
listed files that are missing are left out (``--check_data`` warns). The authors' loader dropped
unmatched names silently, which hid, e.g., BSD400 downloaded without the ``a`` prefix of their list.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np

from utils.image_io import IMAGE_EXTENSIONS, is_image_file, read_rgb
from utils.tasks import DATASETS, SPLITS, Dataset, Layout, folder_flags

AUTHORS_NAME_LISTS = Path(__file__).resolve().parent / "name_lists"
"""The authors' training name lists, shipped with the project: the default ``--data_file_dir``."""

MAX_LISTED_PROBLEMS = 50
"""How many problem lines a :class:`DataError` message shows before summarising the rest."""


class DataError(ValueError):
    """A dataset problem; ``problems`` holds one line per problem, each naming the offending path."""

    def __init__(self, problems: str | Sequence[str], header: str = "dataset problems") -> None:
        self.problems: list[str] = [problems] if isinstance(problems, str) else list(problems)
        super().__init__(format_problems(self.problems, header))


def format_problems(problems: Sequence[str], header: str) -> str:
    """One problem as is; several as ``header (N):`` and one indented line each, capped."""
    if len(problems) == 1:
        return problems[0]
    lines = [f"{header} ({len(problems)}):"]
    lines += [f"  - {p}" for p in problems[:MAX_LISTED_PROBLEMS]]
    if len(problems) > MAX_LISTED_PROBLEMS:
        lines.append(f"  ... and {len(problems) - MAX_LISTED_PROBLEMS} more")
    return "\n".join(lines)


class DatasetPaths:
    """The dataset folders, one per folder flag (``derain_dir``, ``derain_path``, ...; see
    :func:`utils.tasks.folder_flags`), and the optional name-list folder.

    ``folders`` maps a flag name to its folder (strings become Paths); a flag's folder is also
    readable as an attribute (``paths.derain_dir``). ``data_file_dir``, when set, holds name lists
    that select the training images (:data:`AUTHORS_NAME_LISTS`: the authors' own); None: every
    image in each training folder is used.
    """

    def __init__(self, data_file_dir: str | os.PathLike[str] | None = None,
                 **folders: str | os.PathLike[str]) -> None:
        unknown = sorted(set(folders) - set(folder_flags()))
        if unknown:
            raise ValueError(f"unknown dataset folder(s) {unknown}; the folders are {folder_flags()}")
        self.folders: dict[str, Path] = {flag: Path(folder) for flag, folder in folders.items()}
        self.data_file_dir = None if data_file_dir is None else Path(data_file_dir)

    @classmethod
    def from_root(
        cls, root: str | os.PathLike[str], data_file_dir: str | os.PathLike[str] | None = None,
        **overrides: str | os.PathLike[str],
    ) -> DatasetPaths:
        """Every registered dataset's default folders under ``root``, then ``overrides`` (flag -> folder)."""
        root = Path(root)
        defaults = {d.flag(split): root / d.default_folder(split) for d in DATASETS.values() for split in SPLITS}
        return cls(data_file_dir, **{**defaults, **overrides})

    def __getattr__(self, name: str) -> Path:
        folders = self.__dict__.get("folders", {})
        if name in folders:
            return folders[name]
        raise AttributeError(f"{type(self).__name__} has no folder {name!r}")

    def __repr__(self) -> str:
        return f"DatasetPaths(data_file_dir={self.data_file_dir!r}, folders={self.folders!r})"


@dataclass(frozen=True)
class Pair:
    """A degraded image and its clean target; ``degraded`` is None for denoising (noise is synthetic)."""

    degraded: Path | None
    clean: Path


def size_mismatch(pair: Pair, degraded_shape: tuple[int, ...], clean_shape: tuple[int, ...]) -> str | None:
    """The problem line for a pair whose decoded images differ in height or width, else None."""
    if degraded_shape[:2] == clean_shape[:2]:
        return None
    (dh, dw), (ch, cw) = degraded_shape[:2], clean_shape[:2]
    return (f"{pair.degraded} ({dw}x{dh}) and its partner {pair.clean} ({cw}x{ch}) differ in size "
            "(width x height); a pair must be pixel-aligned")


def read_pair(pair: Pair) -> tuple[np.ndarray | None, np.ndarray]:
    """Decode a pair: (degraded, clean) as (H, W, 3) uint8 (``degraded`` None for denoising).

    DataError naming both files if their sizes differ; ImageReadError for an unreadable file.
    """
    clean = read_rgb(pair.clean)
    if pair.degraded is None:
        return None, clean
    degraded = read_rgb(pair.degraded)
    problem = size_mismatch(pair, degraded.shape, clean.shape)
    if problem:
        raise DataError(problem)
    return degraded, clean


def dataset(kind: str) -> Dataset:
    """The record of dataset ``kind`` (``utils.tasks.DATASETS``); ValueError naming the registered ones."""
    if kind not in DATASETS:
        raise ValueError(f"unknown dataset kind {kind!r}; choose from {list(DATASETS)}")
    return DATASETS[kind]


def task_folder(kind: str, split: str, paths: DatasetPaths) -> tuple[Path, str]:
    """(folder, the DatasetPaths key / flag naming it) of ``kind``'s ``split`` ('train' or 'test')."""
    flag = dataset(kind).flag(split)
    if flag not in paths.folders:
        raise ValueError(f"no folder for --{flag} in {paths!r}; build the paths with DatasetPaths.from_root")
    return paths.folders[flag], flag


def list_images(folder: Path) -> list[PurePosixPath]:
    """Image files under ``folder`` (recursively, hidden entries skipped) as sorted relative paths.

    Symbolic links to folders are followed (``Train/Denoise/WED -> /data/WED``); a folder reached twice
    (a link loop, or two links to it) is listed once.
    """
    found, visited = [], set()
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=True):
        real = os.path.realpath(dirpath)
        if real in visited:  # a link back up the tree, or a second link to one folder: each folder once
            dirnames[:] = []
            continue
        visited.add(real)
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        rel_dir = PurePosixPath(Path(dirpath).relative_to(folder).as_posix())
        found += [rel_dir / f for f in filenames if not f.startswith(".") and is_image_file(f)]
    return sorted(found, key=str)


def find_name_list(data_file_dir: Path, filename: str) -> tuple[Path | None, str | None]:
    """(path, None) of ``filename`` in ``data_file_dir`` or one of its sub-folders, else (None, problem).

    The file directly in ``data_file_dir`` wins; two candidates in sub-folders are ambiguous.
    """
    direct = data_file_dir / filename
    if direct.is_file():
        return direct, None
    nested = sorted(data_file_dir.glob(f"*/{filename}"))
    if len(nested) == 1:
        return nested[0], None
    if nested:
        return None, f"name list {filename} is ambiguous: found {', '.join(map(str, nested))}; keep one"
    return None, (f"name list {filename} not found: looked for {direct} and {data_file_dir / '*' / filename} "
                  "(set --data_file_dir to the folder holding the name lists, or --data_file_dir none to use "
                  "every image)")


def read_name_list(list_path: Path, layout: Layout) -> list[PurePosixPath]:
    """Names listed in ``list_path``, relative to the degraded (else clean) folder, blank lines skipped.

    A line may carry the folder as prefix (``rainy/rain-1.png``) or not (``rain-1.png``).
    """
    prefix = PurePosixPath(layout.input_folder()).as_posix() + "/"
    return list(_read_name_list(str(list_path), list_path.stat().st_mtime_ns, prefix))


@functools.lru_cache(maxsize=8)
def _read_name_list(list_path: str, mtime_ns: int, prefix: str) -> tuple[PurePosixPath, ...]:
    """Cached by path and modification time: the haze list has 72,135 lines and is read several times."""
    names = []
    for line in Path(list_path).read_text().splitlines():
        line = line.strip().replace("\\", "/")
        if line:
            names.append(line[len(prefix):] if prefix != "./" and line.startswith(prefix) else line)
    return tuple(PurePosixPath(name) for name in sorted(names))


def _missing_folder(folder: Path, field: str, kind: str, split: str) -> str:
    return (f"missing folder {folder} ({kind} {split} data: set --data_root or --{field}; the expected "
            "layout is in docs/datasets.md)")


def _no_images(folder: Path) -> str:
    return f"no images in {folder} (looked for {', '.join(sorted(IMAGE_EXTENSIONS))} files)"


def uses_authors_lists(paths: DatasetPaths) -> bool:
    """Whether ``paths`` selects the training images by the authors' shipped name lists."""
    return paths.data_file_dir is not None and paths.data_file_dir.resolve() == AUTHORS_NAME_LISTS


@dataclass(frozen=True)
class TrainingInputs:
    """The training input images of one dataset kind: degraded images, or clean ones for denoising.

    folder:    the folder the names are relative to (``<task folder>/<degraded sub-folder>``).
    names:     the inputs a run trains on: the listed names that exist, or every image found.
    list_path: the name list that selected them; None when every image found is used.
    missing:   listed names without a file (left out of ``names``).
    """

    folder: Path
    names: list[PurePosixPath]
    list_path: Path | None = None
    missing: tuple[PurePosixPath, ...] = ()


def missing_names_hints(missing: Sequence[PurePosixPath], found: Sequence[PurePosixPath], folder: Path,
                        list_path: Path) -> list[str]:
    """What to do about listed names that have no file, for the two known causes.

    - BSD400 ``a`` prefix: ``denoise.txt`` names ``a117025.jpg`` where common downloads have
      ``117025.jpg``: the rule and a shell command that renames exactly those files.
    - Sub-folders: the list names ``synthetic/X.jpg`` but the file is ``synthetic/part1/X.jpg``.
    """
    found_set = set(found)
    by_name: dict[str, PurePosixPath] = {}
    for name in found:
        by_name.setdefault(name.name, name)
    unprefixed = [m for m in missing if m.name.startswith("a") and m.with_name(m.name[1:]) in found_set]
    hints = []
    if unprefixed:
        example = unprefixed[0]
        hints.append(
            f"{len(unprefixed)} of them exist without the 'a' prefix that {list_path.name} gives the BSD400 images "
            f"(e.g. {example.with_name(example.name[1:])} for {example}): rename every NAME that the list names "
            f"aNAME to aNAME, e.g. with: cd '{folder}' && for f in *; do if grep -qxF \"a$f\" '{list_path}'; "
            "then mv -n -- \"$f\" \"a$f\"; fi; done")
    unprefixed_set = set(unprefixed)
    elsewhere = [m for m in missing if m not in unprefixed_set and m.name in by_name]
    if elsewhere:
        example = elsewhere[0]
        hints.append(f"{len(elsewhere)} of them are in other sub-folders of {folder} (e.g. {by_name[example.name]} "
                     f"for {example}): move them to where the list names them")
    return hints


def missing_listed_problem(inputs: TrainingInputs, listed: int, found: Sequence[PurePosixPath]) -> str:
    """The error for listed files that do not exist: how many, a few names, the cause if known, what to do.

    ``found``: the images in ``inputs.folder`` (:func:`list_images`).
    """
    examples = ", ".join(str(m) for m in inputs.missing[:5])
    hints = missing_names_hints(inputs.missing, found, inputs.folder, inputs.list_path)
    return (f"{len(inputs.missing)} of the {listed} images listed in {inputs.list_path} are missing from "
            f"{inputs.folder} (e.g. {examples})" + "".join(f"; {h}" for h in hints)
            + " (to train on the images present instead: --data_file_dir none for every image found, or "
            "--data_file_dir DIR with your own name lists)")


def training_inputs(kind: str, paths: DatasetPaths) -> tuple[TrainingInputs | None, list[str]]:
    """The training inputs of ``kind`` under ``paths`` and the problems found (never raises for them).

    Problems: missing input folder, missing or ambiguous or empty name list, no images, and, with
    the authors' lists (:func:`uses_authors_lists`), any listed file that does not exist (one
    problem naming a few, with the cause when known). With other lists missing files are only
    recorded in ``missing``.
    """
    task_dir, field = task_folder(kind, "train", paths)
    layout = dataset(kind).layout("train")
    input_dir = task_dir / (layout.degraded if layout.degraded is not None else layout.clean)
    if not input_dir.is_dir():
        return None, [_missing_folder(input_dir, field, kind, "train")]
    if paths.data_file_dir is None or layout.name_list is None:
        names = list_images(input_dir)
        return TrainingInputs(input_dir, names), [] if names else [_no_images(input_dir)]

    list_path, problem = find_name_list(paths.data_file_dir, layout.name_list)
    if list_path is None:
        return None, [problem]
    listed = read_name_list(list_path, layout)
    if not listed:
        return None, [f"name list {list_path} is empty"]
    found = list_images(input_dir)  # one walk instead of a stat per listed name
    found_set = set(found)
    present = [name for name in listed if name in found_set]
    missing = tuple(name for name in listed if name not in found_set)
    inputs = TrainingInputs(input_dir, present, list_path, missing)
    problems = [missing_listed_problem(inputs, len(listed), found)] if missing and uses_authors_lists(paths) else []
    if not present and not problems:
        problems.append(f"none of the {len(listed)} images listed in {list_path} is in {input_dir}")
    return inputs, problems


def scan_pairs(kind: str, split: str, paths: DatasetPaths) -> tuple[list[Pair], list[str]]:
    """All (degraded, clean) pairs of ``kind`` for ``split`` ('train' or 'test'), and the problems found.

    Never raises for dataset problems: each problem is one line naming the offending path
    (missing or empty folder, missing name list, listed files missing with the authors' lists,
    image without its partner naming both). Pairs are sorted by the degraded (else clean)
    relative path; images with a problem are left out.
    """
    task_dir, field = task_folder(kind, split, paths)
    layout = dataset(kind).layout(split)
    clean_dir = task_dir / layout.clean
    input_dir = task_dir / layout.degraded if layout.degraded is not None else clean_dir

    missing = [d for d in dict.fromkeys((input_dir, clean_dir)) if not d.is_dir()]
    if missing:
        return [], [_missing_folder(d, field, kind, split) for d in missing]

    if split == "train":
        inputs, problems = training_inputs(kind, paths)
        names = inputs.names if inputs is not None else []
    else:
        names = list_images(input_dir)
        problems = [] if names else [_no_images(input_dir)]

    if layout.degraded is None:
        return [Pair(None, clean_dir / name) for name in names], problems

    clean_names = set(list_images(clean_dir))
    if not clean_names:  # one problem, not one per degraded image
        return [], [*problems, _no_images(clean_dir)]
    pairs = []
    for name in names:
        try:
            partner = layout.partner(name)
        except ValueError as err:
            problems.append(f"{input_dir / name}: {err}")
            continue
        if partner in clean_names:
            pairs.append(Pair(input_dir / name, clean_dir / partner))
        else:
            problems.append(f"{input_dir / name} has no clean partner: expected {clean_dir / partner}")
    return pairs, problems


def train_pairs(kind: str, paths: DatasetPaths) -> list[Pair]:
    """The training pairs of ``kind`` (``degraded`` None for denoise); DataError listing every problem."""
    pairs, problems = scan_pairs(kind, "train", paths)
    if problems:
        raise DataError(problems, f"{kind} training data")
    return pairs


def eval_pairs(kind: str, paths: DatasetPaths) -> list[Pair]:
    """The test pairs of ``kind`` (``degraded`` None for denoise); DataError listing every problem."""
    pairs, problems = scan_pairs(kind, "test", paths)
    if problems:
        raise DataError(problems, f"{kind} test data")
    return pairs
