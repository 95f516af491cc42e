"""From the official downloads to the dataset layout in one command (README, section Datasets).

    python -m data.prepare --out DATA_ROOT [--wed DIR] [--bsd400 DIR] [--rain100l_train DIR]
        [--rain100l_test DIR] [--reside_ots DIR] [--sots_outdoor DIR] [--gopro DIR] [--lol DIR]
        [--cbsd68 DIR] [--copy] [--data_file_dir DIR|none] [--patch_size N] [--no_check]

Each dataset flag takes the folder where one official archive was unpacked (any subset of them).
The images are found inside it by rules on folder and file names, not by one fixed path, because
the archives circulate re-packed in many ways (:data:`DOWNLOADS` describes each rule). They are
linked (``--copy``: copied) into the layout of :mod:`data.layouts` under the names the authors'
name lists use: GoPro frames flattened to ``<SEQUENCE>_<frame>`` (``train/GOPR0372_07_00/blur/
000047.png`` -> ``blur/GOPR0372_07_00_000047.png``), BSD400 images with the ``a`` prefix of
``denoise.txt`` (``117025.jpg`` -> ``a117025.jpg``), Rain100L training numbers without padding
(``rainy/rain-7.png``), RESIDE hazy images out of their ``part1..part4`` folders into
``synthetic/``. Finally the result is checked exactly as ``--check_data`` checks it.

Nothing is ever written in a download folder. Re-running is safe: a link (or copy) already in
place is kept, any other file at a target is reported as a conflict and left untouched.
"""

from __future__ import annotations

import argparse
import filecmp
import os
import re
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from tqdm import tqdm

from data.check import check_data
from data.layouts import (
    AUTHORS_NAME_LISTS,
    DataError,
    DatasetPaths,
    list_images,
    task_folder,
)
from utils.tasks import DATASETS, SETTINGS, TASKS

CHECK_SETTING = "5D"
"""The setting whose training tasks the final check covers (5D trains on every task)."""

SHOWN = 5
"""How many example names a report line shows."""


class PrepareError(ValueError):
    """A download that cannot be used as given (nothing found, ambiguous); the message says what was expected."""


# --------------------------------------------------------------------------------------------------
# What a download holds


@dataclass(frozen=True)
class Placement:
    """One file of the layout: ``source`` (absolute, in a download) placed at ``target`` (relative to DATA_ROOT)."""

    source: Path
    target: PurePosixPath


@dataclass
class Found:
    """What was found in one download: the files to place, report lines, and problems to fix."""

    placements: list[Placement] = field(default_factory=list)
    report: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def add(self, kind: str, split: str, clean: Path, name: str, degraded: Path | None = None) -> None:
        """Place a clean image (denoising: ``degraded`` None) or a pair under the layout's names.

        ``name`` is the degraded image's name in the layout (the clean image's for denoising); the
        clean partner's name follows from the layout's pairing rule, so both always pair.
        """
        layout = DATASETS[kind].layout(split)
        folder = PurePosixPath(task_folder(kind, split, _RELATIVE_PATHS)[0].as_posix())
        if degraded is None:
            self.placements.append(Placement(clean, folder / layout.clean / name))
            return
        partner = layout.partner(PurePosixPath(name))
        if partner.suffix.lower() != clean.suffix.lower():
            self.problems.append(f"{clean} would be placed as {partner.name} (partner of {degraded}): the layout "
                                 f"pairs the {partner.suffix} file; convert it to {partner.suffix}")
            return
        self.placements.append(Placement(degraded, folder / layout.degraded / name))
        self.placements.append(Placement(clean, folder / layout.clean / partner))

    def unpaired(self, what: str, names: list[str]) -> None:
        """Report images left out because their partner is missing."""
        if names:
            self.problems.append(f"{len(names)} {what} have no partner and are left out: {_examples(names)}")


_RELATIVE_PATHS = DatasetPaths.from_root("")


