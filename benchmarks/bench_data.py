"""Throughput of the 5D training mixture, with and without ``preload``, with 0 and 2 DataLoader workers.

    python -m benchmarks.bench_data [--images 3] [--samples 300] [--batch_size 5]

Writes a small dataset with the benchmarks' real image sizes and formats to a temporary folder
(GoPro 1280x720 PNG pairs, LOL 600x400 PNG, Rain100L 481x321 PNG, OTS 550x413 JPEG, BSD 481x321
JPEG; smooth synthetic content so PNGs compress like photographs), then draws ``--samples``
samples in a shuffled order, as a training epoch does, and prints samples per second (after the
first batch, so DataLoader start-up is excluded). The
mixture's proportions follow the 5D repeat factors, so about half the samples come from datasets
that ``preload`` holds in memory. Takes well under a minute on 2 cores.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader

from data.layouts import DatasetPaths
from data.train import TrainMixture
from utils.tasks import SETTINGS

# task folder -> (degraded name, clean name, (height, width)); {i} is the image index
LAYOUT: dict[str, tuple[str | None, str, tuple[int, int]]] = {
    "Train/Denoise": (None, "{i}.jpg", (321, 481)),
    "Train/Derain": ("rainy/rain-{i}.png", "gt/norain-{i}.png", (321, 481)),
    "Train/Dehaze": ("synthetic/{i:04d}_0.8_0.1.jpg", "original/{i:04d}.jpg", (413, 550)),
    "Train/Deblur": ("blur/{i:06d}.png", "sharp/{i:06d}.png", (720, 1280)),
    "Train/LowLight": ("low/{i}.png", "high/{i}.png", (400, 600)),
}


def smooth_image(rng: np.random.Generator, height: int, width: int) -> Image.Image:
    """A photo-like RGB image: a bicubically upsampled coarse random field plus mild noise."""
    coarse = Image.fromarray(rng.integers(0, 256, (height // 24 + 2, width // 24 + 2, 3), dtype=np.uint8))
    field = np.asarray(coarse.resize((width, height), Image.BICUBIC), dtype=np.int16)
    return Image.fromarray(np.clip(field + rng.integers(-6, 7, field.shape), 0, 255).astype(np.uint8))


def write_dataset(root: Path, images: int) -> None:
    rng = np.random.default_rng(0)
    for folder, (degraded, clean, (height, width)) in LAYOUT.items():
        for i in range(1, images + 1):
            for name in (degraded, clean):
                if name is not None:
                    path = root / folder / name.format(i=i)
                    path.parent.mkdir(parents=True, exist_ok=True)
                    smooth_image(rng, height, width).save(path, quality=95)


def samples_per_second(mixture: TrainMixture, samples: int, workers: int, batch_size: int) -> float:
    """Steady-state samples per second over ``samples`` shuffled indices (timed from the first batch on)."""
    order = torch.randperm(len(mixture), generator=torch.Generator().manual_seed(0))
    indices = order.repeat(samples // len(mixture) + 1)[:samples].tolist()
    batches = iter(DataLoader(mixture, batch_size=batch_size, sampler=indices, num_workers=workers))
    next(batches)  # worker start-up is not throughput
    start = time.perf_counter()
    timed = sum(len(batch["task"]) for batch in batches)
    return timed / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=3, help="images (pairs) per dataset")
    parser.add_argument("--samples", type=int, default=300, help="samples drawn per configuration")
    parser.add_argument("--batch_size", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(1)

    with tempfile.TemporaryDirectory() as tmp:
        write_dataset(Path(tmp), args.images)
        paths = DatasetPaths.from_root(tmp)
        tasks = list(SETTINGS["5D"].train_repeats)
        plain = TrainMixture(tasks, "5D", paths)
        start = time.perf_counter()
        preloaded = TrainMixture(tasks, "5D", paths, preload=True)
        preload_seconds = time.perf_counter() - start

        print(f"5D mixture: {len(plain)} samples per epoch; "
              + ", ".join(f"{task} {images}x{repeat}" for task, images, repeat in plain.summary()))
        print(f"preload: {preloaded.preloaded()} = {preloaded.preloaded_bytes / 2**20:.0f} MiB "
              f"in {preload_seconds:.1f} s\n")
        print(f"{'preload':>8} {'workers':>8} {'samples/s':>10}")
        for mixture, label in ((plain, "no"), (preloaded, "yes")):
            for workers in (0, 2):
                rate = samples_per_second(mixture, args.samples, workers, args.batch_size)
                print(f"{label:>8} {workers:>8} {rate:>10.1f}")


if __name__ == "__main__":
    main()
