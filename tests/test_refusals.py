"""Every refusal is exit 2 with one clear line, before the heavy work, and loses nothing (issue 25).

One test per case (docs/reliability.md, "Refusals"): each asserts the exit status, the message, and that
every file that existed before is byte-identical after. The scripts run in-process on the stand-in
data with the tiny network; the lock tests use a subprocess as the other training.
"""

from __future__ import annotations

import collections
import errno
import json
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import lightning as L
import pytest
import torch

import demo
from engine.evaluate import main as evaluate_main
from engine.recognizer_training import main as recognizer_main
from engine.train import main as train_main
from net.checkpoint import read_checkpoint
from net.checkpoint.hub_folder import write_hub_files
from utils.run_lock import LOCK_NAME

ROOT = Path(__file__).resolve().parents[1]
RUN = ("--de_type", "dehaze", "--val_every", "0")  # the flags of the trained_run fixture, with tiny_train_args
TORCH_ADVICE = ("weights_only=False", "False", "trust the source", "add_safe_globals", "Check the documentation")


def snapshot(*folders: Path) -> dict[Path, bytes]:
    """Every file under ``folders`` and its bytes."""
    return {path: path.read_bytes() for folder in folders for path in sorted(folder.rglob("*")) if path.is_file()}


def assert_unchanged(before: dict[Path, bytes]) -> None:
    """Every file of ``before`` still exists with the same bytes (new files may have appeared)."""
    changed = [str(path) for path, data in before.items() if not path.is_file() or path.read_bytes() != data]
    assert not changed, changed


def refusal(capsys, *expected: str, lines: int = 1) -> str:
    """The error of a refused run: no traceback, at most ``lines`` lines, each of ``expected`` in it."""
    err = capsys.readouterr().err
    message = [line for line in err.splitlines() if line.startswith("error: ")]
    assert "Traceback" not in err and message, err
    text = err[err.index(message[0]):].strip()
    assert len(text.splitlines()) <= lines, text
    for part in expected:
        assert part in text, text
    return text


@pytest.fixture
def run_dir(trained_run, tmp_path) -> Path:
    """A copy of a 2-step run: its last.ckpt is the user's work that must survive."""
    return Path(shutil.copytree(trained_run, tmp_path / "run"))


@pytest.fixture
def train(tiny_train_args):
    """train(data_root, ckpt_dir, *flags, setting="3D") -> exit status of a tiny training run."""

    def run(data_root: Path, ckpt_dir: Path, *extra: str, setting: str = "3D") -> int:
        return train_main(setting, ["--data_root", str(data_root), "--ckpt_dir", str(ckpt_dir), *tiny_train_args,
                                    *RUN, *extra])

    return run


def evaluate(data_root: Path, ckpt: Path, out: Path) -> int:
    return evaluate_main("3D", ["--data_root", str(data_root), "--ckpt", str(ckpt), "--output_path", str(out),
                                "--device", "cpu", "--num_workers", "0", "--tasks", "dehaze"])


# ----------------------------------------------------------------------------- one training per --ckpt_dir
def test_a_second_training_on_a_locked_ckpt_dir_exits_2_naming_the_running_process(train, data_root, run_dir,
                                                                                    capsys):
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys; from utils.run_lock import RunLock; RunLock(sys.argv[1]).acquire(); "
                               "print('locked', flush=True); sys.stdin.read()", str(run_dir)],
        cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        before = snapshot(run_dir)
        assert train(data_root, run_dir, "--resume", "auto", "--max_steps", "3") == 2
        refusal(capsys, f"checkpoint folder --ckpt_dir {run_dir} is in use by pid {holder.pid}")
        assert_unchanged(before)
        assert snapshot(run_dir) == before  # nothing new either: refused before the data check
    finally:
        holder.kill()
        holder.wait()


def test_a_lock_left_by_a_killed_training_is_taken_over_with_a_message(train, data_root, run_dir, capsys):
    dead = {"pid": 2**22 + 7, "host": "gpu1", "started": "2026-01-01T00:00:00Z", "command": "python train_3D_DFPIR.py"}
    (run_dir / LOCK_NAME).write_text(json.dumps(dead) + "\n")  # a record, but no process holds the flock
    assert train(data_root, run_dir, "--resume", "auto", "--max_steps", "3") == 0
    err = capsys.readouterr().err
    assert f"taking over the lock of {run_dir} left by pid {dead['pid']}" in err
    assert torch.load(run_dir / "last.ckpt", weights_only=True)["global_step"] == 3
    assert (run_dir / LOCK_NAME).read_text() == ""  # released cleanly at the end


