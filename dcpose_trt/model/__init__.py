"""DCPose in PyTorch: HRNet backbone, PRF/PTM/PCN temporal head, presets and checkpoints."""

from __future__ import annotations

from dcpose_trt.model.checkpoint import load_checkpoint, read_checkpoint_meta, save_checkpoint
from dcpose_trt.model.dcpose import DCPose, use_deform_conv
from dcpose_trt.model.deform import deform_conv2d_gridsample, deform_conv2d_torchvision
from dcpose_trt.model.presets import DEFAULT_PRESET, PRESETS, Preset, bundled_model_path, get_preset


def build_dcpose(preset: str = DEFAULT_PRESET) -> DCPose:
    """Build DCPose for a preset (``w48-384x288`` official, ``w32-256x192`` edge, ``tiny-128x96`` CPU).

    The model is in eval mode with the official initialisation (no weights loaded); see
    :func:`load_checkpoint`. ``model.preset`` holds the :class:`Preset` (input size, normalisation).
    """
    p = get_preset(preset)
    model = DCPose(p.hrnet)
    model.preset = p
    model.preset_name = p.name
    return model.eval()


__all__ = [
    "DCPose",
    "DEFAULT_PRESET",
    "PRESETS",
    "Preset",
    "build_dcpose",
    "bundled_model_path",
    "deform_conv2d_gridsample",
    "deform_conv2d_torchvision",
    "get_preset",
    "load_checkpoint",
    "read_checkpoint_meta",
    "save_checkpoint",
    "use_deform_conv",
]
