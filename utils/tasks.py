"""The degradation tasks of DFPIR: one record per task, one per dataset, one per setting.

Everything the code knows about a degradation comes from these records (spec sections 2-5):

- :class:`Dataset`: a dataset family (``denoise``, ``derain``, ...): its folder flags
  (``--<name>_dir`` for training, ``--<name>_path`` for testing), default folders under
  ``--data_root``, the train and test :class:`Layout` (how degraded images pair with clean ones,
  the authors' name list), the benchmark each split comes from, and its stand-in recipe
  (:class:`StandIn`: file names and synthesis of ``python -m data.sample``).
- :class:`Task`: a degradation task (``denoise_15``, ``derain``, ...): its degradation id (the row
  of the prompt table), every spelling (name, demo aliases such as ``noise15``, the paper's column
  ``CBSD68 s15``), its prompt in each prompt set, its dataset, noise sigma, training repeat factor
  and published PSNR/SSIM per setting.
- :class:`Setting`: a training/evaluation setting of the paper (3D, 5D): the table's columns, the
  validation interval and the published average; its training tasks are the tasks with a repeat
  factor for it.

Flags (``options.py``), dataset folders and pairing (``data/layouts.py``), the prompt sets
(``net/prompts.py``), the demo's ``--degradation`` choices, the stand-in generator
(``data/sample.py``), the data benchmark and the README's tables (``python -m utils.tasks``) are
all derived from the registries below, read when they are used (never copied at import).

Adding a task: write its records (a :class:`Dataset` if it brings a new dataset, with a synthesis
function for the stand-in data, and a :class:`Task`) and register them with :func:`register_dataset`
/ :func:`register_task` (here for a built-in task; from any module for a plug-in), then
``python -m utils.tasks --update-readme``. See README, "Extending".
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from data.synthesis import Synthesis, add_motion_blur, add_rain, darken, each, haze_versions

SPLITS: tuple[str, ...] = ("train", "test")

# --------------------------------------------------------------------------------------------------
# Layouts: how degraded images pair with clean ones inside a dataset folder (spec section 5)

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
    example:   a degraded (else clean) file name as the benchmark names it, for the README.
    pairs_by:  what the partner rule matches, in words, for the README.
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
    synthesise: clean scene -> degraded versions (:data:`data.synthesis.Synthesis`); None when the
               clean images are the only input (the loader synthesises, e.g. noise).
    scenes:    scenes per split (train, test) at ``--scale 1``.
    versions:  degraded versions per scene (train, test) (RESIDE OTS has several per scene).
    name_list_folder: sub-folder of ``data_file_dir/`` the training name list is written to.
    description: what the synthesis does, for the stand-in's README.txt.
    """

    train_name: str
    test_name: str
    synthesise: Synthesis | None = None
    scenes: tuple[int, int] = (4, 4)
    versions: tuple[int, int] = (1, 1)
    name_list_folder: str = ""
    description: str = ""

    def name(self, split: str) -> str:
        return self.train_name if split == "train" else self.test_name

    def count(self, split: str, what: tuple[int, int]) -> int:
        return what[SPLITS.index(split)]


@dataclass(frozen=True)
class Dataset:
    """A dataset family shared by the tasks that train and test on it (the three denoise tasks share one).

    name:       the dataset's name; its folders are set with ``--<name>_dir`` (training) and
                ``--<name>_path`` (testing).
    train, test: the layouts inside the training and the test folder.
    train_folder, test_folder: default folders under ``--data_root``.
    train_source, test_source: the benchmark that fills each split (README).
    stand_in:   how the stand-in generator writes it.
    image_size: (height, width) of a typical benchmark image (``benchmarks/bench_data.py``).
    test_size:  pairs (clean images when there is no degraded one) in the benchmark's test set, if fixed
                (``python -m data.prepare`` compares what it finds with it).
    """

    name: str
    train: Layout
    test: Layout
    train_folder: str
    test_folder: str
    train_source: str
    test_source: str
    stand_in: StandIn
    image_size: tuple[int, int] = (321, 481)
    test_size: int | None = None

    def layout(self, split: str) -> Layout:
        return self.train if _check_split(split) == "train" else self.test

    def flag(self, split: str) -> str:
        """The flag (and :class:`data.layouts.DatasetPaths` key) of the split's folder, e.g. 'derain_dir'."""
        return f"{self.name}_{'dir' if _check_split(split) == 'train' else 'path'}"

    def default_folder(self, split: str) -> str:
        return self.train_folder if _check_split(split) == "train" else self.test_folder


