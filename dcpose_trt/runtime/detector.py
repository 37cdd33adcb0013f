"""Person boxes for a run: a YOLO detector in ONNX (Ultralytics export layout, decoded here: letterbox, NMS,
thresholds), and :func:`open_box_source`, which picks a boxes file, that detector or the built-in one.

The Ultralytics detect export (YOLOv8, YOLO11, ``end2end=False``) has one output ``float32[1, 4 + C, A]``:
per anchor (cx, cy, w, h) in the letterboxed input's pixels followed by C class scores; class 0 is
"person". NMS and the score threshold are applied here (OpenCV's ``NMSBoxes``), then boxes are mapped back
to the frame. YOLO26's default export is NMS-free, ``float32[1, K, 6]`` (x1, y1, x2, y2, score, class):
only the threshold and the person class are applied. docs/detector.md says how to make one.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from dcpose_trt._deps import require
from dcpose_trt.errors import InputError

if TYPE_CHECKING:
    from dcpose_trt.data.video import FrameSource

log = logging.getLogger(__name__)


def letterbox(image: np.ndarray, size: int) -> tuple[np.ndarray, float, tuple[float, float]]:
    """Resize keeping aspect, pad to size×size with grey 114 (Ultralytics). Returns image, gain, (pad_x, pad_y)."""
    h, w = image.shape[:2]
    gain = min(size / h, size / w)
    nw, nh = int(round(w * gain)), int(round(h * gain))
    px, py = (size - nw) / 2, (size - nh) / 2
    resized = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_LINEAR)
    top, left = int(round(py - 0.1)), int(round(px - 0.1))
    out = cv2.copyMakeBorder(resized, top, size - nh - top, left, size - nw - left, cv2.BORDER_CONSTANT,
                             value=(114, 114, 114))
    return out, gain, (float(left), float(top))


def decode_end2end(output: np.ndarray, gain: float, pad: tuple[float, float], conf: float = 0.4,
                   person_class: int = 0) -> np.ndarray:
    """NMS-free Ultralytics output float[1, K, 6] (YOLO26's default export: the top K detections as
    x1, y1, x2, y2, score, class in the letterboxed input's pixels) → person boxes float32[N, 5]."""
    out = np.asarray(output, np.float32).reshape(-1, 6)
    out = out[(out[:, 4] >= conf) & (np.round(out[:, 5]) == person_class)]
    x0, y0 = (out[:, 0] - pad[0]) / gain, (out[:, 1] - pad[1]) / gain
    w, h = (out[:, 2] - out[:, 0]) / gain, (out[:, 3] - out[:, 1]) / gain
    return np.stack([x0, y0, w, h, out[:, 4]], axis=1).astype(np.float32)


def is_end2end(output_shape: tuple[int, ...], metadata: dict[str, str]) -> bool:
    """Whether a YOLO ONNX has the NMS-free [1, K, 6] output: Ultralytics writes ``end2end`` into the
    metadata; without it, a last dim of 6 over at most 1000 rows (K detections, not thousands of anchors)."""
    flag = str(metadata.get("end2end", "")).strip().lower()
    if flag in ("true", "false"):
        return flag == "true"
    return len(output_shape) == 3 and output_shape[-1] == 6 and output_shape[-2] <= 1000


def decode_yolo(output: np.ndarray, gain: float, pad: tuple[float, float], conf: float = 0.4,
                iou: float = 0.45, person_class: int = 0) -> np.ndarray:
    """Ultralytics output float[1, 4 + C, A] (or [1, A, 4 + C]) → person boxes float32[N, 5] (x, y, w, h, score)."""
    out = np.asarray(output, np.float32)
    if out.ndim == 3:
        out = out[0]
    if out.shape[0] > out.shape[1]:  # [A, 4 + C] layout (anchors always outnumber 4 + classes)
        out = out.T
    scores = out[4 + person_class]
    keep = scores >= conf
    if not keep.any():
        return np.zeros((0, 5), np.float32)
    cx, cy, w, h = out[:4, keep]
    s = scores[keep]
    x = (cx - w / 2 - pad[0]) / gain
    y = (cy - h / 2 - pad[1]) / gain
    boxes = np.stack([x, y, w / gain, h / gain], axis=1)
    idx = cv2.dnn.NMSBoxes(boxes.tolist(), s.tolist(), conf, iou)
    idx = np.asarray(idx, np.int64).reshape(-1)
    return np.concatenate([boxes[idx], s[idx, None]], axis=1).astype(np.float32)


class YoloDetector:
    """Person boxes from a YOLO ONNX model through ONNX Runtime (CPU, or CUDA when available)."""

    def __init__(self, path: str | os.PathLike, conf: float = 0.4, iou: float = 0.45):
        path = Path(path)
        if not path.is_file():
            raise InputError(f"detector not found: {path}")
        if path.suffix.lower() != ".onnx":
            raise InputError(f"the detector must be an ONNX file (Ultralytics export), got {path}")
        ort = require("onnxruntime", "onnx", "the YOLO detector")
        providers = [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in ort.get_available_providers()]
        try:
            self.session = ort.InferenceSession(str(path), providers=providers)
        except Exception as exc:  # noqa: BLE001 - ORT raises its own types for bad files
            raise InputError(f"cannot load detector {path}: {str(exc).splitlines()[0][:200]}") from None
        inputs, outputs = self.session.get_inputs(), self.session.get_outputs()
        inp = inputs[0]
        self.input_name = inp.name
        size = inp.shape[-1]
        self.size = int(size) if isinstance(size, int) else 640
        self.conf, self.iou = conf, iou
        # An Ultralytics detector: one image input [1, 3, S, S], first output [1, 4 + C, A] (or [1, A, 4 + C]).
        # Checked by running it once on a blank image, so any other ONNX is one clear line, not a traceback.
        not_yolo = f"{path} is not a YOLO person detector (Ultralytics ONNX export)"
        if len(inputs) != 1 or len(inp.shape) != 4 or inp.shape[1] not in (3, "3"):
            shapes = ", ".join(f"{i.name} {i.shape}" for i in inputs)
            raise InputError(f"{not_yolo}: expected one image input [1, 3, S, S], got {shapes}")
        try:
            out = self.session.run(None, {self.input_name: np.zeros((1, 3, self.size, self.size), np.float32)})[0]
        except Exception as exc:  # noqa: BLE001 - ORT raises its own types
            raise InputError(f"{not_yolo}: running it failed: {str(exc).splitlines()[0][:200]}") from None
        out = np.asarray(out)
        if out.ndim != 3 or min(out.shape[1:]) < 5 or outputs[0].type != "tensor(float)":
            raise InputError(f"{not_yolo}: expected an output [1, 4 + classes, anchors] or [1, K, 6], "
                             f"got {list(out.shape)}")
        self.end2end = is_end2end(out.shape, self.session.get_modelmeta().custom_metadata_map)

    def __call__(self, index: int, frame: np.ndarray) -> np.ndarray:
        img, gain, pad = letterbox(frame, self.size)
        x = img[:, :, ::-1].transpose(2, 0, 1)[None].astype(np.float32) / 255.0
        out = self.session.run(None, {self.input_name: np.ascontiguousarray(x)})[0]
        if self.end2end:
            return decode_end2end(out, gain, pad, self.conf)
        return decode_yolo(out, gain, pad, self.conf, self.iou)


class BoxSource:
    """Where a run's person boxes come from: ``fn(index, frame) -> float32[N, 5]`` and one line saying what
    it is (``kind``: ``file``, ``detector`` or ``builtin``). Each call is timed into ``ms``, so that any
    stream loop can report the detector's cost apart from pose; ``is_detector``: that cost is worth showing."""

    def __init__(self, fn: Callable[[int, np.ndarray], np.ndarray], kind: str, line: str):
        self.fn, self.kind, self.line = fn, kind, line
        self.ms: list[float] = []

    @property
    def is_detector(self) -> bool:
        return self.kind != "file"

    def __call__(self, index: int, frame: np.ndarray) -> np.ndarray:
        t0 = time.perf_counter()
        out = self.fn(index, frame)
        self.ms.append((time.perf_counter() - t0) * 1e3)
        return out


def open_box_source(video: str | os.PathLike | int, source: FrameSource, boxes: str | os.PathLike | None = None,
                    detector: str | os.PathLike | None = None, strict: bool = False, lenient: bool = False,
                    min_score: float = 0.0) -> BoxSource:
    """The boxes of a run: a boxes file, a YOLO ONNX detector, or (neither given) the built-in detector.

    A boxes file is matched to the frames of ``source`` (:class:`~dcpose_trt.data.video.BoxesFromFile`).

    Raises:
        InputError: both given; the boxes file gives no frame a box (a warning instead with ``lenient``),
            or fits only some frames and ``strict`` is set.
    """
    from dcpose_trt.data.boxes import video_name
    from dcpose_trt.data.video import BoxesFromFile

    if boxes is not None and detector is not None:
        raise InputError("give one source of person boxes: --boxes FILE or --detector YOLO.onnx, not both")
    if detector is not None:
        det = YoloDetector(detector)
        return BoxSource(det, "detector", f"person detector {Path(detector).name} (ONNX Runtime, "
                         f"{'/'.join(det.session.get_providers())})")
    if boxes is None:
        from dcpose_trt.runtime.hog_detector import HogDetector

        hog = HogDetector()
        log.warning("no --boxes or --detector: using the %s", hog.description)
        return BoxSource(hog, "builtin", hog.description)
    frames = len(source) or None  # a camera's length is unknown
    table = BoxesFromFile(boxes, source.names(), min_score, frames=frames, video=video_name(video))
    why = table.no_match(video)
    if why:
        if not lenient:
            raise InputError(f"{why} (--lenient runs on without boxes)")
        log.warning("%s", why)
    elif frames is not None:
        partial = table.mismatch(frames)
        if partial:
            if strict:
                raise InputError(f"boxes file {boxes} does not fit {video}: {partial}")
            log.warning("boxes file %s does not fit %s: %s", boxes, video, partial)
    line = f"boxes file {Path(boxes).name}: {table.match.describe()}"
    log.info("%s", line)
    return BoxSource(table, "file", line)