def split_named(name: str) -> str | None:
    """'train' for a folder name like ``train``, ``RainTrainL``, ``rain_data_train_Light``, ``our485``
    (LOL); 'test' for ``test``, ``rain_data_test_Light``, ``eval15`` (LOL), ``val``; else None."""
    name = name.lower()
    if "train" in name or name == "our485":
        return "train"
    if any(word.startswith(("test", "eval", "val")) for word in re.split(r"[^a-z0-9]+", name)):
        return "test"
    return None


def _examples(names: list[str] | list[Path]) -> str:
    shown = ", ".join(str(n) for n in names[:SHOWN])
    return shown + (f", ... ({len(names) - SHOWN} more)" if len(names) > SHOWN else "")


class ImageTree:
    """The image files under one download folder, indexed by folder (relative, hidden entries skipped)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(os.path.abspath(root))
        self.folders: dict[PurePosixPath, list[str]] = {}
        for rel in list_images(self.root):
            self.folders.setdefault(rel.parent, []).append(rel.name)

    def path(self, folder: PurePosixPath, name: str = "") -> Path:
        return self.root / folder / name

    def count(self, folders: list[PurePosixPath]) -> int:
        return sum(len(self.folders[f]) for f in folders)

    def components(self, folder: PurePosixPath) -> list[str]:
        """The lower-cased names from the download folder's own name down to ``folder``."""
        return [p.lower() for p in (self.root.name, *folder.parts)]

    def split_of(self, folder: PurePosixPath) -> str | None:
        """'train' or 'test' from the deepest folder name that says so (:func:`split_named`), else None."""
        return next(filter(None, map(split_named, reversed(self.components(folder)))), None)

    def sibling_pairs(self, degraded_names: tuple[str, ...], clean_names: tuple[str, ...]) -> list[
            tuple[PurePosixPath, PurePosixPath, PurePosixPath]]:
        """(parent, degraded folder, clean folder) for every folder holding one of ``degraded_names``
        and one of ``clean_names`` as image sub-folders (names compared case-insensitively; the first
        candidate name present wins)."""
        children: dict[PurePosixPath, dict[str, PurePosixPath]] = {}
        for folder in self.folders:
            if folder.parts:
                children.setdefault(folder.parent, {})[folder.name.lower()] = folder
        groups = []
        for parent, named in sorted(children.items(), key=lambda item: str(item[0])):
            degraded = next((named[n] for n in degraded_names if n in named), None)
            clean = next((named[n] for n in clean_names if n in named), None)
            if degraded is not None and clean is not None:
                groups.append((parent, degraded, clean))
        return groups

    def describe(self, folders: list[PurePosixPath]) -> str:
        return _examples([f"{f.as_posix() or '.'}/" for f in folders])


# --------------------------------------------------------------------------------------------------
# Rules, one per download


def _single_folder(tree: ImageTree, preferred: tuple[str, ...], what: str, skip: Callable[[str], bool]) -> (
        PurePosixPath):
    """The one image folder of a flat image collection: a folder named one of ``preferred``, else the
    only folder (``skip``-ped names aside); PrepareError naming the candidates otherwise."""
    candidates = [f for f in tree.folders if not any(skip(p) for p in tree.components(f)[1:])]
    for name in preferred:
        named = [f for f in candidates if f.name.lower() == name]
        if len(named) == 1:
            return named[0]
    if len(candidates) == 1:
        return candidates[0]
    if not candidates:
        raise PrepareError(f"no images found under {tree.root} (expected {what})")
    listed = ", ".join(f"{f.as_posix() or '.'}/ ({len(tree.folders[f])})" for f in candidates[:10])
    raise PrepareError(f"several image folders under {tree.root}: {listed}; expected {what}. Point the flag at "
                       "the folder holding the images")


