"""The Hugging Face Hub format: conversion from every checkpoint format, strict safe loading, offline errors."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import torch
from huggingface_hub import HfApi, constants
from safetensors.torch import load_file, save_file

from data.sample import make_sample_dataset
from engine.evaluate import main as evaluate_main
from net import DFPIR, CheckpointError, load_pretrained, read_checkpoint
from net.checkpoint import EXTRA_KEY, LIGHTNING_PREFIX
from net.hub import main as hub_main
from net.prompts import PromptTable, load_prompt_file, prompt_list, save_prompt_file
from net.registry import create_model


@pytest.fixture()
def authors_files(tmp_path) -> tuple[Path, Path, DFPIR]:
    """A tiny network saved in the authors' .pth.tar format, and a prompt-table file."""
    torch.manual_seed(3)
    net = create_model("tiny").eval()
    ckpt = tmp_path / "model.pth.tar"
    torch.save({"epoch": 7, "state_dict": net.state_dict(), "optimizer": {}, "scheduler": {}}, ckpt)
    prompts = tmp_path / "prompts.pt"
    save_prompt_file(prompts, PromptTable(prompt_list("detailed"), torch.randn(7, 512), "test"))
    return ckpt, prompts, net


def _convert(ckpt: Path, out: Path, *extra: str) -> None:
    assert hub_main(["--ckpt", str(ckpt), "--out", str(out), *extra]) == 0


def test_authors_checkpoint_to_hub_folder_and_back_gives_bit_identical_outputs(authors_files, tmp_path):
    ckpt, prompts, net = authors_files
    hub = tmp_path / "hub"
    _convert(ckpt, hub, "--prompt_embeddings", str(prompts), "--model", "tiny")
    assert {p.name for p in hub.iterdir()} == {"model.safetensors", "prompt_table.safetensors", "config.json",
                                               "README.md"}
    config = json.loads((hub / "config.json").read_text())
    assert config["architecture"] == "DFPIR" and config["model_config"]["dim"] == 16
    assert config["prompt_set"] == "detailed" and config["prompt_table"]["prompts"] == prompt_list("detailed")
    assert set(load_file(hub / "model.safetensors")) == set(net.state_dict())  # the authors' key names

    loaded = DFPIR.from_pretrained(hub)
    codes = load_prompt_file(prompts, prompt_list("detailed"))
    assert torch.equal(loaded.prompt_table.embeddings, codes) and loaded.prompt_set == "detailed"
    img = torch.rand(1, 3, 16, 24).expand(7, -1, -1, -1)  # one image under each of the 7 prompts
    with torch.no_grad():
        assert torch.equal(loaded(img, loaded.prompt_table.embeddings), net(img, codes))
    # ... and the same record through read_checkpoint, as every script reads it.
    record = read_checkpoint(str(hub))
    assert record.format == "hub" and record.model_config == create_model("tiny").config.to_dict()
    assert all(torch.equal(record.state_dict[k], v) for k, v in net.state_dict().items())


def test_lightning_checkpoint_keeps_its_prompt_table_and_config(tmp_path):
    torch.manual_seed(4)
    net = create_model("tiny")
    table = PromptTable(prompt_list("simple"), torch.randn(5, 512), "offline test")
    path = tmp_path / "last.ckpt"
    torch.save({"pytorch-lightning_version": "2.6.0", "state_dict": {LIGHTNING_PREFIX + k: v for k, v in
                                                                     net.state_dict().items()},
                EXTRA_KEY: {"model_config": net.config.to_dict(), "prompt_table": table.to_dict(),
                            "prompt_set": "simple"}}, path)
    hub = tmp_path / "hub"
    _convert(path, hub)  # no --model: the configuration comes from the checkpoint
    loaded = DFPIR.from_pretrained(str(hub))
    assert loaded.prompt_set == "simple" and loaded.prompt_table.prompts == table.prompts
    assert torch.equal(loaded.prompt_table.embeddings, table.embeddings)
    assert "offline test" in (hub / "README.md").read_text()


