"""Never lose a user's work, never a traceback for a user's mistake (issue 13).

Bad flags and files are refused before any heavy work with exit status 2 and one message naming
them; last.ckpt is only ever replaced by a later state of the same run; a resumed run keeps its
configuration; SIGTERM/Ctrl-C save and exit non-zero; evaluation writes its scores task by task;
the demo never writes over its inputs. The scripts run in-process (``main(setting, argv)``) on the
stand-in data with the tiny network; only the SIGTERM test needs a subprocess.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import demo
from data.layouts import list_images
from engine.evaluate import main as evaluate_main
from engine.train import main as train_main
from net.checkpoint import CheckpointError, read_checkpoint
from utils.image_io import write_png

ROOT = Path(__file__).resolve().parents[1]
RUN = ("--de_type", "dehaze", "--val_every", "0")  # the flags of the trained_run fixture, with tiny_train_args
OUT_OF_MEMORY = "DefaultCPUAllocator: can't allocate memory: you tried to allocate 576000000 bytes."


@pytest.fixture
def run_dir(trained_run, tmp_path) -> Path:
    """A copy of a 2-step run: its last.ckpt is the user's work that must survive."""
    return Path(shutil.copytree(trained_run, tmp_path / "run"))


@pytest.fixture
def restore_sigint():
    """Lightning ignores SIGINT after a KeyboardInterrupt; give the test process its handler back."""
    handler = signal.getsignal(signal.SIGINT)
    yield
    signal.signal(signal.SIGINT, handler)


@pytest.fixture
def train(tiny_train_args):
    """train(data_root, ckpt_dir, *flags, setting="3D", tiny=True) -> exit status of a tiny training run."""

    def run(data_root: Path, ckpt_dir: Path, *extra: str, setting: str = "3D", tiny: bool = True) -> int:
        flags = tiny_train_args if tiny else [a for a in tiny_train_args if a not in ("--model", "tiny")]
        return train_main(setting, ["--data_root", str(data_root), "--ckpt_dir", str(ckpt_dir), *flags, *RUN, *extra])

    return run


def _evaluate(data_root: Path, out: Path, *extra: str) -> int:
    return evaluate_main("3D", ["--data_root", str(data_root), "--output_path", str(out), "--device", "cpu",
                                "--num_workers", "0", *extra])


def _one_line_error(capsys_or_fd) -> str:
    err = capsys_or_fd.readouterr().err
    assert "Traceback" not in err, err
    return err


def _authors_file(run_dir: Path, path: Path) -> Path:
    torch.save({"epoch": 1, "state_dict": read_checkpoint(run_dir / "last.ckpt").state_dict}, path)
    return path


# ----------------------------------------------------------------------------- checkpoints (cases 1, 7)
def _bad_checkpoint(kind: str, run_dir: Path, path: Path) -> Path:
    if kind == "authors":
        return _authors_file(run_dir, path)
    if kind == "text":
        path.write_text("version https://git-lfs.github.com/spec/v1\noid sha256:4d7a\nsize 124\n")
    elif kind == "html":
        path.write_text("<!DOCTYPE html>\n<html><head><title>Google Drive - Virus scan warning</title></head></html>")
    elif kind == "random":
        path.write_bytes(np.random.default_rng(0).integers(1, 128, 4096, dtype=np.uint8).tobytes())
    elif kind == "unknown_lightning":
        weights = read_checkpoint(run_dir / "last.ckpt").state_dict
        torch.save({"pytorch-lightning_version": "0.4.9", "state_dict": {f"net.{k}": v for k, v in weights.items()},
                    "epoch": 0}, path)
    return path


CHECKPOINT_KINDS = ["authors", "text", "html", "random", "unknown_lightning"]


