"""Reliability round 3 (issue 30): no wrong result accepted, every refusal before work, the web app as sturdy
as the CLI. One test per family of docs/reliability.md's "Round 3" table: the exit status, the one line, and
that every file that existed before is unchanged (nothing written before the refusal)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import demo
import quickstart
from data import prepare
from data.check import check_data
from data.layouts import DataError, DatasetPaths
from engine.evaluate import main as evaluate_main
from engine.memory import BYTES_PER_PIXEL, bytes_per_pixel
from engine.train import main as train_main
from net import hub
from net.prompts import PromptTable, prompt_list
from net.recognizer import DegradationRecognizer, save_recognizer
from net.registry import NetworkSpec, create_model
from tests.downloads import ARCHIVE_FOLDERS, DOWNLOADS, NAME_LISTS, make_tree
from utils.image_io import ImageReadError, image_size, read_rgb

REPO = Path(__file__).resolve().parents[1]


def snapshot(*folders: Path) -> dict[str, object]:
    """Every entry under ``folders``: a file's bytes, a symlink's target, 'dir' for a folder."""
    entries: dict[str, object] = {}
    for folder in folders:
        for path in sorted(folder.rglob("*")):
            entries[str(path)] = (f"-> {os.readlink(path)}" if path.is_symlink() else
                                  "dir" if path.is_dir() else path.read_bytes())
    return entries


def one_line(text: str) -> str:
    """``text`` (stderr of a refusal) checked to be exactly one line, without a traceback."""
    lines = text.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in text, text
    return lines[0]


# --------------------------------------------------------------------------------------------------
# Case 1: a test set that is (or overlaps) the training set


@pytest.fixture
def downloads(tmp_path: Path) -> Path:
    base = tmp_path / "downloads"
    make_tree(base, DOWNLOADS)
    (tmp_path / "lists").mkdir()
    for name, lines in NAME_LISTS.items():
        (tmp_path / "lists" / name).write_text("\n".join(lines))
    return base


@pytest.mark.parametrize("how", ["same folder", "through a link"])
def test_prepare_refuses_a_test_set_that_is_the_training_set(downloads, tmp_path, capsys, how):
    train = downloads / ARCHIVE_FOLDERS["rain100l_train"]
    test = train
    if how == "through a link":
        test = tmp_path / "Rain100L_link"
        test.symlink_to(train, target_is_directory=True)
    before = snapshot(tmp_path)
    out = tmp_path / "out"
    status = prepare.main(["--out", str(out), "--rain100l_train", str(train), "--rain100l_test", str(test),
                           "--data_file_dir", str(tmp_path / "lists"), "--num_workers", "1"])
    assert status == 2
    message = one_line(capsys.readouterr().err)
    assert message.startswith(f"error: the derain test set of --rain100l_test {test} shares ")
    assert f"with the training set of --rain100l_train {train}" in message and "nothing was placed" in message
    assert snapshot(tmp_path) == before and not out.exists()


def _layout(root: Path, test_derain: str) -> None:
    """A derain layout whose test set is given by ``test_derain``: 'own' images, 'link' to the training folder,
    or 'some links' (one test pair linked to training files, one of its own)."""
    def save(path: Path, seed: int) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.random.default_rng(seed).integers(0, 256, (24, 24, 3), np.uint8)).save(path)
    for i in (1, 2):
        save(root / f"Train/Derain/rainy/rain-{i}.png", i)
        save(root / f"Train/Derain/gt/norain-{i}.png", 10 + i)
    test = root / "test/derain/Rain100L"
    if test_derain == "link":
        test.mkdir(parents=True)
        (test / "input").symlink_to(root / "Train/Derain/rainy", target_is_directory=True)
        (test / "target").symlink_to(root / "Train/Derain/gt", target_is_directory=True)
        return
    save(test / "input/rain-3.png", 3)
    save(test / "target/norain-3.png", 13)
    if test_derain == "some links":
        (test / "input/rain-1.png").symlink_to(root / "Train/Derain/rainy/rain-1.png")
        (test / "target/norain-1.png").hardlink_to(root / "Train/Derain/gt/norain-1.png")


@pytest.mark.parametrize("test_derain", ["link", "some links"])
def test_check_data_refuses_a_test_set_sharing_training_files(tmp_path, test_derain):
    _layout(tmp_path, test_derain)
    with pytest.raises(DataError) as refused:
        check_data(["derain"], "3D", ["derain"], DatasetPaths.from_root(tmp_path, data_file_dir=None), 16, 1)
    problems = [p for p in refused.value.problems if "shares" in p]
    assert len(problems) == 1 and problems[0].startswith("the derain test set shares ")
    assert "scores measured on it would be meaningless" in problems[0]


def test_check_data_accepts_a_test_set_of_its_own(tmp_path):
    _layout(tmp_path, "own")
    report = check_data(["derain"], "3D", ["derain"], DatasetPaths.from_root(tmp_path, data_file_dir=None), 16, 1)
    assert "test=derain pairs=1" in report.lines


# --------------------------------------------------------------------------------------------------
# Case 2: a checkpoint evaluated on tasks it was never trained on


def _evaluate(data_root: Path, ckpt: Path, out: Path, setting: str, *extra: str) -> int:
    return evaluate_main(setting, ["--data_root", str(data_root), "--ckpt", str(ckpt), "--output_path", str(out),
                                   "--device", "cpu", "--num_workers", "0", "--no_save_images", *extra])


@pytest.mark.parametrize("setting, tasks", [("5D", ["deblur"]), ("3D", ["derain", "dehaze"])])
def test_untrained_tasks_are_refused(trained_run, data_root, tmp_path, capsys, setting, tasks):
    """The trained_run fixture trained 3D dehaze only: test_5D_DFPIR.py, or --tasks beyond dehaze, refuse."""
    ckpt = trained_run / "last.ckpt"
    before = snapshot(trained_run, tmp_path)
    assert _evaluate(data_root, ckpt, tmp_path / "out", setting, "--tasks", *tasks) == 2
    message = one_line(capsys.readouterr().err)
    untrained = " ".join(t for t in tasks if t != "dehaze")
    assert message == (f"error: --ckpt {ckpt} was trained on dehaze only, not on {untrained}; choose --tasks among "
                       "those it was trained on, or pass --allow_untrained_tasks to score them anyway (their rows "
                       "are marked 'not trained on this task')")
    assert snapshot(trained_run, tmp_path) == before and not (tmp_path / "out").exists()


def test_allow_untrained_tasks_marks_their_rows(trained_run, data_root, tmp_path, capsys):
    out = tmp_path / "out"
    assert _evaluate(data_root, trained_run / "last.ckpt", out, "3D", "--tasks", "dehaze", "derain",
                     "--allow_untrained_tasks") == 0
    results = json.loads((out / "results.json").read_text())
    assert "note" not in results["dehaze"] and results["derain"]["note"] == "not trained on this task"
    assert results["average"]["note"] == "includes tasks it was not trained on"
    rows = (out / "results.md").read_text()
    this_run = next(line for line in rows.splitlines() if line.startswith("| this run"))
    assert this_run.count("(not trained on this task)") == 1 and "(includes tasks it was not trained on)" in this_run


# --------------------------------------------------------------------------------------------------
# Case 10: a truncated checkpoint is named as an incomplete download


@pytest.mark.parametrize("zip_format", [True, False])
def test_a_truncated_checkpoint_is_named_as_an_incomplete_download(trained_run, data_root, tmp_path, capsys,
                                                                   zip_format):
    whole = trained_run / "last.ckpt"
    if not zip_format:  # the legacy format: a pickle followed by the tensors' bytes
        whole = tmp_path / "legacy.ckpt"
        torch.save(torch.load(trained_run / "last.ckpt", weights_only=True), whole,
                   _use_new_zipfile_serialization=False)
    cut = tmp_path / "t.ckpt"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size * 2 // 3])
    before = snapshot(tmp_path)
    assert _evaluate(data_root, cut, tmp_path / "out", "3D", "--tasks", "dehaze") == 2
    message = one_line(capsys.readouterr().err)
    assert f"checkpoint {cut} (" in message and "is truncated (an incomplete download or copy)" in message
    assert snapshot(tmp_path) == before


# --------------------------------------------------------------------------------------------------
# Case 3: two output folders of one command that overlap, refused before any write


@pytest.mark.parametrize("out, space, relation", [("X", "X/space", "--space {space} is inside --out {out}"),
                                                   ("X", "X", "--out {out} is the same folder as --space {space}"),
                                                   ("S/model", "S", "--out {out} is inside --space {space}"),
                                                   ("X", "link_to_X", "--out {out} is the same folder as --space")])
def test_hub_refuses_overlapping_out_and_space(trained_run, tmp_path, capsys, out, space, relation):
    (tmp_path / "X").mkdir()
    (tmp_path / "link_to_X").symlink_to(tmp_path / "X", target_is_directory=True)
    before = snapshot(tmp_path)
    assert hub.main(["--ckpt", str(trained_run / "last.ckpt"), "--out", str(tmp_path / out),
                     "--space", str(tmp_path / space)]) == 2
    message = one_line(capsys.readouterr().err)
    assert message.startswith("error: " + relation.format(out=tmp_path / out, space=tmp_path / space))
    assert message.endswith("choose two separate folders")
    assert snapshot(tmp_path) == before


def test_evaluation_refuses_restored_images_written_into_a_test_set(trained_run, data_root, tmp_path, capsys):
    out = data_root / "test"  # restored dehaze images would go to <out>/dehaze: the dehaze test set itself
    before = snapshot(data_root)
    assert evaluate_main("3D", ["--data_root", str(data_root), "--ckpt", str(trained_run / "last.ckpt"),
                                "--output_path", str(out), "--device", "cpu", "--num_workers", "0",
                                "--tasks", "dehaze"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err  # (it also holds files: the earlier-outputs refusal is listed too)
    assert f"--output_path's folder {out / 'dehaze'} is the same folder as --dehaze_path {out / 'dehaze'}" in err
    assert snapshot(data_root) == before


# --------------------------------------------------------------------------------------------------
# Case 4: every input of demo.py checked before the first restoration; the suggested rerun works; case 9


def _photo(path: Path, size: tuple[int, int] = (20, 24)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (*size, 3), dtype=np.uint8)).save(path)
    return path


def _demo(model: Path, *argv: str) -> int:
    return demo.main(["--ckpt", str(model), "--degradation", "haze", "--device", "cpu", *argv])


def test_demo_checks_every_input_before_the_first_restoration(hub_model, tmp_path, capsys):
    photos = tmp_path / "photos"
    _photo(photos / "a.png")
    truncated = _photo(photos / "b.png", (64, 64))
    truncated.write_bytes(truncated.read_bytes()[: truncated.stat().st_size // 2])  # its header still reads
    out = tmp_path / "restored"
    before = snapshot(tmp_path)
    assert _demo(hub_model, "--input", str(photos), "--output_dir", str(out)) == 2
    message = one_line(capsys.readouterr().err)
    assert message.startswith(f"error: cannot read image {truncated}: ") and "--skip_errors" in message
    assert snapshot(tmp_path) == before and not out.exists()
    # the rerun it suggests works: nothing was written, so no output is in the way
    assert _demo(hub_model, "--input", str(photos), "--output_dir", str(out), "--skip_errors") == 0
    assert sorted(p.name for p in out.iterdir()) == ["a.png"]


def test_a_1x1_image_restores_without_a_warning(hub_model, tmp_path, capsys):
    one = _photo(tmp_path / "one.png", (1, 1))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert _demo(hub_model, "--input", str(one), "--output_dir", str(tmp_path / "out")) == 0
    assert Image.open(tmp_path / "out" / "one.png").size == (1, 1)
    assert "Warning" not in capsys.readouterr().err


# --------------------------------------------------------------------------------------------------
# Case 14: messages that name the real problem


def test_python_m_net_prompts_prints_no_runpy_warning():
    """The command lives in net/prompts/__main__.py, so running it does not execute net.prompts a second time."""
    done = subprocess.run([sys.executable, "-W", "error::RuntimeWarning", "-m", "net.prompts", "--help"],
                          cwd=Path(__file__).resolve().parents[1], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "--export" in done.stdout
    assert "RuntimeWarning" not in done.stderr and "found in sys.modules" not in done.stderr


def test_a_float_tiff_is_not_called_a_damaged_download(tmp_path):
    path = tmp_path / "depth.tif"
    Image.fromarray(np.zeros((4, 4), np.float32)).save(path)
    with pytest.raises(ImageReadError) as refused:
        read_rgb(path)
    assert "floating-point samples" in str(refused.value) and "re-download" not in str(refused.value)
    assert "Save it as an 8- or 16-bit PNG or TIFF" in str(refused.value)


def test_a_decompression_bomb_is_named_by_its_size_not_by_pil(tmp_path, monkeypatch):
    path = _photo(tmp_path / "huge.png", (8, 8))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 16)  # 64 pixels > 2 x 16: PIL refuses it as a bomb
    for read in (image_size, read_rgb):
        with pytest.raises(ImageReadError) as refused:
            read(path)
        text = str(refused.value)
        assert "larger than the 32 pixels this program decodes" in text and "Scale it down" in text
        assert "DOS attack" not in text and "re-download" not in text


# --------------------------------------------------------------------------------------------------
# Case 5: every quick start flag checked before anything is written


@pytest.mark.parametrize("flags, message", [(["--steps", "0"], "error: --steps 0: must be 1 or more"),
                                            (["--steps", "-3"], "error: --steps -3: must be 1 or more")])
def test_quickstart_checks_its_flags_before_writing(tmp_path, monkeypatch, capsys, flags, message):
    def reached(*args, **kwargs):
        raise AssertionError("the quick start started working instead of refusing")
    for stage in ("make_sample_dataset", "train", "evaluate", "mark_folder"):
        monkeypatch.setattr(quickstart, stage, reached)
    assert quickstart.main(["--out", str(tmp_path / "qs"), *flags]) == 2
    assert one_line(capsys.readouterr().err).startswith(message)
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------------------------------
# Case 6: app.py checks its address before loading the model


@pytest.fixture
def busy_port():
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        yield held.getsockname()[1]


@pytest.mark.parametrize("flags, message", [
    (["--port", "99999"], "error: --port 99999: not a TCP port; choose one from 1 to 65535"),
    (["--port", "0"], "error: --port 0: not a TCP port"),
    (["--host", "foo.invalid"], "error: --host foo.invalid: cannot be resolved to an address of this machine"),
    (["--host", "192.0.2.1"], "error: --host 192.0.2.1: not an address of this machine"),
    (["--port", "BUSY"], "error: --port BUSY: already in use on 127.0.0.1"),
])
def test_app_checks_host_and_port_before_loading_the_model(tmp_path, monkeypatch, capsys, busy_port, flags, message):
    app = pytest.importorskip("app")

    def reached(*args, **kwargs):
        raise AssertionError("the app loaded the model before checking its address")
    monkeypatch.setattr(app, "open_restorer", reached)
    flags = [str(busy_port) if flag == "BUSY" else flag for flag in flags]
    before = snapshot(tmp_path)
    assert app.main(["--ckpt", str(tmp_path / "model"), *flags]) == 2
    assert one_line(capsys.readouterr().err).startswith(message.replace("BUSY", str(busy_port)))
    assert snapshot(tmp_path) == before


# --------------------------------------------------------------------------------------------------
# Cases 8 and 15: one signal policy (utils/signals.py): 130/143/129, one line, temporary files removed


def _wait_for(process: subprocess.Popen, text: str, timeout: float = 240) -> list[str]:
    """Lines of ``process``'s stdout (stderr merged) up to the first one holding ``text``."""
    lines, deadline = [], time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line and process.poll() is not None:
            break
        lines.append(line)
        if text in line:
            return lines
    process.kill()
    pytest.fail(f"no {text!r} in:\n" + "".join(lines))


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_a_signal_while_a_training_starts_ends_it_with_one_line(data_root, tmp_path, tiny_train_args, signum):
    """Sent while the script still imports torch and Lightning (the first second), or during the data check."""
    process = subprocess.Popen(
        [sys.executable, "train_3D_DFPIR.py", "--data_root", str(data_root), "--ckpt_dir", str(tmp_path / "run"),
         *tiny_train_args, "--de_type", "dehaze", "--val_every", "0", "--max_steps", "1000"],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(1.0)
    process.send_signal(signum)
    try:
        _, err = process.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        process.kill()
        _, err = process.communicate()
        pytest.fail("not stopped:\n" + err[-3000:])
    assert process.returncode == 128 + signum, err
    assert "Traceback" not in err and err.strip().splitlines()[-1].startswith("stopped by "), err


@pytest.fixture
def policy_handlers():
    """The signal policy's handlers installed in this process for one test, the previous ones back after."""
    from utils import signals

    previous = {signum: signal.getsignal(signum) for signum in signals.NAMES}
    yield signals
    for signum, handler in previous.items():
        signal.signal(signum, handler)
    signals._received.clear()


def test_an_error_that_follows_a_signal_in_the_imports_ends_as_the_signal(policy_handlers, capsys):
    """The flake the test above once hit: Ctrl-C inside numpy's lazy import of a submodule, swallowed there,
    left numpy half loaded and the next import failed with RecursionError (exit 1, a traceback). An exception
    after a received signal is the signal's end; one without a signal is still raised as it is."""
    signals = policy_handlers

    def interrupted_import():
        try:
            signals._raise_stopped(signal.SIGINT, None)  # the handler, as the signal would call it
        except KeyboardInterrupt:
            pass  # swallowed by the library being imported
        raise RecursionError("maximum recursion depth exceeded")

    with pytest.raises(SystemExit) as exited, signals.exit_on_signals():
        interrupted_import()
    assert exited.value.code == 130
    assert capsys.readouterr().err.strip() == "stopped by Ctrl-C (SIGINT)"
    signals._received.clear()
    assert signals.run_stoppable(interrupted_import) == 130  # the same inside a command

    def failing_command() -> int:
        raise RecursionError("its own")

    with pytest.raises(RecursionError), signals.exit_on_signals():  # no signal: the error is the command's own
        failing_command()
    with pytest.raises(RecursionError):
        signals.run_stoppable(failing_command)


def test_the_app_ended_by_sighup_removes_its_temporary_folder(tmp_path):
    pytest.importorskip("gradio")
    torch.manual_seed(0)
    net = create_model("tiny")
    net.prompt_table, net.prompt_set = PromptTable(prompt_list("detailed"), torch.randn(7, 512), "t"), "detailed"
    net.save_pretrained(tmp_path / "hub")
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    process = subprocess.Popen([sys.executable, str(REPO / "app.py"), "--ckpt", str(tmp_path / "hub"), "--port",
                                str(port), "--device", "cpu"], cwd=tmp_path, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    lines = _wait_for(process, "Running on")
    work_dir = Path(next(line for line in lines if line.startswith("temporary folder:")).split(": ", 1)[1].strip())
    assert work_dir.is_dir()
    process.send_signal(signal.SIGHUP)
    out, _ = process.communicate(timeout=60)
    assert process.returncode == 128 + signal.SIGHUP, out
    assert "Traceback" not in out
    assert f"stopped by SIGHUP (the terminal closed); its temporary folder {work_dir} was removed" in out
    assert not work_dir.exists()


# --------------------------------------------------------------------------------------------------
# Case 11: a precision that cannot run as asked is refused (what a checkpoint records is what ran)


@pytest.mark.skipif(torch.cuda.is_available(), reason="float16 mixed precision runs on this machine's GPU")
@pytest.mark.parametrize("device", ["cpu", "auto"])
def test_float16_mixed_precision_without_a_gpu_is_refused(data_root, tmp_path, capsys, tiny_train_args, device):
    run = tmp_path / "run"
    assert train_main("3D", ["--data_root", str(data_root), "--ckpt_dir", str(run), *tiny_train_args,
                             "--de_type", "dehaze", "--val_every", "0", "--max_steps", "1", "--precision", "16-mixed",
                             "--device", device]) == 2
    message = one_line(capsys.readouterr().err)
    assert message.startswith("error: --precision 16-mixed: float16 mixed precision runs on a CUDA GPU only")
    assert "use --precision bf16-mixed or 32" in message and not run.exists()


# --------------------------------------------------------------------------------------------------
# Cases 7 and 13: options a network does not use are noted, never refused


@pytest.fixture(scope="module")
def two_networks(tmp_path_factory) -> dict[str, Path]:
    """A tiny DFPIR and a tiny PromptIR in this project's Lightning format, and a 3D recogniser."""
    from tests.helpers import lightning_file
    folder = tmp_path_factory.mktemp("two_networks")
    save_recognizer(folder / "recognizer_3D.pt", DegradationRecognizer("3D").eval())
    return {"dfpir": lightning_file(folder / "dfpir.ckpt", "tiny", 0),
            "promptir": lightning_file(folder / "promptir.ckpt", "promptir_tiny", 1),
            "recognizer": folder / "recognizer_3D.pt"}


def test_a_prompt_file_for_promptir_is_noted_not_refused(two_networks, data_root, tmp_path, capsys):
    text = tmp_path / "prompts.txt"
    text.write_text("not a prompt table\n")
    assert _evaluate(data_root, two_networks["promptir"], tmp_path / "out", "3D", "--tasks", "dehaze",
                     "--prompt_embeddings", str(text)) == 0
    err = capsys.readouterr().err
    assert f"note: the network takes no text prompts; --prompt_embeddings {text} is not used" in err
    assert "KeyError" not in err and "error:" not in err


def test_a_text_file_as_a_prompt_file_is_named_as_such(two_networks, data_root, tmp_path, capsys):
    """Where it is used (a DFPIR file without its own table), a text file is named, not a KeyError."""
    text = tmp_path / "prompts.txt"
    text.write_text("not a prompt table\n")
    bare = tmp_path / "tiny.pt"
    torch.save(create_model("tiny").state_dict(), bare)
    assert _evaluate(data_root, bare, tmp_path / "out", "3D", "--tasks", "dehaze", "--prompt_embeddings", str(text),
                     "--model", "tiny") == 2
    err = capsys.readouterr().err
    assert f"prompt-table file {text} is a text file (it starts with b'not a prompt table" in err
    assert "KeyError" not in err


def test_blind_dfpir_beside_promptir_in_one_run(two_networks, data_root, tmp_path, capsys):
    out = tmp_path / "out"
    assert evaluate_main("3D", ["--data_root", str(data_root), "--output_path", str(out), "--device", "cpu",
                                "--num_workers", "0", "--no_save_images", "--tasks", "dehaze",
                                "--ckpt", str(two_networks["dfpir"]), "--ckpt", str(two_networks["promptir"]),
                                "--label", "dfpir", "--label", "promptir", "--blind",
                                "--recognizer", str(two_networks["recognizer"])]) == 0
    err = capsys.readouterr().err
    assert err.count("note: promptir_tiny (promptir) takes no text prompts (it is blind by construction): --blind "
                     "and --recognizer do not apply to it") == 1 and "error:" not in err
    results = json.loads((out / "results.json").read_text())["checkpoints"]
    assert "known" in results["dfpir"]["results"]["dehaze"]  # blind, beside its known-degradation score
    assert "known" not in results["promptir"]["results"]["dehaze"]  # blind by construction


# --------------------------------------------------------------------------------------------------
# Case 12, case 14 (the app's messages) and the memory risk: the page shaped by the network


@pytest.fixture(scope="module")
def app_module():
    return pytest.importorskip("app")


def _restorer(model: str, tmp_path: Path):
    from argparse import Namespace

    from engine.inference import open_restorer
    bare = tmp_path / f"{model}.pt"
    torch.save(create_model(model).state_dict(), bare)
    return open_restorer(Namespace(ckpt=str(bare), model=model, recognizer=None, device="cpu", prompt_set="detailed",
                                   prompt_embeddings=None, prompt_backend="offline"))


def test_the_page_offers_no_degradation_choice_for_a_blind_network(app_module, tmp_path):
    blind = app_module.degradation_note(_restorer("promptir_tiny", tmp_path))
    assert "is blind (it takes no text prompts)" in blind and "--recognizer" not in blind
    assert "--recognizer FILE" in app_module.degradation_note(_restorer("tiny", tmp_path))


def test_the_app_names_its_own_tiling_control_and_an_oversized_image(app_module, tmp_path, monkeypatch):
    handler = app_module.App(_restorer("tiny", tmp_path), tmp_path / "results")
    assert app_module.problem(torch.OutOfMemoryError("CUDA out of memory"), None) == (
        "out of memory; set Tiling to auto or on (a smaller Tile size takes less memory)")
    bomb = _photo(tmp_path / "bomb.png", (64, 64))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # 4096 pixels > 2 x 1000: PIL's bomb guard
    *_, status = handler.restore(str(bomb), "rain", "auto", 512, 32)
    assert "bomb.png is too large to decode safely" in status and "DOS" not in status and "--tile" not in status


def test_tiling_off_is_limited_by_the_measured_memory_per_pixel(app_module, tmp_path, monkeypatch):
    restorer = _restorer("tiny", tmp_path)
    assert bytes_per_pixel(restorer.network) == BYTES_PER_PIXEL["tiny"]
    assert bytes_per_pixel(NetworkSpec("dfpir", {**restorer.network.config, "dim": 12}, "custom")) == max(
        BYTES_PER_PIXEL.values())
    monkeypatch.setattr(app_module, "available_memory", lambda device: 1000 * BYTES_PER_PIXEL["tiny"])
    handler = app_module.App(restorer, tmp_path / "results")
    assert handler.untiled_limit == 1000
    image = _photo(tmp_path / "photo.png", (32, 40))  # 1280 pixels > 1000
    pair, _, png, status = handler.restore(str(image), "rain", "off", 512, 32)
    assert pair is None and png is None and "restored whole (Tiling off) it would need more memory" in status
    assert "set Tiling to auto or on" in status
    pair, *_ = handler.restore(str(image), "rain", "on", 16, 4)  # tiled, it restores
    assert pair is not None
