"""Synthetic official downloads in their published structures (a few images each, with the extras the
archives ship) and the authors' name lists for them: the inputs of ``python -m data.prepare`` in tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

# The official structures and names, a few images each (with the extras the archives ship).
DOWNLOADS: dict[str, list[str]] = {
    "wed": ["exploration_database_and_code/pristine_images/00001.bmp",
            "exploration_database_and_code/pristine_images/00002.bmp"],
    "bsd400": [f"BSR/BSDS500/data/images/{split}/{i}.jpg"
               for split, i in (("train", 100075), ("train", 105025), ("test", 100007), ("val", 101085))],
    "rain100l_train": ["RainTrainL/" + n for i in (1, 2, 10) for n in (f"rain-{i}.png", f"norain-{i}.png")]
    + ["RainTrainL/rainregion-1.png", "RainTrainL/rainstreak-1.png"],
    "rain100l_test": ["Rain100L/rainy/rain-001.png", "Rain100L/norain-001.png",
                      "Rain100L/rainy/rain-002.png", "Rain100L/norain-002.png"],
    "reside_ots": ["OTS_BETA/haze/part1/0001_0.8_0.04.jpg", "OTS_BETA/haze/part1/0001_1_0.2.jpg",
                   "OTS_BETA/haze/part2/0002_0.9_0.1.jpg", "OTS_BETA/haze/part3/0013_0.85_0.08.jpg",
                   "OTS_BETA/haze/part4/0021_0.95_0.16.jpg",
                   *[f"OTS_BETA/clear/{i}.jpg" for i in ("0001", "0002", "0013", "0021", "0030")]],
    "sots_outdoor": ["SOTS/outdoor/hazy/0001_0.8_0.2.jpg", "SOTS/outdoor/gt/0001.png",
                     "SOTS/outdoor/hazy/0002_1_0.08.jpg", "SOTS/outdoor/gt/0002.png",
                     "SOTS/indoor/hazy/1400_1.png", "SOTS/indoor/gt/1400.png"],
    "gopro": [f"GOPRO_Large/{split}/{seq}/{d}/{frame}.png"
              for split, seq, frame in (("train", "GOPR0372_07_00", "000047"), ("train", "GOPR0372_07_00", "000048"),
                                        ("train", "GOPR0884_11_00", "000284"), ("test", "GOPR0384_11_00", "000001"),
                                        ("test", "GOPR0385_11_01", "000001"))
              for d in ("blur", "blur_gamma", "sharp")],
    "lol": [f"LOLdataset/{split}/{d}/{i}.png" for split, i in (("our485", 2), ("our485", 5), ("eval15", 1))
            for d in ("low", "high")],
    "cbsd68": ["CBSD68/original_png/0000.png", "CBSD68/original_png/0001.png", "CBSD68/noisy15/0000.png"],
}
ARCHIVE_FOLDERS = {flag: names[0].split("/")[0] for flag, names in DOWNLOADS.items()}

# The authors' name-list formats for this tree.
NAME_LISTS = {
    "denoise.txt": ["00001.bmp", "00002.bmp", "a100075.jpg", "a105025.jpg", "a100007.jpg"],
    "rainTrain.txt": ["rainy/rain-1.png", "rainy/rain-2.png", "rainy/rain-10.png"],
    "hazy_outside.txt": ["synthetic/0001_0.8_0.04.jpg", "synthetic/0002_0.9_0.1.jpg", "synthetic/0013_0.85_0.08.jpg",
                         "synthetic/0021_0.95_0.16.jpg"],
    "train_gopro.txt": ["GOPR0372_07_00_000047.png", "GOPR0372_07_00_000048.png", "GOPR0884_11_00_000284.png"],
    "train_lol.txt": ["2.png", "5.png"],
}


def write_image(path: Path, seed: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 256, (16, 20, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)


def make_tree(base: Path, downloads: dict[str, list[str]]) -> None:
    for names in downloads.values():
        for i, name in enumerate(names):
            write_image(base / name, i)
    (base / "BSR/BSDS500/data/groundTruth/train").mkdir(parents=True)
    (base / "BSR/BSDS500/data/groundTruth/train/100075.mat").write_bytes(b"MATLAB")
    (base / "BSR/BSDS500/data/images/train/Thumbs.db").write_bytes(b"")
