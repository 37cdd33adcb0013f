"""Frames in (video file, folder of images, camera), person boxes in, overlays and JSON out."""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from dcpose_trt._atomic import atomic_write_text, publish, temp_path
from dcpose_trt.errors import InputError

log = logging.getLogger(__name__)

IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")

# COCO-17 skeleton for drawing.
SKELETON = ((15, 13), (13, 11), (16, 14), (14, 12), (11, 12), (5, 11), (6, 12), (5, 6), (5, 7), (6, 8),
            (7, 9), (8, 10), (1, 2), (0, 1), (0, 2), (1, 3), (2, 4), (3, 5), (4, 6))


def _natural_key(p: Path) -> list:
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", p.name)]


class FrameSource:
    """Iterates BGR uint8 frames from a video file, a folder of images, or a camera index.

    ``names`` holds each frame's file name for a folder (used to match boxes files), else ``None``.
    An unreadable image in a folder is skipped with a warning (``skipped`` counts them); :meth:`indexed`
    gives each frame with its position in the folder, so boxes stay matched after a skip.
    """

    def __init__(self, source: str | os.PathLike | int):
        self.source = source
        self.fps = 30.0
        self.files: list[Path] | None = None
        self.skipped = 0
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
        for _, frame in self.indexed():
            yield frame

    def indexed(self) -> Iterator[tuple[int, np.ndarray]]:
        """``(position, frame)``: the position counts skipped (unreadable) images of a folder too."""
        if self.files is not None:
            for i, p in enumerate(self.files):
                img = cv2.imread(str(p), cv2.IMREAD_UNCHANGED)
                if img is None:
                    # One bad file must not cost the frames around it (a copy cut short, a stray file).
                    self.skipped += 1
                    log.warning("skipping %s: not a readable image", p)
                    continue
                yield i, img
            return
        cap = cv2.VideoCapture(self.index if self.kind == "camera" else str(self.source))
        if not cap.isOpened():
            raise InputError(f"cannot open {'camera ' + str(self.index) if self.kind == 'camera' else self.source}")
        try:
            i = 0
            while True:
                ok, frame = cap.read()
                if not ok:
                    break
                yield i, frame
                i += 1
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

    def _rows(self, index: int) -> list | None:
        rows = self.table.get(index)
        if rows is None and self.names is not None and index < len(self.names):
            rows = self.by_name.get(self.names[index])
        return rows

    def __call__(self, index: int, frame: np.ndarray) -> np.ndarray:
        return np.asarray(self._rows(index) or [], np.float32).reshape(-1, 5)

    def mismatch(self, frames: int) -> str | None:
        """Why this file does not fit a stream of ``frames`` frames (None when it does).

        Catches an empty file, a file of another sequence (no key is a frame number or file name of
        this one) and shifted frame numbers (entries for frames the stream does not have).
        """
        if not self.table:
            return "it holds no person boxes"
        matched = sum(self._rows(i) is not None for i in range(frames))
        if matched == 0:
            keys = ", ".join(map(str, list(self.table)[:3]))
            return (f"none of its {len(self.table)} frame keys (e.g. {keys}) is a frame number (0-{frames - 1}) "
                    "or file name of this video")
        names = set(self.names or ())
        stray = [k for k in self.table
                 if not ((isinstance(k, int) and 0 <= k < frames) or (isinstance(k, str) and Path(k).name in names))]
        if stray:
            return (f"{len(stray)} of its {len(self.table)} frame keys match no frame of this video "
                    f"(e.g. {stray[0]}; frame numbers start at 0)")
        return None


def clip_boxes(boxes: np.ndarray, shape: tuple[int, ...]) -> tuple[np.ndarray, int, int]:
    """Clip boxes ``float32[N, 5]`` (x, y, w, h, score) to a frame of ``shape`` (H, W, ...).

    Returns the boxes that overlap the frame, clipped, plus the counts of clipped and dropped boxes.
    A box outside the frame (or of absurd size) would otherwise give keypoints far off the image.
    """
    b = np.asarray(boxes, np.float32).reshape(-1, 5)
    if len(b) == 0:
        return b, 0, 0
    h, w = float(shape[0]), float(shape[1])
    x0 = np.clip(b[:, 0], 0, w)
    y0 = np.clip(b[:, 1], 0, h)
    x1 = np.clip(b[:, 0] + b[:, 2], 0, w)
    y1 = np.clip(b[:, 1] + b[:, 3], 0, h)
    out = np.stack([x0, y0, x1 - x0, y1 - y0, b[:, 4]], axis=1).astype(np.float32)
    keep = (out[:, 2] > 0) & (out[:, 3] > 0)
    changed = keep & np.any(np.abs(out[:, :4] - b[:, :4]) > 0, axis=1)
    return out[keep], int(changed.sum()), int((~keep).sum())


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