def find_wed(tree: ImageTree) -> Found:
    """Waterloo Exploration Database: the flat folder of pristine .bmp images (``pristine_images/``)."""
    found = Found()
    folder = _single_folder(tree, ("pristine_images",), "the 4744 WED images 00001.bmp .. 04744.bmp, e.g. in "
                            "exploration_database_and_code/pristine_images/", lambda p: p.startswith("distorted"))
    for name in tree.folders[folder]:
        found.add("denoise", "train", tree.path(folder, name), name)
    found.report.append(f"train denoise: {len(tree.folders[folder])} images in {tree.describe([folder])}")
    return found


BSDS_ID = re.compile(r"\d+")


def find_bsd400(tree: ImageTree) -> Found:
    """BSD400: the BSDS500 ``images/train`` + ``images/test`` folders (``val`` holds the CBSD68 test
    images and is skipped), or a flat folder of the 400 images; BSDS ids get the ``a`` prefix of the
    authors' ``denoise.txt``."""
    found = Found()
    bsds = [g for g in tree.sibling_pairs(("train",), ("test",))]
    if bsds:
        folders = [f for _, train, test in bsds for f in (train, test)]
        skipped = [f for parent, _, _ in bsds for f in tree.folders if f.parent == parent and f.name.lower() == "val"]
        if skipped:
            found.report.append(f"skipped {tree.describe(skipped)}: BSDS500 val holds the CBSD68 test images")
    else:
        folders = [_single_folder(tree, ("bsd400", "train400"), "BSDS500's images/train + images/test folders "
                                  "(BSR/BSDS500/data/images/) or one folder of the 400 BSD400 .jpg images",
                                  lambda p: p == "val")]
    other = []
    for folder in folders:
        for name in tree.folders[folder]:
            stem = PurePosixPath(name).stem
            if not (BSDS_ID.fullmatch(stem) or (stem.startswith("a") and BSDS_ID.fullmatch(stem[1:]))):
                other.append(name)
            found.add("denoise", "train", tree.path(folder, name), "a" + name if BSDS_ID.fullmatch(stem) else name)
    found.report.append(f"train denoise: {tree.count(folders)} images in {tree.describe(folders)}, "
                        "BSDS ids named a<id> as in denoise.txt")
    if other:
        found.report.append(f"{len(other)} names are not BSDS ids and are kept as they are: {_examples(other)}")
    return found


def find_cbsd68(tree: ImageTree) -> Found:
    """CBSD68: its clean images (``original_png/``, or a flat folder); ``noisy*`` folders are skipped."""
    found = Found()
    folder = _single_folder(tree, ("original_png", "original", "clean", "gt", "cbsd68"),
                            "the 68 clean CBSD68 images, e.g. CBSD68/original_png/",
                            lambda p: p.startswith("noisy") or "noise" in p)
    for name in tree.folders[folder]:
        found.add("denoise", "test", tree.path(folder, name), name)
    found.report.append(f"test denoise: {len(tree.folders[folder])} images in {tree.describe([folder])}")
    return found


RAIN_NAME = re.compile(r"(no)?rain[-_]?(\d+)(?:x\d+)?", re.IGNORECASE)
RAINY_FOLDERS = ("rain", "rainy", "input", "inp", "degraded")
NORAIN_FOLDERS = ("norain", "gt", "target", "groundtruth", "ground_truth", "clean", "label")
HEAVY_RAIN = ("100h", "trainh", "heavy")


def _rain_number(stem: str) -> str | None:
    """The digits N of ``rain-N``, ``norain-N``, ``norain-Nx2`` or a bare ``N``, else None."""
    match = RAIN_NAME.fullmatch(stem)
    return match.group(2) if match else stem if stem.isdigit() else None