@dataclass(frozen=True)
class Task:
    """One degradation task.

    name:      the task name used by every flag and report (``--de_type``, ``--tasks``, results.json).
    de_id:     degradation id: the row of the prompt table this task's samples are steered by.
    kind:      the :class:`Dataset` it trains and tests on.
    test_set:  the benchmark column it is evaluated in, as the paper's tables name it.
    prompts:   prompt set -> this task's prompt in it (spec section 2).
    aliases:   other spellings accepted wherever a task is named (the demo's ``--degradation``).
    sigma:     Gaussian noise level (0-255) added by the loaders for denoising tasks, else None.
    repeats:   setting -> how many times one training epoch visits each training image.
    published: setting -> (PSNR, SSIM) reported in the paper.
    """

    name: str
    de_id: int
    kind: str
    test_set: str
    prompts: Mapping[str, str]
    aliases: tuple[str, ...] = ()
    sigma: int | None = None
    repeats: Mapping[str, int] = field(default_factory=dict)
    published: Mapping[str, tuple[float, float]] = field(default_factory=dict)

    @property
    def dataset(self) -> Dataset:
        return DATASETS[self.kind]

    @property
    def spellings(self) -> tuple[str, ...]:
        """Every name this task answers to: its name, its aliases and its test-set column."""
        return (self.name, *self.aliases, self.test_set)


@dataclass(frozen=True)
class Setting:
    """A training/evaluation setting of the paper: the 3D (three degradations) or 5D mixture.

    test_tasks:        the columns of the paper's table, in the paper's order.
    val_every:         validation interval in training steps used by the authors.
    published_average: the paper's average over ``test_tasks`` (PSNR, SSIM), if published.
    """

    name: str
    test_tasks: tuple[str, ...]
    val_every: int
    published_average: tuple[float, float] | None = None

    @property
    def train_repeats(self) -> dict[str, int]:
        """Task name -> repeat factor, for the tasks that train in this setting (registry order)."""
        return {t.name: t.repeats[self.name] for t in TASKS.values() if self.name in t.repeats}

    @property
    def published(self) -> dict[str, tuple[float, float]]:
        """Task name -> published (PSNR, SSIM) in this setting, and 'average'."""
        numbers = {t.name: t.published[self.name] for t in TASKS.values() if self.name in t.published}
        if self.published_average is not None:
            numbers["average"] = self.published_average
        return numbers

    def prompt_sets(self) -> list[str]:
        """The prompt sets that have a prompt for every training task of this setting."""
        return [s for s in prompt_set_names() if all(s in TASKS[t].prompts for t in self.train_repeats)]


# --------------------------------------------------------------------------------------------------
# Registries

DATASETS: dict[str, Dataset] = {}
TASKS: dict[str, Task] = {}
TASK_BY_ID: dict[int, Task] = {}
SETTINGS: dict[str, Setting] = {}

_NAME = re.compile(r"[a-z][a-z0-9_]*")  # names become flags and file names


def _check_split(split: str) -> str:
    if split not in SPLITS:
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    return split


def register_dataset(dataset: Dataset) -> Dataset:
    """Add a dataset record (its name must be new: lower case, digits, '_')."""
    if not _NAME.fullmatch(dataset.name):
        raise ValueError(f"dataset name {dataset.name!r}: use lower case letters, digits and '_' (it names flags)")
    if dataset.name in DATASETS:
        raise ValueError(f"dataset {dataset.name!r} is already registered")
    DATASETS[dataset.name] = dataset
    return dataset


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
    TASKS[task.name] = task
    TASK_BY_ID[task.de_id] = task
    return task


def register_setting(setting: Setting) -> Setting:
    """Add a setting record; its test tasks must be registered."""
    if setting.name in SETTINGS:
        raise ValueError(f"setting {setting.name!r} is already registered")
    unknown = [t for t in setting.test_tasks if t not in TASKS]
    if unknown:
        raise ValueError(f"setting {setting.name!r}: unknown test task(s) {unknown}")
    SETTINGS[setting.name] = setting
    return setting


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


# --------------------------------------------------------------------------------------------------
# The records of the paper (spec sections 2-5)

