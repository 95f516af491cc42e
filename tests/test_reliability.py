"""Nothing of a user's is lost (issue 25): the output rule, atomic writes, the run lock, the quick start's
folder, strict results.json. Every refusal is one line naming the path and what to do, and every file that
existed before is byte-identical after."""

from __future__ import annotations

import errno
import json
import math
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import demo
import quickstart
from data import prepare
from data.placement import copy_file
from engine import recognizer_training, report
from engine.preflight import writable_dir
from engine.report import CheckpointResults, write_results
from net import hub, prompts
from net.prompts import PromptTable, load_prompt_file, prompt_list
from net.recognizer import DegradationRecognizer, save_recognizer
from utils.image_io import write_png
from utils.outputs import OutputError, WriteError, atomic_write, check_output, check_output_dir, staged_folder
from utils.run_lock import LOCK_NAME, LockHeld, RunLock

REPO = Path(__file__).resolve().parents[1]


def snapshot(root: Path) -> dict[str, object]:
    """Every entry under ``root``: a file's bytes, a symlink's target, 'dir' for a folder."""
    entries: dict[str, object] = {}
    for path in sorted(root.rglob("*")):
        key = path.relative_to(root).as_posix()
        entries[key] = (f"-> {os.readlink(path)}" if path.is_symlink() else
                        "dir" if path.is_dir() else path.read_bytes())
    return entries


def one_line(text: str) -> str:
    """``text`` (stderr of a refusal) checked to be exactly one line; returned without the newline."""
    lines = text.strip().splitlines()
    assert len(lines) == 1, text
    return lines[0]


@pytest.fixture
def user_folder(tmp_path) -> Path:
    """A researcher's folder: notes, a training run's last.ckpt, results."""
    folder = tmp_path / "work"
    (folder / "checkpoints" / "DFPIR_3D").mkdir(parents=True)
    (folder / "checkpoints" / "DFPIR_3D" / "last.ckpt").write_bytes(b"weeks of training")
    (folder / "notes.txt").write_text("do not lose\n")
    (folder / "results.json").write_text('{"psnr": 30.0}\n')
    return folder


@pytest.fixture
def no_stages(monkeypatch):
    """The quick start's three stages replaced by a failure: a test of a refusal must never reach them."""
    def reached(*args, **kwargs):
        raise AssertionError("the quick start started working instead of refusing")
    for stage in ("make_sample_dataset", "train", "evaluate"):
        monkeypatch.setattr(quickstart, stage, reached)


