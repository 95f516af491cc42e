"""The prompt sets, the prompt table and its backends (offline, file; CLIP's failure mode)."""

from __future__ import annotations

import pytest
import torch

import net.prompts as prompts
from net import PromptError, PromptTable, build_prompt_table
from net.registry import create_model
from utils.tasks import TASKS


@pytest.fixture(scope="module")
def offline_table() -> PromptTable:
    return build_prompt_table("detailed", backend="offline")


def test_prompt_sets_follow_the_spec():
    detailed = prompts.prompt_list("detailed")
    assert len(detailed) == 7 and detailed[TASKS["dehaze"].de_id] == "Hazy degradation with normal haze"
    assert detailed[TASKS["denoise_50"].de_id] == "Gaussian noise with a standard deviation of 50"
    assert prompts.prompt_list("simple") == ["Noise", "Noise", "Noise", "Rain", "Haze"]


def test_offline_backend_is_deterministic(offline_table):
    assert offline_table.embeddings.shape == (7, 512) and offline_table.embeddings.dtype == torch.float32
    again = build_prompt_table("detailed", backend="offline")
    assert torch.equal(offline_table.embeddings, again.embeddings)
    assert "offline" in offline_table.source
    # distinct prompts give distinct codes
    assert torch.cdist(offline_table.embeddings, offline_table.embeddings).fill_diagonal_(1).min() > 0


def test_distinct_prompts_give_distinct_permutations(offline_table):
    torch.manual_seed(0)
    block = create_model("tiny").encoder_shuffle_channel1
    perms = block.channel_permutation(offline_table.embeddings)
    assert len({tuple(p.tolist()) for p in perms}) == 7


def test_lookup_indexes_by_degradation_id(offline_table):
    ids = torch.tensor([4, 0, 4])
    codes = offline_table.lookup(ids)
    assert torch.equal(codes[0], offline_table.embeddings[4]) and torch.equal(codes[1], offline_table.embeddings[0])
    with pytest.raises(PromptError, match="out of range"):
        offline_table.lookup(torch.tensor([7]))


def test_file_backend_round_trips(tmp_path, offline_table):
    path = tmp_path / "prompts_detailed.pt"
    prompts.save_prompt_file(path, offline_table)
    saved = torch.load(path, weights_only=True)
    assert set(saved) == set(offline_table.prompts)
    table = build_prompt_table("detailed", embeddings_file=path)
    assert torch.equal(table.embeddings, offline_table.embeddings)
    assert table.prompts == offline_table.prompts


def test_file_without_a_prompt_is_refused(tmp_path, offline_table):
    path = tmp_path / "partial.pt"
    torch.save({p: e for p, e in zip(offline_table.prompts[:5], offline_table.embeddings[:5], strict=True)}, path)
    with pytest.raises(PromptError, match="Blur degradation with motion blur"):
        build_prompt_table("detailed", embeddings_file=path)


def test_simple_set_does_not_cover_5d(tmp_path):
    table = PromptTable(prompts.prompt_list("simple"), torch.randn(5, 512), "test")
    table.covers(["denoise_15", "dehaze"])
    with pytest.raises(PromptError, match="--prompt_set detailed"):
        table.covers(["deblur"])


def test_unreachable_clip_names_the_alternatives(monkeypatch):
    monkeypatch.setattr(prompts, "_clip_weights_available", lambda: False)
    with pytest.raises(PromptError) as err:
        build_prompt_table("detailed", backend="clip")
    assert "--prompt_embeddings" in str(err.value) and "--prompt_backend offline" in str(err.value)


def test_auto_backend_falls_back_loudly(monkeypatch, offline_table, capsys):
    monkeypatch.setattr(prompts, "_clip_weights_available", lambda: False)
    table = build_prompt_table("detailed", backend="auto")
    assert "offline" in table.source and torch.equal(table.embeddings, offline_table.embeddings)
    err = capsys.readouterr().err
    assert "WARNING: CLIP is not available" in err and "OFFLINE prompt encoder" in err


def test_export_command_writes_a_prompt_file(tmp_path, capsys):
    path = tmp_path / "simple.pt"
    assert prompts.main(["--export", str(path), "--prompt_set", "simple", "--prompt_backend", "offline"]) == 0
    assert set(torch.load(path, weights_only=True)) == {"Noise", "Rain", "Haze"}
    assert "wrote" in capsys.readouterr().out
