"""``PoseEstimator``: frames + person boxes in, 17 keypoints per person out, through any backend.

Streaming: DCPose needs frame t+1 to refine frame t, so :meth:`PoseEstimator.process` returns the poses
of the *previous* frame (one frame of look-ahead) and :meth:`PoseEstimator.flush` returns the last one.
With ``lookahead=False`` (causal mode) frame t is refined with t-1 and t-2 and returned at once.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from dcpose_trt.data.transforms import as_bgr8, clean_boxes, decode_heatmaps, make_inputs
from dcpose_trt.errors import InputError
from dcpose_trt.model.presets import get_preset
from dcpose_trt.runtime.backends import Backend, TorchBackend

ASSETS = Path(__file__).resolve().parents[1] / "assets"
BUNDLED_MODEL = ASSETS / "dcpose_tiny.pth"
BACKENDS = ("auto", "torch", "onnxruntime", "tensorrt", "tensorrt-rtx")


@dataclass
class PersonPose:
    """One person: ``keypoints`` float32[17, 3] (x, y, score) in image pixels, ``box`` (x, y, w, h, score)."""

    keypoints: np.ndarray
    box: np.ndarray
    track_id: int = -1

    def to_json(self) -> dict:
        return {
            "track_id": int(self.track_id),
            "box": [round(float(v), 3) for v in self.box],
            "keypoints": [[round(float(v), 3) for v in kp] for kp in self.keypoints],
        }


@dataclass
class FramePoses:
    """The poses of frame ``index`` (0-based position in the stream)."""

    index: int
    persons: list[PersonPose] = field(default_factory=list)

    def to_json(self) -> dict:
        return {"frame": self.index, "persons": [p.to_json() for p in self.persons]}


def bundled_model_path() -> Path | None:
    """The bundled tiny DCPose trained on synthetic videos, if this install has it."""
    return BUNDLED_MODEL if BUNDLED_MODEL.is_file() else None


def make_backend(model: str | os.PathLike | None, backend: str = "auto", preset: str | None = None,
                 device: str = "cpu") -> Backend:
    """Open ``model`` (checkpoint ``.pth``, ``.onnx`` or TensorRT ``.plan``) with the requested backend.

    ``auto`` picks the backend from the file: TensorRT for a plan, ONNX Runtime for ONNX, torch for a
    checkpoint. Without ``model``, the bundled tiny checkpoint is used.
    """
    if backend not in BACKENDS:
        raise InputError(f"unknown backend {backend!r}; choose one of: {', '.join(BACKENDS)}")
    if model is None:
        model = bundled_model_path()
        if model is None and preset is None:
            raise InputError("no model given and no bundled model in this install; pass --model CKPT|ONNX|PLAN")
    path = Path(model) if model is not None else None
    if path is not None and not path.exists():
        raise InputError(f"model file not found: {path}")
    suffix = path.suffix.lower() if path is not None else ".pth"
    if path is not None and path.is_dir():
        suffix = ".onnx"  # a split export directory (backbone.onnx + head.onnx)
    if backend == "auto":
        backend = {".plan": "tensorrt", ".engine": "tensorrt", ".onnx": "onnxruntime"}.get(suffix, "torch")
    if backend == "torch":
        if suffix not in (".pth", ".pt", ".tar"):
            raise InputError(f"the torch backend needs a checkpoint (.pth), got {path}")
        return TorchBackend.from_checkpoint(path, preset, device)
    if backend == "onnxruntime":
        if suffix != ".onnx":
            raise InputError(f"the onnxruntime backend needs an ONNX file; export one with "
                             f"'dcpose-trt export --model {path} --out model.onnx'")
        from dcpose_trt.runtime.ort_backend import OnnxRuntimeBackend

        return OnnxRuntimeBackend(path)
    from dcpose_trt.runtime.trt_backend import TensorRTBackend  # tensorrt / tensorrt-rtx

    return TensorRTBackend(path, backend=backend)


class PoseEstimator:
    """DCPose on a stream of frames.

    Args:
        model: checkpoint (``.pth``), ONNX, TensorRT plan, or ``None`` for the bundled tiny model.
        backend: ``"auto" | "torch" | "onnxruntime" | "tensorrt" | "tensorrt-rtx"``, or a
            :class:`~dcpose_trt.runtime.backends.Backend` instance.
        preset: preset name for a checkpoint without one recorded (default: read from the file).
        lookahead: ``True`` refines frame t with t-1 and t+1 (one frame of latency); ``False`` is the
            causal mode with t-1 and t-2.
        max_batch: persons per backend call; more persons in a frame are split into several calls.
        device: torch device for the torch backend.
    """

    def __init__(self, model: str | os.PathLike | None = None, backend: str | Backend = "auto",
                 preset: str | None = None, lookahead: bool = True, max_batch: int = 32,
                 device: str = "cpu"):
        self.backend: Backend = (backend if not isinstance(backend, str)
                                 else make_backend(model, backend, preset, device))
        self.preset = get_preset(self.backend.preset_name)
        self.lookahead = lookahead
        self.max_batch = max(1, int(max_batch))
        self.reset()

    def reset(self) -> None:
        """Forget the stream (start a new video)."""
        self._frames: list[np.ndarray] = []  # the last up-to-3 frames (BGR uint8)
        self._boxes: list[np.ndarray] = []
        self._next_index = 0  # index of the next frame to be returned
        self._count = 0  # frames received
        self._shape: tuple[int, ...] | None = None

    # -- one frame window ---------------------------------------------------------------------
    def estimate(self, window: Sequence[np.ndarray], boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Poses on the key frame of ``window`` = [current, previous, next] (BGR frames).

        Returns keypoints float32[N, 17, 3] (x, y, heatmap peak × box score) for the N valid boxes
        and those boxes float32[N, 5].
        """
        boxes = clean_boxes(boxes)
        if len(boxes) == 0:
            return np.zeros((0, 17, 3), np.float32), boxes
        h, w = self.preset.image_size
        out = []
        for s in range(0, len(boxes), self.max_batch):
            chunk = boxes[s : s + self.max_batch]
            frames, centers, scales = make_inputs(window, chunk, (h, w), self.preset.mean, self.preset.std)
            margin = np.ones((len(chunk), 2), np.float32)
            heatmaps = self.backend.infer(frames, margin)
            coords, maxvals = decode_heatmaps(heatmaps, centers, scales)
            out.append(np.concatenate([coords, (maxvals * chunk[:, 4:5])[..., None]], axis=-1))
        return np.concatenate(out).astype(np.float32), boxes

    def _result(self, index: int, window: Sequence[np.ndarray], boxes: np.ndarray) -> FramePoses:
        kps, kept = self.estimate(window, boxes)
        persons = [PersonPose(kps[i], kept[i], i) for i in range(len(kept))]
        return FramePoses(index, persons)

    # -- streaming ------------------------------------------------------------------------------
    def process(self, frame: np.ndarray, boxes: np.ndarray | Sequence[Sequence[float]] | None
                ) -> list[FramePoses]:
        """Feed the next frame and its person boxes (x, y, w, h[, score]); returns 0 or 1 results."""
        frame = as_bgr8(frame)
        if self._shape is not None and frame.shape != self._shape:
            # A resolution change starts a new shot: finish the old one and restart the window.
            done = self.flush()
            self._shape = frame.shape
            return done + self.process(frame, boxes)
        self._shape = frame.shape
        self._frames = (self._frames + [frame])[-3:]
        self._boxes = (self._boxes + [clean_boxes(boxes)])[-3:]
        self._count += 1
        f = self._frames
        if not self.lookahead:
            cur = f[-1]
            prev = f[-2] if len(f) >= 2 else cur
            prev2 = f[-3] if len(f) >= 3 else prev
            res = self._result(self._count - 1, [cur, prev, prev2], self._boxes[-1])
            self._next_index = self._count
            return [res]
        if self._count < 2:
            return []
        # Key frame = the second newest; its neighbours are the newest and (if any) the third newest.
        cur, nxt = f[-2], f[-1]
        prev = f[-3] if len(f) >= 3 else cur
        res = self._result(self._count - 2, [cur, prev, nxt], self._boxes[-2])
        self._next_index = self._count - 1
        return [res]

    def flush(self) -> list[FramePoses]:
        """Return the poses of the last frame (its next frame stands in for itself) and reset."""
        out = []
        if self.lookahead and self._count > self._next_index and self._frames:
            cur = self._frames[-1]
            prev = self._frames[-2] if len(self._frames) >= 2 else cur
            out.append(self._result(self._count - 1, [cur, prev, cur], self._boxes[-1]))
        self.reset()
        return out

    def run(self, frames: Iterable[np.ndarray], boxes: Iterable[np.ndarray | Sequence | None]) -> list[FramePoses]:
        """Whole video: poses for every frame, in order."""
        self.reset()
        out: list[FramePoses] = []
        for frame, b in zip(frames, boxes, strict=True):
            out += self.process(frame, b)
        return out + self.flush()
