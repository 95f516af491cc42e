"""Samples per second of the training data pipeline, on synthetic images of the benchmarks' real sizes.

    python -m benchmarks.bench_data [--settings 3D 5D] [--workers 0 2] [--images 6] [--samples 300]
    python -m benchmarks.bench_data --root DIR --test_sets --write_only   # a real-size dataset to train on

Writes (or, with ``--root``, reuses) a dataset in the standard layout (``data/sample.py``'s folders
and names) whose images have the sizes and formats of the real training sets: RESIDE-OTS 550x413
JPEG, Rain100L 481x321 PNG, BSD400 180x180 and WED 500x400 in BSD400:WED's 400:4744 proportion,
GoPro 1280x720 PNG, LOL 600x400 PNG (the denoise images are PNG: slower to decode than the JPEG
and BMP originals). Content is a smooth random field with mild noise, so PNGs compress like
photographs. ``--test_sets`` adds the 3D validation sets at their real sizes and counts (SOTS-outdoor
500 of 620x460, Rain100L 100 and CBSD68 68 of 481x321), for ``benchmarks/gpu_train.sh``.

Then, for each setting's training mixture (its repeat factors; ``--preload_gb`` as training uses
it, by default 0: every sample decoded from disk, the slowest case), draws ``--samples`` random
samples with each task's share of a real epoch (its real image count times its repeat factor: in
3D 32% denoise, 17% derain, 51% dehaze), through a DataLoader with each ``--workers`` count, and
prints samples per second after the first batch (worker start-up excluded). ``workers 0`` runs in
the main process: the rate of one worker. The last column is that rate per worker. The training
step consumes ``batch_size / step time`` samples per second.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from multiprocessing import Pool
from pathlib import Path, PurePosixPath

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader

from data.layouts import DatasetPaths
from data.mixture import TrainMixture
from data.run_options import PatchSizeOption
from data.sample import write_name_list
from utils.config import add_option
from utils.tasks import DATASETS, SETTINGS, TASKS

# kind -> [(height, width, share of the images)]; the training sets' real sizes.
TRAIN_SIZES: dict[str, list[tuple[int, int, float]]] = {
    "denoise": [(180, 180, 400 / 5144), (400, 500, 4744 / 5144)],  # BSD400, WED
    "derain": [(321, 481, 1.0)],  # Rain100L
    "dehaze": [(413, 550, 1.0)],  # RESIDE-OTS
    "deblur": [(720, 1280, 1.0)],  # GoPro
    "lowlight": [(400, 600, 1.0)],  # LOL
}
# kind -> (height, width): the 3D validation sets' image size (docs/protocol.md section 4); their image counts
# are the records' test_size.
TEST_SIZES: dict[str, tuple[int, int]] = {
    "denoise": (321, 481),  # CBSD68 (its three sigmas are noise added by the loader)
    "derain": (321, 481),  # Rain100L
    "dehaze": (460, 620),  # SOTS outdoor
}
HAZE_TAG = "0.8_0.1"  # RESIDE's airlight_beta in the hazy names
JPEG_QUALITY = 95


def smooth_image(seed: int, height: int, width: int) -> np.ndarray:
    """A photo-like (height, width, 3) uint8 image: a bicubically upsampled random field plus mild noise."""
    rng = np.random.default_rng(seed)
    coarse = Image.fromarray(rng.integers(0, 256, (height // 24 + 2, width // 24 + 2, 3), dtype=np.uint8))
    field = np.asarray(coarse.resize((width, height), Image.BICUBIC), dtype=np.int16)
    return np.clip(field + rng.integers(-6, 7, field.shape), 0, 255).astype(np.uint8)


def _write(job: tuple[str, int, int, int]) -> None:
    path, seed, height, width = job
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(smooth_image(seed, height, width)).save(path, quality=JPEG_QUALITY)


def _split_jobs(root: Path, split: str, kind: str, sizes: list[tuple[int, int, int]]) -> tuple[list, list[str]]:
    """Image-writing jobs of one dataset in one split (its stand-in names), and its input paths
    relative to the dataset folder (for the name list)."""
    dataset = DATASETS[kind]
    layout, template = dataset.layout(split), dataset.stand_in.name(split)
    folder = root / dataset.default_folder(split)
    jobs, inputs = [], []
    for i, (height, width, seed) in enumerate(sizes, start=1):
        name = PurePosixPath(template.format(i=i, tag=HAZE_TAG))
        names = [PurePosixPath(layout.clean) / (name if layout.degraded is None else layout.partner(name))]
        if layout.degraded is not None:
            names.append(PurePosixPath(layout.degraded) / name)
        inputs.append(names[-1].as_posix())
        jobs += [(str(folder / n), seed * 2 + k, height, width) for k, n in enumerate(names)]
    return jobs, inputs


def write_dataset(root: Path, images: int, test_sets: bool = False, test_scale: float = 1.0,
                  processes: int | None = None) -> None:
    """``images`` training images (pairs) per task at the real sizes, and with ``test_sets`` the 3D
    validation sets (``test_scale`` times their image counts, at least one); name lists under
    ``root/data_file_dir`` (as ``data.sample`` writes them)."""
    jobs = []
    for kind, shares in TRAIN_SIZES.items():
        counts = [max(1, round(images * share)) for *_, share in shares]
        counts[-1] = max(1, images - sum(counts[:-1]))
        sizes = [(h, w, 1000 * len(jobs) + n) for (h, w, _), count in zip(shares, counts, strict=True)
                 for n in range(count)]
        task_jobs, inputs = _split_jobs(root, "train", kind, sizes)
        jobs += task_jobs
        write_name_list(root, DATASETS[kind], inputs)
    if test_sets:
        for kind, (height, width) in TEST_SIZES.items():
            count = DATASETS[kind].test_size
            jobs += _split_jobs(root, "test", kind, [(height, width, 10**6 + 1000 * len(jobs) + n)
                                                     for n in range(max(1, round(count * test_scale)))])[0]
    with Pool(processes or os.cpu_count()) as pool:
        pool.map(_write, jobs, chunksize=4)


def epoch_like_indices(mixture: TrainMixture, samples: int, seed: int = 0) -> list[int]:
    """``samples`` random indices of ``mixture`` in which each task has its share of a real epoch."""
    rng = np.random.default_rng(seed)
    segments, start = [], 0
    for task, images, repeat in mixture.summary():
        segments.append((start, images * repeat, TASKS[task].dataset.train_size * repeat))
        start += images * repeat
    weights = np.array([real for *_, real in segments], dtype=float)
    picks = rng.choice(len(segments), size=samples, p=weights / weights.sum())
    return [segments[i][0] + int(rng.integers(segments[i][1])) for i in picks]


def write_stand_in_prompt_file(path: Path) -> None:
    """A prompt file (``--prompt_embeddings``) of the detailed prompts with random unit-norm codes:
    for timing runs on machines without open_clip or CLIP weights (the codes' values do not change
    the speed)."""
    from net.prompts import PromptTable, prompt_list, save_prompt_file

    prompts = prompt_list("detailed")
    codes = torch.nn.functional.normalize(torch.randn(len(prompts), 512, generator=torch.Generator().manual_seed(0)))
    save_prompt_file(path, PromptTable(prompts, codes, "random stand-in codes (benchmarks/bench_data.py)"))


def samples_per_second(mixture: TrainMixture, samples: int, workers: int, batch_size: int) -> float:
    """Steady-state samples per second over ``samples`` epoch-like indices (timed from the first batch on)."""
    indices = epoch_like_indices(mixture, samples)
    batches = iter(DataLoader(mixture, batch_size=batch_size, sampler=indices, num_workers=workers))
    next(batches)  # worker start-up is not throughput
    start = time.perf_counter()
    timed = sum(len(batch["task"]) for batch in batches)
    return timed / (time.perf_counter() - start)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", type=Path, default=None,
                        help="write the dataset here (kept; reused if it exists) instead of a temporary folder")
    parser.add_argument("--images", type=int, default=6, help="training images (pairs) per task")
    parser.add_argument("--test_sets", action="store_true", help="also write the 3D validation sets (real sizes)")
    parser.add_argument("--test_scale", type=float, default=1.0, help="multiplies the test sets' image counts")
    parser.add_argument("--prompt_file", type=Path, default=None,
                        help="also write a stand-in prompt file here (random codes, no CLIP needed)")
    parser.add_argument("--write_only", action="store_true", help="write the dataset and exit")
    parser.add_argument("--settings", nargs="+", default=["3D", "5D"], choices=list(SETTINGS))
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 2], help="DataLoader worker counts")
    parser.add_argument("--samples", type=int, default=300, help="samples drawn per configuration")
    parser.add_argument("--batch_size", type=int, default=5)
    add_option(parser, PatchSizeOption, "patch_size")
    parser.add_argument("--preload_gb", type=float, default=0.0,
                        help="as the training flag (default there: 4); 0: every sample decoded from disk")
    return parser


def main(argv: list[str] | None = None) -> list[tuple[str, int, float]]:
    """Prints the table; returns its rows (setting, workers, samples per second)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.samples < 2 * args.batch_size:
        parser.error(f"--samples {args.samples}: at least two batches (2 x --batch_size {args.batch_size}) are needed; "
                     "the first one is worker start-up and is not timed")
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        root = args.root or Path(tmp)
        if not (root / "Train").is_dir():
            start = time.perf_counter()
            write_dataset(root, args.images, args.test_sets, args.test_scale)
            print(f"wrote {root} in {time.perf_counter() - start:.1f} s")
        if args.prompt_file is not None:
            write_stand_in_prompt_file(args.prompt_file)
        if args.write_only:
            return []
        paths = DatasetPaths.from_root(root, data_file_dir=root / "data_file_dir")
        rows = []
        print(f"{'setting':>8} {'workers':>8} {'samples/s':>10} {'per worker':>11}  (batch {args.batch_size}, "
              f"patch {args.patch_size}, preload {args.preload_gb:g} GB, {os.cpu_count()} CPUs)")
        for setting in args.settings:
            tasks = list(SETTINGS[setting].train_repeats)
            mixture = TrainMixture(tasks, setting, paths, args.patch_size, preload=args.preload_gb > 0,
                                   preload_bytes=int(args.preload_gb * 2**30))
            for workers in args.workers:
                rate = samples_per_second(mixture, args.samples, workers, args.batch_size)
                rows.append((setting, workers, rate))
                print(f"{setting:>8} {workers:>8} {rate:>10.1f} {rate / max(workers, 1):>11.1f}", flush=True)
    return rows


if __name__ == "__main__":
    main()