# ----------------------------------------------------------------------------- last.ckpt on a full disk
def test_a_full_disk_while_writing_last_ckpt_exits_2_and_keeps_the_earlier_one(train, data_root, run_dir,
                                                                               monkeypatch, capsys):
    def disk_full(self, filepath, weights_only=False, storage_options=None):
        Path(filepath).write_bytes(b"PK\x03\x04 half a checkpoint")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(filepath))

    monkeypatch.setattr(L.Trainer, "save_checkpoint", disk_full)
    before = snapshot(run_dir)
    assert train(data_root, run_dir, "--resume", "auto", "--max_steps", "4", "--ckpt_every", "1") == 2
    refusal(capsys, f"cannot write {run_dir / 'last.ckpt'} at step 3", os.strerror(errno.ENOSPC),
            "still holds step 2: continue with --resume auto")
    assert_unchanged(before)
    assert not list(run_dir.glob("*.tmp"))


# ----------------------------------------------------------------------------- checkpoints
def _lightning_file(run_dir: Path, path: Path, edit) -> Path:
    obj = torch.load(run_dir / "last.ckpt", weights_only=True)
    edit(obj)
    torch.save(obj, path)
    return path


MALFORMED = {
    "model_config": (lambda o: o["dfpir"].update(model_config=[1, 2]), "'model_config' is list"),
    "architecture": (lambda o: o["dfpir"].update(architecture=7), "'architecture' is int 7, expected a string"),
    "epoch": (lambda o: o.update(epoch="two"), "'epoch' is str 'two', expected an integer"),
    "dfpir": (lambda o: o.update(dfpir=["x"]), "field 'dfpir' is list"),
    "dfpir_run": (lambda o: o.update(dfpir_run="3D"), "field 'dfpir_run' is str"),
    "de_type": (lambda o: o["dfpir_run"].update(de_type="dehaze"), "the 'dfpir_run' field 'de_type' is str"),
}


@pytest.mark.parametrize("field", list(MALFORMED))
def test_a_checkpoint_with_malformed_metadata_is_refused(data_root, run_dir, tmp_path, capsys, field):
    edit, named = MALFORMED[field]
    bad = _lightning_file(run_dir, tmp_path / "bad.ckpt", edit)
    before = snapshot(tmp_path)
    assert evaluate(data_root, bad, tmp_path / "out") == 2
    refusal(capsys, f"checkpoint {bad} has malformed metadata", named)
    assert_unchanged(before)


class _Payload(collections.OrderedDict):
    """A class of this test: its objects pickle as code, not as plain data."""


@pytest.mark.parametrize("kind", ["object", "lightning_with_object"])
def test_a_checkpoint_that_carries_code_is_refused_as_unsafe(data_root, run_dir, tmp_path, capsys, kind):
    bad = tmp_path / "model.ckpt"
    if kind == "object":
        torch.save(_Payload(weight=torch.zeros(2)), bad)
    else:
        _lightning_file(run_dir, bad, lambda o: o.update(callbacks=_Payload()))
    before = snapshot(tmp_path)
    assert evaluate(data_root, bad, tmp_path / "out") == 2
    text = refusal(capsys, f"checkpoint {bad} is UNSAFE: it carries code", "_Payload")
    assert not any(advice in text for advice in TORCH_ADVICE) and "truncated" not in text
    assert_unchanged(before)


def _poison(tensor: torch.Tensor, value: float) -> None:
    """Set one element of ``tensor`` (of any memory layout) to ``value``."""
    tensor[(0,) * tensor.dim()] = value


@pytest.mark.parametrize("reader", ["prompt_file", "recognizer"])
def test_other_files_that_carry_code_never_get_torchs_advice(tmp_path, reader):
    from net.prompts import PromptError, load_prompt_file
    from net.recognizer import RecognizerError, load_recognizer

    bad = tmp_path / "file.pt"
    torch.save(_Payload(rain=torch.zeros(512)), bad)
    with pytest.raises((PromptError, RecognizerError)) as err:
        load_prompt_file(bad, ["rain"]) if reader == "prompt_file" else load_recognizer(bad)
    text = str(err.value)
    assert "UNSAFE: it carries code" in text and not any(advice in text for advice in TORCH_ADVICE), text


