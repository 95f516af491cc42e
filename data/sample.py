"""The stand-in dataset: small, deterministic, synthetic, in the exact on-disk layouts of docs/protocol.md section 5.

    python -m data.sample OUT_DIR [--seed 0] [--scale 1] [--train_size 160] [--test_size 96]

No benchmark can be downloaded here, and new users want to try the code in minutes, so this module
writes a few dozen images for every registered dataset, training and test, in the folder layouts and file
names of the real benchmarks, plus the authors' training name lists (``data_file_dir/``).

Clean scenes are random crops, rescalings and horizontal flips of the photographs bundled with
scikit-image (no download). Each dataset's record in :mod:`utils.tasks` says where its files go
(its layouts and :class:`utils.tasks.StandIn` recipe: file names, scene counts, name list) and how
its degradation is synthesised (``data/synthesis.py``: rain streaks, RESIDE-style haze, GoPro-like
motion blur, LOL-like darkening; none for denoising, whose noise the loader adds).

Every scene has its own random generator, seeded by (seed, split, task, index): the same seed gives
byte-identical files, and a larger ``--scale`` adds scenes without changing the existing ones.
Scores on this data say nothing about the benchmarks: training and test scenes are cut from the
same dozen photographs. Byte identity holds within one installation; other numpy/scipy/Pillow
builds may differ in the last bit of some pixels.
"""

from __future__ import annotations

import argparse
import functools
import shutil
import time
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np
import skimage.data
from PIL import Image

from data.synthesis import find_synthesis
from utils.config import add_option, new_parser
from utils.outputs import OutputError, atomic_write
from utils.run_options import SeedOption, overwrite_option
from utils.tasks import DATASETS, SPLITS, Dataset

# scikit-image photographs bundled with the package (none needs a download); gray ones become RGB.
PHOTOGRAPHS: tuple[str, ...] = (
    "astronaut",
    "coffee",
    "chelsea",
    "rocket",
    "immunohistochemistry",
    "stereo_motorcycle",
    "camera",
    "coins",
    "gravel",
)

JPEG_QUALITY = 95
README_NAME = "README.txt"
README_MARKER = "DFPIR sample dataset"


def generated_entries() -> list[str]:
    """What a (re)generation writes, and so replaces, under OUT_DIR: the datasets' top folders, the lists, README."""
    tops = [PurePosixPath(d.default_folder(split)).parts[0] for split in SPLITS for d in DATASETS.values()]
    return [*dict.fromkeys(tops), "data_file_dir", README_NAME]


# --------------------------------------------------------------------------------------------------
# Scenes


@functools.cache
def load_photograph(name: str) -> np.ndarray:
    """One bundled scikit-image photograph as (H, W, 3) uint8 RGB (gray is repeated, alpha dropped)."""
    try:
        image = getattr(skimage.data, name)()
    except Exception as error:  # a photograph that newer scikit-image versions no longer bundle
        raise RuntimeError(
            f"scikit-image photograph {name!r} could not be loaded offline ({error}); "
            f"remove it from data.sample.PHOTOGRAPHS"
        ) from error
    if isinstance(image, tuple):  # stereo_motorcycle: (left, right, disparity)
        image = image[0]
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=-1)
    return np.ascontiguousarray(image[..., :3], dtype=np.uint8)


