"""The PoseTrack data model: the 17 joints, persons, frames, videos, a split's index, and where frames are."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path, PurePosixPath

import numpy as np

from dcpose_trt.errors import DataError, InputError

#: The 17 joints, COCO order with PoseTrack semantics (eye slots hold head_bottom / head_top).
KEYPOINT_NAMES: tuple[str, ...] = (
    "nose", "head_bottom", "head_top", "left_ear", "right_ear",
    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
    "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
)  # fmt: skip
NUM_JOINTS = 17
#: The PoseTrack18 skeleton (``categories[0].skeleton``): 1-based joint pairs, as in the files.
SKELETON: tuple[tuple[int, int], ...] = (
    (16, 14), (14, 12), (17, 15), (15, 13), (12, 13), (6, 12), (7, 13), (6, 7), (6, 8), (7, 9),
    (8, 10), (9, 11), (2, 3), (1, 2), (1, 3), (2, 4), (3, 5), (4, 6), (5, 7),
)  # fmt: skip

#: PoseTrack's 15 evaluation joints (ids 0..14, poseval ``Joint``) as indices into the 17 COCO joints.
PT15_TO_COCO17: tuple[int, ...] = (16, 14, 12, 11, 13, 15, 10, 8, 6, 5, 7, 9, 1, 0, 2)
#: COCO17 index -> PoseTrack15 id; the ears (3, 4) have none.
COCO17_TO_PT15: dict[int, int] = {c: p for p, c in enumerate(PT15_TO_COCO17)}

Box = tuple[float, float, float, float]  # x, y, w, h (top-left corner, pixels)
BoxKey = str | int  # image_name (str), or image_id / frame number (int)

_DIGITS_RE = re.compile(r"(\d+)")




@dataclass(frozen=True)
class Person:
    """One annotated person in one frame.

    Attributes:
        keypoints (np.ndarray[17, 3] float32): x, y (pixels), v in COCO order. ``(0, 0, 0)`` marks a
            joint that is not annotated (PoseTrack's convention; the ears always).
        bbox (Box | None): person box ``(x, y, w, h)``; PoseTrack17 has none in the file, so it is
            derived from the keypoints as poseval does (extent x 1.3 about the centre).
        head_box (Box | None): head box ``(x, y, w, h)``; PCKh uses 0.6 x its diagonal.
        track_id (int): person id within the video (-1 when absent).
        id (int | None): annotation id (PoseTrack18).
    """

    keypoints: np.ndarray
    bbox: Box | None
    head_box: Box | None
    track_id: int = -1
    id: int | None = None

    @property
    def annotated(self) -> np.ndarray:
        """bool[17]: joints that carry an annotation (anything but ``(0, 0, 0)``, as poseval reads it)."""
        k = self.keypoints
        return ~((k[:, 0] == 0) & (k[:, 1] == 0) & (k[:, 2] == 0))


@dataclass
class Frame:
    """One listed image of a video.

    Attributes:
        file_name (str): path as written in the annotation (relative to the dataset root).
        path (Path): ``root / file_name``.
        index (int): frame number from the file name (0-based for PoseTrack18, 1-based for 17).
        image_id (int | None): PoseTrack18 image id (``frame_id``).
        nframes (int): frames in the whole video (from the file; not all need be listed).
        labeled (bool): whether the frame was annotated (``is_labeled``).
        ignore_regions (list[np.ndarray[K, 2] float64]): polygons whose inside is not evaluated.
        persons (list[Person]): annotated people.
        width, height (int | None): image size when the file gives it.
    """

    file_name: str
    path: Path
    index: int
    image_id: int | None
    nframes: int
    labeled: bool
    ignore_regions: list[np.ndarray] = field(default_factory=list)
    persons: list[Person] = field(default_factory=list)
    width: int | None = None
    height: int | None = None
    detections: np.ndarray | None = None  # N x 5 (x, y, w, h, score), after attach_detections


@dataclass
class Video:
    """One video: its listed frames, sorted by frame number.

    Attributes:
        name (str): video name, the annotation file's stem (e.g. ``003418_mpii_test``).
        frames (list[Frame]): listed frames (PoseTrack18 val lists every frame; samples may not).
        nframes (int): frames in the video.
        digits (int): 6 (PoseTrack18, 0-indexed) or 8 (PoseTrack17, 1-indexed).
        image_dir (str): folder of the frames relative to the root (e.g. ``images/val/003418_mpii_test``).
        root (Path): dataset root.
        source (Path | None): the annotation file.
    """

    name: str
    frames: list[Frame]
    nframes: int
    digits: int
    image_dir: str
    root: Path
    source: Path | None = None

    @property
    def first_index(self) -> int:
        """Number of the first frame: 0 for PoseTrack18 (6 digits), 1 for PoseTrack17 (8 digits)."""
        return 1 if self.digits == 8 else 0

    def frame_indices(self) -> range:
        """All frame numbers of the video, listed or not."""
        return range(self.first_index, self.first_index + self.nframes)

    def frame_path(self, idx: int) -> Path:
        """Image path of frame number ``idx`` (6 digits for PoseTrack18, 8 for PoseTrack17)."""
        return frame_path(self.root / self.image_dir, idx, self.digits)

    def frame(self, idx: int) -> Frame | None:
        """The listed frame with number ``idx``, or None."""
        for f in self.frames:
            if f.index == idx:
                return f
        return None

    def neighbours(self, idx: int) -> tuple[int, int]:
        """(previous, next) frame numbers for DCPose's window; the current one at a boundary (spec §4.2)."""
        lo, hi = self.first_index, self.first_index + self.nframes - 1
        return (idx - 1 if idx > lo else idx, idx + 1 if idx < hi else idx)


@dataclass
class PoseTrackIndex:
    """All videos of one split. ``videos`` maps the video name to :class:`Video`."""

    root: Path
    split: str
    videos: dict[str, Video]

    def frame_path(self, video: str, idx: int) -> Path:
        """Image path of frame ``idx`` of ``video``."""
        return self._video(video).frame_path(idx)

    def _video(self, video: str) -> Video:
        try:
            return self.videos[video]
        except KeyError:
            raise InputError(f"no video {video!r} in {self.root} ({self.split})") from None

    def labeled_frames(self) -> Iterable[tuple[Video, Frame]]:
        """(video, frame) for every labeled frame with at least one person, in name/frame order."""
        for name in sorted(self.videos):
            v = self.videos[name]
            for f in v.frames:
                if f.labeled and f.persons:
                    yield v, f

    def attach_detections(self, boxes: Mapping[BoxKey, list[tuple[float, ...]]]) -> int:
        """Store detector boxes (from :func:`read_boxes_file`) on the frames they belong to.

        A string key is matched by its last two path components (``<video>/<frame file>``), an int
        key by PoseTrack18 image id. Returns the number of frames that received boxes.
        """
        by_name: dict[str, Frame] = {}
        by_id: dict[int, Frame] = {}
        for v in self.videos.values():
            for f in v.frames:
                by_name[_tail(f.file_name)] = f
                if f.image_id is not None:
                    by_id[f.image_id] = f
        n = 0
        for key, rows in boxes.items():
            f = by_name.get(_tail(key)) if isinstance(key, str) else by_id.get(int(key))
            if f is None:
                continue
            f.detections = np.asarray(rows, np.float64).reshape(-1, 5)
            n += 1
        return n

    def boxes(self, video: str, idx: int, source: str = "gt", min_score: float = 0.2) -> np.ndarray:
        """Person boxes of one frame as N x 5 (x, y, w, h, score) float64.

        Args:
            source (str): ``"gt"`` (annotated boxes, score 1) or ``"detections"`` (needs
                :meth:`attach_detections`; boxes with score < ``min_score`` dropped, spec §6.1).
        """
        f = self._video(video).frame(idx)
        if f is None:
            return np.zeros((0, 5))
        if source == "gt":
            rows = [(*p.bbox, 1.0) for p in f.persons if p.bbox is not None]
            return np.asarray(rows, np.float64).reshape(-1, 5)
        if source == "detections":
            d = f.detections if f.detections is not None else np.zeros((0, 5))
            return d[d[:, 4] >= min_score]
        raise InputError(f"boxes source must be 'gt' or 'detections', got {source!r}")




def frame_path(image_dir: Path | str, idx: int, digits: int = 6) -> Path:
    """``image_dir / <idx, zero-padded to digits>.jpg``; PoseTrack18 uses 6 digits, PoseTrack17 8."""
    if digits not in (6, 8):
        raise InputError(f"frame names have 6 (PoseTrack18) or 8 (PoseTrack17) digits, got {digits}")
    return Path(image_dir) / f"{idx:0{digits}d}.jpg"


def frame_number(file_name: str) -> tuple[int, int]:
    """(frame number, digit count) from a frame file name such as ``images/val/v/000012.jpg``."""
    stem = PurePosixPath(str(file_name).replace("\\", "/")).stem
    m = _DIGITS_RE.match(stem)
    if not m:
        raise DataError(f"cannot read a frame number from file name {file_name!r}")
    return int(m.group(1)), len(m.group(1))


def clean_box(box: Box, width: int, height: int) -> Box:
    """Clip a GT box into the image as the official training loader does (spec §4.3)."""
    x, y, w, h = box
    x1, y1 = max(0.0, x), max(0.0, y)
    x2 = min(width - 1.0, x1 + max(0.0, w - 1))
    y2 = min(height - 1.0, y1 + max(0.0, h - 1))
    return (x1, y1, x2 - x1, y2 - y1)


def _tail(name: str) -> str:
    parts = PurePosixPath(str(name).replace("\\", "/")).parts
    return "/".join(parts[-2:])



@lru_cache(maxsize=512)
def read_frame(path: str) -> np.ndarray:
    """A frame as uint8 BGR (cv2), cached: a frame window reads each image up to three times.

    Raises:
        DataError: the image cannot be read (missing, not an image, or a header claiming more pixels than
            OpenCV decodes: :func:`~dcpose_trt.data.images.read_image`, as every frame reader).
    """
    from dcpose_trt.data.images import read_image

    img = read_image(path)
    if img is None:
        raise DataError(f"cannot read image {path}")
    return img