@pytest.mark.parametrize("value", [math.nan, math.inf])
def test_a_checkpoint_with_non_finite_weights_is_refused(data_root, run_dir, tmp_path, capsys, value):
    key = next(k for k, v in read_checkpoint(run_dir / "last.ckpt").state_dict.items() if v.is_floating_point())
    bad = _lightning_file(run_dir, tmp_path / "nan.ckpt", lambda o: _poison(o["state_dict"][f"net.{key}"], value))
    before = snapshot(tmp_path)
    assert evaluate(data_root, bad, tmp_path / "out") == 2
    refusal(capsys, f"checkpoint {bad} holds non-finite weights (NaN or Inf) in 1 tensor(s): {key}")
    assert_unchanged(before)


def test_a_hub_folder_with_non_finite_weights_is_refused(data_root, run_dir, tmp_path, capsys):
    checkpoint = read_checkpoint(run_dir / "last.ckpt")
    weights = {k: v.clone() for k, v in checkpoint.state_dict.items()}
    key = next(k for k, v in weights.items() if v.is_floating_point())
    _poison(weights[key], math.nan)
    folder = tmp_path / "hub"
    folder.mkdir()
    write_hub_files(folder, weights, "DFPIR", checkpoint.model_config, checkpoint.prompt_table, "detailed")
    before = snapshot(tmp_path)
    assert evaluate(data_root, folder, tmp_path / "out") == 2
    refusal(capsys, f"checkpoint {folder} holds non-finite weights", key)
    assert_unchanged(before)


def test_a_hub_config_with_a_wrong_type_is_refused(data_root, run_dir, tmp_path, capsys):
    checkpoint = read_checkpoint(run_dir / "last.ckpt")
    folder = tmp_path / "hub"
    folder.mkdir()
    write_hub_files(folder, checkpoint.state_dict, "DFPIR", checkpoint.model_config, checkpoint.prompt_table, None)
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "model_config": "tiny"}))
    before = snapshot(tmp_path)
    assert evaluate(data_root, folder, tmp_path / "out") == 2
    refusal(capsys, f"checkpoint {folder} has malformed metadata: the config.json field 'model_config' is str")
    assert_unchanged(before)


# ----------------------------------------------------------------------------- weights that do not fit
def _never_decoded(monkeypatch) -> None:
    """Any image decoded from now on fails the test."""
    def decoded(*args, **kwargs):
        raise AssertionError("an image was decoded before the weights were checked")

    for module in ("utils.image_io", "data.check", "data.layouts", "demo"):
        monkeypatch.setattr(f"{module}.read_rgb", decoded)


def _unfitting_weights(run_dir: Path, path: Path) -> Path:
    weights = read_checkpoint(run_dir / "last.ckpt").state_dict
    dropped = sorted(weights)[0]
    torch.save({k: v for k, v in weights.items() if k != dropped}, path)
    return path


def test_evaluation_refuses_weights_that_do_not_fit_before_decoding_a_test_image(data_root, run_dir, tmp_path,
                                                                                 monkeypatch, capsys):
    bad = _unfitting_weights(run_dir, tmp_path / "weights.pt")
    _never_decoded(monkeypatch)
    before = snapshot(tmp_path)
    assert evaluate_main("3D", ["--data_root", str(data_root), "--ckpt", str(bad), "--model", "tiny",
                                "--output_path", str(tmp_path / "out"), "--device", "cpu", "--num_workers", "0",
                                "--tasks", "dehaze"]) == 2
    refusal(capsys, f"checkpoint {bad} does not match the network", "missing keys (1)", lines=4)
    assert_unchanged(before)


def test_the_demo_refuses_weights_that_do_not_fit_before_decoding_an_image(data_root, run_dir, tmp_path,
                                                                           monkeypatch, capsys):
    bad = _unfitting_weights(run_dir, tmp_path / "weights.pt")
    _never_decoded(monkeypatch)
    before = snapshot(tmp_path)
    assert demo.main(["--ckpt", str(bad), "--model", "tiny", "--input", str(data_root / "test" / "dehaze" / "input"),
                      "--output_dir", str(tmp_path / "out"), "--degradation", "haze", "--device", "cpu",
                      "--prompt_backend", "offline"]) == 2
    refusal(capsys, f"checkpoint {bad} does not match the network", "missing keys (1)", lines=4)
    assert_unchanged(before)


