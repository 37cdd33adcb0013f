"""PoseTrack17/18 annotations and person-box files, read into a small in-memory index.

Two annotation formats, one per video and file:

- **PoseTrack18** (``images`` / ``annotations`` / ``categories``, COCO-like): 17 keypoints in COCO
  order (ears always ``0, 0, 0``), ``bbox`` and ``bbox_head`` as ``[x, y, w, h]``, frames named with
  **6 digits, 0-indexed** (``000000.jpg``).
- **PoseTrack17** (``annolist``): 15 points with PoseTrack ids, head box as ``x1/y1/x2/y2``, frames
  named with **8 digits, 1-indexed** (``00000001.jpg``). Points are mapped to the 17-joint COCO order.

Box files (:func:`read_boxes_file`): a COCO/PoseTrack detection list (``image_name`` or ``image_id``,
``bbox`` ``[x, y, w, h]``, ``score``, ``category_id``), a COCO-style dict holding such a list under
``annotations``, or a per-video ``boxes.json`` whose entries carry ``frame`` (and ``file_name``).

Any malformed file raises :class:`~dcpose_trt.errors.DataError` with a one-line reason.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path, PurePosixPath
from typing import Any

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


# ----------------------------------------------------------------------------------------------
# Data classes


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


# ----------------------------------------------------------------------------------------------
# Helpers


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


def load_json(path: Path) -> Any:
    """A JSON document; unreadable or invalid files raise :class:`DataError` naming the file."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror or exc})") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None


def _num(v: Any, what: str, path: Path) -> float:
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
        raise DataError(f"{path}: {what} must be a finite number, got {v!r}")
    return float(v)


def _int(v: Any, what: str, path: Path) -> int:
    x = _num(v, what, path)
    if x != int(x):
        raise DataError(f"{path}: {what} must be an integer, got {v!r}")
    return int(x)


def _box(v: Any, what: str, path: Path) -> Box:
    if not isinstance(v, list | tuple) or len(v) != 4:
        raise DataError(f"{path}: {what} must be [x, y, w, h], got {v!r}")
    return tuple(_num(c, what, path) for c in v)  # type: ignore[return-value]


def unwrap_scalar(v: Any) -> Any:
    """PoseTrack17 wraps scalars in one-element lists (``"x": [12.5]``)."""
    return v[0] if isinstance(v, list) and len(v) == 1 else v


def _polygons(xs: Any, ys: Any, path: Path) -> list[np.ndarray]:
    if not isinstance(xs, list) or not isinstance(ys, list) or len(xs) != len(ys):
        raise DataError(f"{path}: ignore_regions_x and ignore_regions_y must be lists of equal length")
    out = []
    for px, py in zip(xs, ys, strict=True):
        if not isinstance(px, list) or not isinstance(py, list) or len(px) != len(py):
            raise DataError(f"{path}: an ignore region has x and y lists of different lengths")
        if px:
            out.append(np.array([[_num(a, "ignore region x", path), _num(b, "ignore region y", path)]
                                 for a, b in zip(px, py, strict=True)]))  # fmt: skip
    return out


# ----------------------------------------------------------------------------------------------
# Annotation files


def load_video(path: Path | str, root: Path | str | None = None) -> Video:
    """Read one per-video PoseTrack17 (``annolist``) or PoseTrack18 (``images``) annotation file.

    Args:
        path: the JSON file.
        root: dataset root the ``file_name`` entries are relative to. Defaults to the folder two
            levels above ``path`` (``<root>/annotations/<split>/<video>.json``).
    """
    path = Path(path)
    root = Path(root) if root is not None else path.resolve().parent.parent.parent
    doc = load_json(path)
    if isinstance(doc, dict) and "annolist" in doc:
        return _load_pt17(doc, path, root)
    if isinstance(doc, dict) and "images" in doc:
        return _load_pt18(doc, path, root)
    raise DataError(f"{path}: not a PoseTrack annotation file (expected an 'images' or 'annolist' key)")


