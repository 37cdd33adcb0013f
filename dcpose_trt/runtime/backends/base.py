"""The runner protocol every backend implements (abstract base classes, as Polygraphy's runner base).

:class:`~dcpose_trt.runtime.PoseEstimator` dispatches with ``isinstance``, never by probing attributes:

* :class:`Backend`: ``name``, ``preset_name``, ``input_size``, ``single_frame``, ``max_batch``,
  ``infer(frames, margin) -> heatmaps``, the timing hooks ``last_inference_time`` / ``inference_time`` /
  ``inference_calls``, ``close()``, context manager. ``frames`` is ``float32[B, 9, H, W]`` (channels
  [current, previous, next], RGB, ImageNet-normalised crops), ``margin`` ``float32[B, 2]``; the result is
  refined heatmaps ``float32[B, 17, H/4, W/4]``.
* :class:`SplitBackend` (a :class:`Backend`) adds the two halves the cached mode runs:
  ``backbone(x: float32[B, 3, H, W]) -> float32[B, 17, h, w]`` and
  ``head(cur, prev, nxt, margin) -> float32[B, 17, h, w]``.
* :class:`GpuPoseBackend` (a :class:`Backend`) adds the fused GPU path
  ``pose(window, boxes) -> (coords float32[N, 17, 2], scores float32[N, 17])``: crops, inference and
  decoding on the device.

The public calls (``infer``, ``backbone``, ``head``) are implemented here once: they check the inputs
(rank, dtype, crop size, batch limits; :class:`~dcpose_trt.errors.InputError` naming the shapes), time the
call, and hand contiguous float32 arrays to the backend's ``_infer_impl`` / ``_backbone_impl`` /
``_head_impl``. A backend implements only those, so every backend refuses bad inputs the same way.
"""

from __future__ import annotations

import abc
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dcpose_trt.errors import InputError


@dataclass(frozen=True)
class OpenOptions:
    """What an opener is asked for besides the model file and the backend name.

    Attributes:
        preset: expected preset (a checkpoint without one recorded takes it).
        mode: ``exact`` or ``cached`` (``cached`` needs the backbone + head pair: an exported checkpoint is
            exported as a split pair).
        device: torch device of the torch backend (``cpu``, ``cuda``, ``cuda:1``).
        threads: CPU threads of the session (torch intra-op, ONNX Runtime intra-op, OpenVINO inference
            threads); None: the library default (all cores this process may use).
        progress: progress bars and messages on stderr while exporting or measuring.
    """

    preset: str | None = None
    mode: str = "exact"
    device: str = "cpu"
    threads: int | None = None
    progress: bool = True