def test_bare_state_dict_and_hub_folder_reexport(authors_files, tmp_path):
    _, prompts, net = authors_files
    bare = tmp_path / "weights.pth"
    torch.save(net.state_dict(), bare)
    _convert(bare, tmp_path / "a", "--model", "tiny", "--prompt_embeddings", str(prompts))
    _convert(tmp_path / "a", tmp_path / "b")  # a Hub folder is a checkpoint too
    for name in ("model.safetensors", "prompt_table.safetensors"):
        first, second = load_file(tmp_path / "a" / name), load_file(tmp_path / "b" / name)
        assert first.keys() == second.keys() and all(torch.equal(first[k], second[k]) for k in first)


def test_results_and_their_figures_go_into_the_model_card(authors_files, tmp_path):
    ckpt, prompts, _ = authors_files
    results = tmp_path / "eval" / "results.md"
    results.parent.mkdir()
    results.write_text("## DFPIR 3D\n\n| | Rain100L |\n| --- | --- |\n| this run | 30.00 / 0.9000 |\n\n"
                       "![derain](compare_derain.png)\n")
    (results.parent / "compare_derain.png").write_bytes(b"png")
    hub = tmp_path / "hub"
    _convert(ckpt, hub, "--model", "tiny", "--prompt_embeddings", str(prompts), "--results", str(results))
    card = (hub / "README.md").read_text()
    assert "## Results" in card and "30.00 / 0.9000" in card and "library_name: dfpir" in card
    assert (hub / "compare_derain.png").read_bytes() == b"png"


def test_save_pretrained_needs_the_prompt_table(tmp_path):
    with pytest.raises(ValueError, match="prompt_table"):
        create_model("tiny").save_pretrained(tmp_path / "hub")


def test_push_to_hub_uploads_the_same_folder(monkeypatch, tmp_path):
    net = create_model("tiny")
    net.prompt_table, net.prompt_set = PromptTable(prompt_list("detailed"), torch.randn(7, 512), "t"), "detailed"
    uploaded = {}

    def upload_folder(self, *, repo_id, folder_path, **kwargs):
        uploaded.update({p.name: p.read_bytes() for p in Path(folder_path).iterdir()})
        return "commit-url"

    monkeypatch.setattr(HfApi, "create_repo", lambda self, repo_id, **kw: type("Repo", (), {"repo_id": repo_id}))
    monkeypatch.setattr(HfApi, "upload_folder", upload_folder)
    assert net.push_to_hub("someone/dfpir-test") == "commit-url"
    assert set(uploaded) == {"model.safetensors", "prompt_table.safetensors", "config.json", "README.md"}
    net.save_pretrained(tmp_path / "hub")
    assert uploaded["config.json"] == (tmp_path / "hub" / "config.json").read_bytes()


def test_a_key_mismatch_in_a_hub_folder_is_refused(authors_files, tmp_path):
    ckpt, prompts, _ = authors_files
    hub = tmp_path / "hub"
    _convert(ckpt, hub, "--model", "tiny", "--prompt_embeddings", str(prompts))
    weights = load_file(hub / "model.safetensors")
    dropped = min(weights)
    del weights[dropped]
    save_file(weights, str(hub / "model.safetensors"))
    with pytest.raises(CheckpointError, match="missing keys.*" + dropped.replace(".", r"\.")):
        DFPIR.from_pretrained(hub)
    with pytest.raises(CheckpointError, match="strict loading"):
        load_pretrained(create_model("tiny"), hub)


def test_a_folder_that_is_not_a_hub_folder_and_a_non_empty_out_are_refused(authors_files, tmp_path, capsys):
    ckpt, _, _ = authors_files
    with pytest.raises(CheckpointError, match="not a DFPIR Hub folder.*last.ckpt"):
        read_checkpoint(tmp_path)
    assert hub_main(["--ckpt", str(ckpt), "--out", str(tmp_path), "--model", "tiny"]) == 2
    assert "not an empty folder" in capsys.readouterr().err


