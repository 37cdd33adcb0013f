"""Frames in (video file, folder of images, camera), person boxes in, overlays and JSON out."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from dcpose_trt._atomic import atomic_write_text, publish, temp_path
from dcpose_trt.errors import InputError

IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")

# COCO-17 skeleton for drawing.
SKELETON = ((15, 13), (13, 11), (16, 14), (14, 12), (11, 12), (5, 11), (6, 12), (5, 6), (5, 7), (6, 8),
            (7, 9), (8, 10), (1, 2), (0, 1), (0, 2), (1, 3), (2, 4), (3, 5), (4, 6))


def _natural_key(p: Path) -> list:
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", p.name)]


class FrameSource:
    """Iterates BGR uint8 frames from a video file, a folder of images, or a camera index.

    ``names`` holds each frame's file name for a folder (used to match boxes files), else ``None``.
    """

    def __init__(self, source: str | os.PathLike | int):
        self.source = source
        self.fps = 30.0
        self.files: list[Path] | None = None
        text = str(source)
        if isinstance(source, int) or text.isdigit():
            self.kind = "camera"
            self.index = int(text)
        else:
            path = Path(text)
            if not path.exists():
                raise InputError(f"video not found: {path}")
            if path.is_dir():
                self.kind = "folder"
                self.files = sorted((p for p in path.iterdir() if p.suffix.lower() in IMAGE_EXTS), key=_natural_key)
                if not self.files:
                    raise InputError(f"no images ({', '.join(IMAGE_EXTS)}) in {path}")
            else:
                self.kind = "file"
                cap = cv2.VideoCapture(str(path))
                ok = cap.isOpened()
                n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) if ok else 0
                self.fps = cap.get(cv2.CAP_PROP_FPS) or 30.0 if ok else 30.0
                ok = ok and cap.read()[0]
                cap.release()
                if not ok:
                    raise InputError(f"cannot read any frame from {path} (not a video, or no frames)")
                self.count_hint = n

    def __len__(self) -> int:
        if self.files is not None:
            return len(self.files)
        return max(0, getattr(self, "count_hint", 0))

    def names(self) -> list[str] | None:
        return [p.name for p in self.files] if self.files is not None else None

    def __iter__(self) -> Iterator[np.ndarray]:
        if self.files is not None:
            for p in self.files:
                img = cv2.imread(str(p), cv2.IMREAD_UNCHANGED)
                if img is None:
                    raise InputError(f"cannot read image {p}")
                yield img
            return
        cap = cv2.VideoCapture(self.index if self.kind == "camera" else str(self.source))
        if not cap.isOpened():
            raise InputError(f"cannot open {'camera ' + str(self.index) if self.kind == 'camera' else self.source}")
        try:
            while True:
                ok, frame = cap.read()
                if not ok:
                    break
                yield frame
        finally:
            cap.release()


class BoxesFromFile:
    """Per-frame boxes from a boxes/detection file, looked up by frame number or file name."""

    def __init__(self, path: str | os.PathLike, names: list[str] | None = None, min_score: float = 0.0):
        from dcpose_trt.data.posetrack import read_boxes_file

        self.table = read_boxes_file(path, min_score=min_score)
        self.names = names
        by_tail: dict[str, list] = {}
        for k, v in self.table.items():
            if isinstance(k, str):
                by_tail[Path(k).name] = v
        self.by_name = by_tail

    def __call__(self, index: int, frame: np.ndarray) -> np.ndarray:
        rows = self.table.get(index)
        if rows is None and self.names is not None and index < len(self.names):
            rows = self.by_name.get(self.names[index])
        return np.asarray(rows or [], np.float32).reshape(-1, 5)


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

    def write(self, frame: np.ndarray) -> None:
        if self._writer is None:
            h, w = frame.shape[:2]
            self._writer = cv2.VideoWriter(str(self.tmp), cv2.VideoWriter_fourcc(*"mp4v"), self.fps, (w, h))
            if not self._writer.isOpened():
                raise InputError(f"cannot write video {self.path}")
        self._writer.write(frame)

    def close(self, ok: bool = True) -> None:
        if self._writer is not None:
            self._writer.release()
        if ok and self._writer is not None:
            publish(self.tmp, self.path)
        else:
            self.tmp.unlink(missing_ok=True)


def write_json_atomic(path: str | os.PathLike, doc: object) -> None:
    atomic_write_text(path, json.dumps(doc))