class Backend(abc.ABC):
    """What :class:`~dcpose_trt.runtime.PoseEstimator` needs from an inference engine.

    Attributes:
        name: the registry name (``--backend``) or, for a plan, the builder that made it.
        preset_name: the model preset (``tiny-128x96``...). input_size: crop (H, W).
        single_frame: True for the HRNet baseline (the current frame's backbone alone: one crop per
            person instead of three).
        max_batch: the most crops one call takes (None: any; the estimator splits larger frames).
        last_inference_time: seconds of the last public call; inference_time: their sum;
            inference_calls: their count (the timing hooks).
    """

    name: str
    preset_name: str
    input_size: tuple[int, int]
    single_frame: bool = False
    max_batch: int | None = None
    last_inference_time: float = 0.0
    inference_time: float = 0.0
    inference_calls: int = 0

    def infer(self, frames: np.ndarray, margin: np.ndarray) -> np.ndarray:
        """frames ``float32[B, 9, H, W]`` + margin ``float32[B, 2]`` → heatmaps ``float32[B, 17, H/4, W/4]``.

        Raises:
            InputError: frames or margin of another rank, dtype, crop size or batch.
        """
        f, m = self.check_inputs(frames, margin)
        t0 = time.perf_counter()
        out = self._infer_impl(f, m)
        self._timed(t0)
        return out

    @abc.abstractmethod
    def _infer_impl(self, frames: np.ndarray, margin: np.ndarray) -> np.ndarray:
        """:meth:`infer` on checked, contiguous float32 inputs."""

    def _timed(self, t0: float) -> None:
        self.last_inference_time = time.perf_counter() - t0
        self.inference_time += self.last_inference_time
        self.inference_calls += 1

    def check_batch(self, n: int, what: str) -> None:
        """InputError unless ``1 <= n <= max_batch``."""
        if n < 1:
            raise InputError(f"{what} must hold at least one crop, got a batch of {n}")
        if self.max_batch is not None and n > self.max_batch:
            raise InputError(f"{what}: a batch of {n} is over this {self.name} model's limit of {self.max_batch}")

    def check_inputs(self, frames: np.ndarray, margin: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``frames`` and ``margin`` as contiguous float32 ``[B, 9, H, W]`` and ``[B, 2]`` (this model's crop
        size), or :class:`~dcpose_trt.errors.InputError` naming the shapes."""
        f, m = as_f32(frames, "frames", 4), as_f32(margin, "margin", 2)
        if f.shape[1] != 9 or tuple(f.shape[2:]) != tuple(self.input_size) or m.shape != (f.shape[0], 2):
            raise InputError(f"expected frames [B, 9, {self.input_size[0]}, {self.input_size[1]}] and margin "
                             f"[B, 2], got {f.shape} and {m.shape}")
        self.check_batch(f.shape[0], "frames")
        return f, m

    def close(self) -> None:  # noqa: B027 - a backend without resources has nothing to release
        """Release device buffers, sessions and streams now (idempotent)."""

    def __enter__(self) -> Backend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class SplitBackend(Backend):
    """A backend that also runs the backbone and the temporal head separately (the cached mode)."""

    def backbone(self, x: np.ndarray) -> np.ndarray:
        """One frame's crops ``float32[B, 3, H, W]`` → rough heatmaps ``float32[B, 17, h, w]``."""
        x = as_f32(x, "image", 4)
        if tuple(x.shape[1:]) != (3, *self.input_size):
            raise InputError(f"expected crops [B, 3, {self.input_size[0]}, {self.input_size[1]}], got {x.shape}")
        self.check_batch(x.shape[0], "image")
        t0 = time.perf_counter()
        out = self._backbone_impl(x)
        self._timed(t0)
        return out

    def head(self, cur: np.ndarray, prev: np.ndarray, nxt: np.ndarray, margin: np.ndarray) -> np.ndarray:
        """Three ``float32[B, 17, h, w]`` heatmaps + margin ``float32[B, 2]`` → refined heatmaps."""
        hw = (17, self.input_size[0] // 4, self.input_size[1] // 4)
        c, p, n = (as_f32(a, name, 4) for a, name in ((cur, "cur"), (prev, "prev"), (nxt, "next")))
        m = as_f32(margin, "margin", 2)
        b = c.shape[0]
        if any(a.shape != (b, *hw) for a in (c, p, n)) or m.shape != (b, 2):
            raise InputError(f"expected cur, prev, next [B, {', '.join(map(str, hw))}] and margin [B, 2], got "
                             f"{c.shape}, {p.shape}, {n.shape} and {m.shape}")
        self.check_batch(b, "heatmaps")
        t0 = time.perf_counter()
        out = self._head_impl(c, p, n, m)
        self._timed(t0)
        return out

    @abc.abstractmethod
    def _backbone_impl(self, x: np.ndarray) -> np.ndarray:
        """:meth:`backbone` on checked, contiguous float32 crops."""

    @abc.abstractmethod
    def _head_impl(self, cur: np.ndarray, prev: np.ndarray, nxt: np.ndarray, margin: np.ndarray) -> np.ndarray:
        """:meth:`head` on checked, contiguous float32 inputs."""

    def infer_by_parts(self, frames: np.ndarray, margin: np.ndarray) -> np.ndarray:
        """The whole model as its two halves: the backbone on the three frames' crops in one batch of 3B,
        then the head. frames ``float32[B, 9, H, W]``, margin ``float32[B, 2]`` (checked) →
        ``float32[B, 17, h, w]``."""
        b = frames.shape[0]
        x = np.ascontiguousarray(np.concatenate([frames[:, 0:3], frames[:, 3:6], frames[:, 6:9]], axis=0))
        hm = self._backbone_impl(x)
        return self._head_impl(hm[:b], hm[b : 2 * b], hm[2 * b :], margin)


class GpuPoseBackend(Backend):
    """A backend that crops, infers and decodes on the GPU in one call (the fused path)."""

    @abc.abstractmethod
    def pose(self, window: Sequence[np.ndarray], boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """[current, previous, next] BGR frames + clean boxes ``float32[N, 5]`` →
        (image coordinates ``float32[N, 17, 2]``, peak scores ``float32[N, 17]``)."""


def as_f32(a: np.ndarray, name: str, ndim: int) -> np.ndarray:
    """``a`` (a floating-point array) as a contiguous float32 array of ``ndim`` dimensions, or InputError
    naming ``name`` (integer, boolean or object arrays are refused: they are not crops)."""
    arr = np.asarray(a)
    if arr.dtype.kind != "f":
        raise InputError(f"{name} must be a floating-point (float32) array, got dtype {arr.dtype}")
    arr = np.ascontiguousarray(arr, dtype=np.float32)
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