@pytest.mark.parametrize("kind", CHECKPOINT_KINDS)
def test_a_bad_resume_file_is_refused_and_last_ckpt_is_kept(train, data_root, run_dir, tmp_path, capsys, kind):
    before = (run_dir / "last.ckpt").read_bytes()
    bad = _bad_checkpoint(kind, run_dir, tmp_path / "model.ckpt")
    assert train(data_root, run_dir, "--resume", str(bad), "--max_steps", "4") == 2
    err = _one_line_error(capsys)
    assert str(bad) in err and "False" not in err  # never torch's advice to retry with weights_only=False
    if kind == "authors":
        assert "--init_from" in err
    assert (run_dir / "last.ckpt").read_bytes() == before


@pytest.mark.parametrize("kind", ["text", "html", "random"])
def test_a_file_that_is_no_checkpoint_gets_a_clear_error(run_dir, tmp_path, kind):
    bad = _bad_checkpoint(kind, run_dir, tmp_path / "model.ckpt")
    with pytest.raises(CheckpointError) as err:
        read_checkpoint(bad)
    message = str(err.value)
    assert str(bad) in message and "not a PyTorch checkpoint" in message and "False" not in message
    if kind == "html":
        assert "HTML page" in message


def test_evaluating_a_text_file_as_checkpoint_exits_2(data_root, run_dir, tmp_path, capsys):
    bad = _bad_checkpoint("text", run_dir, tmp_path / "model.ckpt")
    assert _evaluate(data_root, tmp_path / "out", "--ckpt", str(bad)) == 2
    assert "text file" in _one_line_error(capsys)


def test_ctrl_c_while_preloading_a_resumed_run_keeps_last_ckpt(train, data_root, run_dir, monkeypatch, restore_sigint):
    from data.datamodule import DFPIRDataModule

    def interrupted(self, stage):
        raise KeyboardInterrupt

    monkeypatch.setattr(DFPIRDataModule, "setup", interrupted)
    before = (run_dir / "last.ckpt").read_bytes()
    assert train(data_root, run_dir, "--resume", "auto", "--max_steps", "4") == 128 + signal.SIGINT
    assert (run_dir / "last.ckpt").read_bytes() == before


def test_a_new_run_never_replaces_another_runs_last_ckpt(train, data_root, run_dir, capsys):
    before = (run_dir / "last.ckpt").read_bytes()
    assert train(data_root, run_dir, "--max_steps", "4") == 2
    assert "--resume auto" in _one_line_error(capsys)
    assert (run_dir / "last.ckpt").read_bytes() == before


# ----------------------------------------------------------------------------- resume configuration (case 5)
@pytest.mark.parametrize("change, named", [
    (("--batch_size", "4"), "--batch_size: 2 in the checkpoint, 4 now"),
    (("--patch_size", "48"), "--patch_size: 32 in the checkpoint, 48 now"),
    (("--de_type", "derain"), "--de_type: dehaze in the checkpoint, derain now"),
    (("--seed", "1"), "--seed: 0 in the checkpoint, 1 now"),
    (("--setting", "5D"), "the setting: 3D in the checkpoint, 5D now"),
    (("--model", "paper"), "a run from a checkpoint keeps its network"),
], ids=["batch_size", "patch_size", "de_type", "seed", "setting", "model"])
def test_a_resumed_run_refuses_a_changed_configuration(train, data_root, run_dir, capsys, change, named):
    before = (run_dir / "last.ckpt").read_bytes()
    setting = change[1] if change[0] == "--setting" else "3D"
    extra = () if change[0] == "--setting" else change
    assert train(data_root, run_dir, "--resume", "auto", "--max_steps", "4", *extra, setting=setting) == 2
    err = _one_line_error(capsys)
    assert named in err and (change[0] == "--model" or "--allow_config_change" in err)
    assert (run_dir / "last.ckpt").read_bytes() == before


def test_allow_config_change_lets_a_resumed_run_change_its_seed(train, data_root, run_dir, capsys):
    assert train(data_root, run_dir, "--resume", "auto", "--max_steps", "2", "--seed", "1",
                  "--allow_config_change") == 0
    assert "--seed: 0 in the checkpoint, 1 now" in capsys.readouterr().err