for _dataset in (
    Dataset(
        "denoise",
        train=Layout(None, "", name_list="denoise.txt", example="*", pairs_by="noise is synthetic"),
        test=Layout(None, "bsd68", example="*", pairs_by="noise is synthetic"),
        train_folder="Train/Denoise", test_folder="test/denoise",
        train_source="BSD400 + WED", test_source="CBSD68",
        stand_in=StandIn("{i:05d}.png", "{i:04d}.png", scenes=(8, 4), name_list_folder="noisy",
                         description="none for denoising (the loader adds the noise)"),
        image_size=(321, 481),
        test_size=68,
    ),
    Dataset(
        "derain",
        train=Layout("rainy", "gt", rain_partner, "rainTrain.txt", listed_with_folder=True, example="rain-N.png",
                     pairs_by="N"),
        test=Layout("Rain100L/input", "Rain100L/target", rain_partner, example="rain-N.png", pairs_by="N"),
        train_folder="Train/Derain", test_folder="test/derain",
        train_source="Rain100L train", test_source="Rain100L",
        stand_in=StandIn("rain-{i}.png", "rain-{i:03d}.png", each(add_rain), name_list_folder="rainy",
                         description="screen-blended motion-blurred rain streaks (Rain100L names)"),
        image_size=(321, 481),
        test_size=100,
    ),
    Dataset(
        "dehaze",
        train=Layout("synthetic", "original", haze_partner(None), "hazy_outside.txt", listed_with_folder=True,
                     example="ID_A_B.jpg", pairs_by="ID before the first `_`, same extension"),
        test=Layout("input", "target", haze_partner(".png"), example="ID_A_B.jpg", pairs_by="ID"),
        train_folder="Train/Dehaze", test_folder="test/dehaze",
        train_source="RESIDE OTS", test_source="SOTS outdoor",
        stand_in=StandIn("{i:04d}_{tag}.jpg", "{i:04d}_{tag}.jpg", haze_versions, versions=(2, 1),
                         name_list_folder="hazy",
                         description="haze by I = J t + A (1 - t), t = exp(-beta d), on a smooth synthetic depth "
                         "map, A and beta in the names (RESIDE names ID_A_B.jpg, 2 hazy versions per training "
                         "scene)"),
        image_size=(413, 550),
        test_size=500,
    ),
    Dataset(
        "deblur",
        train=Layout("blur", "sharp", same_name, "train_gopro.txt"),
        test=Layout("blur", "sharp"),
        train_folder="Train/Deblur", test_folder="test/deblur",
        train_source="GoPro train", test_source="GoPro test",
        stand_in=StandIn("GOPR0001_00_{i:06d}.png", "GOPR0002_00_{i:06d}.png", each(add_motion_blur),
                         name_list_folder="gopro", description="linear or random-walk motion blur (GoPro names)"),
        image_size=(720, 1280),
        test_size=1111,
    ),
    Dataset(
        "lowlight",
        train=Layout("low", "high", same_name, "train_lol.txt"),
        test=Layout("low", "high"),
        train_folder="Train/LowLight", test_folder="test/lowlight",
        train_source="LOL train", test_source="LOL test",
        stand_in=StandIn("{i}.png", "{i}.png", each(darken), name_list_folder="lol",
                         description="gamma darkening, scaling and noise (LOL names)"),
        image_size=(400, 600),
        test_size=15,
    ),
):
    register_dataset(_dataset)

# The 'detailed' prompts steer the released 3D and 5D checkpoints, the 'simple' ones the 3D "simple" one.
for _task in (
    Task("denoise_15", 0, "denoise", "CBSD68 s15", aliases=("noise15",), sigma=15,
         prompts={"detailed": "Gaussian noise with a standard deviation of 15", "simple": "Noise"},
         repeats={"3D": 3, "5D": 3}, published={"3D": (34.14, 0.935)}),
    Task("denoise_25", 1, "denoise", "CBSD68 s25", aliases=("noise25",), sigma=25,
         prompts={"detailed": "Gaussian noise with a standard deviation of 25", "simple": "Noise"},
         repeats={"3D": 3, "5D": 3}, published={"3D": (31.47, 0.893), "5D": (31.29, 0.889)}),
    Task("denoise_50", 2, "denoise", "CBSD68 s50", aliases=("noise50",), sigma=50,
         prompts={"detailed": "Gaussian noise with a standard deviation of 50", "simple": "Noise"},
         repeats={"3D": 3, "5D": 3}, published={"3D": (28.25, 0.806)}),
    Task("derain", 3, "derain", "Rain100L", aliases=("rain",),
         prompts={"detailed": "Rain degradation with rain lines", "simple": "Rain"},
         repeats={"3D": 120, "5D": 80}, published={"3D": (38.65, 0.982), "5D": (37.62, 0.978)}),
    Task("dehaze", 4, "dehaze", "SOTS", aliases=("haze",),
         prompts={"detailed": "Hazy degradation with normal haze", "simple": "Haze"},
         repeats={"3D": 1, "5D": 1}, published={"3D": (31.87, 0.980), "5D": (31.64, 0.979)}),
    Task("deblur", 5, "deblur", "GoPro", aliases=("blur",),
         prompts={"detailed": "Blur degradation with motion blur"},
         repeats={"5D": 30}, published={"5D": (28.82, 0.873)}),
    Task("lowlight", 6, "lowlight", "LOL",
         prompts={"detailed": "Lowlight degradation"},
         repeats={"5D": 60}, published={"5D": (23.82, 0.843)}),
):
    register_task(_task)