def image_shape(size: int, index: int, rng: np.random.Generator) -> tuple[int, int]:
    """(height, width) of scene ``index`` (1-based) of a split whose nominal height is ``size``.

    The width is 4/3 of the height, rounded down to a multiple of 16. Every scene but the first gets
    0-15 extra rows and columns, so that most images are not multiples of 16 and the loaders'
    centre-cropping is exercised.
    """
    height, width = size, max(16, size * 4 // 3 // 16 * 16)
    if index == 1:
        return height, width
    extra_rows, extra_cols = rng.integers(0, 16, size=2)
    return height + int(extra_rows), width + int(extra_cols)


def random_scene(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A random crop of a random bundled photograph, rescaled and maybe flipped left-right.

    Returns (height, width, 3) uint8. The crop is 1x to the largest factor that fits the photograph
    times the output size, so scenes are downscaled (sharp) wherever the photograph allows it and
    differ in scale and place.
    """
    photo = load_photograph(PHOTOGRAPHS[rng.integers(len(PHOTOGRAPHS))])
    photo_h, photo_w = photo.shape[:2]
    largest_zoom = min(photo_h / height, photo_w / width)
    zoom = rng.uniform(min(1.0, largest_zoom), largest_zoom)
    crop_h, crop_w = min(photo_h, round(height * zoom)), min(photo_w, round(width * zoom))
    top, left = rng.integers(0, photo_h - crop_h + 1), rng.integers(0, photo_w - crop_w + 1)
    crop = Image.fromarray(photo[top : top + crop_h, left : left + crop_w])
    scene = np.asarray(crop.resize((width, height), Image.Resampling.LANCZOS))
    return scene[:, ::-1].copy() if rng.random() < 0.5 else scene


# --------------------------------------------------------------------------------------------------
# Writing


def to_uint8(image: np.ndarray) -> np.ndarray:
    """(H, W, 3) float in [0, 1] -> uint8, rounded."""
    return np.clip(np.round(image * 255), 0, 255).astype(np.uint8)


def write_image(path: Path, image: np.ndarray) -> None:
    """Write (H, W, 3) uint8 as PNG or JPEG (fixed quality, so the bytes are deterministic).

    Written in place, not atomically (a sync per image would slow the generation): an interrupted
    generation is recognised by its missing README.txt, which is written (atomically) last."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() in (".jpg", ".jpeg"):
        Image.fromarray(image).save(path, format="JPEG", quality=JPEG_QUALITY)
    else:
        Image.fromarray(image).save(path, format="PNG")


def write_dataset(out_dir: Path, split: str, dataset: Dataset, scenes: int, size: int, seed: int) -> list[str]:
    """Write ``scenes`` scenes of one dataset's split; return the input images' paths relative to its folder.

    The inputs are the degraded images, or the clean images when the dataset has no degraded ones.
    """
    layout, recipe = dataset.layout(split), dataset.stand_in
    root = out_dir / dataset.default_folder(split)
    kind_index = list(DATASETS).index(dataset.name)
    inputs = []
    for i in range(1, scenes + 1):
        rng = np.random.default_rng([seed, SPLITS.index(split), kind_index, i])
        clean_uint8 = random_scene(rng, *image_shape(size, i, rng))
        if layout.degraded is None:
            name = PurePosixPath(layout.clean) / recipe.name(split).format(i=i)
            write_image(root / name, clean_uint8)
            inputs.append(name.as_posix())
            continue
        clean_name = layout.partner(PurePosixPath(recipe.name(split).format(i=i, tag="tag")))
        write_image(root / layout.clean / clean_name, clean_uint8)
        synthesise = find_synthesis(recipe.synthesis)
        for tag, degraded in synthesise(clean_uint8 / 255.0, rng, recipe.count(split, recipe.versions)):
            name = PurePosixPath(layout.degraded) / recipe.name(split).format(i=i, tag=tag)
            write_image(root / name, to_uint8(degraded))
            inputs.append(name.as_posix())
    return inputs


def write_name_list(out_dir: Path, dataset: Dataset, inputs: list[str]) -> None:
    """Write the authors' training name list of one dataset under OUT_DIR/data_file_dir."""
    layout = dataset.train
    if not layout.listed_with_folder:
        inputs = [PurePosixPath(name).relative_to(layout.input_folder()).as_posix() for name in inputs]
    path = out_dir / "data_file_dir" / dataset.stand_in.name_list_folder / layout.name_list
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, "".join(f"{name}\n" for name in inputs))


def is_sample_dataset(out_dir: Path) -> bool:
    """Whether ``out_dir`` holds a dataset written by this module (its README starts with the marker)."""
    readme = out_dir / README_NAME
    return readme.is_file() and readme.read_text(errors="replace").startswith(README_MARKER)


def prepare_out_dir(out_dir: Path, overwrite: bool) -> None:
    """Create ``out_dir``, or clear what a previous generation wrote there.

    A non-empty folder that is not a previous sample dataset is refused unless ``overwrite``; even
    then only the entries this module writes (:func:`generated_entries`) are replaced.
    """
    if out_dir.exists() and not out_dir.is_dir():
        raise NotADirectoryError(f"{out_dir} is a file; give a folder for the sample dataset")
    if out_dir.is_dir() and any(out_dir.iterdir()) and not is_sample_dataset(out_dir) and not overwrite:
        raise FileExistsError(
            f"{out_dir} is not empty and is not a sample dataset (no {README_NAME} starting with "
            f"{README_MARKER!r}); choose an empty or new folder, or pass --overwrite to replace its "
            f"{', '.join(generated_entries())}"
        )
    for entry in generated_entries():
        path = out_dir / entry
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()
    out_dir.mkdir(parents=True, exist_ok=True)


def readme_text(counts: dict[str, int], seed: int, scale: float, train_size: int, test_size: int) -> str:
    """The one-paragraph README.txt: what this is, how it was made, the seed and counts."""
    listed = "; ".join(
        f"{split}: " + ", ".join(f"{kind} {counts[f'{split}/{kind}']}" for kind in DATASETS) for split in SPLITS
    )
    degradations = "; ".join(d.stand_in.description for d in DATASETS.values() if d.stand_in.description)
    return (
        f"{README_MARKER}: a small synthetic stand-in for the DFPIR benchmarks, in their exact folder "
        f"layouts, written by `python -m data.sample` with seed {seed}, scale {scale:g}, train_size "
        f"{train_size}, test_size {test_size}. Clean scenes are random crops, rescalings and flips of "
        f"scikit-image's bundled photographs ({', '.join(PHOTOGRAPHS)}). Degradations are synthetic: "
        f"{degradations}. data_file_dir holds the authors' training name lists. Input images per "
        f"task: {listed}. For smoke tests and the quick start only: training and test scenes come from "
        f"the same photographs, so scores on it say nothing about the benchmarks.\n"
    )


def make_sample_dataset(
    out_dir: str | Path,
    seed: int = 0,
    scale: float = 1.0,
    train_size: int = 160,
    test_size: int = 96,
    overwrite: bool = False,
) -> dict[str, int]:
    """Write the sample dataset under ``out_dir``; return the input images per ``'split/kind'``.

    out_dir:    the dataset root (created; a previous sample dataset there is replaced; any other
                non-empty folder is refused unless ``overwrite``).
    seed:       the random seed: the same seed writes byte-identical files.
    scale:      multiplies the scene counts of each dataset's stand-in recipe (at least one scene each).
    train_size: nominal height of training images (>= 128 lets a 128 patch fit after the loaders'
                crop to a multiple of 16); widths are 4/3 of it; most images get 0-15 extra pixels.
    test_size:  nominal height of test images.

    Returns e.g. {'train/denoise': 8, 'train/derain': 4, 'train/dehaze': 8, ..., 'test/lowlight': 4}:
    clean images for denoising, degraded images (= pairs) otherwise.
    """
    if scale <= 0:
        raise ValueError(f"scale must be positive, got {scale}")
    if min(train_size, test_size) < 16:
        raise ValueError(f"train_size and test_size must be at least 16, got {train_size}, {test_size}")
    out_dir = Path(out_dir)
    prepare_out_dir(out_dir, overwrite)
    sizes = {"train": train_size, "test": test_size}
    counts = {}
    for split in SPLITS:
        for kind, dataset in DATASETS.items():
            scenes = max(1, round(dataset.stand_in.count(split, dataset.stand_in.scenes) * scale))
            inputs = write_dataset(out_dir, split, dataset, scenes, sizes[split], seed)
            if split == "train" and dataset.train.name_list:
                write_name_list(out_dir, dataset, inputs)
            counts[f"{split}/{kind}"] = len(inputs)
    atomic_write(out_dir / README_NAME, readme_text(counts, seed, scale, train_size, test_size))
    return counts


# --------------------------------------------------------------------------------------------------
# Command line


@dataclass(frozen=True, kw_only=True)
class SampleOptions(SeedOption):
    """The declared options of ``python -m data.sample`` (its others are its own, in :func:`build_parser`)."""

    overwrite: bool = overwrite_option(lambda context: f"the {', '.join(generated_entries())} of an OUT_DIR that is "
                                       "neither empty nor a previous sample dataset")


def build_parser() -> argparse.ArgumentParser:
    """The command-line parser of ``python -m data.sample``."""
    parser = new_parser(
        "Write a small synthetic stand-in dataset, every registered dataset, training and test, in the "
        "benchmarks' exact folder layouts (Train/, test/, data_file_dir/).",
        prog="python -m data.sample",
    )
    parser.add_argument("out_dir", type=Path, help="dataset root to create")
    add_option(parser, SeedOption, "seed")
    parser.add_argument("--scale", type=float, default=1.0, help="multiplies the image counts")
    parser.add_argument("--train_size", type=int, default=160, help="nominal training image height")
    parser.add_argument("--test_size", type=int, default=96, help="nominal test image height")
    add_option(parser, SampleOptions, "overwrite")
    return parser


def main(argv: list[str] | None = None) -> None:
    """Generate the dataset and print what was written; a refused OUT_DIR exits with status 2."""
    parser = build_parser()
    args = parser.parse_args(argv)
    start = time.perf_counter()
    try:
        counts = make_sample_dataset(
            args.out_dir, args.seed, args.scale, args.train_size, args.test_size, args.overwrite
        )
    except (FileExistsError, NotADirectoryError, ValueError, OutputError) as error:
        parser.error(str(error))
    seconds = time.perf_counter() - start
    print(f"wrote the sample dataset to {args.out_dir} (seed {args.seed}) in {seconds:.1f} s")
    print(f"  {'':6}" + "".join(f"{kind:>10}" for kind in DATASETS))
    for split in SPLITS:
        print(f"  {split:6}" + "".join(f"{counts[f'{split}/{kind}']:>10}" for kind in DATASETS))


if __name__ == "__main__":
    main()
