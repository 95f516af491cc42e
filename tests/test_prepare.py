"""data.prepare: synthetic official downloads in their published structures -> a layout --check_data accepts."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from data.check import check_data
from data.finders import ImageTree, PrepareError, find_gopro, find_lol, find_rain100l, find_reside
from data.layouts import DatasetPaths
from data.prepare import main
from tests.downloads import ARCHIVE_FOLDERS, DOWNLOADS, NAME_LISTS, make_tree, write_image
from utils.run_lock import LOCK_NAME
from utils.tasks import SETTINGS

PATCH = 16

@pytest.fixture
def downloads(tmp_path: Path) -> Path:
    base = tmp_path / "downloads"
    make_tree(base, DOWNLOADS)
    lists = tmp_path / "lists"
    lists.mkdir()
    for name, lines in NAME_LISTS.items():
        (lists / name).write_text("\n".join(lines))
    return base


def prepare(base: Path, out: Path, *extra: str) -> int:
    flags = [arg for flag, folder in ARCHIVE_FOLDERS.items() for arg in (f"--{flag}", str(base / folder))]
    return main(["--out", str(out), *flags, "--data_file_dir", str(base.parent / "lists"),
                 "--patch_size", str(PATCH), "--num_workers", "1", *extra])


def snapshot(folder: Path) -> dict[str, tuple]:
    """Every entry under ``folder``: link target, or size and modification time of a file (not the run
    lock's file, which each run rewrites)."""
    entries = {}
    for path in sorted(p for p in folder.rglob("*") if p.name != LOCK_NAME):
        entries[str(path.relative_to(folder))] = (
            ("link", os.readlink(path)) if path.is_symlink() else
            ("dir",) if path.is_dir() else ("file", path.stat().st_size, path.stat().st_mtime_ns))
    return entries


def test_official_downloads_prepare_into_a_checked_layout(downloads, tmp_path, capsys):
    before = snapshot(downloads)
    out = tmp_path / "dfpir"
    assert prepare(downloads, out) == 0
    printed = capsys.readouterr().out
    assert "ready: train and test with --data_root" in printed
    assert snapshot(downloads) == before  # nothing in a download was touched

    setting = SETTINGS["5D"]
    report = check_data(list(setting.train_repeats), "5D", list(setting.test_tasks),
                        DatasetPaths.from_root(out, tmp_path / "lists"), PATCH, num_workers=1)
    assert [line for line in report.lines if not line.startswith("paper=")] == [
        "task=denoise_15 images=5 repeat=3 samples=15",
        "task=denoise_25 images=5 repeat=3 samples=15",
        "task=denoise_50 images=5 repeat=3 samples=15",
        "task=derain images=3 repeat=80 samples=240",
        "task=dehaze images=4 repeat=1 samples=4",
        "task=deblur images=3 repeat=30 samples=90",
        "task=lowlight images=2 repeat=60 samples=120",
        "test=dehaze pairs=2",
        "test=derain pairs=2",
        "test=denoise_25 pairs=2",
        "test=deblur pairs=2",
        "test=lowlight pairs=1",
    ]
    link = out / "Train/Deblur/blur/GOPR0372_07_00_000047.png"  # train/<SEQ>/blur/<frame> flattened
    assert link.is_symlink()
    assert Path(os.readlink(link)) == downloads / "GOPRO_Large/train/GOPR0372_07_00/blur/000047.png"
    assert sorted(p.name for p in (out / "test/deblur/blur").iterdir()) == [
        "GOPR0384_11_00_000001.png", "GOPR0385_11_01_000001.png"]
    assert sorted(p.name for p in (out / "Train/Denoise").iterdir()) == [
        "00001.bmp", "00002.bmp", "a100007.jpg", "a100075.jpg", "a105025.jpg"]  # BSDS val (CBSD68's source) left out
    assert sorted(p.name for p in (out / "Train/Dehaze/synthetic").iterdir()) == [  # out of part1..part4
        "0001_0.8_0.04.jpg", "0001_1_0.2.jpg", "0002_0.9_0.1.jpg", "0013_0.85_0.08.jpg", "0021_0.95_0.16.jpg"]
    assert sorted(p.name for p in (out / "Train/Dehaze/original").iterdir()) == [
        "0001.jpg", "0002.jpg", "0013.jpg", "0021.jpg"]
    assert sorted(p.name for p in (out / "test/dehaze/target").iterdir()) == ["0001.png", "0002.png"]  # no indoor
    assert sorted(p.name for p in (out / "Train/Derain/gt").iterdir()) == [
        "norain-1.png", "norain-10.png", "norain-2.png"]
    assert sorted(p.name for p in (out / "test/derain/Rain100L/input").iterdir()) == ["rain-001.png", "rain-002.png"]
    assert sorted(p.name for p in (out / "test/denoise/bsd68").iterdir()) == ["0000.png", "0001.png"]
    for line in ("--gopro", "train deblur: 3 pairs in 2 sequences", "test dehaze: 2 pairs",
                 "ignored 4 blur_gamma/ folders", "task=dehaze images=4",
                 "paper=dehaze found=4 expected=72135 DIFFERS FROM THE PAPER",
                 "test=dehaze pairs=2   (the benchmark has 500)"):
        assert line in printed


def test_rerun_changes_nothing(downloads, tmp_path, capsys):
    out = tmp_path / "dfpir"
    assert prepare(downloads, out) == 0
    first = snapshot(out)
    links = sum(kind == "link" for kind, *_ in first.values())
    assert links == 46 and f"created {links}, kept 0, conflicts 0" in capsys.readouterr().out
    assert prepare(downloads, out, "--no_check") == 0
    assert "created 0, kept 46, conflicts 0" in capsys.readouterr().out
    assert snapshot(out) == first


def test_conflicting_file_is_reported_not_overwritten(downloads, tmp_path, capsys):
    out = tmp_path / "dfpir"
    assert prepare(downloads, out, "--no_check") == 0
    target = out / "Train/LowLight/high/5.png"
    target.unlink()
    target.write_bytes(b"my own file")
    capsys.readouterr()
    assert prepare(downloads, out, "--no_check") == 1
    printed = capsys.readouterr().out
    assert f"CONFLICT: {target} is a different file" in printed
    assert "created 0, kept 45, conflicts 1" in printed
    assert target.read_bytes() == b"my own file"


def test_copy_then_rerun_keeps_the_copies(downloads, tmp_path, capsys):
    out = tmp_path / "dfpir"
    assert prepare(downloads, out, "--copy") == 0
    copied = out / "Train/Denoise/a100075.jpg"
    assert not copied.is_symlink()
    assert copied.read_bytes() == (downloads / "BSR/BSDS500/data/images/train/100075.jpg").read_bytes()
    capsys.readouterr()
    first = snapshot(out)
    assert prepare(downloads, out, "--copy", "--no_check") == 0
    assert "created 0, kept 46, conflicts 0" in capsys.readouterr().out
    assert snapshot(out) == first


def test_check_names_what_is_missing(downloads, tmp_path, capsys):
    bad = downloads / "LOLdataset/eval15/high/1.png"
    bad.write_bytes(bad.read_bytes()[:40])  # a truncated download
    (tmp_path / "lists/train_lol.txt").write_text("2.png\n5.png\n7.png\n")  # and a listed image it lacks
    assert prepare(downloads, tmp_path / "dfpir") == 1
    printed = capsys.readouterr().out
    assert "train lowlight: FAILED, 1 problem(s), e.g.:" in printed
    assert "Train/LowLight/low/7.png is listed in" in printed
    assert "test lowlight: FAILED, 1 problem(s), e.g.:" in printed
    assert "cannot read image" in printed and "hint: the files come from --lol" in printed
    assert "ready" not in printed


def test_only_some_downloads_against_the_authors_lists(downloads, tmp_path, capsys):
    out = tmp_path / "dfpir"
    assert main(["--out", str(out), "--lol", str(downloads / "LOLdataset"), "--patch_size", str(PATCH)]) == 1
    printed = capsys.readouterr().out
    assert "train lowlight: FAILED" in printed and "483 of the 485 images listed in" in printed
    assert "hint: the files come from --lol" in printed
    assert "test=lowlight pairs=1   (the benchmark has 15)" in printed
    assert "train deblur: not prepared" in printed and "pass --gopro" in printed


@pytest.mark.parametrize("args, message", [
    (["--gopro", "{base}/nowhere"], "--gopro: no such folder"),
    (["--lol", "{base}/GOPRO_Large"], "no low + high/normal image folders found"),
    (["--reside_ots", "{base}/LOLdataset"], "no RESIDE-OTS hazy images found"),
    (["--gopro", "{base}/GOPRO_Large/train/GOPR0884_11_00"], "cannot tell training from test images"),
    ([], "give at least one download"),
])
def test_unusable_downloads_exit_2_before_writing(downloads, tmp_path, capsys, args, message):
    out = tmp_path / "dfpir"
    with pytest.raises(SystemExit) as exit_info:
        main(["--out", str(out), *[a.format(base=downloads) for a in args]])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err
    assert not out.exists()


def test_out_inside_a_download_is_refused(downloads, capsys):
    with pytest.raises(SystemExit):
        main(["--out", str(downloads / "LOLdataset/prepared"), "--lol", str(downloads / "LOLdataset")])
    assert "is inside --lol" in capsys.readouterr().err
    assert not (downloads / "LOLdataset/prepared").exists()


def names(found) -> list[str]:
    return sorted(str(p.target) for p in found.placements)


def test_other_circulating_structures(tmp_path):
    make = lambda folder, files: [write_image(tmp_path / folder / f, 0) for f in files]  # noqa: E731
    make("rain_a", ["test/rain/rain-001.png", "test/norain/norain-001.png", "train/rain-3.png", "train/norain-3.png",
                    "Rain100H/rain-001.png", "Rain100H/norain-001.png"])
    assert names(find_rain100l(ImageTree(tmp_path / "rain_a"), "test")) == [
        "test/derain/Rain100L/input/rain-001.png", "test/derain/Rain100L/target/norain-001.png"]
    assert names(find_rain100l(ImageTree(tmp_path / "rain_a"), "train")) == [
        "Train/Derain/gt/norain-3.png", "Train/Derain/rainy/rain-3.png"]
    make("jorder", [f"rain_data_{split}_Light/{d}" for split in ("train", "test")
                    for d in ("rain/X2/norain-4x2.png", "norain/norain-4.png")])  # rainy ones named norain-Nx2
    assert names(find_rain100l(ImageTree(tmp_path / "jorder"), "train")) == [
        "Train/Derain/gt/norain-4.png", "Train/Derain/rainy/rain-4.png"]
    found = find_rain100l(ImageTree(tmp_path / "jorder"), "test")
    assert [p.source for p in found.placements] == [
        tmp_path / "jorder/rain_data_test_Light/rain/X2/norain-4x2.png",
        tmp_path / "jorder/rain_data_test_Light/norain/norain-4.png"]
    make("rain_two", ["A/rain-1.png", "A/norain-1.png", "B/rain-1.png", "B/norain-1.png"])
    with pytest.raises(PrepareError, match=r"several Rain100L-like folders under .*: A/ \(1 pairs\), B/ \(1 pairs\)"):
        find_rain100l(ImageTree(tmp_path / "rain_two"), "train")
    make("rain_b", ["input/7.png", "target/7.png", "input/8.png"])  # MPRNet style; 8 has no partner
    found = find_rain100l(ImageTree(tmp_path / "rain_b"), "test")
    assert names(found) == ["test/derain/Rain100L/input/rain-7.png", "test/derain/Rain100L/target/norain-7.png"]
    assert found.problems and "1 rainy images have no partner" in found.problems[0]
    make("gopro_flat", ["train/blur/GOPR0372_07_00_000047.png", "train/sharp/GOPR0372_07_00_000047.png",
                        "test/input/x.png", "test/target/x.png"])
    assert names(find_gopro(ImageTree(tmp_path / "gopro_flat"))) == [
        "Train/Deblur/blur/GOPR0372_07_00_000047.png", "Train/Deblur/sharp/GOPR0372_07_00_000047.png",
        "test/deblur/blur/x.png", "test/deblur/sharp/x.png"]
    make("lol", ["LOL/Train/Low/1.png", "LOL/Train/High/1.png", "LOL/Test/Low/9.png", "LOL/Test/High/9.png"])
    assert names(find_lol(ImageTree(tmp_path / "lol"))) == [
        "Train/LowLight/high/1.png", "Train/LowLight/low/1.png", "test/lowlight/high/9.png", "test/lowlight/low/9.png"]
    make("sots", ["outdoor/hazy/0005_0.8_0.2.jpg", "outdoor/clear/0005.jpg"])  # ground truth must be .png
    found = find_reside(ImageTree(tmp_path / "sots"), "test")
    assert not found.placements and "convert it to .png" in found.problems[0]