def test_a_resumed_run_names_its_checkpoints_network_and_loads_it_quietly(train, data_root, run_dir, capfd):
    assert train(data_root, run_dir, "--resume", "auto", "--max_steps", "3", "--ckpt_every", "1",
                  tiny=False) == 0
    out, err = capfd.readouterr()
    assert "network: tiny" in out
    assert "weights_only" not in out + err  # Lightning's "`weights_only` was not set" notice
    assert torch.load(run_dir / "last.ckpt", weights_only=True)["global_step"] == 3


# ----------------------------------------------------------------------------- stopping (case 6)
def test_sigterm_saves_last_ckpt_and_exits_non_zero(data_root, tiny_train_args, tmp_path):
    ckpt_dir = tmp_path / "run"
    argv = [sys.executable, str(ROOT / "train_3D_DFPIR.py"), "--data_root", str(data_root), "--ckpt_dir",
            str(ckpt_dir), *tiny_train_args, *RUN, "--max_steps", "100000", "--ckpt_every", "1"]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(argv, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 300
        while not (ckpt_dir / "last.ckpt").is_file() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert proc.poll() is None, proc.stderr.read()[-3000:]
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=300)
    finally:
        proc.kill()
    assert proc.returncode == 128 + signal.SIGTERM, err[-3000:]
    assert "SIGTERM" in err and "--resume auto" in err
    assert torch.load(ckpt_dir / "last.ckpt", weights_only=True)["global_step"] >= 1


# ----------------------------------------------------------------------------- flags (cases 8, 11)
BAD_TRAIN_FLAGS = [
    (("--batch_size", "0"), "--batch_size 0"),
    (("--batch_size", "-2"), "--batch_size -2"),
    (("--patch_size", "7"), "--patch_size 7"),
    (("--patch_size", "36"), "--patch_size 36"),
    (("--patch_size", "0"), "--patch_size 0"),
    (("--patch_size", "-64"), "--patch_size -64"),
    (("--num_workers", "-1"), "--num_workers -1"),
    (("--devices", "two"), "--devices two"),
]


@pytest.mark.parametrize("flag, named", BAD_TRAIN_FLAGS, ids=[" ".join(f) for f, _ in BAD_TRAIN_FLAGS])
def test_a_bad_training_flag_exits_2_before_any_work(train, tmp_path, capsys, flag, named):
    ckpt_dir = tmp_path / "run"
    assert train(tmp_path / "no_data_here", ckpt_dir, *flag) == 2  # refused before the data check
    err = _one_line_error(capsys)
    assert named in err and "no_data_here" not in err
    assert not ckpt_dir.exists()


def test_every_bad_flag_is_reported_at_once(train, tmp_path, capsys):
    assert train(tmp_path, tmp_path / "run", "--batch_size", "0", "--patch_size", "36", "--num_workers", "-1") == 2
    err = _one_line_error(capsys)
    assert all(flag in err for flag in ("--batch_size 0", "--patch_size 36", "--num_workers -1"))


@pytest.mark.parametrize("flags, named", [
    (("--tile", "16", "--tile_overlap", "32"), "--tile_overlap 32"),
    (("--tile", "100"), "--tile 100"),
    (("--num_workers", "-1"), "--num_workers -1"),
])
def test_a_bad_evaluation_flag_exits_2_before_any_work(run_dir, tmp_path, capsys, flags, named):
    out = tmp_path / "out"
    assert _evaluate(tmp_path / "no_data_here", out, "--ckpt", str(run_dir / "last.ckpt"), *flags) == 2
    assert named in _one_line_error(capsys)
    assert not out.exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_device_cuda_without_a_gpu_is_reported_first(train, run_dir, tmp_path, capsys):
    assert train(tmp_path / "no_data_here", tmp_path / "new", "--device", "cuda") == 2
    assert "--device cuda" in _one_line_error(capsys)
    assert _evaluate(tmp_path / "no_data_here", tmp_path / "out", "--ckpt", str(run_dir / "last.ckpt"),
                     "--device", "cuda") == 2
    assert "--device cuda" in _one_line_error(capsys)