@pytest.mark.parametrize("offline", [True, False], ids=["HF_HUB_OFFLINE", "unreachable"])
def test_an_unreachable_repo_id_fails_fast_with_a_clear_error(monkeypatch, tmp_path, offline):
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "cache"))  # nothing cached
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", offline)
    monkeypatch.setattr(constants, "ENDPOINT", "http://127.0.0.1:9")  # nothing listens there
    start = time.perf_counter()
    with pytest.raises(CheckpointError, match="nobody/dfpir-none is not a local file or folder"):
        read_checkpoint("nobody/dfpir-none")
    assert time.perf_counter() - start < 5


def test_a_test_script_runs_on_a_hub_folder_and_scores_like_the_original(authors_files, tmp_path, capsys,
                                                                        monkeypatch):
    ckpt, prompts, _ = authors_files
    data = tmp_path / "data"
    make_sample_dataset(data, train_size=48, test_size=32)
    hub = tmp_path / "hub"
    _convert(ckpt, hub, "--model", "tiny", "--prompt_embeddings", str(prompts))
    common = ["--data_root", str(data), "--device", "cpu", "--num_workers", "0", "--tasks", "derain",
              "--no_save_images"]
    assert evaluate_main("3D", ["--ckpt", str(hub), "--output_path", str(tmp_path / "a"), *common]) == 0
    assert evaluate_main("3D", ["--ckpt", str(ckpt), "--model", "tiny", "--prompt_embeddings", str(prompts),
                                "--output_path", str(tmp_path / "b"), *common]) == 0
    assert json.loads((tmp_path / "a" / "results.json").read_text()) == \
        json.loads((tmp_path / "b" / "results.json").read_text())
    capsys.readouterr()

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    assert evaluate_main("3D", ["--ckpt", "nobody/dfpir-none", "--output_path", str(tmp_path / "c"), *common]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: nobody/dfpir-none is not a local file or folder") and "Traceback" not in err


def test_convert_and_push_uploads_the_folder_with_its_figures(authors_files, tmp_path, monkeypatch, capsys):
    import net.hub

    ckpt, prompts, _ = authors_files
    results = tmp_path / "eval" / "results.md"
    results.parent.mkdir()
    results.write_text("| this run | 30.00 / 0.9000 |\n\n![derain](compare_derain.png)\n")
    (results.parent / "compare_derain.png").write_bytes(b"png")
    calls = {}
    monkeypatch.setattr(net.hub, "hub_reachable", lambda: True)
    monkeypatch.setattr(HfApi, "create_repo", lambda self, repo_id, **kw: type("Repo", (), {"repo_id": repo_id}))

    def upload_folder(self, *, repo_id, folder_path, allow_patterns=None, **kw):  # what huggingface_hub would send
        files = sorted(p.name for p in Path(folder_path).iterdir())
        calls.update(repo=repo_id, files=[f for f in files if allow_patterns is None or f in allow_patterns])

    monkeypatch.setattr(HfApi, "upload_folder", upload_folder)
    _convert(ckpt, tmp_path / "hub", "--model", "tiny", "--prompt_embeddings", str(prompts), "--results", str(results),
             "--push_to_hub", "someone/dfpir-tiny")
    written = ["README.md", "compare_derain.png", "config.json", "model.safetensors", "prompt_table.safetensors"]
    assert calls == {"repo": "someone/dfpir-tiny", "files": written}
    assert "pushed to" in capsys.readouterr().out

    # Reconverting into the same folder with --overwrite keeps a user's own file there, and never uploads it.
    (tmp_path / "hub" / "notes-private.txt").write_text("mine")
    _convert(ckpt, tmp_path / "hub", "--model", "tiny", "--prompt_embeddings", str(prompts), "--results", str(results),
             "--push_to_hub", "someone/dfpir-tiny", "--overwrite")
    assert calls["files"] == written and (tmp_path / "hub" / "notes-private.txt").read_text() == "mine"

    monkeypatch.setattr(net.hub, "hub_reachable", lambda: False)
    assert hub_main(["--ckpt", str(tmp_path / "hub"), "--out", str(tmp_path / "again"),
                     "--push_to_hub", "someone/dfpir-tiny"]) == 2
    assert "hf upload someone/dfpir-tiny" in capsys.readouterr().err