def _keypoint_order(doc: dict, path: Path) -> list[int] | None:
    """Index map from the file's keypoint order to ours, or None when it is already ours."""
    cats = doc.get("categories")
    if not cats:
        return None
    if not isinstance(cats, list) or not isinstance(cats[0], dict):
        raise DataError(f"{path}: 'categories' must be a list of objects")
    names = cats[0].get("keypoints")
    if names is None:
        return None
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise DataError(f"{path}: categories[0].keypoints must be a list of names")
    if names == list(KEYPOINT_NAMES):
        return None
    return [names.index(n) if n in names else -1 for n in KEYPOINT_NAMES]


def _load_pt18(doc: dict, path: Path, root: Path) -> Video:
    images, anns = doc.get("images"), doc.get("annotations", [])
    if not isinstance(images, list) or not images:
        raise DataError(f"{path}: 'images' must be a non-empty list")
    if not isinstance(anns, list):
        raise DataError(f"{path}: 'annotations' must be a list")
    order = _keypoint_order(doc, path)
    frames: dict[Any, Frame] = {}
    digits = None
    for i, im in enumerate(images):
        if not isinstance(im, dict) or "file_name" not in im:
            raise DataError(f"{path}: images[{i}] has no 'file_name'")
        idx, nd = frame_number(im["file_name"])
        digits = digits or nd
        image_id = im.get("id", im.get("frame_id"))
        if image_id is None:
            raise DataError(f"{path}: images[{i}] has no 'id'")
        image_id = _int(image_id, f"images[{i}].id", path)
        frames[image_id] = Frame(
            file_name=str(im["file_name"]),
            path=root / str(im["file_name"]),
            index=idx,
            image_id=image_id,
            nframes=_int(im.get("nframes", len(images)), f"images[{i}].nframes", path),
            labeled=bool(im.get("is_labeled", True)),
            ignore_regions=_polygons(im.get("ignore_regions_x", []), im.get("ignore_regions_y", []), path),
            width=im.get("width"),
            height=im.get("height"),
        )
    for i, a in enumerate(anns):
        if not isinstance(a, dict) or "image_id" not in a:
            raise DataError(f"{path}: annotations[{i}] has no 'image_id'")
        f = frames.get(a["image_id"]) if isinstance(a["image_id"], int) else None
        if f is None:
            raise DataError(f"{path}: annotations[{i}] refers to unknown image_id {a['image_id']!r}")
        kp_raw = a.get("keypoints") or []
        if not isinstance(kp_raw, list) or len(kp_raw) % 3:
            raise DataError(f"{path}: annotations[{i}].keypoints must be a flat list of x, y, v triples")
        kp_in = np.array([_num(v, f"annotations[{i}].keypoints", path) for v in kp_raw], np.float32)
        kp_in = kp_in.reshape(-1, 3)
        kp = np.zeros((NUM_JOINTS, 3), np.float32)
        if order is None:
            if len(kp_in) not in (0, NUM_JOINTS):
                raise DataError(f"{path}: annotations[{i}] has {len(kp_in)} keypoints, expected 17")
            kp[: len(kp_in)] = kp_in
        else:
            for j, src in enumerate(order):
                if 0 <= src < len(kp_in):
                    kp[j] = kp_in[src]
        f.persons.append(Person(
            keypoints=kp,
            bbox=_box(a["bbox"], f"annotations[{i}].bbox", path) if a.get("bbox") is not None else None,
            head_box=(_box(a["bbox_head"], f"annotations[{i}].bbox_head", path)
                      if a.get("bbox_head") is not None else None),
            track_id=_int(a.get("track_id", -1), f"annotations[{i}].track_id", path),
            id=a.get("id"),
        ))  # fmt: skip
    return _video_from(path, root, list(frames.values()), digits or 6)


