"""``load_model``: one loader, the preset decided in one place, each checkpoint file read once."""

from __future__ import annotations

import logging

import pytest
import torch

import dcpose_trt.model.checkpoint as checkpoint_mod
import dcpose_trt.model.loader as loader_mod
from dcpose_trt.errors import CheckpointError, InputError
from dcpose_trt.model import (
    build_dcpose,
    load_checkpoint,
    load_model,
    read_checkpoint,
    save_checkpoint,
)
from dcpose_trt.model.presets import BUNDLED_MODEL


@pytest.fixture()
def read_count(monkeypatch):
    """How many times a checkpoint file was deserialised."""
    calls = []
    real = checkpoint_mod._read

    def counting(path):
        calls.append(path)
        return real(path)

    monkeypatch.setattr(checkpoint_mod, "_read", counting)
    return calls


def _same_weights(a, b) -> bool:
    sb = b.state_dict()
    return all(torch.equal(v, sb[k]) for k, v in a.state_dict().items())


def test_preset_comes_from_the_checkpoint_and_the_file_is_read_once(tiny_model_perturbed, tmp_path, read_count):
    path = tmp_path / "tiny.pth"
    save_checkpoint(tiny_model_perturbed, path, extra={"preset": "tiny-128x96"})
    model = load_model(path, None)
    assert model.preset_name == "tiny-128x96" and not model.training
    assert _same_weights(model, tiny_model_perturbed)
    assert len(read_count) == 1
    assert load_model(path, "tiny-128x96").preset_name == "tiny-128x96"  # agreeing preset: fine


def test_a_preset_that_contradicts_the_checkpoint_is_an_error(tiny_model_perturbed, tmp_path):
    path = tmp_path / "tiny.pth"
    save_checkpoint(tiny_model_perturbed, path, extra={"preset": "tiny-128x96"})
    with pytest.raises(CheckpointError, match=r"holds a tiny-128x96 model, not w32-256x192"):
        load_model(path, "w32-256x192")


def test_checkpoint_without_preset_uses_the_argument_else_w48(tiny_model_perturbed, tmp_path):
    raw = tmp_path / "raw.pth"
    torch.save(tiny_model_perturbed.state_dict(), raw)  # official layout: no preset recorded
    assert _same_weights(load_model(raw, "tiny-128x96"), tiny_model_perturbed)
    # Official checkpoints are the W48 model: without a preset, a tiny state dict does not fit it.
    with pytest.raises(CheckpointError, match=r"does not fit preset 'w48-384x288'"):
        load_model(raw, None)


def test_backbone_checkpoint_fills_the_backbone(tiny_model_perturbed, tmp_path):
    prefix = "rough_pose_estimation_net."
    hrnet = tmp_path / "pose_hrnet_tiny.pth"
    sd = tiny_model_perturbed.state_dict()
    torch.save({k[len(prefix):]: v for k, v in sd.items() if k.startswith(prefix)}, hrnet)
    ckpt = read_checkpoint(hrnet)
    assert ckpt.format == "hrnet" and ckpt.preset is None
    model = load_model(ckpt, "tiny-128x96")
    assert torch.equal(model.rough_pose_estimation_net.conv1.weight, sd[prefix + "conv1.weight"])
    # the head keeps its initialisation
    assert not torch.equal(model.offsets_list[0][0].weight, tiny_model_perturbed.offsets_list[0][0].weight)


@pytest.mark.skipif(not BUNDLED_MODEL.is_file(), reason="this install has no bundled model")
@pytest.mark.parametrize("preset", [None, "tiny-128x96"])
def test_no_checkpoint_gives_the_bundled_model(preset):
    expected = build_dcpose("tiny-128x96")
    load_checkpoint(expected, BUNDLED_MODEL)
    model = load_model(None, preset)
    assert model.preset_name == "tiny-128x96"
    assert _same_weights(model, expected)


def test_no_checkpoint_and_another_preset_is_its_random_init(caplog):
    with caplog.at_level(logging.WARNING, logger="dcpose_trt.model.loader"):
        model = load_model(None, "w32-256x192")
    assert model.preset_name == "w32-256x192"
    assert "random initialisation of preset w32-256x192" in caplog.text


def test_no_bundled_model_falls_back_to_the_tiny_random_init(monkeypatch, caplog):
    monkeypatch.setattr(loader_mod, "bundled_model_path", lambda: None)
    with caplog.at_level(logging.WARNING, logger="dcpose_trt.model.loader"):
        model = load_model(None, None)
    assert model.preset_name == "tiny-128x96"
    assert "has no bundled model" in caplog.text


def test_errors(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        load_model(tmp_path / "nope.pth")
    with pytest.raises(InputError, match="unknown preset"):
        load_model(None, "nope")
    odd = tmp_path / "odd.pth"
    torch.save({"something.weight": torch.zeros(1)}, odd)
    with pytest.raises(CheckpointError, match="neither a DCPose nor an HRNet checkpoint"):
        load_model(odd, "tiny-128x96")