register_setting(Setting("3D", ("denoise_15", "denoise_25", "denoise_50", "derain", "dehaze"), val_every=2000,
                         published_average=(32.88, 0.919)))
register_setting(Setting("5D", ("dehaze", "derain", "denoise_25", "deblur", "lowlight"), val_every=3000,
                         published_average=(30.64, 0.913)))


# --------------------------------------------------------------------------------------------------
# README tables, derived from the records: python -m utils.tasks [--update-readme]


def _layout_cell(dataset: Dataset, split: str) -> str:
    layout, source = dataset.layout(split), (dataset.train_source if split == "train" else dataset.test_source)
    if layout.degraded is None:
        where = f"`{layout.clean}/{layout.example}` " if layout.clean else ""
        return f"{where}clean images ({source})"
    clean = layout.partner(PurePosixPath(layout.example))
    return f"`{layout.degraded}/{layout.example}`, `{PurePosixPath(layout.clean) / clean}` ({source})"


def datasets_table() -> str:
    """The README's table of dataset folders: flag, default folder, layout, pairing rule."""
    rows = ["| flag | default under `--data_root` | layout | pairs by |", "|---|---|---|---|"]
    for split in SPLITS:
        for d in DATASETS.values():
            rows.append(f"| `--{d.flag(split)}` | `{d.default_folder(split)}/` | {_layout_cell(d, split)} "
                        f"| {d.layout(split).pairs_by} |")
    return "\n".join(rows)


def tasks_table() -> str:
    """The README's table of tasks: id, spellings, dataset folders, prompts, training repeats, published numbers."""
    settings = list(SETTINGS)
    sets = prompt_set_names()
    header = ["task", "id", "other names", "paper column", "dataset", *(f"prompt ({s})" for s in sets),
              *(f"{s} repeat" for s in settings), *(f"{s} paper PSNR / SSIM" for s in settings)]
    rows = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for t in sorted(TASKS.values(), key=lambda t: t.de_id):
        cells = [f"`{t.name}`", str(t.de_id), ", ".join(f"`{a}`" for a in t.aliases) or "-", t.test_set,
                 f"`--{t.dataset.flag('train')}`, `--{t.dataset.flag('test')}`", *(t.prompts.get(s, "-") for s in sets),
                 *(str(t.repeats.get(s, "-")) for s in settings),
                 *(("{:.2f} / {:.3f}".format(*t.published[s])) if s in t.published else "-" for s in settings)]
        rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows)


README_TABLES: dict[str, Callable[[], str]] = {"datasets": datasets_table, "tasks": tasks_table}
"""Marker name -> generator: README.md holds each table between ``<!-- tasks:NAME -->`` and ``<!-- /tasks:NAME -->``."""


def readme_with_tables(text: str) -> str:
    """``text`` (README.md) with every marked table regenerated from the records."""
    for name, table in README_TABLES.items():
        pattern = re.compile(rf"(<!-- tasks:{name} -->\n)(?:.*?\n)?(<!-- /tasks:{name} -->)", re.S)
        if not pattern.search(text):
            raise ValueError(f"README has no <!-- tasks:{name} --> ... <!-- /tasks:{name} --> block")
        text = pattern.sub(lambda m, table=table: m.group(1) + table() + "\n" + m.group(2), text)
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m utils.tasks",
        description="Print the README's task and dataset tables, derived from the records.",
    )
    parser.add_argument("--update-readme", metavar="README", nargs="?", const="README.md", default=None,
                        help="rewrite the marked tables of this README in place (default README.md)")
    args = parser.parse_args(argv)
    if args.update_readme:
        path = Path(args.update_readme)
        path.write_text(readme_with_tables(path.read_text()))
        print(f"updated the task tables of {path}")
    else:
        for name, table in README_TABLES.items():
            print(f"<!-- tasks:{name} -->\n{table()}\n<!-- /tasks:{name} -->\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
