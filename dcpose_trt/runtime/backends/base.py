"""Inference backends: the runner protocol, the backend registry, and the PyTorch reference backend.

Protocols (abstract base classes; :class:`~dcpose_trt.runtime.PoseEstimator` dispatches with
``isinstance``, never by probing attributes):

* :class:`Backend`: ``name``, ``preset_name``, ``input_size``, ``single_frame``,
  ``infer(frames, margin) -> heatmaps``, ``last_inference_time``, ``close()``, context manager.
  ``frames`` is ``float32[B, 9, H, W]`` (channels [current, previous, next], RGB, ImageNet-normalised
  crops), ``margin`` ``float32[B, 2]``; the result is refined heatmaps ``float32[B, 17, H/4, W/4]``.
* :class:`SplitBackend` (a :class:`Backend`) adds the two halves the cached mode runs:
  ``backbone(x: float32[B, 3, H, W]) -> float32[B, 17, h, w]`` and
  ``head(cur, prev, nxt, margin) -> float32[B, 17, h, w]``.
* :class:`GpuPoseBackend` (a :class:`Backend`) adds the fused GPU path
  ``pose(window, boxes) -> (coords float32[N, 17, 2], scores float32[N, 17])``: crops, inference and
  decoding on the device.

Registry: ``--backend NAME`` opens a model through :data:`REGISTRY` (name → :class:`BackendSpec`).
Built-in names: ``torch``, ``onnxruntime``, ``tensorrt``, ``tensorrt-rtx``, ``openvino``,
``openvino-bf16``, ``openvino-int8`` (and ``auto``, which picks torch, onnxruntime or the plan's
TensorRT from the file). A new backend is one module (a :class:`Backend` subclass plus an opener) and one
:func:`register_backend` line at the bottom of this module. ``torch-cuda``
(:class:`~dcpose_trt.runtime.tensorrt.torch_cuda.TorchCudaBackend`, a :class:`GpuPoseBackend`) is built from a
model object in code (the GPU check and tests), so it has no ``--backend`` entry.
"""

from __future__ import annotations

import abc
import importlib
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch

    from dcpose_trt.model.dcpose import DCPose