def _rain_groups(tree: ImageTree) -> dict[PurePosixPath, tuple[dict[int, Path], dict[int, Path], list[str]]]:
    """Folder -> (rainy by N, clean by N, problems). Files named ``rain-N`` / ``norain-N`` pair by N in
    one folder or in sibling folders. Under folders named like ``rain/`` + ``norain/`` or ``input/`` +
    ``target/`` (directly, or one level down as in JORDER's ``rain/X2/norain-Nx2.png``) the folder
    says which is which, and a bare ``N.png`` counts too."""
    groups: dict[PurePosixPath, tuple[dict[int, Path], dict[int, Path], list[str]]] = {}
    for folder, names in tree.folders.items():
        role_folder = next((f for f in (folder, folder.parent)
                            if f.parts and f.name.lower() in RAINY_FOLDERS + NORAIN_FOLDERS), None)
        role_of_folder = role_folder and ("rainy" if role_folder.name.lower() in RAINY_FOLDERS else "clean")
        group = role_folder.parent if role_folder else folder
        for name in names:
            stem = PurePosixPath(name).stem
            number = _rain_number(stem)
            match = RAIN_NAME.fullmatch(stem)
            if number is None or not (match or role_of_folder):
                continue  # rainregion-N, rainstreak-N and other extras of the archives
            role = role_of_folder or ("clean" if match.group(1) else "rainy")
            rainy, clean, problems = groups.setdefault(group, ({}, {}, []))
            by_number = rainy if role == "rainy" else clean
            if int(number) in by_number:
                problems.append(f"{tree.path(folder, name)} and {by_number[int(number)]} both are {role} image "
                                f"{number}")
            else:
                by_number[int(number)] = tree.path(folder, name)
    return groups


def find_rain100l(tree: ImageTree, split: str) -> Found:
    """Rain100L (train: RainTrainL, 200 pairs; test: 100 pairs): rain-N / norain-N pairs."""
    found = Found()
    groups = {g: v for g, v in _rain_groups(tree).items() if set(v[0]) & set(v[1])}
    expected = ("rain-N.png with norain-N.png (in one folder, or rain/ + norain/ or input/ + target/ "
                "folders)")
    if not groups:
        raise PrepareError(f"no Rain100L pairs found under {tree.root}: expected {expected}")
    if len(groups) > 1:  # e.g. a download holding both splits, or Rain100H beside Rain100L
        other = "test" if split == "train" else "train"
        narrowed = [g for g in groups if tree.split_of(g) == split] or [g for g in groups if tree.split_of(g) != other]
        narrowed = [g for g in narrowed if not any(h in p for p in tree.components(g) for h in HEAVY_RAIN)] or narrowed
        if len(narrowed) != 1:
            listed = ", ".join(f"{g.as_posix() or '.'}/ ({len(set(rainy) & set(clean))} pairs)"
                               for g, (rainy, clean, _) in groups.items())
            raise PrepareError(f"several Rain100L-like folders under {tree.root}: {listed}; point the flag at the "
                               f"Rain100L {split} folder")
        groups = {narrowed[0]: groups[narrowed[0]]}
    (group, (rainy, clean, problems)), = groups.items()
    found.problems += problems
    for number in sorted(set(rainy) & set(clean)):
        source = rainy[number]  # rainTrain.txt names rain-7.png (unpadded); test names keep their digits
        shown = str(number) if split == "train" else _rain_number(source.stem)
        found.add("derain", split, clean[number], f"rain-{shown}{source.suffix}", degraded=source)
    found.unpaired("rainy images", [str(rainy[n]) for n in sorted(set(rainy) - set(clean))])
    found.unpaired("clean images", [str(clean[n]) for n in sorted(set(clean) - set(rainy))])
    found.report.append(f"{split} derain: {len(set(rainy) & set(clean))} pairs in {group.as_posix() or '.'}/")
    return found


HAZY_NAME = re.compile(r"(\d+)_[\d.]+_[\d.]+")
CLEAR_FOLDERS = ("clear", "clear_images", "gt", "original", "clean", "groundtruth", "ground_truth", "target",
                 "haze_free")


