"""``--backend torch``: PyTorch eager, the reference backend (CPU, or CUDA with ``device="cuda"``)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from dcpose_trt.errors import InputError
from dcpose_trt.runtime.backends.base import OpenOptions, SplitBackend

if TYPE_CHECKING:
    import torch

    from dcpose_trt.model.dcpose import DCPose

#: Checkpoint suffixes (what the torch backend opens, and what the other openers export on demand).
CHECKPOINT_SUFFIXES = (".pth", ".pt", ".tar")


def _tensor(a: np.ndarray, device: torch.device) -> torch.Tensor:
    import torch

    return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32)).to(device)


class TorchBackend(SplitBackend):
    """PyTorch eager reference backend (CPU, or CUDA when ``device="cuda"``).

    ``threads`` sets torch's intra-op pool (process-wide: torch has one) when given.
    """

    name = "torch"

    def __init__(self, model: DCPose, device: str | torch.device = "cpu", single_frame: bool = False,
                 threads: int | None = None):
        import torch

        if threads:
            torch.set_num_threads(int(threads))
        self.model = model.eval().to(device)
        # The single-frame HRNet baseline: heatmaps of the current frame's backbone alone.
        self.single_frame = single_frame
        self.device = torch.device(device)
        self.preset_name: str = model.preset_name
        h, w = model.preset.image_size
        self.input_size = (int(h), int(w))

    @classmethod
    def from_checkpoint(cls, path: str | os.PathLike | None, preset: str | None = None,
                        device: str = "cpu", threads: int | None = None) -> TorchBackend:
        """The model of ``path`` (read once; :func:`dcpose_trt.model.load_model`), else of ``preset``, else
        the bundled model."""
        from dcpose_trt.model import load_model, read_checkpoint

        ckpt = read_checkpoint(path) if path is not None else None
        model = load_model(ckpt, preset)
        single = bool(ckpt is not None and ckpt.meta.get("single_frame", False))
        return cls(model, device, single_frame=single, threads=threads)

    def _infer_impl(self, frames: np.ndarray, margin: np.ndarray) -> np.ndarray:
        import torch

        with torch.inference_mode():
            f = _tensor(frames, self.device)
            if self.single_frame:
                return self.model.backbone(f[:, :3]).float().cpu().numpy()
            return self.model(f, _tensor(margin, self.device)).float().cpu().numpy()

    def _backbone_impl(self, x: np.ndarray) -> np.ndarray:
        import torch

        with torch.inference_mode():
            return self.model.backbone(_tensor(x, self.device)).float().cpu().numpy()

    def _head_impl(self, cur: np.ndarray, prev: np.ndarray, nxt: np.ndarray, margin: np.ndarray) -> np.ndarray:
        import torch

        with torch.inference_mode():
            t = [_tensor(a, self.device) for a in (cur, prev, nxt, margin)]
            return self.model.head(*t).float().cpu().numpy()


def open_torch(path: Path | None, name: str, options: OpenOptions) -> TorchBackend:
    """Opener of ``--backend torch``: a checkpoint (``.pth``), or the bundled model when ``path`` is None."""
    if path is not None and path.suffix.lower() not in CHECKPOINT_SUFFIXES:
        raise InputError(f"the torch backend needs a checkpoint (.pth), got {path}")
    return TorchBackend.from_checkpoint(path, options.preset, options.device, options.threads)