class Backend(abc.ABC):
    """What :class:`~dcpose_trt.runtime.PoseEstimator` needs from an inference engine.

    Attributes:
        name: the registry name (``--backend``) or, for a plan, the builder that made it.
        preset_name: the model preset (``tiny-128x96``...). input_size: crop (H, W).
        single_frame: True for the HRNet baseline (the current frame's backbone alone: one crop per
            person instead of three).
        last_inference_time: seconds of the last ``infer`` call.
    """

    name: str
    preset_name: str
    input_size: tuple[int, int]
    single_frame: bool = False
    last_inference_time: float = 0.0

    @abc.abstractmethod
    def infer(self, frames: np.ndarray, margin: np.ndarray) -> np.ndarray:
        """frames ``float32[B, 9, H, W]`` + margin ``float32[B, 2]`` → heatmaps ``float32[B, 17, H/4, W/4]``."""

    def check_inputs(self, frames: np.ndarray, margin: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``frames`` and ``margin`` as contiguous float32 ``[B, 9, H, W]`` and ``[B, 2]`` (this model's crop
        size), or :class:`~dcpose_trt.errors.InputError` naming the shapes."""
        from dcpose_trt.errors import InputError

        f, m = as_f32(frames, "frames", 4), as_f32(margin, "margin", 2)
        if f.shape[1] != 9 or tuple(f.shape[2:]) != tuple(self.input_size) or m.shape != (f.shape[0], 2):
            raise InputError(f"expected frames [B, 9, {self.input_size[0]}, {self.input_size[1]}] and margin "
                             f"[B, 2], got {f.shape} and {m.shape}")
        return f, m

    def close(self) -> None:  # noqa: B027 - a backend without resources has nothing to release
        """Release device buffers, sessions and streams now (idempotent)."""

    def __enter__(self) -> Backend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class SplitBackend(Backend):
    """A backend that also runs the backbone and the temporal head separately (the cached mode)."""

    @abc.abstractmethod
    def backbone(self, x: np.ndarray) -> np.ndarray:
        """One frame's crops ``float32[B, 3, H, W]`` → rough heatmaps ``float32[B, 17, h, w]``."""

    @abc.abstractmethod
    def head(self, cur: np.ndarray, prev: np.ndarray, nxt: np.ndarray, margin: np.ndarray) -> np.ndarray:
        """Three ``float32[B, 17, h, w]`` heatmaps + margin ``float32[B, 2]`` → refined heatmaps."""

    def infer_by_parts(self, frames: np.ndarray, margin: np.ndarray) -> np.ndarray:
        """The whole model as its two halves: the backbone on the three frames' crops in one batch of 3B,
        then the head. frames ``float32[B, 9, H, W]``, margin ``float32[B, 2]`` → ``float32[B, 17, h, w]``."""
        b = frames.shape[0]
        hm = self.backbone(np.concatenate([frames[:, 0:3], frames[:, 3:6], frames[:, 6:9]], axis=0))
        return self.head(hm[:b], hm[b : 2 * b], hm[2 * b :], margin)


class GpuPoseBackend(Backend):
    """A backend that crops, infers and decodes on the GPU in one call (the fused path)."""

    @abc.abstractmethod
    def pose(self, window: Sequence[np.ndarray], boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """[current, previous, next] BGR frames + clean boxes ``float32[N, 5]`` →
        (image coordinates ``float32[N, 17, 2]``, peak scores ``float32[N, 17]``)."""


def as_f32(a: np.ndarray, name: str, ndim: int) -> np.ndarray:
    """``a`` as a contiguous float32 array of ``ndim`` dimensions, or InputError naming ``name``."""
    from dcpose_trt.errors import InputError

    arr = np.ascontiguousarray(a, dtype=np.float32)
    if arr.ndim != ndim:
        raise InputError(f"{name} must have {ndim} dimensions, got shape {arr.shape}")
    return arr


def model_files(path: str | os.PathLike | Sequence[str | os.PathLike], exts: Sequence[str],
                what: str) -> Path | tuple[Path, Path]:
    """The model file of ``path``, or its (backbone, head) pair for a split model.

    ``path`` is a file, a ``(backbone, head)`` pair, or a folder holding ``backbone<ext>`` + ``head<ext>``
    (a ``--split`` export or a converted pair) or ``model<ext>``, tried in the order of ``exts``; a
    ``...backbone<ext>`` file with its ``...head<ext>`` beside it counts as the pair. ``what`` names the
    files in errors (``"ONNX"``, ``"model"``).
    """
    from dcpose_trt.errors import InputError

    if not isinstance(path, (str, os.PathLike)):
        items = [Path(p) for p in path]
        if len(items) != 2:
            raise InputError(f"give one {what} file or a (backbone, head) pair, got {len(items)} paths")
        return items[0], items[1]
    p = Path(path)
    if p.is_dir():
        for ext in exts:
            if (p / f"backbone{ext}").is_file() and (p / f"head{ext}").is_file():
                return p / f"backbone{ext}", p / f"head{ext}"
        for ext in exts:
            if (p / f"model{ext}").is_file():
                return p / f"model{ext}"
        names = " / ".join(exts)
        raise InputError(f"{p} holds neither backbone + head ({names}) nor model{exts[0]}")
    if not p.is_file():
        raise InputError(f"{what} file not found: {p}")
    for ext in exts:
        if p.name.endswith(f"backbone{ext}"):
            head = p.parent / (p.name[: -len(f"backbone{ext}")] + f"head{ext}")
            if head.is_file():
                return p, head
    return p


# -- registry ---------------------------------------------------------------------------------------

#: ``opener(path, name, preset, device) -> Backend``: ``path`` is the model file (None: bundled model),
#: ``name`` the requested backend name. The opener checks the file kind and raises InputError.
Opener = Callable[[Path | None, str, "str | None", str], Backend]


@dataclass(frozen=True)
class BackendSpec:
    """One ``--backend`` choice.

    Attributes:
        name: the ``--backend`` value.
        opener: ``"module:function"`` of the opener (imported only when this backend is used, so an
            optional dependency stays optional).
        suffixes: the model kinds it runs as file suffixes (``.pth``, ``.onnx``, ``.plan``...); a
            folder counts as ``.onnx`` (a split export). A checkpoint given to a backend without
            ``.pth`` here is exported on demand into the model cache.
    """

    name: str
    opener: str
    suffixes: tuple[str, ...]

    def open(self, path: Path | None, name: str, preset: str | None, device: str) -> Backend:
        module, func = self.opener.split(":")
        fn: Opener = getattr(importlib.import_module(module), func)
        return fn(path, name, preset, device)


#: ``--backend`` name → how to open a model with it (filled at the bottom of this module).
REGISTRY: dict[str, BackendSpec] = {}


def register_backend(name: str, opener: str, suffixes: Sequence[str]) -> None:
    """Make ``--backend name`` open models of ``suffixes`` with ``opener`` (``"module:function"``)."""
    REGISTRY[name] = BackendSpec(name, opener, tuple(suffixes))


# -- PyTorch ------------------------------------------------------------------------------------------


def _tensor(a: np.ndarray, device: torch.device) -> torch.Tensor:
    import torch

    return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32)).to(device)


