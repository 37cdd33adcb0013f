"""Overlays, videos and JSON out (frames and boxes in are :mod:`dcpose_trt.data.video`)."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import cv2
import numpy as np

from dcpose_trt._atomic import atomic_write_text, publish, temp_path
from dcpose_trt.errors import InputError

log = logging.getLogger(__name__)

# COCO-17 skeleton for drawing.
SKELETON = ((15, 13), (13, 11), (16, 14), (14, 12), (11, 12), (5, 11), (6, 12), (5, 6), (5, 7), (6, 8),
            (7, 9), (8, 10), (1, 2), (0, 1), (0, 2), (1, 3), (2, 4), (3, 5), (4, 6))


def draw_poses(frame: np.ndarray, persons, min_score: float = 0.05) -> np.ndarray:
    """Skeletons and boxes on a copy of ``frame``; colour by track id."""
    out = frame.copy()
    for p in persons:
        tid = int(p.track_id)
        color = tuple(int(c) for c in cv2.cvtColor(np.uint8([[[(tid * 47) % 180, 220, 255]]]), cv2.COLOR_HSV2BGR)[0, 0])
        x, y, w, h = (int(round(float(v))) for v in p.box[:4])
        cv2.rectangle(out, (x, y), (x + w, y + h), color, 1)
        cv2.putText(out, str(tid), (x, max(0, y - 3)), cv2.FONT_HERSHEY_SIMPLEX, 0.5, color, 1, cv2.LINE_AA)
        kp = p.keypoints
        ok = kp[:, 2] >= min_score
        for a, b in SKELETON:
            if ok[a] and ok[b]:
                cv2.line(out, (int(kp[a, 0]), int(kp[a, 1])), (int(kp[b, 0]), int(kp[b, 1])), color, 2, cv2.LINE_AA)
        for j in np.nonzero(ok)[0]:
            cv2.circle(out, (int(kp[j, 0]), int(kp[j, 1])), 3, (255, 255, 255), -1, cv2.LINE_AA)
    return out


class AtomicVideoWriter:
    """mp4 writer that writes to a temporary file and renames it on success (never a half video)."""

    def __init__(self, path: str | os.PathLike, fps: float):
        self.path = Path(path)
        self.tmp = temp_path(self.path, self.path.suffix or ".mp4")
        self.fps = fps
        self._writer: cv2.VideoWriter | None = None
        self._size: tuple[int, int] | None = None  # (W, H) of the first frame: the video's size
        self.frames = 0
        self.resized = 0  # frames of another size, resized to the first one's

    def write(self, frame: np.ndarray) -> None:
        h, w = frame.shape[:2]
        if self._writer is None:
            self._size = (w, h)
            self._writer = cv2.VideoWriter(str(self.tmp), cv2.VideoWriter_fourcc(*"mp4v"), self.fps, (w, h))
            if not self._writer.isOpened():
                raise InputError(f"cannot write video {self.path}")
        if (w, h) != self._size:
            # OpenCV silently drops frames of another size: resize them so the video keeps every frame.
            if self.resized == 0:
                log.warning("frame %d is %dx%d, the video is %dx%d: resizing frames of another size",
                            self.frames, w, h, *self._size)  # type: ignore[misc]
            self.resized += 1
            frame = cv2.resize(frame, self._size, interpolation=cv2.INTER_AREA)
        self._writer.write(frame)
        self.frames += 1

    def close(self, ok: bool = True) -> None:
        if self._writer is not None:
            self._writer.release()
        if ok and self._writer is not None:
            publish(self.tmp, self.path)
        else:
            self.tmp.unlink(missing_ok=True)


def write_json_atomic(path: str | os.PathLike, doc: object) -> None:
    atomic_write_text(path, json.dumps(doc))