# ----------------------------------------------------------------------------- flags
@pytest.mark.parametrize("seed", ["-1", str(2**32)])
def test_a_seed_out_of_range_is_refused_before_the_data_check(train, tmp_path, capsys, seed):
    assert train(tmp_path / "no_data", tmp_path / "run", "--seed", seed) == 2
    refusal(capsys, f"--seed {seed}: must be from 0 to {2**32 - 1}")
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("flags, named", [
    (("--seed", "-1"), "--seed -1: must be from 0"),
    (("--lr", "nan"), "--lr nan: must be a finite learning rate > 0"),
    (("--lr", "inf"), "--lr inf: must be a finite learning rate > 0"),
    (("--lr", "0"), "--lr 0.0: must be a finite learning rate > 0"),
], ids=["seed", "lr_nan", "lr_inf", "lr_0"])
def test_the_recogniser_refuses_flags_out_of_range_before_the_data_check(tmp_path, capsys, flags, named):
    output = tmp_path / "recognizer.pt"
    assert recognizer_main(["--setting", "3D", "--data_root", str(tmp_path / "no_data"), "--output", str(output),
                            "--device", "cpu", "--num_workers", "0", *flags]) == 2
    refusal(capsys, named)
    assert not output.exists()


def test_a_batch_larger_than_the_training_set_is_refused_before_any_step(train, data_root, tmp_path, capsys):
    assert train(data_root, tmp_path / "run", "--batch_size", "1000", "--max_steps", "2") == 2
    refusal(capsys, "--batch_size 1000: larger than the training set (", "samples per epoch")
    assert not (tmp_path / "run" / "last.ckpt").exists()


def test_num_nodes_outside_a_cluster_is_refused_at_once(train, tmp_path, monkeypatch, capsys):
    for name in ("SLURM_NTASKS", "TORCHELASTIC_RUN_ID", "LSB_JOBID", "MASTER_ADDR", "NODE_RANK"):
        monkeypatch.delenv(name, raising=False)
    assert train(tmp_path / "no_data", tmp_path / "run", "--num_nodes", "2") == 2
    refusal(capsys, "--num_nodes 2: no cluster environment here (MASTER_ADDR and NODE_RANK not set",
            "srun", "torchrun")


def test_resuming_with_another_precision_is_refused_as_a_changed_option(train, data_root, run_dir, capsys):
    before = snapshot(run_dir)
    assert train(data_root, run_dir, "--resume", "auto", "--max_steps", "4", "--precision", "bf16-mixed") == 2
    refusal(capsys, "--precision: 32 in the checkpoint, bf16-mixed now", "--allow_config_change")
    assert_unchanged(before)


# ----------------------------------------------------------------------------- data
def test_the_recogniser_runs_the_data_check_before_its_first_step(data_root, tmp_path, capsys):
    output = tmp_path / "recognizer.pt"
    before = snapshot(data_root)
    assert recognizer_main(["--setting", "3D", "--data_root", str(data_root), "--data_file_dir", "none",
                            "--de_type", "dehaze", "--val_tasks", "none", "--patch_size", "64", "--output", str(output),
                            "--device", "cpu", "--num_workers", "0", "--batch_size", "2", "--max_steps", "2"]) == 2
    refusal(capsys, "data check failed", "is smaller than the 64x64 training patch", lines=100)
    assert not output.exists()
    assert_unchanged(before)


@pytest.mark.parametrize("kind", ["fifo", "socket"])
def test_a_fifo_or_socket_named_like_an_image_is_refused_without_being_opened(train, data_root, tmp_path, capsys,
                                                                              monkeypatch, kind):
    root = Path(shutil.copytree(data_root, tmp_path / "data"))
    special = root / "Train" / "Denoise" / "00000.png"
    if kind == "fifo":
        os.mkfifo(special)
    else:
        monkeypatch.chdir(special.parent)  # a socket's path is limited to about 100 characters
        socket.socket(socket.AF_UNIX).bind(special.name)
    before = snapshot(root)
    signal.alarm(120)  # reading a FIFO would block forever: end the tests (SIGALRM) instead
    try:
        assert train(root, tmp_path / "run", "--de_type", "denoise_15", "--check_data") == 2
    finally:
        signal.alarm(0)
    what = "a FIFO (named pipe)" if kind == "fifo" else "a socket"
    refusal(capsys, f"{special} is {what}, not an image file; remove it from the data folder")
    assert_unchanged(before)