class TorchBackend(SplitBackend):
    """PyTorch eager reference backend (CPU, or CUDA when ``device="cuda"``)."""

    name = "torch"

    def __init__(self, model: DCPose, device: str | torch.device = "cpu", single_frame: bool = False):
        import torch

        self.model = model.eval().to(device)
        # The single-frame HRNet baseline: heatmaps of the current frame's backbone alone.
        self.single_frame = single_frame
        self.device = torch.device(device)
        self.preset_name: str = model.preset_name
        h, w = model.preset.image_size
        self.input_size = (int(h), int(w))
        self.last_inference_time = 0.0

    @classmethod
    def from_checkpoint(cls, path: str | os.PathLike | None, preset: str | None = None,
                        device: str = "cpu") -> TorchBackend:
        """The model of ``path`` (read once; :func:`dcpose_trt.model.load_model`), else of ``preset``, else
        the bundled model."""
        from dcpose_trt.model import load_model, read_checkpoint

        ckpt = read_checkpoint(path) if path is not None else None
        model = load_model(ckpt, preset)
        return cls(model, device, single_frame=bool(ckpt is not None and ckpt.meta.get("single_frame", False)))

    def infer(self, frames: np.ndarray, margin: np.ndarray) -> np.ndarray:
        import torch

        t0 = time.perf_counter()
        with torch.inference_mode():
            f = _tensor(frames, self.device)
            if self.single_frame:
                out = self.model.backbone(f[:, :3]).float().cpu().numpy()
            else:
                out = self.model(f, _tensor(margin, self.device)).float().cpu().numpy()
        self.last_inference_time = time.perf_counter() - t0
        return out

    def backbone(self, x: np.ndarray) -> np.ndarray:
        import torch

        with torch.inference_mode():
            return self.model.backbone(_tensor(x, self.device)).float().cpu().numpy()

    def head(self, cur: np.ndarray, prev: np.ndarray, nxt: np.ndarray, margin: np.ndarray) -> np.ndarray:
        import torch

        with torch.inference_mode():
            t = [_tensor(a, self.device) for a in (cur, prev, nxt, margin)]
            return self.model.head(*t).float().cpu().numpy()


def open_torch(path: Path | None, name: str, preset: str | None, device: str) -> TorchBackend:
    """Opener of ``--backend torch``: a checkpoint (``.pth``), or the bundled model when ``path`` is None."""
    from dcpose_trt.errors import InputError

    if path is not None and path.suffix.lower() not in (".pth", ".pt", ".tar"):
        raise InputError(f"the torch backend needs a checkpoint (.pth), got {path}")
    return TorchBackend.from_checkpoint(path, preset, device)


def backend_names() -> tuple[str, ...]:
    """The ``--backend`` choices: ``auto`` and every registered backend."""
    return ("auto", *REGISTRY)


# One line per backend: name, opener, the model files it runs.
register_backend("torch", "dcpose_trt.runtime.backends.base:open_torch", (".pth", ".pt", ".tar"))
register_backend("onnxruntime", "dcpose_trt.runtime.backends.ort_backend:open_onnxruntime", (".onnx",))
register_backend("tensorrt", "dcpose_trt.runtime.tensorrt.trt_backend:open_plan", (".plan", ".engine"))
register_backend("tensorrt-rtx", "dcpose_trt.runtime.tensorrt.trt_backend:open_plan", (".plan", ".engine"))
for _name in ("openvino", "openvino-bf16", "openvino-int8"):  # the precision rides on the name
    register_backend(_name, "dcpose_trt.runtime.backends.ov_backend:open_openvino",
                     (".pth", ".pt", ".tar", ".onnx", ".xml"))