def hold_lock(folder: Path) -> subprocess.Popen:
    """Another process holding the run lock of ``folder`` (until its stdin closes); returns once it holds it."""
    code = ("import sys; from utils.run_lock import RunLock; RunLock(sys.argv[1]).acquire(); "
            "print('locked', flush=True); sys.stdin.read()")
    process = subprocess.Popen([sys.executable, "-c", code, str(folder)], cwd=REPO, text=True,
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert process.stdout.readline().strip() == "locked"
    return process


# --------------------------------------------------------------------------------------------------
# The quick start's folder


def test_quickstart_refuses_a_foreign_folder(user_folder, no_stages, capsys):
    before = snapshot(user_folder)
    assert quickstart.main(["--out", str(user_folder)]) == 2
    message = one_line(capsys.readouterr().err)
    assert message == (f"error: --out {user_folder} is not empty and was not made by quickstart.py "
                       "(no QUICKSTART.txt); choose a new or empty folder, e.g. --out quickstart_run")
    assert snapshot(user_folder) == before


def test_quickstart_refuses_the_current_folder(user_folder, no_stages, capsys, monkeypatch):
    """``--out .`` in a folder holding a training run (it used to remove ./checkpoints/DFPIR_3D)."""
    monkeypatch.chdir(user_folder)
    before = snapshot(user_folder)
    assert quickstart.main(["--out", "."]) == 2
    assert one_line(capsys.readouterr().err).startswith("error: --out . is not empty and was not made by quickstart.py")
    assert snapshot(user_folder) == before


def test_quickstart_refuses_a_folder_with_a_foreign_marker_name(user_folder, no_stages, capsys):
    """A user's own QUICKSTART.txt does not make the folder the quick start's."""
    (user_folder / "QUICKSTART.txt").write_text("my own notes on the quick start\n")
    before = snapshot(user_folder)
    assert quickstart.main(["--out", str(user_folder)]) == 2
    assert "was not made by quickstart.py" in one_line(capsys.readouterr().err)
    assert snapshot(user_folder) == before


def test_quickstart_refuses_an_out_that_is_a_file(tmp_path, no_stages, capsys):
    out = tmp_path / "out"
    out.write_text("a file\n")
    before = snapshot(tmp_path)
    assert quickstart.main(["--out", str(out)]) == 2
    message = one_line(capsys.readouterr().err)
    assert message == f"error: output folder {out} exists and is not a folder; choose a folder"
    assert snapshot(tmp_path) == before


def test_quickstart_refuses_an_out_below_a_file(tmp_path, no_stages, capsys):
    file = tmp_path / "file"
    file.write_text("a file\n")
    before = snapshot(tmp_path)
    assert quickstart.main(["--out", str(file / "out")]) == 2
    message = one_line(capsys.readouterr().err)
    assert message == f"error: cannot write {file / 'out'}: {file} is a file; choose another path"
    assert snapshot(tmp_path) == before


def test_quickstart_refuses_its_own_folder_while_another_quickstart_runs(tmp_path, no_stages, capsys):
    out = tmp_path / "qs"
    out.mkdir()
    quickstart.mark_folder(out)
    holder = hold_lock(out)
    try:
        before = snapshot(out)
        assert quickstart.main(["--out", str(out)]) == 2
        message = one_line(capsys.readouterr().err)
        assert message.startswith(f"error: quick start folder --out {out} is in use by pid {holder.pid} on host ")
        assert message.endswith("; wait until it ends or stop it, or use another folder")
        assert snapshot(out) == before
    finally:
        holder.communicate("")


def fake_stages(monkeypatch) -> list[str]:
    """The quick start's three stages replaced by fast fakes that write where the real ones do; returns the
    list the fakes record their calls in (a real tiny run takes minutes on a shared CPU)."""
    calls: list[str] = []

    def sample(out_dir):
        assert not Path(out_dir).exists(), "the earlier run's data was not removed first"
        calls.append("data")
        atomic_write(Path(out_dir) / "README.txt", "DFPIR sample dataset (fake)\n")
        return {"train/derain": 1}

    def flag(argv, name):
        return Path(argv[argv.index(name) + 1])

    def train(setting, argv):
        calls.append("train")
        atomic_write(flag(argv, "--ckpt_dir") / "last.ckpt", b"new weights")
        return 0

    def evaluate(setting, argv):
        calls.append("evaluate")
        atomic_write(flag(argv, "--output_path") / "results.json", "{}\n")
        return 0

    for name, stage in (("make_sample_dataset", sample), ("train", train), ("evaluate", evaluate)):
        monkeypatch.setattr(quickstart, name, stage)
    return calls


def test_quickstart_reruns_in_its_own_folder(tmp_path, monkeypatch, capsys):
    """A rerun replaces the quick start's data/, checkpoints/ and results/ and leaves the rest alone."""
    calls = fake_stages(monkeypatch)
    out = tmp_path / "qs"
    assert quickstart.main(["--out", str(out)]) == 0  # the first run makes and marks the folder
    for name in quickstart.OWN_ENTRIES:
        (out / name / "from_the_earlier_run.txt").write_text("old\n")
    (out / "my_notes.txt").write_text("mine\n")
    (tmp_path / "outside.txt").write_text("outside\n")
    (out / "results" / "link_out").symlink_to(tmp_path / "outside.txt")
    kept = {p: p.read_bytes() for p in (out / "my_notes.txt", out / "QUICKSTART.txt", tmp_path / "outside.txt")}

    assert quickstart.main(["--out", str(out)]) == 0
    assert calls == ["data", "train", "evaluate"] * 2
    assert {p: p.read_bytes() for p in kept} == kept
    assert not list(out.glob("*/from_the_earlier_run.txt")) and not (out / "results" / "link_out").is_symlink()
    assert (out / "checkpoints" / "last.ckpt").read_bytes() == b"new weights"
    assert sorted(p.name for p in out.iterdir()) == [".dfpir.lock", "QUICKSTART.txt", "checkpoints", "data",
                                                    "my_notes.txt", "results"]


def test_quickstart_runs_in_an_empty_folder(tmp_path, monkeypatch):
    fake_stages(monkeypatch)
    assert quickstart.main(["--out", str(tmp_path)]) == 0
    assert quickstart.is_quickstart_folder(tmp_path)


# --------------------------------------------------------------------------------------------------
# The output rule (creates nothing)


def test_existing_output_is_refused_naming_the_overwrite_flag(tmp_path):
    output = tmp_path / "recognizer.pt"
    output.write_bytes(b"earlier")
    with pytest.raises(OutputError) as refused:
        check_output(output)
    assert one_line(str(refused.value)) == (f"output {output} already exists; pass --overwrite to replace it, "
                                            "or choose another path")
    assert check_output(output, overwrite=True) == output
    assert output.read_bytes() == b"earlier"


def test_output_through_a_symlink_to_an_input_is_refused_even_with_overwrite(tmp_path):
    image = tmp_path / "inputs" / "photo.png"
    image.parent.mkdir()
    image.write_bytes(b"the user's photo")
    link = tmp_path / "out" / "photo.png"
    link.parent.mkdir()
    link.symlink_to(image)
    before = snapshot(tmp_path)
    with pytest.raises(OutputError) as refused:
        check_output(link, overwrite=True, inputs=[image])
    assert one_line(str(refused.value)) == (f"output {link} is one of the inputs (it resolves to {image}); "
                                            "choose an output that is not an input")
    assert snapshot(tmp_path) == before


def test_output_that_is_an_input_is_refused(tmp_path):
    image = tmp_path / "photo.png"
    image.write_bytes(b"photo")
    with pytest.raises(OutputError, match="is one of the inputs; choose an output that is not an input"):
        check_output(image, overwrite=True, inputs=[image])


def test_output_below_a_file_is_found_before_the_work(tmp_path):
    (tmp_path / "file").write_text("x")
    before = snapshot(tmp_path)
    output = tmp_path / "file" / "missing" / "results.json"
    with pytest.raises(OutputError) as refused:
        check_output(output)
    assert one_line(str(refused.value)) == f"cannot write {output}: {tmp_path / 'file'} is a file; choose another path"
    assert snapshot(tmp_path) == before


def test_output_in_a_folder_without_write_permission_is_found_before_the_work(tmp_path, monkeypatch):
    """A read-only folder (simulated: the tests may run as root, to whom permission bits do not apply)."""
    monkeypatch.setattr(os, "access", lambda path, mode: Path(path) != tmp_path)
    output = tmp_path / "new" / "deeper" / "results.json"
    with pytest.raises(OutputError) as refused:
        check_output(output)
    assert one_line(str(refused.value)) == (f"cannot write {output}: {tmp_path} is not writable (permission "
                                            "denied); choose a folder you can write to")
    assert not (tmp_path / "new").exists()


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write into a folder without write permission")
def test_read_only_folder_is_found_before_the_work(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        with pytest.raises(OutputError, match="is not writable"):
            check_output_dir(folder / "results")
    finally:
        folder.chmod(0o755)


def test_new_output_folder_is_checked_without_being_made(tmp_path):
    assert check_output_dir(tmp_path / "a" / "b") == tmp_path / "a" / "b"
    assert check_output(tmp_path / "a" / "b" / "results.json") == tmp_path / "a" / "b" / "results.json"
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------------------------------
# Atomic writes


def no_space(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_full_disk_during_the_write_keeps_the_earlier_file(tmp_path):
    target = tmp_path / "last.ckpt"
    target.write_bytes(b"earlier checkpoint")

    def half_then_full(file):
        file.write(b"x" * 1_000_000)
        no_space()

    with pytest.raises(WriteError) as failed:
        atomic_write(target, half_then_full)
    assert one_line(str(failed.value)) == (f"cannot write {target}: no space left on device (the earlier file, if "
                                           "any, is unchanged); free some space there or choose another path")
    assert target.read_bytes() == b"earlier checkpoint"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.ckpt"]  # no .tmp left behind


def test_full_disk_at_the_sync_keeps_the_earlier_file(tmp_path, monkeypatch):
    target = tmp_path / "results.json"
    target.write_text('{"psnr": 30.0}\n')
    monkeypatch.setattr(os, "fsync", no_space)
    with pytest.raises(WriteError, match=f"^cannot write {target}: no space left on device"):
        atomic_write(target, '{"psnr": 31.0}\n')
    assert target.read_text() == '{"psnr": 30.0}\n'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.json"]


def test_failing_callback_keeps_the_earlier_file_and_raises_as_it_is(tmp_path):
    target = tmp_path / "out.png"
    target.write_bytes(b"earlier")

    def broken(file):
        file.write(b"partial")
        raise ValueError("cannot encode")

    with pytest.raises(ValueError, match="cannot encode"):
        atomic_write(target, broken)
    assert target.read_bytes() == b"earlier"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.png"]


def test_atomic_write_of_text_bytes_and_callbacks(tmp_path):
    atomic_write(tmp_path / "a.txt", "é\n")
    atomic_write(tmp_path / "new" / "b.bin", b"\x00\x01")
    atomic_write(tmp_path / "c.pt", lambda f: torch.save({"w": torch.ones(2)}, f))
    atomic_write(tmp_path / "d.png", lambda f: Image.new("RGB", (4, 4), (1, 2, 3)).save(f, format="PNG"))
    assert (tmp_path / "a.txt").read_text(encoding="utf-8") == "é\n"
    assert (tmp_path / "new" / "b.bin").read_bytes() == b"\x00\x01"
    assert torch.equal(torch.load(tmp_path / "c.pt", weights_only=True)["w"], torch.ones(2))
    assert Image.open(tmp_path / "d.png").getpixel((0, 0)) == (1, 2, 3)


def test_atomic_write_keeps_the_permissions_of_the_replaced_file(tmp_path):
    target = tmp_path / "shared.md"
    target.write_text("old")
    target.chmod(0o640)
    atomic_write(target, "new")
    assert (target.read_text(), target.stat().st_mode & 0o777) == ("new", 0o640)


# --------------------------------------------------------------------------------------------------
# The run lock


def test_lock_held_by_a_live_process_is_refused_naming_it(tmp_path):
    holder = hold_lock(tmp_path)
    try:
        with pytest.raises(LockHeld) as refused:
            RunLock(tmp_path, purpose="checkpoint folder --ckpt_dir").acquire()
        message = one_line(str(refused.value))
        assert message.startswith(f"checkpoint folder --ckpt_dir {tmp_path} is in use by pid {holder.pid} on host ")
        assert "from utils.run_lock import RunLock" in message  # its command line
        assert message.endswith("; wait until it ends or stop it, or use another folder")
    finally:
        holder.communicate("")


def test_lock_of_a_dead_process_is_taken_over_with_a_message(tmp_path, capsys):
    holder = hold_lock(tmp_path)
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    with RunLock(tmp_path):
        message = one_line(capsys.readouterr().err)
        assert message.startswith(f"note: taking over the lock of {tmp_path} left by pid {holder.pid} on host ")
        assert message.endswith(", which is no longer running")
        assert json.loads((tmp_path / LOCK_NAME).read_text())["pid"] == os.getpid()
    assert (tmp_path / LOCK_NAME).read_text() == ""  # released cleanly: the next run takes it silently
    with RunLock(tmp_path):
        assert capsys.readouterr().err == ""


def test_lock_is_exclusive_within_one_process_too(tmp_path):
    with RunLock(tmp_path), pytest.raises(LockHeld, match=f"is in use by pid {os.getpid()} "):
        RunLock(tmp_path).acquire()


# --------------------------------------------------------------------------------------------------
# results.json


def _strict(text: str):
    def refuse(token):
        raise AssertionError(f"non-standard JSON token {token}")
    return json.loads(text, parse_constant=refuse)


def test_results_json_is_strict_with_a_nan_metric(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(report, "_warned_non_finite", set())  # as in a new process
    results = {"derain": {"psnr": math.nan, "ssim": 0.9, "n": 4}, "average": {"psnr": math.inf, "ssim": 0.9, "n": 4}}
    entries = [CheckpointResults("test", "test.ckpt", "dfpir", "", results)]
    write_results(tmp_path, entries, "5D", ["derain"], "test")
    assert _strict((tmp_path / "results.json").read_text()) == {
        "derain": {"psnr": None, "ssim": 0.9, "n": 4}, "average": {"psnr": None, "ssim": 0.9, "n": 4}}
    assert one_line(capsys.readouterr().err) == ("warning: non-finite metrics written as null in results.json: "
                                                 "derain.psnr = nan, average.psnr = inf")
    write_results(tmp_path, entries, "5D", ["derain"], "test")  # rewritten after the next task: warned once
    assert capsys.readouterr().err == ""
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.json", "results.md"]


# --------------------------------------------------------------------------------------------------
# Every command with a user-named output (issue 25, second round)


@pytest.fixture
def nothing_heavy(monkeypatch):
    """Training, the CLIP load, the checkpoint read of a conversion and the demo's restoring replaced by a
    failure: a test of a refusal must never reach them."""
    def reached(*args, **kwargs):
        raise AssertionError("the command started working instead of refusing")
    for module, name in ((recognizer_training, "TrainMixture"), (recognizer_training, "eval_loaders"),
                         (prompts, "build_prompt_table"), (hub, "read_checkpoint"), (demo, "Restorer")):
        monkeypatch.setattr(module, name, reached)


def test_recognizer_output_that_is_a_training_runs_last_ckpt_is_refused(user_folder, nothing_heavy, capsys):
    last = user_folder / "checkpoints" / "DFPIR_3D" / "last.ckpt"
    before = snapshot(user_folder)
    assert recognizer_training.main(["--setting", "3D", "--output", str(last), "--val_tasks", "none"]) == 2
    assert one_line(capsys.readouterr().err) == (f"error: output {last} already exists; pass --overwrite to replace "
                                                 "it, or choose another path")
    assert snapshot(user_folder) == before


def test_recognizer_output_below_a_file_is_refused_before_training(tmp_path, nothing_heavy, capsys):
    (tmp_path / "file").write_text("x")
    before = snapshot(tmp_path)
    output = tmp_path / "file" / "recognizer.pt"
    assert recognizer_training.main(["--setting", "3D", "--output", str(output), "--val_tasks", "none"]) == 2
    assert one_line(capsys.readouterr().err) == (f"error: cannot write {output}: {tmp_path / 'file'} is a file; "
                                                 "choose another path")
    assert snapshot(tmp_path) == before


def test_full_disk_while_saving_the_recognizer_keeps_the_earlier_file(tmp_path, monkeypatch):
    output = tmp_path / "recognizer.pt"
    output.write_bytes(b"the earlier recogniser")
    monkeypatch.setattr(os, "fsync", no_space)
    with pytest.raises(WriteError) as failed:
        save_recognizer(output, DegradationRecognizer("3D"))
    assert one_line(str(failed.value)).startswith(f"cannot write {output}: no space left on device")
    assert output.read_bytes() == b"the earlier recogniser"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["recognizer.pt"]  # no .tmp left behind


def test_prompt_export_that_exists_is_refused_before_the_clip_load(user_folder, nothing_heavy, capsys):
    before = snapshot(user_folder)
    assert prompts.main(["--export", str(user_folder / "notes.txt")]) == 2
    assert one_line(capsys.readouterr().err) == (f"error: output {user_folder / 'notes.txt'} already exists; pass "
                                                 "--overwrite to replace it, or choose another path")
    assert snapshot(user_folder) == before


def test_prompt_export_with_overwrite_replaces_the_file(tmp_path, monkeypatch, capsys):
    table = PromptTable(prompt_list("detailed"), torch.randn(7, 512), "test")
    monkeypatch.setattr(prompts, "build_prompt_table", lambda *args, **kwargs: table)  # CLIP takes a minute here
    export = tmp_path / "prompts.pt"
    export.write_bytes(b"earlier")
    assert prompts.main(["--export", str(export), "--overwrite"]) == 0
    assert load_prompt_file(export, prompt_list("detailed")).shape == (7, 512)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["prompts.pt"]


def test_png_write_on_a_full_disk_keeps_the_earlier_file(tmp_path, monkeypatch):
    target = tmp_path / "restored.png"
    target.write_bytes(b"an earlier restoration")
    monkeypatch.setattr(os, "fsync", no_space)
    with pytest.raises(WriteError, match=f"^cannot write {target}: no space left on device"):
        write_png(target, np.zeros((4, 4, 3), np.uint8))
    assert target.read_bytes() == b"an earlier restoration"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["restored.png"]


def test_an_output_folder_check_creates_nothing(tmp_path):
    assert writable_dir(tmp_path / "a" / "b", "output_path") is None
    (tmp_path / "file").write_text("x")
    assert writable_dir(tmp_path / "file", "ckpt_dir") == (f"--ckpt_dir: output folder {tmp_path / 'file'} exists "
                                                           "and is not a folder; choose a folder")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


# The demo


def photos(folder: Path, *names: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for seed, name in enumerate(names):
        Image.fromarray(np.random.default_rng(seed).integers(0, 256, (20, 24, 3), dtype=np.uint8)).save(folder / name)
    return folder


def run_demo(model: Path, *argv: str) -> int:
    return demo.main(["--ckpt", str(model), "--degradation", "haze", "--device", "cpu", *argv])


def test_demo_refuses_an_earlier_runs_restorations_before_restoring(hub_model, tmp_path, nothing_heavy, capsys):
    inputs = photos(tmp_path / "photos", "a.png", "b.png")
    out = tmp_path / "restored"
    out.mkdir()
    (out / "b_compare.png").write_bytes(b"an earlier run's figure")
    before = snapshot(tmp_path)
    assert run_demo(hub_model, "--input", str(inputs), "--output_dir", str(out), "--compare") == 2
    assert one_line(capsys.readouterr().err) == (f"error: output {out / 'b_compare.png'} already exists; pass "
                                                 "--overwrite to replace it, or choose another path")
    assert snapshot(tmp_path) == before


def test_demo_refuses_an_output_linked_to_an_input_even_with_overwrite(hub_model, tmp_path, nothing_heavy, capsys):
    inputs = photos(tmp_path / "photos", "a.png")
    out = tmp_path / "restored"
    out.mkdir()
    (out / "a.png").symlink_to(inputs / "a.png")
    before = snapshot(tmp_path)
    assert run_demo(hub_model, "--input", str(out / "a.png"), "--output_dir", str(out), "--overwrite") == 2
    assert one_line(capsys.readouterr().err).startswith(f"error: --output_dir {out} is the folder of the input images")
    assert run_demo(hub_model, "--input", str(inputs), "--output_dir", str(out), "--overwrite") == 2
    assert one_line(capsys.readouterr().err) == (f"error: output {out / 'a.png'} is one of the inputs (it resolves to "
                                                 f"{inputs / 'a.png'}); choose an output that is not an input")
    assert snapshot(tmp_path) == before


def test_demo_with_overwrite_replaces_its_outputs_only(hub_model, tmp_path, capsys):
    inputs = photos(tmp_path / "photos", "a.png")
    out = tmp_path / "restored"
    out.mkdir()
    (out / "a.png").write_bytes(b"an earlier restoration")
    (out / "notes.txt").write_text("mine\n")
    assert run_demo(hub_model, "--input", str(inputs), "--output_dir", str(out), "--overwrite") == 0
    assert Image.open(out / "a.png").size == (24, 20)
    assert sorted(p.name for p in out.iterdir()) == ["a.png", "notes.txt"]
    assert (out / "notes.txt").read_text() == "mine\n"


# python -m net.hub


def test_hub_out_that_is_not_empty_is_refused_naming_overwrite(user_folder, nothing_heavy, capsys):
    before = snapshot(user_folder)
    assert hub.main(["--ckpt", str(user_folder / "checkpoints" / "DFPIR_3D" / "last.ckpt"),
                     "--out", str(user_folder)]) == 2
    assert one_line(capsys.readouterr().err) == (
        f"error: --out {user_folder} exists and is not an empty folder; pass --overwrite to replace the Hub files in "
        "it (its other files are kept), or choose a new folder")
    assert snapshot(user_folder) == before


def test_hub_out_below_a_file_is_refused_before_converting(tmp_path, nothing_heavy, capsys):
    (tmp_path / "file").write_text("x")
    before = snapshot(tmp_path)
    assert hub.main(["--ckpt", "model.ckpt", "--out", str(tmp_path / "file" / "hub")]) == 2
    assert one_line(capsys.readouterr().err) == (f"error: cannot write {tmp_path / 'file' / 'hub'}: "
                                                 f"{tmp_path / 'file'} is a file; choose another path")
    assert snapshot(tmp_path) == before


def test_hub_overwrite_replaces_its_files_and_keeps_the_others(hub_model, tmp_path, capsys):
    out = tmp_path / "hub"
    out.mkdir()
    (out / "model.safetensors").write_bytes(b"an earlier model")
    (out / "notes.txt").write_text("mine\n")
    assert hub.main(["--ckpt", str(hub_model), "--out", str(out), "--overwrite"]) == 0
    assert (out / "model.safetensors").read_bytes() == (hub_model / "model.safetensors").read_bytes()
    assert (out / "notes.txt").read_text() == "mine\n"
    assert sorted(p.name for p in out.iterdir()) == ["README.md", "config.json", "model.safetensors", "notes.txt",
                                                    "prompt_table.safetensors"]


def test_hub_overwrite_never_writes_over_the_checkpoint_it_converts(hub_model, capsys):
    before = snapshot(hub_model)
    assert hub.main(["--ckpt", str(hub_model), "--out", str(hub_model), "--overwrite"]) == 2
    assert one_line(capsys.readouterr().err) == (f"error: output {hub_model / 'config.json'} is one of the inputs; "
                                                 "choose an output that is not an input")
    assert snapshot(hub_model) == before


def test_hub_results_images_outside_the_results_folder_are_skipped(hub_model, tmp_path, capsys):
    results = tmp_path / "eval" / "results.md"
    results.parent.mkdir()
    (tmp_path / "x.png").write_bytes(b"the user's picture")
    (results.parent / "inside.png").write_bytes(b"a figure")
    results.write_text(f"![a](inside.png) ![b](../x.png) ![c]({tmp_path / 'x.png'})\n")
    out = tmp_path / "hub"
    assert hub.main(["--ckpt", str(hub_model), "--out", str(out), "--results", str(results)]) == 0
    warnings = capsys.readouterr().err.strip().splitlines()
    assert warnings == [f"warning: --results {results} embeds {name}, which is not inside {results.parent}; not "
                        "copied into --out" for name in ("../x.png", tmp_path / "x.png")]
    assert (out / "inside.png").read_bytes() == b"a figure"
    assert (tmp_path / "x.png").read_bytes() == b"the user's picture"
    assert not (out / "x.png").exists()


def test_space_that_is_not_empty_is_refused_naming_overwrite(tmp_path, nothing_heavy, capsys):
    space = tmp_path / "space"
    space.mkdir()
    (space / "notes.txt").write_text("mine\n")
    before = snapshot(tmp_path)
    assert hub.main(["--ckpt", "model.ckpt", "--out", str(tmp_path / "hub"), "--space", str(space)]) == 2
    assert one_line(capsys.readouterr().err) == (
        f"error: --space {space} exists and is not an empty folder; pass --overwrite to replace the Space's files in "
        "it (its other files are kept), or choose a new folder")
    assert snapshot(tmp_path) == before


# python -m data.prepare


def lol_download(folder: Path) -> Path:
    """The LOL archive's layout, one tiny pair per split."""
    for split, name in (("our485", "2.png"), ("eval15", "1.png")):
        photos(folder / split / "low", name)
        photos(folder / split / "high", name)
    return folder


def prepare_lol(tmp_path: Path, out: Path, *extra: str) -> int:
    download = lol_download(tmp_path / "downloads" / "LOLdataset")
    return prepare.main(["--out", str(out), "--lol", str(download), "--data_file_dir", "none", "--no_check", *extra])


def test_prepare_target_below_a_file_is_refused_before_anything(tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    before = snapshot(tmp_path)
    assert prepare.main(["--out", str(tmp_path / "file" / "data"), "--lol", str(tmp_path / "nowhere")]) == 2
    assert one_line(capsys.readouterr().err) == (f"error: cannot write {tmp_path / 'file' / 'data'}: "
                                                 f"{tmp_path / 'file'} is a file; choose another path")
    assert snapshot(tmp_path) == before


def test_prepare_read_only_target_is_refused_before_anything(tmp_path, monkeypatch, capsys):
    out = tmp_path / "data"
    out.mkdir()
    monkeypatch.setattr(os, "access", lambda path, mode: Path(path) != out)  # as root, simulated
    assert prepare.main(["--out", str(out), "--lol", str(tmp_path / "nowhere")]) == 2
    assert one_line(capsys.readouterr().err) == (f"error: cannot write {out}: {out} is not writable (permission "
                                                 "denied); choose a folder you can write to")
    assert list(out.iterdir()) == []


def test_second_prepare_on_one_target_is_refused_naming_the_first(tmp_path, capsys):
    out = tmp_path / "data"
    out.mkdir()
    holder = hold_lock(out)
    try:
        before = snapshot(out)
        assert prepare_lol(tmp_path, out) == 2
        message = one_line(capsys.readouterr().err)
        assert message.startswith(f"error: dataset folder --out {out} is in use by pid {holder.pid} on host ")
        assert snapshot(out) == before
    finally:
        holder.communicate("")


def test_prepare_takes_over_the_lock_of_a_killed_run(tmp_path, capsys):
    out = tmp_path / "data"
    holder = hold_lock(out)
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    assert prepare_lol(tmp_path, out) == 0
    assert one_line(capsys.readouterr().err).startswith(f"note: taking over the lock of {out} left by pid {holder.pid}")
    assert (out / "test" / "lowlight" / "low" / "1.png").is_symlink()


def test_prepare_copy_on_a_full_disk_leaves_no_partial_file(tmp_path, monkeypatch):
    source = photos(tmp_path / "download", "a.png") / "a.png"
    target = tmp_path / "data" / "a.png"
    monkeypatch.setattr(os, "fsync", no_space)
    with pytest.raises(WriteError, match=f"^cannot write {target}: no space left on device"):
        copy_file(source, target)
    assert list(target.parent.iterdir()) == []


def test_hub_conversion_on_a_full_disk_leaves_the_folder_as_it_was(hub_model, tmp_path, monkeypatch, capsys):
    out = tmp_path / "hub"
    out.mkdir()
    (out / "model.safetensors").write_bytes(b"an earlier model")
    before = snapshot(out)
    monkeypatch.setattr(os, "fsync", no_space)
    assert hub.main(["--ckpt", str(hub_model), "--out", str(out), "--overwrite"]) == 2
    assert one_line(capsys.readouterr().err).startswith(f"error: cannot write {out}/.staged.")
    assert snapshot(out) == before  # no staging folder or .tmp left behind


def test_staged_files_are_not_moved_when_one_destination_is_a_folder(tmp_path):
    (tmp_path / "README.md").mkdir()
    (tmp_path / "notes.txt").write_text("mine\n")
    before = snapshot(tmp_path)
    with pytest.raises(WriteError) as failed, staged_folder(tmp_path) as staging:
        (staging / "config.json").write_text("{}\n")
        (staging / "README.md").write_text("card\n")
    assert one_line(str(failed.value)) == (f"cannot write into {tmp_path}: {tmp_path / 'README.md'} is a folder; "
                                           "remove it or choose another folder")
    assert snapshot(tmp_path) == before
