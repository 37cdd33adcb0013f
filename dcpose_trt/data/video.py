"""Frame IO: frames from a video, a folder of images or a camera; 3-frame windows; person boxes by frame.

One reader for every stage that reads frames (``run``, the demo, INT8 calibration, fidelity, the
benchmark). Decoding is OpenCV's (``cv2.VideoCapture`` / ``cv2.imread``).
"""

from __future__ import annotations

import logging
import os
import re
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from dcpose_trt.data.images import read_image
from dcpose_trt.errors import InputError

if TYPE_CHECKING:
    from dcpose_trt.data.posetrack import Frame, PoseTrackIndex, Video

log = logging.getLogger(__name__)

IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")

#: ``([cur, prev, next] BGR frames, boxes float[N, 5])``: one DCPose input window with its person boxes.
Window = tuple[list[np.ndarray], np.ndarray]


def imread(path: str | os.PathLike) -> np.ndarray:
    """BGR ``uint8[H, W, 3]`` image at ``path``.

    Raises:
        InputError: the file is missing or not a readable image.
    """
    img = read_image(path)
    if img is None:
        raise InputError(f"cannot read image {path}")
    return img


def frame_window(t: int, num_frames: int) -> tuple[int, int, tuple[int, int]]:
    """Neighbours of frame ``t`` (0-based) in a sequence of ``num_frames``.

    Returns ``(prev, next, margin)``: ±1 frame, the current frame standing in at either end; the
    margin is (1, 1) even at the ends, as in the official data pipeline.
    """
    if not 0 <= t < num_frames:
        raise InputError(f"frame {t} is outside a sequence of {num_frames} frames")
    prev = t - 1 if t > 0 else t
    nxt = t + 1 if t + 1 < num_frames else t
    return prev, nxt, (1, 1)


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
                img = read_image(p, cv2.IMREAD_UNCHANGED)
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
    """Per-frame boxes of one video from a boxes file (:mod:`dcpose_trt.data.boxes`: the frame key that
    matches the most frames is used, ``matched_on`` says which).

    Args:
        names: a folder's image file names in order (None for a video file or camera).
        frames: frames in the video (None: unknown; ``len(names)`` for a folder).
        video: the video's name (folder name or file stem), to pick its entries from a split-wide file.
    """

    def __init__(self, path: str | os.PathLike, names: list[str] | None = None, min_score: float = 0.0,
                 frames: int | None = None, video: str | None = None):
        from dcpose_trt.data.boxes import load_entries, match_video

        self.path = Path(path)
        self.names = names
        self.video = video
        self.entries = load_entries(path, min_score=min_score)
        self.frames = len(names) if names is not None and frames is None else frames
        self.match = match_video(self.entries, self.frames, names, video)
        self.table = self.match.rows
        self.matched_on = self.match.matched_on

    def rows(self, index: int) -> list | None:
        """The rows ``(x, y, w, h, score)`` of frame ``index``, or None."""
        return self.table.get(index)

    def __call__(self, index: int, frame: np.ndarray) -> np.ndarray:
        return np.asarray(self.rows(index) or [], np.float32).reshape(-1, 5)

    def no_match(self, video: str | os.PathLike) -> str | None:
        """One line naming what was tried when the file gives no frame of ``video`` a box, else None."""
        from dcpose_trt.data.boxes import no_match_message

        return no_match_message(self.path, video, self.match, self.frames, self.names)

    def mismatch(self, frames: int) -> str | None:
        """Why this file does not fit a stream of ``frames`` frames (None when it does).

        Catches an empty file, a file of another sequence (no entry names a frame of this one) and
        shifted frame numbers (entries for frames the stream does not have).
        """
        from dcpose_trt.data.boxes import match_video

        m = self.match if frames == self.frames else match_video(self.entries, frames, self.names, self.video)
        if not self.entries:
            return "it holds no person boxes"
        if not m.matched:
            return f"none of its {len(self.entries)} entries names a frame of this video: tried " + ", ".join(m.tried)
        if m.stray:
            return (f"{m.stray} of its {len(self.entries)} entries match no frame of this video on "
                    f"'{m.matched_on}' (frame numbers start at 0)")
        return None


