"""DCPose in PyTorch: HRNet backbone, PRF/PTM/PCN temporal head, presets and checkpoints."""

from __future__ import annotations

from dcpose_trt.model.checkpoint import (
    Checkpoint,
    load_checkpoint,
    read_checkpoint,
    read_checkpoint_meta,
    save_checkpoint,
)
from dcpose_trt.model.dcpose import DCPose, use_deform_conv
from dcpose_trt.model.deform import deform_conv2d_gridsample, deform_conv2d_torchvision
from dcpose_trt.model.loader import build_dcpose, checkpoint_preset, load_model
from dcpose_trt.model.presets import DEFAULT_PRESET, PRESETS, Preset, bundled_model_path, get_preset

__all__ = [
    "Checkpoint",
    "DCPose",
    "DEFAULT_PRESET",
    "PRESETS",
    "Preset",
    "build_dcpose",
    "checkpoint_preset",
    "bundled_model_path",
    "deform_conv2d_gridsample",
    "deform_conv2d_torchvision",
    "get_preset",
    "load_checkpoint",
    "load_model",
    "read_checkpoint",
    "read_checkpoint_meta",
    "save_checkpoint",
    "use_deform_conv",
]
