"""Inference backends: one interface, ``infer(frames, margin) -> heatmaps``.

Every backend takes ``frames`` ``float32[B, 9, H, W]`` (channels [current, previous, next], RGB,
ImageNet-normalised crops) and ``margin`` ``float32[B, 2]`` and returns refined heatmaps
``float32[B, 17, H/4, W/4]`` as numpy arrays. Backends for split models also implement
``backbone(x: float32[B, 3, H, W]) -> float32[B, 17, h, w]`` and
``head(cur, prev, nxt, margin) -> float32[B, 17, h, w]``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np
import torch

from dcpose_trt.model import build_dcpose, load_checkpoint, read_checkpoint_meta
from dcpose_trt.model.dcpose import DCPose


@runtime_checkable
class Backend(Protocol):
    """What :class:`~dcpose_trt.runtime.PoseEstimator` needs from an inference engine."""

    name: str
    preset_name: str
    input_size: tuple[int, int]  # crop (H, W)

    def infer(self, frames: np.ndarray, margin: np.ndarray) -> np.ndarray: ...


class TorchBackend:
    """PyTorch eager reference backend (CPU, or CUDA when ``device="cuda"``)."""

    name = "torch"

    def __init__(self, model: DCPose, device: str | torch.device = "cpu", single_frame: bool = False):
        self.model = model.eval().to(device)
        # The single-frame HRNet baseline: heatmaps of the current frame's backbone alone.
        self.single_frame = single_frame
        self.device = torch.device(device)
        self.preset_name: str = model.preset_name
        self.input_size: tuple[int, int] = tuple(model.preset.image_size)  # type: ignore[assignment]

    @classmethod
    def from_checkpoint(cls, path: str | os.PathLike | None, preset: str | None = None,
                        device: str = "cpu") -> TorchBackend:
        """Build the model for ``preset`` (or the preset stored in the checkpoint) and load ``path``."""
        meta = read_checkpoint_meta(path) if path is not None else {}
        model = build_dcpose(preset or meta.get("preset") or "w48-384x288")
        if path is not None:
            load_checkpoint(model, Path(path))
        return cls(model, device, single_frame=bool(meta.get("single_frame", False)))

    @torch.inference_mode()
    def infer(self, frames: np.ndarray, margin: np.ndarray) -> np.ndarray:
        f = torch.from_numpy(np.ascontiguousarray(frames, dtype=np.float32)).to(self.device)
        if self.single_frame:
            return self.model.backbone(f[:, :3]).float().cpu().numpy()
        m = torch.from_numpy(np.ascontiguousarray(margin, dtype=np.float32)).to(self.device)
        return self.model(f, m).float().cpu().numpy()

    @torch.inference_mode()
    def backbone(self, x: np.ndarray) -> np.ndarray:
        t = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).to(self.device)
        return self.model.backbone(t).float().cpu().numpy()

    @torch.inference_mode()
    def head(self, cur: np.ndarray, prev: np.ndarray, nxt: np.ndarray, margin: np.ndarray) -> np.ndarray:
        t = [torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32)).to(self.device)
             for a in (cur, prev, nxt, margin)]
        return self.model.head(*t).float().cpu().numpy()