def find_reside(tree: ImageTree, split: str) -> Found:
    """RESIDE outdoor haze: hazy ``ID_A_B.ext`` in any folders (OTS: ``haze/part1`` .. ``part4``; SOTS:
    ``outdoor/hazy``) paired by ID with ``ID.ext`` in a clear folder (``clear/``, ``gt/`` ...);
    folders named ``indoor`` are skipped (SOTS's indoor half)."""
    found = Found()
    hazy: dict[str, Path] = {}
    clear: dict[str, Path] = {}
    hazy_folders, clear_folders, indoor = [], [], []
    for folder, names in tree.folders.items():
        parts = tree.components(folder)[1:]
        if "indoor" in parts:
            indoor.append(folder)
            continue
        is_clear = any(p in CLEAR_FOLDERS for p in parts)
        for name in names:
            stem = PurePosixPath(name).stem
            if is_clear and stem.isdigit():
                table, key = clear, stem
            elif not is_clear and HAZY_NAME.fullmatch(stem):
                table, key = hazy, name
            else:
                continue
            if key in table:
                found.problems.append(f"{tree.path(folder, name)} duplicates {table[key]}; the first is used")
                continue
            table[key] = tree.path(folder, name)
            (clear_folders if table is clear else hazy_folders).append(folder)
    hazy_folders, clear_folders = list(dict.fromkeys(hazy_folders)), list(dict.fromkeys(clear_folders))
    dataset = "RESIDE-OTS" if split == "train" else "SOTS outdoor"
    layout = ("haze/part1 .. part4/ID_A_B.jpg and clear/ID.jpg" if split == "train"
              else "outdoor/hazy/ID_A_B.jpg and outdoor/gt/ID.png")
    if not hazy or not clear:
        raise PrepareError(f"no {dataset} {'hazy' if not hazy else 'clear'} images found under {tree.root}: expected "
                           f"hazy images named ID_A_B (e.g. 0025_0.8_0.1.jpg) and clear images named ID in a folder "
                           f"named one of {', '.join(CLEAR_FOLDERS)}, as in {layout}")
    orphans = []
    for name, source in sorted(hazy.items()):
        image_id = name.split("_")[0]
        if image_id in clear:
            found.add("dehaze", split, clear[image_id], name, degraded=source)
        else:
            orphans.append(str(source))
    found.unpaired("hazy images", orphans)
    if indoor:
        found.report.append(f"skipped {tree.describe(indoor)} (indoor)")
    found.report.append(f"{split} dehaze: {len(hazy) - len(orphans)} pairs: {len(hazy)} hazy images in "
                        f"{tree.describe(hazy_folders)}, {len(clear)} clear images in {tree.describe(clear_folders)}")
    return found


def _paired_folders(tree: ImageTree, degraded_names: tuple[str, ...], clean_names: tuple[str, ...], kind: str,
                    expected: str, flatten: bool) -> Found:
    """Pairs of same-named files in sibling folders (``blur``/``sharp``, ``low``/``high``), training or
    test by the folder names above them. With ``flatten``, a pair folder below a sequence folder
    names its files ``<SEQUENCE>_<file>`` (GoPro)."""
    found = Found()
    groups = tree.sibling_pairs(degraded_names, clean_names)
    if not groups:
        raise PrepareError(f"no {'/'.join(degraded_names)} + {'/'.join(clean_names)} image folders found under "
                           f"{tree.root}: expected {expected}")
    undecided = [parent for parent, _, _ in groups if tree.split_of(parent) is None]
    if undecided:
        raise PrepareError(f"cannot tell training from test images in {tree.describe(undecided)} under {tree.root}: "
                           f"expected {expected}")
    for split in ("train", "test"):
        mine = [g for g in groups if tree.split_of(g[0]) == split]
        for parent, degraded, clean in mine:
            sequence = parent.name if flatten and parent.parts and split_named(parent.name) is None else None
            clean_set = set(tree.folders[clean])
            found.unpaired(f"{split} images in {tree.path(degraded)}",
                           [n for n in tree.folders[degraded] if n not in clean_set])
            found.unpaired(f"{split} images in {tree.path(clean)}",
                           sorted(clean_set - set(tree.folders[degraded])))
            for name in tree.folders[degraded]:
                if name in clean_set:
                    found.add(kind, split, tree.path(clean, name), f"{sequence}_{name}" if sequence else name,
                              degraded=tree.path(degraded, name))
        if mine:
            pairs = sum(len(set(tree.folders[d]) & set(tree.folders[c])) for _, d, c in mine)
            where = (f"{len(mine)} sequences ({tree.describe([p for p, _, _ in mine])})" if len(mine) > 1
                     else tree.describe([mine[0][0]]))
            found.report.append(f"{split} {kind}: {pairs} pairs in {where}")
    return found


