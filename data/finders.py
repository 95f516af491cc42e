"""Finding a dataset's images inside one official download, by rules on folder and file names.

The archives circulate re-packed in many ways, so each download's images are found by a rule (a
*finder*: :class:`ImageTree` -> :class:`Found`), not by one fixed path. A dataset record names its
downloads (``utils.tasks.Download``); each download's flag names its finder in :data:`FINDERS`
(a plug-in dataset registers its own with :func:`register_finder`). ``python -m data.prepare``
(:mod:`data.prepare`) runs them and places what they found (:mod:`data.placement`).
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from data.layouts import DatasetPaths, list_images, task_folder
from utils.registry import Registry
from utils.tasks import DATASETS

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


Finder = Callable[[ImageTree], Found]
"""The images of one download: ImageTree -> Found (PrepareError when the folder holds nothing usable)."""

FINDERS: Registry[Finder] = Registry("download finder", "data.finders.register_finder")
"""Download flag (``utils.tasks.Download.flag``) -> its finder."""
register_finder = FINDERS.register
find_download = FINDERS.find

register_finder("wed", find_wed)
register_finder("bsd400", find_bsd400)
register_finder("cbsd68", find_cbsd68)
register_finder("rain100l_train", functools.partial(find_rain100l, split="train"))
register_finder("rain100l_test", functools.partial(find_rain100l, split="test"))
register_finder("reside_ots", functools.partial(find_reside, split="train"))
register_finder("sots_outdoor", functools.partial(find_reside, split="test"))
register_finder("gopro", find_gopro)
register_finder("lol", find_lol)
