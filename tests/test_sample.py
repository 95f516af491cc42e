"""Tests of the stand-in dataset generator ``python -m data.sample`` (data/sample.py).

The expected layout is written out here from docs/protocol.md section 5 (not read from data.sample), so a
wrong template in the generator fails these tests.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from data.sample import README_MARKER, main, make_sample_dataset
from data.synthesis import AIRLIGHTS, BETAS, add_haze, camera_shake_kernel, line_kernel, synthetic_depth

TINY = {"train_size": 32, "test_size": 24}  # enough for determinism and folder handling

# 'split/kind' -> (folder of inputs, input glob, folder of clean images, input name -> clean name);
# the clean folder is None for denoising (the inputs are the clean images).
EXPECTED_LAYOUT = {
    "train/denoise": ("Train/Denoise", "*.png", None, None),
    "train/derain": ("Train/Derain/rainy", "rain-*.png", "Train/Derain/gt", lambda n: "no" + n),
    "train/dehaze": (
        "Train/Dehaze/synthetic", "*_*_*.jpg", "Train/Dehaze/original", lambda n: n.split("_")[0] + ".jpg"
    ),
    "train/deblur": ("Train/Deblur/blur", "*.png", "Train/Deblur/sharp", lambda n: n),
    "train/lowlight": ("Train/LowLight/low", "*.png", "Train/LowLight/high", lambda n: n),
    "test/denoise": ("test/denoise/bsd68", "*.png", None, None),
    "test/derain": (
        "test/derain/Rain100L/input", "rain-*.png", "test/derain/Rain100L/target", lambda n: "no" + n
    ),
    "test/dehaze": (
        "test/dehaze/input", "*_*_*.jpg", "test/dehaze/target", lambda n: n.split("_")[0] + ".png"
    ),
    "test/deblur": ("test/deblur/blur", "*.png", "test/deblur/sharp", lambda n: n),
    "test/lowlight": ("test/lowlight/low", "*.png", "test/lowlight/high", lambda n: n),
}

# kind -> (name list under data_file_dir, the list's entries are relative to this training folder)
EXPECTED_NAME_LISTS = {
    "denoise": ("noisy/denoise.txt", "Train/Denoise"),
    "derain": ("rainy/rainTrain.txt", "Train/Derain"),
    "dehaze": ("hazy/hazy_outside.txt", "Train/Dehaze"),
    "deblur": ("gopro/train_gopro.txt", "Train/Deblur/blur"),
    "lowlight": ("lol/train_lol.txt", "Train/LowLight/low"),
}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, int]]:
    """The default sample dataset (seed 0, scale 1) and the counts it reported."""
    root = tmp_path_factory.mktemp("sample")
    return root, make_sample_dataset(root, seed=0)


def read(path: Path) -> np.ndarray:
    """(H, W, 3) float64 in [0, 255]."""
    with Image.open(path) as image:
        assert image.mode == "RGB", f"{path} is {image.mode}, not RGB"
        return np.asarray(image, dtype=np.float64)


def pairs(root: Path, key: str) -> list[tuple[Path, Path]]:
    """(degraded, clean) pairs of one 'split/kind' from EXPECTED_LAYOUT; both files must exist."""
    input_dir, pattern, clean_dir, partner = EXPECTED_LAYOUT[key]
    result = []
    for degraded in sorted((root / input_dir).glob(pattern)):
        clean = root / clean_dir / partner(degraded.name)
        assert clean.is_file(), f"{degraded} has no clean partner {clean}"
        result.append((degraded, clean))
    return result


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(255.0**2 / np.mean((a - b) ** 2)))


def file_hashes(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


# --------------------------------------------------------------------------------------------------
# Layout, names, sizes


def test_layout_holds_the_reported_counts(dataset: tuple[Path, dict[str, int]]) -> None:
    root, counts = dataset
    assert counts == {
        "train/denoise": 8, "train/derain": 4, "train/dehaze": 8, "train/deblur": 4, "train/lowlight": 4,
        "test/denoise": 4, "test/derain": 4, "test/dehaze": 4, "test/deblur": 4, "test/lowlight": 4,
    }
    for key, (input_dir, pattern, clean_dir, _) in EXPECTED_LAYOUT.items():
        inputs = sorted((root / input_dir).iterdir())
        assert [p.name for p in inputs] == sorted(p.name for p in (root / input_dir).glob(pattern)), key
        assert len(inputs) == counts[key], key
        if clean_dir is None:
            continue
        found = pairs(root, key)
        assert len(found) == counts[key]
        assert len({clean for _, clean in found}) == len(list((root / clean_dir).iterdir())), key
        for degraded, clean in found:
            assert read(degraded).shape == read(clean).shape, degraded
    assert (root / "README.txt").read_text().startswith(README_MARKER)


def test_file_names_follow_the_benchmarks(dataset: tuple[Path, dict[str, int]]) -> None:
    root, _ = dataset
    hazy_folders = {"Train/Dehaze/synthetic": 2, "test/dehaze/input": 1}  # hazy versions per scene
    for folder, per_scene in hazy_folders.items():
        params_by_id: dict[str, set[tuple[float, float]]] = {}
        for path in (root / folder).iterdir():
            match = re.fullmatch(r"(\d{4})_([\d.]+)_([\d.]+)\.jpg", path.name)
            assert match, f"{path.name} is not RESIDE's ID_A_B.jpg"
            airlight, beta = float(match[2]), float(match[3])
            assert airlight in AIRLIGHTS and beta in BETAS, path.name
            params_by_id.setdefault(match[1], set()).add((airlight, beta))
        assert all(len(p) == per_scene for p in params_by_id.values()), (folder, params_by_id)
    for folder in ("Train/Deblur/blur", "test/deblur/blur"):
        assert all(re.fullmatch(r"GOPR\d{4}_\d{2}_\d{6}\.png", p.name) for p in (root / folder).iterdir())
    for folder in ("Train/LowLight/low", "test/lowlight/low"):
        assert all(re.fullmatch(r"\d+\.png", p.name) for p in (root / folder).iterdir())


def test_image_sizes_fit_a_patch_and_exercise_centre_cropping(dataset: tuple[Path, dict[str, int]]) -> None:
    root, _ = dataset
    train_shapes = [read(p).shape for p in (root / "Train").rglob("*.*g")]
    test_shapes = [read(p).shape for p in (root / "test").rglob("*.*g")]
    assert all(h // 16 * 16 >= 128 and w // 16 * 16 >= 128 for h, w, _ in train_shapes)
    assert all(96 <= h < 96 + 16 and 128 <= w < 128 + 16 for h, w, _ in test_shapes)
    assert (96, 128, 3) in test_shapes
    assert any(h % 16 or w % 16 for h, w, _ in test_shapes)
    assert any(h % 16 or w % 16 for h, w, _ in train_shapes)


def test_name_lists_list_every_training_input(dataset: tuple[Path, dict[str, int]]) -> None:
    root, _ = dataset
    for kind, (list_name, relative_to) in EXPECTED_NAME_LISTS.items():
        names = (root / "data_file_dir" / list_name).read_text().splitlines()
        assert all((root / relative_to / name).is_file() for name in names), (kind, names)
        input_dir, pattern, _, _ = EXPECTED_LAYOUT[f"train/{kind}"]
        listed = {(root / relative_to / name).resolve() for name in names}
        assert listed == {p.resolve() for p in (root / input_dir).glob(pattern)}, kind
    assert (root / "data_file_dir/rainy/rainTrain.txt").read_text().startswith("rainy/rain-")
    assert (root / "data_file_dir/hazy/hazy_outside.txt").read_text().startswith("synthetic/")


def test_every_task_pairs_with_the_data_loaders_layouts(dataset: tuple[Path, dict[str, int]]) -> None:
    layouts = pytest.importorskip("data.layouts")
    root, counts = dataset
    for data_file_dir in (None, root / "data_file_dir"):
        paths = layouts.DatasetPaths.from_root(root, data_file_dir=data_file_dir)
        for kind in ("denoise", "derain", "dehaze", "deblur", "lowlight"):
            assert len(layouts.train_pairs(kind, paths)) == counts[f"train/{kind}"], (kind, data_file_dir)
            assert len(layouts.eval_pairs(kind, paths)) == counts[f"test/{kind}"], kind


# --------------------------------------------------------------------------------------------------
# Degradations


def test_rain_adds_thin_bright_streaks(dataset: tuple[Path, dict[str, int]]) -> None:
    root, _ = dataset
    for degraded, clean in pairs(root, "train/derain") + pairs(root, "test/derain"):
        rainy, gt = read(degraded), read(clean)
        assert np.all(rainy >= gt - 1), degraded  # screen blending only brightens
        streak_fraction = np.mean((rainy - gt).max(axis=-1) > 20)
        assert 0.005 < streak_fraction < 0.3, (degraded, streak_fraction)
        assert 18 < psnr(rainy, gt) < 35, degraded


def test_haze_is_brighter_with_less_contrast(dataset: tuple[Path, dict[str, int]]) -> None:
    root, _ = dataset
    for degraded, clean in pairs(root, "train/dehaze") + pairs(root, "test/dehaze"):
        hazy, gt = read(degraded), read(clean)
        assert hazy.mean() > gt.mean() + 10, degraded
        assert hazy.std() < gt.std(), degraded
        assert 8 < psnr(hazy, gt) < 30, degraded


def test_motion_blur_removes_high_frequencies(dataset: tuple[Path, dict[str, int]]) -> None:
    root, _ = dataset
    for degraded, clean in pairs(root, "train/deblur") + pairs(root, "test/deblur"):
        blurred, sharp = read(degraded), read(clean)

        def high_frequency_energy(image: np.ndarray) -> float:
            return float(np.mean(ndimage.laplace(image.mean(axis=-1)) ** 2))

        assert high_frequency_energy(blurred) < 0.6 * high_frequency_energy(sharp), degraded
        assert abs(blurred.mean() - sharp.mean()) < 2, degraded  # a kernel summing to 1
        assert 17 < psnr(blurred, sharp) < 40, degraded


def test_low_light_is_much_darker(dataset: tuple[Path, dict[str, int]]) -> None:
    root, _ = dataset
    for degraded, clean in pairs(root, "train/lowlight") + pairs(root, "test/lowlight"):
        low, high = read(degraded), read(clean)
        assert low.mean() < 0.35 * high.mean(), degraded
        assert 4 < psnr(low, high) < 15, degraded


def test_haze_follows_the_atmospheric_scattering_model() -> None:
    clean = np.random.default_rng(0).random((8, 10, 3))
    depth = np.full((8, 10), 5.0)
    t = np.exp(-0.1 * 5.0)
    np.testing.assert_allclose(add_haze(clean, depth, 0.9, 0.1), clean * t + 0.9 * (1 - t))
    np.testing.assert_allclose(add_haze(clean, depth, 0.9, 0.0), clean)
    depth = synthetic_depth(np.random.default_rng(1), 40, 50)
    assert depth.shape == (40, 50) and depth.min() == pytest.approx(1.0) and 6 <= depth.max() <= 12
    assert depth[:5].mean() > depth[-5:].mean()  # far at the top


def test_motion_kernels_are_normalised_paths() -> None:
    vertical = line_kernel(9, 0)
    assert vertical.shape == (11, 11) and vertical.sum() == pytest.approx(1.0)
    assert np.count_nonzero(vertical[:, 5]) >= 9 and np.count_nonzero(np.delete(vertical, 5, axis=1)) == 0
    diagonal = line_kernel(9, 45)
    assert np.count_nonzero(diagonal[:, 5]) < 9 and np.allclose(diagonal, diagonal.T[::-1, ::-1])
    shake = camera_shake_kernel(np.random.default_rng(0), 11)
    assert shake.shape == (11, 11) and shake.sum() == pytest.approx(1.0) and shake.min() >= 0
    assert np.count_nonzero(shake) > 11  # spread along a path, not a point


# --------------------------------------------------------------------------------------------------
# Determinism and the output folder


def test_same_seed_gives_the_same_bytes_and_scale_only_adds(tmp_path: Path) -> None:
    def generate(name: str, seed: int, scale: float) -> dict[str, str]:
        make_sample_dataset(tmp_path / name, seed=seed, scale=scale, **TINY)
        return file_hashes(tmp_path / name)

    first, second = generate("a", seed=3, scale=0.5), generate("b", seed=3, scale=0.5)
    other, larger = generate("c", seed=4, scale=0.5), generate("d", seed=3, scale=1)
    assert first == second
    images = [name for name in first if name.endswith((".png", ".jpg"))]
    changed = [name for name in images if first[name] != other.get(name)]  # haze names may differ too
    assert len(changed) > 0.9 * len(images)
    for name in images:  # the first scenes of a larger dataset are the smaller dataset's scenes
        assert larger[name] == first[name], name
    assert len(larger) > len(first)


def test_refuses_a_foreign_folder_unless_overwrite(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="--overwrite"):
        make_sample_dataset(tmp_path, **TINY)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]
    counts = make_sample_dataset(tmp_path, overwrite=True, **TINY)
    assert (tmp_path / "notes.txt").read_text() == "mine"
    assert len(list((tmp_path / "Train/Denoise").iterdir())) == counts["train/denoise"]
    with pytest.raises(NotADirectoryError):
        make_sample_dataset(tmp_path / "notes.txt", **TINY)


def test_regenerating_replaces_a_previous_sample_dataset(tmp_path: Path) -> None:
    make_sample_dataset(tmp_path, scale=2, **TINY)
    counts = make_sample_dataset(tmp_path, scale=0.5, **TINY)  # no --overwrite needed, no stale files
    for key, (input_dir, _, _, _) in EXPECTED_LAYOUT.items():
        assert len(list((tmp_path / input_dir).iterdir())) == counts[key], key
    listed = (tmp_path / "data_file_dir/noisy/denoise.txt").read_text().splitlines()
    assert len(listed) == counts["train/denoise"]


def test_command_line_writes_and_summarises(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    main([str(tmp_path / "out"), "--seed", "1", "--scale", "0.5", "--train_size", "32", "--test_size", "24"])
    printed = capsys.readouterr().out
    assert str(tmp_path / "out") in printed and "seed 1" in printed
    assert re.search(r"train\s+4\s+2\s+4\s+2\s+2", printed), printed
    readme = (tmp_path / "out/README.txt").read_text()
    assert readme.startswith(README_MARKER) and "seed 1" in readme and readme.count("\n") == 1
    with pytest.raises(ValueError, match="scale"):
        make_sample_dataset(tmp_path / "bad", scale=0)
    (tmp_path / "foreign").mkdir()
    (tmp_path / "foreign/notes.txt").write_text("mine")
    with pytest.raises(SystemExit) as exit_info:
        main([str(tmp_path / "foreign")])
    assert exit_info.value.code == 2 and "--overwrite" in capsys.readouterr().err