def _load_pt17(doc: dict, path: Path, root: Path) -> Video:
    annolist = doc["annolist"]
    if not isinstance(annolist, list) or not annolist:
        raise DataError(f"{path}: 'annolist' must be a non-empty list")
    frames = []
    digits = None
    for i, entry in enumerate(annolist):
        try:
            name = unwrap_scalar(entry["image"])["name"]
        except (KeyError, TypeError, IndexError):
            raise DataError(f"{path}: annolist[{i}] has no image name") from None
        idx, nd = frame_number(name)
        digits = digits or nd
        regions = []
        raw_regions = entry.get("ignore_regions") or []
        if not isinstance(raw_regions, list):
            raise DataError(f"{path}: annolist[{i}].ignore_regions must be a list")
        for r in raw_regions:
            pts = r.get("point", []) if isinstance(r, dict) else []
            xs = [unwrap_scalar(p.get("x")) for p in pts]
            ys = [unwrap_scalar(p.get("y")) for p in pts]
            regions += _polygons([xs], [ys], path)
        rects = entry.get("annorect") or []
        if not isinstance(rects, list):
            raise DataError(f"{path}: annolist[{i}].annorect must be a list")
        persons = [_pt17_person(rect, path, i) for rect in rects]
        labeled = entry.get("is_labeled")
        frames.append(Frame(
            file_name=str(name), path=root / str(name), index=idx, image_id=None, nframes=len(annolist),
            labeled=bool(unwrap_scalar(labeled)) if labeled is not None else bool(persons),
            ignore_regions=regions, persons=persons,
        ))  # fmt: skip
    return _video_from(path, root, frames, digits or 8)


def _pt17_person(rect: dict, path: Path, i: int) -> Person:
    if not isinstance(rect, dict):
        raise DataError(f"{path}: annolist[{i}].annorect entries must be objects")
    kp = np.zeros((NUM_JOINTS, 3), np.float32)
    ap = rect.get("annopoints")
    points = ap[0].get("point", []) if isinstance(ap, list) and ap and isinstance(ap[0], dict) else []
    for p in points or []:
        try:
            pid = int(unwrap_scalar(p["id"]))
            x, y = _num(unwrap_scalar(p["x"]), "point x", path), _num(unwrap_scalar(p["y"]), "point y", path)
        except (KeyError, TypeError, ValueError):
            raise DataError(f"{path}: annolist[{i}] has a point without id/x/y") from None
        if not 0 <= pid < len(PT15_TO_COCO17):
            raise DataError(f"{path}: annolist[{i}] has point id {pid}, expected 0..14")
        kp[PT15_TO_COCO17[pid]] = (x, y, 1.0)
    head = None
    if all(k in rect for k in ("x1", "y1", "x2", "y2")):
        x1, y1, x2, y2 = (_num(unwrap_scalar(rect[k]), f"annorect {k}", path) for k in ("x1", "y1", "x2", "y2"))
        head = (x1, y1, x2 - x1, y2 - y1)
    ann = ~((kp[:, 0] == 0) & (kp[:, 1] == 0) & (kp[:, 2] == 0))
    bbox = None
    if ann.any():  # poseval's convert.py: the keypoint extent x 1.3 about its centre
        xs, ys = kp[ann, 0], kp[ann, 1]
        cx, cy = (xs.max() + xs.min()) / 2, (ys.max() + ys.min()) / 2
        ex, ey = (xs.max() - xs.min()) * 0.65, (ys.max() - ys.min()) * 0.65
        bbox = (float(cx - ex), float(cy - ey), float(2 * ex), float(2 * ey))
    tid = rect.get("track_id")
    return Person(kp, bbox, head, _int(unwrap_scalar(tid), "track_id", path) if tid is not None else -1)


def _video_from(path: Path, root: Path, frames: list[Frame], digits: int) -> Video:
    frames.sort(key=lambda f: f.index)
    nframes = max([f.nframes for f in frames] + [len(frames)])
    image_dir = str(PurePosixPath(frames[0].file_name.replace("\\", "/")).parent)
    return Video(path.stem, frames, nframes, digits, image_dir, root, path)


def load_split(root: Path | str, split: str = "val", annotations: Path | str | None = None) -> PoseTrackIndex:
    """Read every ``<root>/annotations/<split>/*.json`` into a :class:`PoseTrackIndex`.

    Args:
        root: dataset root (image ``file_name`` entries are relative to it).
        split: ``train``, ``val``, ... Defaults to ``val``.
        annotations: folder of per-video JSON files, if not ``<root>/annotations/<split>``.
    """
    root = Path(root)
    ann_dir = Path(annotations) if annotations is not None else root / "annotations" / split
    if not ann_dir.is_dir():
        raise DataError(f"no annotation folder {ann_dir}")
    files = sorted(ann_dir.glob("*.json"))
    if not files:
        raise DataError(f"{ann_dir}: no per-video annotation files (*.json)")
    videos = {}
    for fp in files:
        v = load_video(fp, root)
        videos[v.name] = v
    return PoseTrackIndex(root, split, videos)


