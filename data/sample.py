"""The stand-in dataset: small, deterministic, synthetic, in the exact on-disk layouts of spec section 5.

    python -m data.sample OUT_DIR [--seed 0] [--scale 1] [--train_size 160] [--test_size 96]

No benchmark can be downloaded here, and new users want to try the code in minutes, so this module
writes a few dozen images for all five tasks, training and test, in the folder layouts and file
names of the real benchmarks, plus the authors' training name lists (``data_file_dir/``).

Clean scenes are random crops, rescalings and horizontal flips of the photographs bundled with
scikit-image (no download). Each task's degradation is synthesised to resemble its benchmark:

- denoise (BSD400 + WED / CBSD68): clean images only; the loader adds the Gaussian noise.
- derain (Rain100L): thin, bright, slanted, motion-blurred streaks of random length and density,
  screen-blended onto the scene.
- dehaze (RESIDE OTS / SOTS outdoor): atmospheric scattering I = J t + A (1 - t), t = exp(-beta d),
  with d a smooth synthetic depth map shared by all hazy versions of a scene; A and beta come from
  RESIDE's grids and are written into the name ``ID_A_B.jpg``.
- deblur (GoPro): a random linear or random-walk (camera shake) kernel convolved with the scene.
- lowlight (LOL): gamma darkening, scaling and a little signal-dependent noise.

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
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np
import skimage.data
from PIL import Image
from scipy import ndimage

SPLITS: tuple[str, ...] = ("train", "test")
KINDS: tuple[str, ...] = ("denoise", "derain", "dehaze", "deblur", "lowlight")


@dataclass(frozen=True)
class TaskLayout:
    """Where one task's samples go in one split (spec section 5).

    root:     the task folder relative to OUT_DIR: the folder that ``--derain_dir`` (training) or
              ``--derain_path`` (test) etc. point at.
    clean:    clean-image path template relative to ``root``; ``{i}`` is the 1-based scene index.
    degraded: degraded-image path template relative to ``root``, or None for denoising (the loader
              adds the noise); ``{tag}`` is the degradation parameters the name carries (haze: ``A_B``).
    """

    root: str
    clean: str
    degraded: str | None = None


LAYOUTS: dict[str, dict[str, TaskLayout]] = {
    "train": {
        "denoise": TaskLayout("Train/Denoise", clean="{i:05d}.png"),
        "derain": TaskLayout("Train/Derain", clean="gt/norain-{i}.png", degraded="rainy/rain-{i}.png"),
        "dehaze": TaskLayout(
            "Train/Dehaze", clean="original/{i:04d}.jpg", degraded="synthetic/{i:04d}_{tag}.jpg"
        ),
        "deblur": TaskLayout(
            "Train/Deblur", clean="sharp/GOPR0001_00_{i:06d}.png", degraded="blur/GOPR0001_00_{i:06d}.png"
        ),
        "lowlight": TaskLayout("Train/LowLight", clean="high/{i}.png", degraded="low/{i}.png"),
    },
    "test": {
        "denoise": TaskLayout("test/denoise", clean="bsd68/{i:04d}.png"),
        "derain": TaskLayout(
            "test/derain",
            clean="Rain100L/target/norain-{i:03d}.png",
            degraded="Rain100L/input/rain-{i:03d}.png",
        ),
        "dehaze": TaskLayout("test/dehaze", clean="target/{i:04d}.png", degraded="input/{i:04d}_{tag}.jpg"),
        "deblur": TaskLayout(
            "test/deblur", clean="sharp/GOPR0002_00_{i:06d}.png", degraded="blur/GOPR0002_00_{i:06d}.png"
        ),
        "lowlight": TaskLayout("test/lowlight", clean="high/{i}.png", degraded="low/{i}.png"),
    },
}

# The authors' optional training name lists, under OUT_DIR/data_file_dir: one input image per line,
# relative to the task's training folder; only the rain and haze lists keep the sub-folder.
NAME_LISTS: dict[str, str] = {
    "denoise": "noisy/denoise.txt",
    "derain": "rainy/rainTrain.txt",
    "dehaze": "hazy/hazy_outside.txt",
    "deblur": "gopro/train_gopro.txt",
    "lowlight": "lol/train_lol.txt",
}
NAME_LISTS_WITH_FOLDER: frozenset[str] = frozenset({"derain", "dehaze"})

# Scenes per task at --scale 1, and hazy versions per scene (RESIDE OTS has several, SOTS one).
SCENE_COUNTS: dict[str, dict[str, int]] = {
    "train": {"denoise": 8, "derain": 4, "dehaze": 4, "deblur": 4, "lowlight": 4},
    "test": {"denoise": 4, "derain": 4, "dehaze": 4, "deblur": 4, "lowlight": 4},
}
HAZY_PER_SCENE: dict[str, int] = {"train": 2, "test": 1}

# RESIDE's atmospheric light and scattering coefficient grids.
AIRLIGHTS: tuple[float, ...] = (0.8, 0.85, 0.9, 0.95, 1.0)
BETAS: tuple[float, ...] = (0.04, 0.06, 0.08, 0.1, 0.12, 0.16, 0.2)

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
# What a (re)generation writes, and so replaces, under OUT_DIR.
GENERATED_ENTRIES: tuple[str, ...] = ("Train", "test", "data_file_dir", README_NAME)


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
# Blur kernels


def splat_kernel(points: np.ndarray, size: int) -> np.ndarray:
    """Bilinearly splat a path into a (size, size) float64 kernel that sums to 1.

    points: (N, 2) float (y, x) offsets from the kernel centre, each within +-(size - 1) / 2.
    """
    yx = points + (size - 1) / 2
    base = np.floor(yx).astype(np.int64)
    frac = yx - base
    kernel = np.zeros((size + 1, size + 1))  # one spare row/column for the zero-weight neighbours
    for dy in (0, 1):
        for dx in (0, 1):
            weight = (frac[:, 0] if dy else 1 - frac[:, 0]) * (frac[:, 1] if dx else 1 - frac[:, 1])
            np.add.at(kernel, (base[:, 0] + dy, base[:, 1] + dx), weight)
    kernel = kernel[:size, :size]
    return kernel / kernel.sum()


def line_kernel(length: float, angle: float) -> np.ndarray:
    """A linear motion kernel: a line of ``length`` pixels, ``angle`` degrees from vertical (90: horizontal).

    Returns (size, size) float64 summing to 1, size the smallest odd number above ``length``.
    """
    size = 2 * int(np.ceil(length / 2)) + 1
    offsets = np.linspace(-length / 2, length / 2, int(4 * length) + 1)
    direction = np.array([np.cos(np.radians(angle)), np.sin(np.radians(angle))])
    return splat_kernel(offsets[:, None] * direction, size)


def camera_shake_kernel(rng: np.random.Generator, size: int) -> np.ndarray:
    """A random-walk motion kernel: a smooth path with drifting heading, scaled to span the kernel.

    Returns (size, size) float64 summing to 1; ``size`` odd.
    """
    steps = 4 * size
    heading = rng.uniform(0, 2 * np.pi) + np.cumsum(rng.normal(0, 0.3, steps))
    path = np.cumsum(np.stack([np.sin(heading), np.cos(heading)], axis=1), axis=0)
    path -= (path.min(axis=0) + path.max(axis=0)) / 2
    path *= ((size - 1) / 2 - 0.5) / np.abs(path).max()
    return splat_kernel(path, size)


# --------------------------------------------------------------------------------------------------
# Degradations: clean (H, W, 3) float64 in [0, 1] -> degraded (H, W, 3) float64 in [0, 1]


def add_rain(clean: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Rain100L-like streaks: two layers of sparse seeds smeared along one slant, screen-blended.

    Each layer has its own density and streak length; the far layer is shorter and fainter.
    """
    height, width = clean.shape[:2]
    angle = rng.uniform(-25, 25)
    rain = np.zeros((height, width))
    for min_length, max_length, brightness in ((6, 14, 0.6), (14, 28, 0.9)):
        length = rng.uniform(min_length, max_length)
        density = rng.uniform(0.0007, 0.003)
        seeds = (rng.random((height, width)) < density) * rng.uniform(0.5, 1.0, (height, width))
        kernel = line_kernel(length, angle + rng.uniform(-3, 3)) * length  # ~1 along the streak
        streaks = ndimage.gaussian_filter(ndimage.convolve(seeds, kernel, mode="wrap"), 0.5)
        rain = np.maximum(rain, np.clip(streaks * brightness * rng.uniform(0.8, 1.2), 0, 1))
    return 1 - (1 - clean) * (1 - rain[..., None])


