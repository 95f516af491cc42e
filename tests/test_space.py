"""python -m net.hub --space: a Hugging Face Space that serves app.py on the converted model folder."""

from __future__ import annotations

import torch

from net import read_checkpoint
from net.hub import main as hub_main
from net.prompts import PromptTable, prompt_list, save_prompt_file
from net.registry import create_model
from net.space import space_readme


def test_the_space_holds_the_app_its_code_the_model_and_its_front_matter(tmp_path, capsys):
    torch.manual_seed(0)
    ckpt, prompts = tmp_path / "model.pth.tar", tmp_path / "prompts.pt"
    torch.save({"state_dict": create_model("tiny").state_dict()}, ckpt)
    save_prompt_file(prompts, PromptTable(prompt_list("detailed"), torch.randn(7, 512), "test"))
    flags = ["--ckpt", str(ckpt), "--model", "tiny", "--prompt_embeddings", str(prompts)]

    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "notes.txt").write_text("mine")
    assert hub_main([*flags, "--out", str(tmp_path / "hub"), "--space", str(tmp_path / "taken")]) == 2
    assert "--space" in capsys.readouterr().err and not (tmp_path / "hub").exists()  # refused before converting

    space = tmp_path / "space"
    assert hub_main([*flags, "--out", str(tmp_path / "hub"), "--space", str(space)]) == 0
    assert "hf upload --repo-type space" in capsys.readouterr().out
    front = (space / "README.md").read_text().split("---\n")[1]
    assert "sdk: gradio\n" in front and "app_file: space_app.py\n" in front and "sdk_version: " in front
    assert "models:\n  - user/dfpir\n" in space_readme("DFPIR", "user/dfpir")  # --push_to_hub's repo is linked
    requirements = (space / "requirements.txt").read_text()
    assert "torch" in requirements and "gradio>=" in requirements
    launcher = (space / "space_app.py").read_text()
    assert '"--ckpt", "model"' in launcher and '"0.0.0.0"' in launcher
    for name in ("app.py", "quickstart.py", "engine/inference.py", "net/hub.py", "data/sample.py", "utils/tasks.py"):
        assert (space / name).is_file(), name
    assert not list(space.rglob("__pycache__"))
    assert read_checkpoint(space / "model").format == "hub"