# ----------------------------------------------------------------------------------------------
# Writing (the inverse of load_video / read_boxes_file)


def video_document(images: list[dict], annotations: list[dict]) -> dict:
    """The PoseTrack18 per-video document: ``categories`` (person, 17 joints), ``images``, ``annotations``.

    ``images``/``annotations`` are the schema's entries as they are (see :func:`load_video` for the
    fields read back); they are not copied or validated here.
    """
    person = {
        "supercategory": "person",
        "id": 1,
        "name": "person",
        "keypoints": list(KEYPOINT_NAMES),
        "skeleton": [list(s) for s in SKELETON],
    }
    return {"categories": [person], "images": images, "annotations": annotations}


def write_video_annotations(path: Path | str, images: list[dict], annotations: list[dict]) -> Path:
    """Write one video's PoseTrack18 annotation file (compact JSON) atomically; returns ``path``."""
    from dcpose_trt._atomic import atomic_write_text

    return atomic_write_text(path, json.dumps(video_document(images, annotations)))


def write_boxes_file(path: Path | str, entries: list[dict]) -> Path:
    """Write a detection file (a JSON list of COCO detection dicts, see :func:`read_boxes_file`) atomically."""
    from dcpose_trt._atomic import atomic_write_text

    return atomic_write_text(path, json.dumps(entries))


# ----------------------------------------------------------------------------------------------
# Box files


def read_boxes_file(
    path: Path | str, *, min_score: float = 0.0, category_id: int = 1
) -> dict[BoxKey, list[tuple[float, float, float, float, float]]]:
    """Person boxes per frame from a detection or boxes file.

    Accepted: a list of dicts (COCO/PoseTrack detection results, spec §6.1, or the per-video
    ``boxes.json`` of the sample clip), or a dict with such a list under ``annotations``. Each entry
    needs ``bbox`` ``[x, y, w, h]`` and one of ``image_name`` / ``file_name`` (key: str, the name),
    ``image_id`` (key: int) or ``frame`` (key: int, the frame number). A missing ``score`` counts as 1;
    entries of another ``category_id`` (when given) or with ``score < min_score`` are dropped.

    Returns:
        dict: key -> list of ``(x, y, w, h, score)`` in file order. When entries carry both a
        ``frame`` and a ``file_name`` (``boxes.json``), the key is the frame number.
    """
    path = Path(path)
    doc = load_json(path)
    if isinstance(doc, dict):
        doc = doc.get("annotations", doc.get("detections"))
    if not isinstance(doc, list):
        raise DataError(f"{path}: expected a list of box entries (or a dict with an 'annotations' list)")
    out: dict[BoxKey, list[tuple[float, float, float, float, float]]] = {}
    for i, e in enumerate(doc):
        if not isinstance(e, dict):
            raise DataError(f"{path}: entry {i} is not an object")
        if "bbox" not in e:
            raise DataError(f"{path}: entry {i} has no 'bbox'")
        x, y, w, h = _box(e["bbox"], f"entry {i} bbox", path)
        if w < 0 or h < 0:
            raise DataError(f"{path}: entry {i} bbox has a negative size {e['bbox']!r}")
        score = _num(e.get("score", 1.0), f"entry {i} score", path)
        if "category_id" in e and e["category_id"] != category_id:
            continue
        if score < min_score:
            continue
        key: BoxKey
        if "frame" in e:
            key = int(_num(e["frame"], f"entry {i} frame", path))
        elif "image_name" in e or "file_name" in e:
            key = str(e.get("image_name", e.get("file_name")))
        elif "image_id" in e:
            key = int(_num(e["image_id"], f"entry {i} image_id", path))
        else:
            raise DataError(f"{path}: entry {i} has none of image_name, image_id, file_name, frame")
        out.setdefault(key, []).append((x, y, w, h, score))
    return out


@lru_cache(maxsize=512)
def read_frame(path: str) -> np.ndarray:
    """A frame as uint8 BGR (cv2), cached: a frame window reads each image up to three times."""
    import cv2

    img = cv2.imread(path, cv2.IMREAD_COLOR)
    if img is None:
        raise DataError(f"cannot read image {path}")
    return img
