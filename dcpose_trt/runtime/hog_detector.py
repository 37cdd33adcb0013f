"""The built-in person detector: OpenCV's HOG + linear-SVM people detector (Dalal & Triggs, INRIA).

Used when a run is given neither a boxes file nor a ``--detector`` model: its coefficients are part of
OpenCV itself, so it needs no download. OpenCV 4.x has it in every wheel; OpenCV 5 moved it to the
contrib wheels (``opencv-contrib-python-headless``, what dcpose-trt installs).

Limits (see ``benchmarks/results/detector_choice``): it finds upright, mostly unoccluded people whose
body is roughly 100 px tall or more at the working height; it misses sitting, lying, tangled or small
people and fires on some upright structures. For real footage, give a learned detector (``--detector
YOLO.onnx``, docs/detector.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from dcpose_trt.data.transforms import as_bgr8
from dcpose_trt.errors import MissingDependencyError

#: One line for the user: which detector runs and what it cannot do.
DESCRIPTION = ("built-in OpenCV HOG people detector (no download; finds upright, mostly unoccluded people "
               "about 100 px tall or more, misses small, sitting or tangled ones; for real footage give "
               "--detector YOLO.onnx, see docs/detector.md)")

# The INRIA training windows (64x128) hold a ~96 px tall person centred with a 16 px border (Dalal &
# Triggs 2005): the window minus that border is the person's box, the way the GT boxes are drawn.
_BORDER_X, _BORDER_Y = 12 / 64, 16 / 128


@dataclass(frozen=True)
class HogConfig:
    """How the HOG detector runs.

    Attributes:
        work_height: frames are resized to this height before detection (small frames are enlarged, so
            that small people reach the 128 px window; large ones shrunk, for speed).
        people: ``default`` (64x128 INRIA window) or ``daimler`` (48x96 window).
        win_stride: window step in pixels at each scale. scale: pyramid step.
        hit_threshold: SVM margin a window needs. nms_iou: overlap above which the weaker box is dropped.
        tight: shrink each window to the person inside it (the window's training border removed). Off by
            default: the whole window matched the GT boxes as well or better in the measurement, and the
            pose model wants the limbs inside the box.
    """

    work_height: int = 480
    people: str = "default"
    win_stride: int = 8
    scale: float = 1.05
    hit_threshold: float = 0.0
    nms_iou: float = 0.45
    tight: bool = False


def _descriptor(people: str) -> cv2.HOGDescriptor:
    if not hasattr(cv2, "HOGDescriptor"):
        raise MissingDependencyError(
            f"this OpenCV ({cv2.__version__}) has no HOG people detector (OpenCV 5 keeps it in the contrib "
            "wheels): pip uninstall opencv-python-headless && pip install opencv-contrib-python-headless; "
            "or give --boxes FILE / --detector YOLO.onnx")
    if people == "daimler":
        hog = cv2.HOGDescriptor((48, 96), (16, 16), (8, 8), (8, 8), 9)
        hog.setSVMDetector(cv2.HOGDescriptor_getDaimlerPeopleDetector())
    elif people == "default":
        hog = cv2.HOGDescriptor()
        hog.setSVMDetector(cv2.HOGDescriptor_getDefaultPeopleDetector())
    else:
        raise ValueError(f"people must be 'default' or 'daimler', got {people!r}")
    return hog


class HogDetector:
    """Person boxes ``float32[N, 5]`` (x, y, w, h, score) in frame pixels; score = sigmoid(SVM margin)."""

    name = "hog"
    description = DESCRIPTION

    def __init__(self, cfg: HogConfig | None = None):
        self.cfg = cfg or HogConfig()
        self.hog = _descriptor(self.cfg.people)

    def __call__(self, index: int, frame: np.ndarray) -> np.ndarray:
        """Boxes of one frame (any depth/channels ``FrameSource`` gives); ``index`` is unused."""
        img = as_bgr8(frame)
        c = self.cfg
        gain = c.work_height / img.shape[0]
        if abs(gain - 1.0) > 1e-3:
            size = (max(1, int(round(img.shape[1] * gain))), c.work_height)
            img = cv2.resize(img, size, interpolation=cv2.INTER_AREA if gain < 1 else cv2.INTER_LINEAR)
        rects, weights = self.hog.detectMultiScale(img, hitThreshold=c.hit_threshold,
                                                   winStride=(c.win_stride, c.win_stride), padding=(8, 8),
                                                   scale=c.scale)
        if len(rects) == 0:
            return np.zeros((0, 5), np.float32)
        boxes = np.asarray(rects, np.float32).reshape(-1, 4) / gain
        margin = np.asarray(weights, np.float32).reshape(-1)
        score = 1.0 / (1.0 + np.exp(-margin))
        keep = np.asarray(cv2.dnn.NMSBoxes(boxes.tolist(), score.tolist(), 0.0, c.nms_iou), np.int64).reshape(-1)
        boxes, score = boxes[keep], score[keep]
        if c.tight:
            bx, by = boxes[:, 2] * _BORDER_X, boxes[:, 3] * _BORDER_Y
            boxes = np.stack([boxes[:, 0] + bx, boxes[:, 1] + by, boxes[:, 2] - 2 * bx, boxes[:, 3] - 2 * by], 1)
        return np.concatenate([boxes, score[:, None]], axis=1).astype(np.float32)
