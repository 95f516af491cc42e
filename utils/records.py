"""The record types of DFPIR's degradation tasks and their registries: plain data, no behaviour.

- :class:`Dataset`: a dataset family (``denoise``, ``derain``, ...): its folder flags
  (``--<name>_dir`` for training, ``--<name>_path`` for testing), default folders under
  ``--data_root``, the train and test :class:`Layout` (how degraded images pair with clean ones,
  the authors' name list), the benchmark each split comes from, its sizes, the downloads that fill
  it (``python -m data.prepare``) and its stand-in recipe (:class:`StandIn`: ``python -m data.sample``).
- :class:`Task`: a degradation task (``denoise_15``, ``derain``, ...): its degradation id (the row
  of the prompt table), every spelling (name, demo aliases such as ``noise15``, the paper's column
  ``CBSD68 s15``), its prompt in each prompt set, its dataset, the degradation the loaders
  synthesise online (:class:`Online`, e.g. Gaussian noise at sigma 15) and the augmentation of its
  recogniser samples.
- :class:`Setting`: a training/evaluation setting of the paper (3D, 5D): its training mixture (task
  -> repeat factor), the table's columns and published numbers, the validation interval and the
  authors' legacy noise order.

Behaviour a record names is found by that name in a registry of ``data/``: the stand-in synthesis
(``data.synthesis.SYNTHESES``), the online degradation (``data.online.ONLINE_DEGRADATIONS``), the
download finder (``data.finders.FINDERS``). This module imports nothing of the project; the paper's
own records are registered by :mod:`utils.paper` and everything is re-exported by :mod:`utils.tasks`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from utils.registry import Registry

SPLITS: tuple[str, ...] = ("train", "test")
PAPER_ARCHITECTURE = "dfpir"  # the network whose numbers a Setting's paper_numbers are (net/registry.py's name)

# --------------------------------------------------------------------------------------------------
# Layouts: how degraded images pair with clean ones inside a dataset folder (docs/protocol.md section 5)

PartnerRule = Callable[[PurePosixPath], PurePosixPath]
"""Maps a degraded image's path (relative to its folder) to its partner's (relative to the clean folder)."""


def same_name(rel: PurePosixPath) -> PurePosixPath:
    """``blur/NAME`` -> ``sharp/NAME``, ``low/NAME`` -> ``high/NAME``."""
    return rel


def rain_partner(rel: PurePosixPath) -> PurePosixPath:
    """``rain-N.png`` -> ``norain-N.png`` (Rain100L)."""
    if not rel.name.startswith("rain-"):
        raise ValueError("a rainy image must be named rain-<N> to pair with norain-<N>")
    return rel.with_name("no" + rel.name)


def haze_partner(suffix: str | None) -> PartnerRule:
    """``ID_A_B.ext`` (in any sub-folder) -> ``ID`` + ``suffix`` (the hazy file's own extension if None).

    ID is the file name up to its first underscore (RESIDE: ``0025_0.8_0.1.jpg`` -> ``0025``).
    """

    def partner(rel: PurePosixPath) -> PurePosixPath:
        return PurePosixPath(rel.name.split("_")[0] + (rel.suffix if suffix is None else suffix))

    return partner


@dataclass(frozen=True)
class Layout:
    """How one dataset of one split is laid out inside its folder.

    degraded:  sub-folder of degraded images, or None when the clean images are the only input.
    clean:     sub-folder of clean images ('' for the folder itself).
    partner:   degraded path relative to ``degraded`` -> clean path relative to ``clean``.
    name_list: the authors' name-list file restricting this dataset (training only), or None.
    listed_with_folder: the authors' name list writes ``degraded/NAME`` rather than ``NAME``
               (both are read; the stand-in generator writes the authors' form).
    example:   a degraded (else clean) file name as the benchmark names it, for docs/datasets.md.
    pairs_by:  what the partner rule matches, in words, for docs/datasets.md.
    """

    degraded: str | None
    clean: str
    partner: PartnerRule = same_name
    name_list: str | None = None
    listed_with_folder: bool = False
    example: str = "NAME"
    pairs_by: str = "NAME"

    def input_folder(self) -> str:
        """The sub-folder of the input images: the degraded images, else the clean ones."""
        return self.degraded if self.degraded is not None else self.clean


# --------------------------------------------------------------------------------------------------
# Records


@dataclass(frozen=True)
class StandIn:
    """How ``python -m data.sample`` writes a stand-in of a dataset.

    train_name, test_name: input file-name template (degraded image, else clean) relative to the
               layout's input folder; ``{i}`` is the 1-based scene index, ``{tag}`` the synthesis
               tag. The clean image's name is the layout's partner of it.
    synthesis: name of the stand-in synthesis in ``data.synthesis.SYNTHESES`` (clean scene ->
               degraded versions); None when the clean images are the only input (the loader
               synthesises, e.g. noise).
    scenes:    scenes per split (train, test) at ``--scale 1``.
    versions:  degraded versions per scene (train, test) (RESIDE OTS has several per scene).
    name_list_folder: sub-folder of ``data_file_dir/`` the training name list is written to.
    description: what the synthesis does, for the stand-in's README.txt.
    """

    train_name: str
    test_name: str
    synthesis: str | None = None
    scenes: tuple[int, int] = (4, 4)
    versions: tuple[int, int] = (1, 1)
    name_list_folder: str = ""
    description: str = ""

    def name(self, split: str) -> str:
        return self.train_name if split == "train" else self.test_name

    def count(self, split: str, what: tuple[int, int]) -> int:
        return what[SPLITS.index(split)]


@dataclass(frozen=True)
class Download:
    """One official archive that fills folders of a dataset (``python -m data.prepare``).

    flag:    the ``--flag`` of ``python -m data.prepare`` taking the unpacked folder; also the name
             of its finder in ``data.finders.FINDERS`` (ImageTree -> Found).
    archive: the official source and its structure (``--help`` and docs/datasets.md).
    splits:  the splits of the dataset it fills.
    """

    flag: str
    archive: str
    splits: tuple[str, ...]


@dataclass(frozen=True)
class Dataset:
    """A dataset family shared by the tasks that train and test on it (the three denoise tasks share one).

    name:       the dataset's name; its folders are set with ``--<name>_dir`` (training) and
                ``--<name>_path`` (testing).
    train, test: the layouts inside the training and the test folder.
    train_folder, test_folder: default folders under ``--data_root``.
    train_source, test_source: the benchmark that fills each split (docs/datasets.md).
    stand_in:   how the stand-in generator writes it.
    test_size:  pairs (clean images when there is no degraded one) in the benchmark's test set, if fixed
                (``python -m data.prepare`` compares what it finds with it).
    train_size: training inputs in the authors' name list, i.e. what the paper trained on (docs/protocol.md
                section 5; ``--check_data`` compares, ``benchmarks/bench_data.py`` weights by it).
    downloads:  the official archives filling its folders, in ``python -m data.prepare``'s order.
    """

    name: str
    train: Layout
    test: Layout
    train_folder: str
    test_folder: str
    train_source: str
    test_source: str
    stand_in: StandIn
    test_size: int | None = None
    train_size: int | None = None
    downloads: tuple[Download, ...] = ()

    def layout(self, split: str) -> Layout:
        return self.train if _check_split(split) == "train" else self.test

    def flag(self, split: str) -> str:
        """The flag (and :class:`data.layouts.DatasetPaths` key) of the split's folder, e.g. 'derain_dir'."""
        return f"{self.name}_{'dir' if _check_split(split) == 'train' else 'path'}"

    def default_folder(self, split: str) -> str:
        return self.train_folder if _check_split(split) == "train" else self.test_folder


@dataclass(frozen=True)
class Online:
    """A degradation the training and test loaders synthesise from each clean image as they read it.

    name:   the degradation's name in ``data.online.ONLINE_DEGRADATIONS`` (``"noise"``: Gaussian noise).
    params: its parameters, passed by keyword (noise: ``sigma`` on the 0-255 scale).
    """

    name: str
    params: Mapping[str, float] = field(default_factory=dict)

    @property
    def key(self) -> str:
        """The parameter values joined by ':' (``"15"`` for sigma 15): seeds the per-image test draws."""
        return ":".join(str(v) for v in self.params.values())


@dataclass(frozen=True)
class Task:
    """One degradation task.

    name:      the task name used by every flag and report (``--de_type``, ``--tasks``, results.json).
    de_id:     degradation id: the row of the prompt table this task's samples are steered by.
    kind:      the :class:`Dataset` it trains and tests on.
    test_set:  the benchmark column it is evaluated in, as the paper's tables name it.
    prompts:   prompt set -> this task's prompt in it (docs/protocol.md section 2).
    aliases:   other spellings accepted wherever a task is named (the demo's ``--degradation``).
    online:    the degradation the loaders add to the clean images (denoising: Gaussian noise), or
               None when the dataset holds degraded images.
    recognizer_augmentation: name of the augmentation of this task's samples when training the
               degradation recogniser (``engine.recognizer_training.AUGMENTATIONS``), or None.
    """

    name: str
    de_id: int
    kind: str
    test_set: str
    prompts: Mapping[str, str]
    aliases: tuple[str, ...] = ()
    online: Online | None = None
    recognizer_augmentation: str | None = None

    @property
    def dataset(self) -> Dataset:
        return DATASETS[self.kind]

    @property
    def spellings(self) -> tuple[str, ...]:
        """Every name this task answers to: its name, its aliases and its test-set column."""
        return (self.name, *self.aliases, self.test_set)

    @property
    def sigma(self) -> float | None:
        """The Gaussian noise level (0-255) of a task whose online degradation is ``noise``, else None."""
        return self.online.params["sigma"] if self.online is not None and self.online.name == "noise" else None

    @property
    def repeats(self) -> dict[str, int]:
        """Setting -> this task's repeat factor in that setting's training mixture (the settings that train it)."""
        return {s.name: s.train_repeats[self.name] for s in SETTINGS.values() if self.name in s.train_repeats}

    @property
    def published(self) -> dict[str, tuple[float, float]]:
        """Setting -> (PSNR, SSIM) the paper reports for this task in that setting."""
        return {s.name: s.paper_numbers[self.name] for s in SETTINGS.values() if self.name in s.paper_numbers}


@dataclass(frozen=True)
class Setting:
    """A training/evaluation setting of the paper: the 3D (three degradations) or 5D mixture.

    test_tasks:        the columns of the paper's table, in the paper's order.
    val_every:         validation interval in training steps used by the authors.
    train_repeats:     the training mixture: task name -> how many times one training epoch visits
                       each of its training images.
    paper_numbers:     task name -> (PSNR, SSIM) reported in the paper (DFPIR's own row).
    published_average: the paper's average over ``test_tasks`` (PSNR, SSIM), if published.
    baseline_numbers:  architecture name (``net/registry.py``) of another network -> its published
                       row in this setting: task name (and 'average') -> (PSNR, SSIM). A network
                       absent here has no published numbers in this setting.
    baseline_sources:  architecture name -> where its row in ``baseline_numbers`` is taken from when it
                       is not that network's own paper (a secondary source), for the tables' labels.
    legacy_sigmas:     the sigmas the authors' test script of this setting draws noise for, in their
                       order, from one stream (``--legacy_noise``); None: the authors have no such script.
    """

    name: str
    test_tasks: tuple[str, ...]
    val_every: int
    train_repeats: Mapping[str, int]
    paper_numbers: Mapping[str, tuple[float, float]] = field(default_factory=dict)
    published_average: tuple[float, float] | None = None
    legacy_sigmas: tuple[int, ...] | None = None
    baseline_numbers: Mapping[str, Mapping[str, tuple[float, float]]] = field(default_factory=dict)
    baseline_sources: Mapping[str, str] = field(default_factory=dict)

    @property
    def published(self) -> dict[str, tuple[float, float]]:
        """Task name -> published (PSNR, SSIM) in this setting, and 'average'."""
        numbers = dict(self.paper_numbers)
        if self.published_average is not None:
            numbers["average"] = self.published_average
        return numbers

    def published_for(self, architecture: str) -> dict[str, tuple[float, float]] | None:
        """The published row of a network in this setting: task name (and 'average') -> (PSNR, SSIM);
        DFPIR's (``PAPER_ARCHITECTURE``) is :attr:`published`; None: not published."""
        if architecture == PAPER_ARCHITECTURE:
            return self.published
        numbers = self.baseline_numbers.get(architecture)
        return None if numbers is None else dict(numbers)

    def published_source(self, architecture: str) -> str:
        """Where a network's published row in this setting comes from: 'paper' (its own), or the
        secondary source of :attr:`baseline_sources`."""
        return self.baseline_sources.get(architecture, "paper")

    def prompt_sets(self) -> list[str]:
        """The prompt sets that have a prompt for every training task of this setting."""
        return [s for s in prompt_set_names() if all(s in TASKS[t].prompts for t in self.train_repeats)]


# --------------------------------------------------------------------------------------------------
# Registries

DATASETS: Registry[Dataset] = Registry("dataset", "utils.tasks.register_dataset")
TASKS: Registry[Task] = Registry("task", "utils.tasks.register_task")
TASK_BY_ID: Registry[Task] = Registry("degradation id", "utils.tasks.register_task")  # keyed by Task.de_id
SETTINGS: Registry[Setting] = Registry("setting", "utils.tasks.register_setting")

_NAME = re.compile(r"[a-z][a-z0-9_]*")  # names become flags and file names


def _check_split(split: str) -> str:
    if split not in SPLITS:
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    return split


def register_dataset(dataset: Dataset) -> Dataset:
    """Add a dataset record (its name must be new: lower case, digits, '_')."""
    if not _NAME.fullmatch(dataset.name):
        raise ValueError(f"dataset name {dataset.name!r}: use lower case letters, digits and '_' (it names flags)")
    return DATASETS.register(dataset.name, dataset)


def register_task(task: Task) -> Task:
    """Add a task record: its dataset must be registered; its id and every spelling must be new."""
    if not _NAME.fullmatch(task.name):
        raise ValueError(f"task name {task.name!r}: use lower case letters, digits and '_'")
    if task.kind not in DATASETS:
        raise ValueError(f"task {task.name!r}: register its dataset {task.kind!r} first")
    if task.de_id in TASK_BY_ID:
        raise ValueError(f"task {task.name!r}: degradation id {task.de_id} is {TASK_BY_ID[task.de_id].name!r}'s")
    taken = {s: t.name for t in TASKS.values() for s in t.spellings}
    clashes = [s for s in task.spellings if s in taken]
    if clashes:
        raise ValueError(f"task {task.name!r}: {clashes} already name {[taken[s] for s in clashes]}")
    if not task.prompts:
        raise ValueError(f"task {task.name!r} needs a prompt in at least one prompt set")
    TASK_BY_ID.register(task.de_id, task)
    return TASKS.register(task.name, task)


def register_setting(setting: Setting) -> Setting:
    """Add a setting record (its name must be new and a valid flag value); the tasks of its mixture,
    table and numbers must be registered."""
    if not re.fullmatch(r"[A-Za-z0-9_]+", setting.name):
        raise ValueError(f"setting name {setting.name!r}: use letters, digits and '_' (it names flags and folders)")
    if not setting.train_repeats:
        raise ValueError(f"setting {setting.name!r} needs a training mixture (task -> repeat factor)")
    baselines = [t for numbers in setting.baseline_numbers.values() for t in numbers if t != "average"]
    for what, names in (("test", setting.test_tasks), ("training", setting.train_repeats),
                        ("published", setting.paper_numbers), ("baseline", baselines)):
        unknown = [t for t in names if t not in TASKS]
        if unknown:
            raise ValueError(f"setting {setting.name!r}: unknown {what} task(s) {unknown}")
    return SETTINGS.register(setting.name, setting)


def find_task(spelling: str) -> Task:
    """The task named ``spelling`` by its name, an alias or its test-set column; ValueError listing them."""
    for task in TASKS.values():
        if spelling in task.spellings:
            return task
    raise ValueError(f"unknown task {spelling!r}; choose from {[s for t in TASKS.values() for s in t.spellings]}")


def degradation_choices() -> dict[str, str]:
    """Short name -> task name: each task's aliases, or its name if it has none (the demo's choices)."""
    return {alias: t.name for t in TASKS.values() for alias in (t.aliases or (t.name,))}


def prompt_set_names() -> list[str]:
    """Every prompt set some task has a prompt in, in order of first appearance."""
    return list(dict.fromkeys(s for t in sorted(TASKS.values(), key=lambda t: t.de_id) for s in t.prompts))


def prompts_of(prompt_set: str) -> list[str]:
    """The prompts of a set indexed by degradation id: ids 0..N-1 must all have one (KeyError/ValueError)."""
    by_id = {t.de_id: t.prompts[prompt_set] for t in TASKS.values() if prompt_set in t.prompts}
    if not by_id:
        raise KeyError(prompt_set)
    gaps = sorted(set(range(max(by_id) + 1)) - set(by_id))
    if gaps:
        raise ValueError(f"prompt set {prompt_set!r} has no prompt for degradation id(s) {gaps}, "
                         f"but one for {max(by_id)}: a prompt table is indexed by id")
    return [by_id[i] for i in range(len(by_id))]


def folder_flags(split: str | None = None) -> list[str]:
    """The dataset-folder flags (without ``--``): every dataset's training then test folder, or one split's."""
    splits = SPLITS if split is None else (split,)
    return [d.flag(s) for s in splits for d in DATASETS.values()]