def test_out_of_memory_while_evaluating_suggests_tile(data_root, run_dir, tmp_path, capsys, monkeypatch):
    from net.dfpir import DFPIR

    def no_memory(self, *args):
        raise RuntimeError(OUT_OF_MEMORY)

    monkeypatch.setattr(DFPIR, "forward", no_memory)
    assert _evaluate(data_root, tmp_path / "out", "--ckpt", str(run_dir / "last.ckpt"), "--tasks", "derain",
                     "--allow_untrained_tasks") == 2  # the run trained dehaze only (issue 30: refused without it)
    err = _one_line_error(capsys)
    message = err[err.index("error:"):].strip()
    assert "\n" not in message and "out of memory" in message and "--tile" in message


# ----------------------------------------------------------------------------- prompt files (case 3)
@pytest.mark.parametrize("kind", ["nan", "inf", "integer", "length"])
def test_a_bad_prompt_file_is_refused(train, data_root, run_dir, tmp_path, capsys, kind):
    from net.prompts import prompt_list

    table = {prompt: torch.randn(500 if kind == "length" else 512) for prompt in prompt_list("detailed")}
    rain = prompt_list("detailed")[3]
    if kind in ("nan", "inf"):
        table[rain][7] = float(kind)
    elif kind == "integer":
        table[rain] = torch.arange(512)
    prompts = tmp_path / "prompts.pt"
    torch.save(table, prompts)
    authors = _authors_file(run_dir, tmp_path / "model.pth.tar")
    assert _evaluate(data_root, tmp_path / "out", "--ckpt", str(authors), "--model", "tiny",
                     "--prompt_embeddings", str(prompts), "--tasks", "derain") == 2
    assert str(prompts) in _one_line_error(capsys)
    assert not (tmp_path / "out" / "results.json").exists()
    assert train(data_root, tmp_path / "new", "--prompt_embeddings", str(prompts)) == 2
    assert str(prompts) in _one_line_error(capsys)


# ----------------------------------------------------------------------------- datasets (cases 4, 9)
def test_symlinked_sub_folders_are_followed_once(tmp_path):
    elsewhere = tmp_path / "elsewhere" / "WED"
    elsewhere.mkdir(parents=True)
    write_png(elsewhere / "00001.png", np.zeros((8, 8, 3), np.uint8))
    folder = tmp_path / "Train" / "Denoise"
    folder.mkdir(parents=True)
    write_png(folder / "BSD1.png", np.zeros((8, 8, 3), np.uint8))
    (folder / "WED").symlink_to(elsewhere, target_is_directory=True)
    (folder / "WED_again").symlink_to(elsewhere, target_is_directory=True)
    (elsewhere / "loop").symlink_to(folder, target_is_directory=True)
    assert [str(p) for p in list_images(folder)] == ["BSD1.png", "WED/00001.png"]


def test_a_corrupt_test_image_stops_evaluation_before_any_task(data_root, run_dir, tmp_path, capsys):
    root = Path(shutil.copytree(data_root, tmp_path / "data"))
    corrupt = sorted((root / "test" / "derain" / "Rain100L" / "input").iterdir())[1]
    corrupt.write_bytes(corrupt.read_bytes()[:100])
    out = tmp_path / "out"
    assert _evaluate(root, out, "--ckpt", str(run_dir / "last.ckpt"), "--tasks", "denoise_15", "derain",
                     "--num_workers", "1", "--allow_untrained_tasks") == 2
    err = _one_line_error(capsys)
    assert str(corrupt) in err and len(err.strip().splitlines()) <= 3
    assert not (out / "denoise_15").exists()  # nothing evaluated