def synthetic_depth(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A smooth depth map (height, width) float64 in [1, far], far in [6, 12], in the units where
    RESIDE's betas apply: far at the top (sky, horizon), near at the bottom, with smooth bumps.
    """
    ramp = np.linspace(1.0, 0.0, height)[:, None].repeat(width, axis=1)
    noise = rng.standard_normal((height, width))
    bumps = ndimage.gaussian_filter(noise, min(height, width) / 6, mode="reflect")
    bumps /= np.abs(bumps).max() + 1e-12
    depth01 = ramp + 0.3 * bumps
    depth01 = (depth01 - depth01.min()) / (depth01.max() - depth01.min())
    return 1.0 + depth01 * (rng.uniform(6, 12) - 1.0)


def add_haze(clean: np.ndarray, depth: np.ndarray, airlight: float, beta: float) -> np.ndarray:
    """Atmospheric scattering: I = J t + A (1 - t), t = exp(-beta d); depth d (H, W)."""
    transmission = np.exp(-beta * depth)[..., None]
    return clean * transmission + airlight * (1 - transmission)


def add_motion_blur(clean: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """GoPro-like blur: a linear kernel (5-13 px, any direction) or a 7-13 px camera-shake random walk."""
    if rng.random() < 0.5:
        kernel = line_kernel(rng.uniform(5, 13), rng.uniform(0, 180))
    else:
        kernel = camera_shake_kernel(rng, 2 * int(rng.integers(3, 7)) + 1)
    return ndimage.convolve(clean, kernel[..., None], mode="reflect")


def darken(clean: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """LOL-like low light: scale * clean ** gamma plus a little read and shot noise (per channel)."""
    low = rng.uniform(0.12, 0.3) * clean ** rng.uniform(1.4, 2.2)
    noise_std = rng.uniform(0.002, 0.006) + rng.uniform(0.005, 0.015) * np.sqrt(low)
    return np.clip(low + rng.standard_normal(low.shape) * noise_std, 0, 1)


def haze_versions(
    clean: np.ndarray, rng: np.random.Generator, count: int
) -> list[tuple[str, np.ndarray]]:
    """``count`` hazy versions of one scene with distinct (A, beta): [(tag 'A_B', hazy)]."""
    depth = synthetic_depth(rng, *clean.shape[:2])
    grid = [(a, b) for a in AIRLIGHTS for b in BETAS]
    picks = rng.choice(len(grid), size=count, replace=False)
    return [
        (f"{grid[p][0]:g}_{grid[p][1]:g}", add_haze(clean, depth, *grid[p]))
        for p in sorted(picks)
    ]


DEGRADATIONS: dict[str, Callable[[np.ndarray, np.random.Generator], np.ndarray]] = {
    "derain": add_rain,
    "deblur": add_motion_blur,
    "lowlight": darken,
}


# --------------------------------------------------------------------------------------------------
# Writing


def to_uint8(image: np.ndarray) -> np.ndarray:
    """(H, W, 3) float in [0, 1] -> uint8, rounded."""
    return np.clip(np.round(image * 255), 0, 255).astype(np.uint8)


def write_image(path: Path, image: np.ndarray) -> None:
    """Write (H, W, 3) uint8 as PNG or JPEG (fixed quality, so the bytes are deterministic)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() in (".jpg", ".jpeg"):
        Image.fromarray(image).save(path, format="JPEG", quality=JPEG_QUALITY)
    else:
        Image.fromarray(image).save(path, format="PNG")


def write_task(out_dir: Path, split: str, kind: str, scenes: int, size: int, seed: int) -> list[str]:
    """Write ``scenes`` scenes of one task; return the input images' paths relative to the task root.

    The inputs are the degraded images, or the clean images for denoising.
    """
    layout = LAYOUTS[split][kind]
    root = out_dir / layout.root
    inputs = []
    for i in range(1, scenes + 1):
        rng = np.random.default_rng([seed, SPLITS.index(split), KINDS.index(kind), i])
        clean_uint8 = random_scene(rng, *image_shape(size, i, rng))
        write_image(root / layout.clean.format(i=i), clean_uint8)
        if layout.degraded is None:
            inputs.append(layout.clean.format(i=i))
            continue
        clean = clean_uint8 / 255.0
        if kind == "dehaze":
            versions = haze_versions(clean, rng, HAZY_PER_SCENE[split])
        else:
            versions = [("", DEGRADATIONS[kind](clean, rng))]
        for tag, degraded in versions:
            name = layout.degraded.format(i=i, tag=tag)
            write_image(root / name, to_uint8(degraded))
            inputs.append(name)
    return inputs


def write_name_list(out_dir: Path, kind: str, inputs: list[str]) -> None:
    """Write the authors' training name list of one task under OUT_DIR/data_file_dir."""
    if kind not in NAME_LISTS_WITH_FOLDER:
        inputs = [PurePosixPath(name).name for name in inputs]
    path = out_dir / "data_file_dir" / NAME_LISTS[kind]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{name}\n" for name in inputs))


def is_sample_dataset(out_dir: Path) -> bool:
    """Whether ``out_dir`` holds a dataset written by this module (its README starts with the marker)."""
    readme = out_dir / README_NAME
    return readme.is_file() and readme.read_text(errors="replace").startswith(README_MARKER)


def prepare_out_dir(out_dir: Path, overwrite: bool) -> None:
    """Create ``out_dir``, or clear what a previous generation wrote there.

    A non-empty folder that is not a previous sample dataset is refused unless ``overwrite``; even
    then only the entries this module writes (GENERATED_ENTRIES) are replaced.
    """
    if out_dir.exists() and not out_dir.is_dir():
        raise NotADirectoryError(f"{out_dir} is a file; give a folder for the sample dataset")
    if out_dir.is_dir() and any(out_dir.iterdir()) and not is_sample_dataset(out_dir) and not overwrite:
        raise FileExistsError(
            f"{out_dir} is not empty and is not a sample dataset (no {README_NAME} starting with "
            f"{README_MARKER!r}); choose an empty or new folder, or pass --overwrite to replace its "
            f"{', '.join(GENERATED_ENTRIES)}"
        )
    for entry in GENERATED_ENTRIES:
        path = out_dir / entry
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()
    out_dir.mkdir(parents=True, exist_ok=True)


def readme_text(counts: dict[str, int], seed: int, scale: float, train_size: int, test_size: int) -> str:
    """The one-paragraph README.txt: what this is, how it was made, the seed and counts."""
    listed = "; ".join(
        f"{split}: " + ", ".join(f"{kind} {counts[f'{split}/{kind}']}" for kind in KINDS) for split in SPLITS
    )
    return (
        f"{README_MARKER}: a small synthetic stand-in for the DFPIR benchmarks, in their exact folder "
        f"layouts, written by `python -m data.sample` with seed {seed}, scale {scale:g}, train_size "
        f"{train_size}, test_size {test_size}. Clean scenes are random crops, rescalings and flips of "
        f"scikit-image's bundled photographs ({', '.join(PHOTOGRAPHS)}). Degradations are synthetic: "
        f"none for denoising (the loader adds the noise); screen-blended motion-blurred rain streaks "
        f"(Rain100L names); haze by I = J t + A (1 - t), t = exp(-beta d), on a smooth synthetic depth "
        f"map, A and beta in the names (RESIDE names ID_A_B.jpg, {HAZY_PER_SCENE['train']} hazy versions "
        f"per training scene); linear or random-walk motion blur (GoPro names); gamma darkening, scaling "
        f"and noise (LOL names). data_file_dir holds the authors' training name lists. Input images per "
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
    scale:      multiplies the scene counts of SCENE_COUNTS (at least one scene per task).
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
        for kind in KINDS:
            scenes = max(1, round(SCENE_COUNTS[split][kind] * scale))
            inputs = write_task(out_dir, split, kind, scenes, sizes[split], seed)
            if split == "train":
                write_name_list(out_dir, kind, inputs)
            counts[f"{split}/{kind}"] = len(inputs)
    (out_dir / README_NAME).write_text(readme_text(counts, seed, scale, train_size, test_size))
    return counts


# --------------------------------------------------------------------------------------------------
# Command line


def build_parser() -> argparse.ArgumentParser:
    """The command-line parser of ``python -m data.sample``."""
    parser = argparse.ArgumentParser(
        prog="python -m data.sample",
        description="Write a small synthetic stand-in dataset, all five tasks, training and test, in "
        "the benchmarks' exact folder layouts (Train/, test/, data_file_dir/).",
    )
    parser.add_argument("out_dir", type=Path, help="dataset root to create")
    parser.add_argument("--seed", type=int, default=0, help="random seed (same seed, same bytes)")
    parser.add_argument("--scale", type=float, default=1.0, help="multiplies the image counts")
    parser.add_argument("--train_size", type=int, default=160, help="nominal training image height")
    parser.add_argument("--test_size", type=int, default=96, help="nominal test image height")
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="write into a non-empty folder that is not a previous sample dataset, replacing its "
        + ", ".join(GENERATED_ENTRIES),
    )
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
    except (FileExistsError, NotADirectoryError, ValueError) as error:
        parser.error(str(error))
    seconds = time.perf_counter() - start
    print(f"wrote the sample dataset to {args.out_dir} (seed {args.seed}) in {seconds:.1f} s")
    print(f"  {'':6}" + "".join(f"{kind:>10}" for kind in KINDS))
    for split in SPLITS:
        print(f"  {split:6}" + "".join(f"{counts[f'{split}/{kind}']:>10}" for kind in KINDS))


if __name__ == "__main__":
    main()