def find_gopro(tree: ImageTree) -> Found:
    """GoPro: ``train|test/<SEQUENCE>/blur|sharp/NNNNNN.png`` (``blur_gamma`` is not the benchmark's
    input and is ignored), flattened to ``<SEQUENCE>_NNNNNN.png``; already flat ``train|test/blur|sharp``
    (or ``input|target``) folders are taken as they are."""
    found = _paired_folders(tree, ("blur", "input"), ("sharp", "target", "gt"), "deblur",
                            "GOPRO_Large's train/<SEQUENCE>/blur + sharp and test/<SEQUENCE>/blur + sharp folders",
                            flatten=True)
    gamma = [f for f in tree.folders if f.name.lower() == "blur_gamma"]
    if gamma:
        found.report.append(f"ignored {len(gamma)} blur_gamma/ folders (the benchmark's input is blur/)")
    return found


def find_lol(tree: ImageTree) -> Found:
    """LOL: ``our485/low|high`` (training) and ``eval15/low|high`` (test)."""
    return _paired_folders(tree, ("low",), ("high", "normal"), "lowlight",
                           "LOLdataset's our485/low + high (training) and eval15/low + high (test) folders",
                           flatten=False)


@dataclass(frozen=True)
class Download:
    """One official archive: its command-line flag, what it is, and the rule that finds its images.

    flag:    the ``--flag`` of ``python -m data.prepare`` taking the unpacked folder.
    archive: the official source and its structure (``--help`` and the README).
    find:    ImageTree -> Found (PrepareError when the folder holds nothing usable).
    feeds:   the (split, dataset kind) folders of the layout it fills.
    """

    flag: str
    archive: str
    find: Callable[[ImageTree], Found]
    feeds: tuple[tuple[str, str], ...]


DOWNLOADS: tuple[Download, ...] = (
    Download("wed", "Waterloo Exploration Database (exploration_database_and_code: pristine_images/*.bmp, 4744)",
             find_wed, (("train", "denoise"),)),
    Download("bsd400", "BSD400 = BSDS500 images/train + images/test (BSR_bsds500.tgz: BSR/BSDS500/data/images/, "
             "400 .jpg), or a folder of those 400 images", find_bsd400, (("train", "denoise"),)),
    Download("rain100l_train", "Rain100L training set RainTrainL (JORDER / PReNet: rain-N.png + norain-N.png, 200)",
             lambda tree: find_rain100l(tree, "train"), (("train", "derain"),)),
    Download("rain100l_test", "Rain100L test set (rain-NNN.png + norain-NNN.png, or rain/ + norain/, 100)",
             lambda tree: find_rain100l(tree, "test"), (("test", "derain"),)),
    Download("reside_ots", "RESIDE-beta OTS (haze/part1..part4/ID_A_B.jpg + clear/ID.jpg)",
             lambda tree: find_reside(tree, "train"), (("train", "dehaze"),)),
    Download("sots_outdoor", "RESIDE SOTS outdoor (SOTS/outdoor/hazy/ID_A_B.jpg + gt/ID.png, 500)",
             lambda tree: find_reside(tree, "test"), (("test", "dehaze"),)),
    Download("gopro", "GoPro GOPRO_Large (train|test/<SEQUENCE>/blur + sharp, 2103 + 1111)",
             find_gopro, (("train", "deblur"), ("test", "deblur"))),
    Download("lol", "LOL LOLdataset (our485/low + high, eval15/low + high, 485 + 15)",
             find_lol, (("train", "lowlight"), ("test", "lowlight"))),
    Download("cbsd68", "CBSD68 (CBSD68/original_png/*.png, 68)", find_cbsd68, (("test", "denoise"),)),
)