def test_scores_are_written_after_each_task(data_root, run_dir, tmp_path, monkeypatch, restore_sigint):
    import data.evalsets

    load = data.evalsets.load_test_images

    def interrupted_on_rain(pair, sigma):
        if "rain" in pair.clean.name:
            raise KeyboardInterrupt
        return load(pair, sigma)

    monkeypatch.setattr(data.evalsets, "load_test_images", interrupted_on_rain)
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as stop:
        _evaluate(data_root, out, "--ckpt", str(run_dir / "last.ckpt"), "--tasks", "denoise_15", "derain",
                  "--no_save_images", "--allow_untrained_tasks")
    assert stop.value.code != 0
    results = json.loads((out / "results.json").read_text())
    assert list(results) == ["denoise_15", "average"] and results["denoise_15"]["n"] == 4
    assert "CBSD68 s15" in (out / "results.md").read_text()


# ----------------------------------------------------------------------------- output locations (case 10)
@pytest.mark.parametrize("where", ["existing_file", "under_a_file"])
def test_an_unwritable_output_path_is_refused_before_evaluation(data_root, run_dir, tmp_path, capsys, where):
    existing = tmp_path / "results.txt"
    existing.write_text("the user's notes")
    out = existing if where == "existing_file" else existing / "eval"
    assert _evaluate(data_root, out, "--ckpt", str(run_dir / "last.ckpt"), "--no_save_images") == 2
    err = _one_line_error(capsys)
    assert "--output_path" in err and str(out) in err
    assert existing.read_text() == "the user's notes"


# ----------------------------------------------------------------------------- the demo (cases 2, 11)
def _photos(folder: Path, *names: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for name in names:
        Image.fromarray(rng.integers(0, 256, (20, 24, 3), dtype=np.uint8)).save(folder / name)
    return folder


def _demo(run_dir: Path, *argv: str) -> int:
    return demo.main(["--ckpt", str(run_dir / "last.ckpt"), "--degradation", "haze", "--device", "cpu", *argv])


def test_demo_never_writes_over_its_inputs(run_dir, tmp_path, capsys):
    photos = _photos(tmp_path / "photos", "a.png", "b.jpg")
    before = {p.name: p.read_bytes() for p in photos.iterdir()}
    assert _demo(run_dir, "--input", str(photos), "--output_dir", str(photos)) == 2
    assert "folder of the input images" in _one_line_error(capsys)
    assert _demo(run_dir, "--input", str(photos / "b.jpg"), "--output_dir", str(photos)) == 2  # would make b.png
    assert {p.name: p.read_bytes() for p in photos.iterdir()} == before


def test_demo_refuses_two_inputs_with_one_output(run_dir, tmp_path, capsys):
    photos = _photos(tmp_path / "photos", "photo.jpg", "photo.png")
    out = tmp_path / "restored"
    assert _demo(run_dir, "--input", str(photos), "--output_dir", str(out)) == 2
    err = _one_line_error(capsys)
    assert "photo.jpg" in err and "photo.png" in err
    assert not out.exists()


def test_demo_skip_errors_goes_on_past_a_bad_image(run_dir, tmp_path, capsys):
    photos = _photos(tmp_path / "photos", "a.png", "c.png")
    (photos / "b.png").write_bytes(b"not an image")
    out = tmp_path / "restored"
    assert _demo(run_dir, "--input", str(photos), "--output_dir", str(out)) == 2
    assert "b.png" in _one_line_error(capsys) and not out.exists()
    assert _demo(run_dir, "--input", str(photos), "--output_dir", str(out), "--skip_errors") == 0
    assert sorted(p.name for p in out.iterdir()) == ["a.png", "c.png"]
    assert "skipped 1 image" in capsys.readouterr().err


def test_demo_out_of_memory_suggests_tile(run_dir, tmp_path, capsys, monkeypatch):
    from net.dfpir import DFPIR

    def no_memory(self, *args):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(DFPIR, "forward", no_memory)
    photos = _photos(tmp_path / "photos", "a.png")
    assert _demo(run_dir, "--input", str(photos), "--output_dir", str(tmp_path / "out")) == 2
    err = _one_line_error(capsys)
    message = err[err.index("error:"):].strip()
    assert "\n" not in message and "a.png" in message and "--tile" in message
