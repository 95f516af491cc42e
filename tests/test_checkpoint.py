"""load_pretrained: every format loads; anything partial or foreign is refused, naming the problem."""

from __future__ import annotations

import pytest
import torch

from net import DFPIR, CheckpointError, load_pretrained, read_checkpoint
from net.checkpoint import EXTRA_KEY, LIGHTNING_PREFIX
from net.registry import create_model


@pytest.fixture()
def weights() -> dict[str, torch.Tensor]:
    torch.manual_seed(1)
    return create_model("tiny").state_dict()


def _assert_loaded(model: DFPIR, weights: dict[str, torch.Tensor]) -> None:
    for key, value in model.state_dict().items():
        assert torch.equal(value, weights[key]), key


def test_authors_format(tmp_path, weights):
    path = tmp_path / "model.pth.tar"
    optimizer = {"state": {}, "param_groups": []}
    torch.save({"epoch": 3, "state_dict": weights, "optimizer": optimizer, "scheduler": {}}, path)
    model = create_model("tiny")
    ckpt = load_pretrained(model, path)
    assert ckpt.format == "authors" and ckpt.epoch == 3 and ckpt.prompt_table is None
    _assert_loaded(model, weights)


def test_lightning_format_with_its_prefix_and_extras(tmp_path, weights):
    path = tmp_path / "last.ckpt"
    state = {LIGHTNING_PREFIX + k: v for k, v in weights.items()}
    state["some_buffer_of_the_module"] = torch.zeros(1)
    table = {"prompts": ["a", "b"], "embeddings": torch.randn(2, 512), "source": "offline"}
    torch.save({"pytorch-lightning_version": "2.6.0", "epoch": 1, "state_dict": state,
                EXTRA_KEY: {"model_config": {"dim": 16}, "prompt_table": table, "prompt_set": "detailed"}}, path)
    model = create_model("tiny")
    ckpt = load_pretrained(model, path)
    assert ckpt.format == "lightning" and ckpt.model_config == {"dim": 16} and ckpt.prompt_set == "detailed"
    assert torch.equal(ckpt.prompt_table.embeddings, table["embeddings"])
    _assert_loaded(model, weights)


@pytest.mark.parametrize("prefix", ["", "module."])
def test_bare_state_dict(tmp_path, weights, prefix):
    path = tmp_path / "weights.pth"
    torch.save({prefix + k: v for k, v in weights.items()}, path)
    model = create_model("tiny")
    assert load_pretrained(model, path).format == "state_dict"
    _assert_loaded(model, weights)


def _save_authors(path, state):
    torch.save({"epoch": 0, "state_dict": state, "optimizer": {}, "scheduler": {}}, path)
    return path


def test_missing_key_is_refused_and_named(tmp_path, weights):
    del weights["encoder_shuffle_channel2.conv_out.bias"]
    path = _save_authors(tmp_path / "truncated.pth.tar", weights)
    model = create_model("tiny")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(CheckpointError, match=r"missing keys \(1\): encoder_shuffle_channel2.conv_out.bias") as err:
        load_pretrained(model, path)
    assert str(path) in str(err.value)
    _assert_loaded(model, before)  # nothing was loaded


def test_extra_key_is_refused_and_named(tmp_path, weights):
    weights["decoder_level1.9.attn.temperature"] = torch.ones(1, 1, 1)
    with pytest.raises(CheckpointError, match=r"unexpected keys \(1\): decoder_level1.9.attn.temperature"):
        load_pretrained(create_model("tiny"), _save_authors(tmp_path / "extra.pth.tar", weights))


def test_wrong_shape_is_refused_and_named(tmp_path, weights):
    weights["output.weight"] = torch.zeros(3, 16, 3, 3)
    expected = r"shape mismatches \(1\): output.weight \(3, 16, 3, 3\) vs model \(3, 32, 3, 3\)"
    with pytest.raises(CheckpointError, match=expected):
        load_pretrained(create_model("tiny"), _save_authors(tmp_path / "shape.pth.tar", weights))


def test_paper_checkpoint_into_tiny_model_lists_the_mismatch(tmp_path):
    path = _save_authors(tmp_path / "paper.pth.tar", DFPIR().state_dict())
    with pytest.raises(CheckpointError, match="shape mismatches"):
        load_pretrained(create_model("tiny"), path)


def test_random_file_is_refused(tmp_path):
    path = tmp_path / "random.pth.tar"
    path.write_bytes(torch.randint(0, 256, (4096,), dtype=torch.uint8).numpy().tobytes())
    with pytest.raises(CheckpointError, match="is not a PyTorch checkpoint") as err:
        read_checkpoint(path)
    assert str(path) in str(err.value)


def test_truncated_file_is_refused(tmp_path, weights):
    path = _save_authors(tmp_path / "cut.pth.tar", weights)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(CheckpointError, match="not a PyTorch checkpoint"):
        read_checkpoint(path)


def test_other_objects_are_refused(tmp_path):
    path = tmp_path / "list.pt"
    torch.save([1, 2, 3], path)
    with pytest.raises(CheckpointError, match="is not a DFPIR checkpoint"):
        read_checkpoint(path)
    with pytest.raises(CheckpointError, match="does not exist"):
        read_checkpoint(tmp_path / "nope.pth.tar")


def test_pickled_code_is_never_run(tmp_path):
    path = tmp_path / "unsafe.pth.tar"
    torch.save({"state_dict": {"x": torch.zeros(1)}, "config": _Unsafe()}, path)
    with pytest.raises(CheckpointError, match="weights_only=True"):
        read_checkpoint(path)


class _Unsafe:
    pass