def video_windows(source: str | os.PathLike, boxes_file: str | os.PathLike) -> Iterator[Window]:
    """``([cur, prev, next], boxes)`` for every frame of a video / frames folder that has boxes.

    Boxes come from ``boxes_file`` (:class:`BoxesFromFile`). A sliding 3-frame buffer keeps memory flat;
    at either end of the stream the current frame stands in for the missing neighbour.
    """
    from dcpose_trt.data.boxes import video_name

    src = FrameSource(source)
    boxes = BoxesFromFile(boxes_file, src.names(), frames=len(src) or None, video=video_name(source))
    why = boxes.no_match(source)
    if why:  # never a silent empty run
        raise InputError(why)
    buf: deque[tuple[int, np.ndarray]] = deque(maxlen=3)

    def emit(cur: tuple[int, np.ndarray], prev: np.ndarray, nxt: np.ndarray) -> Iterator[Window]:
        b = np.asarray(boxes.rows(cur[0]) or [], np.float64).reshape(-1, 5)
        if len(b):
            yield [cur[1], prev, nxt], b

    first = True
    for item in src.indexed():
        buf.append(item)
        if len(buf) == 2 and first:  # first frame: the previous one stands in as itself
            first = False
            yield from emit(buf[0], buf[0][1], buf[1][1])
        if len(buf) == 3:
            yield from emit(buf[1], buf[0][1], buf[2][1])
    if len(buf) == 1:
        yield from emit(buf[0], buf[0][1], buf[0][1])
    elif buf:  # last frame: the next one stands in as itself
        yield from emit(buf[-1], buf[-2][1], buf[-1][1])


def posetrack_windows(index: PoseTrackIndex, boxes_file: str | os.PathLike | None = None
                      ) -> Iterator[tuple[Video, Frame, list[np.ndarray], np.ndarray]]:
    """``(video, frame, [cur, prev, next], boxes)`` for each labeled frame with boxes of a PoseTrack split.

    ``index``: :func:`~dcpose_trt.data.posetrack.load_split` of the split. Boxes are the ground truth,
    or the detections of ``boxes_file`` when given. Sample datasets may list only the labeled frame: a
    neighbour whose image is absent stands in as the current frame.

    Raises:
        InputError: ``boxes_file`` matches no frame of the split, or an image cannot be read.
    """
    from dcpose_trt.data.posetrack import read_boxes_file

    source = "gt"
    if boxes_file is not None:
        if index.attach_detections(read_boxes_file(boxes_file)) == 0:
            raise InputError(f"{boxes_file}: no boxes match the frames of {index.root} ({index.split})")
        source = "detections"
    for video, frame in index.labeled_frames():
        boxes = index.boxes(video.name, frame.index, source=source)
        if not len(boxes):
            continue
        prev, nxt = video.neighbours(frame.index)
        cur = imread(frame.path)
        neighbours = [imread(p) if p.is_file() else cur for p in (video.frame_path(prev), video.frame_path(nxt))]
        yield video, frame, [cur, *neighbours], boxes


def boxes_of_video(table: dict, video: str) -> list[dict]:
    """Entries ``{"frame", "bbox", "score"}`` of one video from a split-wide boxes table.

    ``table`` is :func:`~dcpose_trt.data.posetrack.read_boxes_file` of a file keyed by image path
    (``images/<split>/<video>/<frame>.jpg``); the frame number is the file's stem.
    """
    return [{"frame": int(Path(str(k)).stem), "bbox": list(b[:4]), "score": b[4]}
            for k, rows in table.items() if Path(str(k)).parent.name == video for b in rows]
