"""Boxes files read against the frames of one video: which key of the entries names the frame, and a
clear error when none does.

A boxes file (docs/formats.md, ``dcpose_trt/schemas/boxes.schema.json``) is a list of entries
``{"bbox": [x, y, w, h], "score"?, "category_id"?, <frame key>}``. The frame key may be

- ``frame``: the 0-based position in the video or folder (the sample clip's ``boxes.json``),
- ``frame_id``: the 0-based frame number in its video (what ``dcpose-trt synth`` writes),
- ``image_name`` / ``file_name``: the frame's image file, matched by file name against a folder's images,
  or by its numeric stem (PoseTrack frames are ``000000.jpg``, ``000001.jpg``, ...) as a position,
- ``image_id``: taken as a position (PoseTrack18 ids are not positions: such a file fits a dataset, see
  ``dcpose-trt predict --data``).

When the entries' image paths span several videos (a split-wide detection file), only the entries whose
image folder is named like the video (its folder name, or its file name without extension) are used.
Every key that the entries carry is tried; the one that matches the most frames wins and is reported.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from dcpose_trt.errors import DataError, InputError

Row = tuple[float, float, float, float, float]  # x, y, w, h, score

#: Frame keys in the order they are preferred when two match as many frames.
KEYS = ("frame", "frame_id", "image name", "image number", "image_id")


def _image(e: dict) -> str | None:
    name = e.get("image_name", e.get("file_name"))
    return str(name) if name is not None else None


def _folder(name: str) -> str:
    return PurePosixPath(name.replace("\\", "/")).parent.name


def load_entries(path: str | os.PathLike, min_score: float = 0.0, category_id: int = 1) -> list[dict]:
    """The person entries of a boxes file, checked against its schema; other categories and boxes
    scoring below ``min_score`` dropped (a missing score counts as 1).

    Raises:
        InputError: the file is missing. DataError: not JSON, or not a boxes file (one line saying where).
    """
    import json

    from dcpose_trt.schemas import validate

    path = Path(path)
    if not path.is_file():
        raise InputError(f"boxes file not found: {path}")
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"{path}: not a JSON boxes file ({exc})") from None
    validate(doc, "boxes", path)
    if isinstance(doc, dict):
        doc = doc.get("annotations", doc.get("detections"))
    return [e for e in doc if e.get("category_id", category_id) == category_id
            and float(e.get("score", 1.0)) >= min_score]


def _row(e: dict) -> Row:
    x, y, w, h = (float(v) for v in e["bbox"])
    return (x, y, w, h, float(e.get("score", 1.0)))


def _position(key: str, e: dict, names: dict[str, int] | None) -> int | None:
    """The frame position entry ``e`` names under ``key`` (None: the entry has no such key)."""
    if key in ("frame", "frame_id", "image_id"):
        v = e.get(key)
        return int(v) if v is not None else None
    img = _image(e)
    if img is None:
        return None
    base = PurePosixPath(img.replace("\\", "/")).name
    if key == "image name":
        return names.get(base, -1) if names is not None else None
    stem = PurePosixPath(base).stem
    return int(stem) if stem.isdigit() else None


@dataclass
class VideoBoxes:
    """Boxes of one video by frame position, and how they were matched.

    Attributes:
        rows: frame position -> boxes ``(x, y, w, h, score)`` in file order.
        matched_on: the frame key used (one of :data:`KEYS`), None when nothing matched.
        matched: frames of the video that got boxes. stray: entries naming no frame of the video.
        tried: what each key gave, for the message when nothing matched.
    """

    rows: dict[int, list[Row]] = field(default_factory=dict)
    matched_on: str | None = None
    matched: int = 0
    stray: int = 0
    entries: int = 0
    video_filter: str | None = None
    tried: list[str] = field(default_factory=list)

    def describe(self) -> str:
        where = f" (entries of video {self.video_filter})" if self.video_filter else ""
        return f"matched {self.matched} frame(s) on '{self.matched_on}'{where}"


def _sample(values: Iterable, n: int = 3) -> str:
    vals = list(dict.fromkeys(values))
    return ", ".join(map(str, vals[:n])) + (", ..." if len(vals) > n else "")


def match_video(entries: Sequence[dict], frames: int | None, names: Sequence[str] | None = None,
                video: str | None = None) -> VideoBoxes:
    """Match ``entries`` (:func:`load_entries`) to the frames of one video.

    Args:
        frames: frames in the video (None: unknown, a camera; any position >= 0 counts).
        names: the image file names of a folder of frames, in order (None for a video file).
        video: the video's name (folder name or file stem), to pick its entries from a split-wide file.

    Raises:
        InputError: the file holds several videos' boxes and none is named ``video``.
    """
    out = VideoBoxes(entries=len(entries))
    folders = {_folder(n) for n in (_image(e) for e in entries) if n is not None} - {""}
    if len(folders) > 1:
        mine = [e for e in entries if _image(e) is not None and _folder(_image(e)) == video]  # type: ignore[arg-type]
        if not mine:
            raise InputError(f"the boxes file holds boxes of {len(folders)} videos ({_sample(sorted(folders))}); "
                             f"none is named '{video}' like this video (name the video after its folder)")
        entries, out.video_filter = mine, video
    by_name = {n: i for i, n in enumerate(names)} if names is not None else None
    best: tuple[int, int, str, dict[int, list[Row]], int] | None = None
    for rank, key in enumerate(KEYS):
        table: dict[int, list[Row]] = {}
        stray, seen = 0, []
        for e in entries:
            pos = _position(key, e, by_name)
            if pos is None:
                continue
            seen.append(pos if key != "image name" else PurePosixPath(str(_image(e))).name)
            if pos < 0 or (frames is not None and pos >= frames):
                stray += 1
                continue
            table.setdefault(pos, []).append(_row(e))
        if not seen:
            continue
        out.tried.append(f"'{key}' (values {_sample(seen)}: {len(table)} frame(s))")
        if table and (best is None or (len(table), -rank) > (best[0], -best[1])):
            best = (len(table), rank, key, table, stray)
    if best is not None:
        out.matched, _, out.matched_on, out.rows, out.stray = best
    return out


def no_match_message(path: str | os.PathLike, video: str | os.PathLike, boxes: VideoBoxes, frames: int | None,
                     names: Sequence[str] | None) -> str | None:
    """One line when ``boxes`` gives no frame of the video a box (None when some frame has boxes)."""
    if boxes.matched:
        return None
    if boxes.entries == 0:
        return f"boxes file {path} holds no person boxes (category 1, above the score threshold)"
    span = f"frames 0-{frames - 1}" if frames else "frame positions >= 0"
    own = f"; this video's images are {_sample(names)}" if names else ""
    return (f"boxes file {path} matches no frame of {video} ({span}{own}): tried " + ", ".join(boxes.tried))


def video_name(source: str | os.PathLike | int) -> str | None:
    """The name a split-wide boxes file knows a video by: a folder's name, a file's name without its
    extension (None for a camera)."""
    text = str(source)
    if isinstance(source, int) or text.isdigit():
        return None
    p = Path(text)
    return p.name if p.is_dir() else p.stem