# --------------------------------------------------------------------------------------------------
# Placing the files


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


def place(placements: list[Placement], out: Path, copy: bool) -> PlaceSummary:
    """Link (``copy``: copy) every source to its target under ``out``; never replace an existing file.

    Links are absolute. A copy is written under a temporary name and renamed, so an interrupted run
    leaves no partial file at a target. Nothing is written outside ``out``: a folder of ``out``
    that is a link leading elsewhere (for instance into a download) is reported as a conflict.
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
            partial = target.with_name(target.name + ".partial")
            shutil.copy2(placement.source, partial)
            os.replace(partial, target)
        else:
            os.symlink(placement.source, target)
        summary.created += 1
    return summary


def _deduplicate(placements: list[Placement]) -> tuple[list[Placement], list[str]]:
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


# --------------------------------------------------------------------------------------------------
# The final check


def _flags_feeding(split: str, kind: str) -> str:
    return " and ".join(f"--{d.flag}" for d in DOWNLOADS if (split, kind) in d.feeds)


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
                lines.append(f"    hint: the files come from {_flags_feeding(split, kind)} (README, section Datasets); "
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


def build_parser() -> argparse.ArgumentParser:
    """The command-line parser of ``python -m data.prepare``."""
    parser = argparse.ArgumentParser(
        prog="python -m data.prepare",
        description="Arrange the official dataset downloads into the layout the training and test scripts "
        "expect (links by default), then check it as --check_data does. Each dataset flag takes the folder "
        "where its archive was unpacked; pass any subset. Nothing is written in a download folder.",
    )
    parser.add_argument("--out", type=Path, required=True, metavar="DATA_ROOT",
                        help="dataset root to fill (then train with --data_root DATA_ROOT)")
    group = parser.add_argument_group("downloads (the folder where each official archive was unpacked)")
    for download in DOWNLOADS:
        group.add_argument(f"--{download.flag}", type=Path, metavar="DIR", help=download.archive)
    parser.add_argument("--copy", action="store_true", help="copy the files instead of linking them")
    parser.add_argument("--data_file_dir", default=str(AUTHORS_NAME_LISTS), metavar="DIR|none",
                        help="name lists the check counts the training images against ('none': every image)")
    parser.add_argument("--patch_size", type=int, default=128, help="training patch size the check requires")
    parser.add_argument("--num_workers", type=int, default=min(4, os.cpu_count() or 1),
                        help="threads decoding images in the check")
    parser.add_argument("--no_check", action="store_true", help="skip the final check (decodes every image)")
    return parser


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
    (conflicts, unpaired images, a failed check), 2 for a download that cannot be used as given."""
    parser = build_parser()
    args = parser.parse_args(argv)
    chosen = [(d, getattr(args, d.flag)) for d in DOWNLOADS if getattr(args, d.flag) is not None]
    if not chosen:
        parser.error("give at least one download, e.g. --gopro ~/downloads/GOPRO_Large (see --help)")
    if args.out.exists() and not args.out.is_dir():
        parser.error(f"--out {args.out} is a file; give a folder")
    errors, found = [], []
    for download, folder in chosen:
        try:
            if not folder.is_dir():
                raise PrepareError(f"no such folder {folder}; give the folder where the archive was unpacked")
            _refuse_overlap(args.out, download.flag, folder)
            found.append((download, folder, download.find(ImageTree(folder))))
        except PrepareError as error:
            errors.append(f"--{download.flag}: {error}")
    if errors:
        parser.error("\n".join(errors))

    placements, problems = [], []
    for download, folder, result in found:
        print(f"--{download.flag} {folder}")
        for line in result.report:
            print(f"  {line}")
        for problem in result.problems:
            print(f"  PROBLEM: {problem}")
        placements += result.placements
        problems += result.problems
    placements, duplicates = _deduplicate(placements)
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
