"""Per-video PoseTrack17 (``annolist``) and PoseTrack18 (``images``) annotation files: read and write."""

from __future__ import annotations

import json
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from dcpose_trt.data.posetrack.fields import integer, load_json, number, polygons, unwrap_scalar, xywh
from dcpose_trt.data.posetrack.schema import (
    KEYPOINT_NAMES,
    NUM_JOINTS,
    PT15_TO_COCO17,
    SKELETON,
    Frame,
    Person,
    PoseTrackIndex,
    Video,
    frame_number,
)
from dcpose_trt.errors import DataError


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
        image_id = integer(image_id, f"images[{i}].id", path)
        frames[image_id] = Frame(
            file_name=str(im["file_name"]),
            path=root / str(im["file_name"]),
            index=idx,
            image_id=image_id,
            nframes=integer(im.get("nframes", len(images)), f"images[{i}].nframes", path),
            labeled=bool(im.get("is_labeled", True)),
            ignore_regions=polygons(im.get("ignore_regions_x", []), im.get("ignore_regions_y", []), path),
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
        kp_in = np.array([number(v, f"annotations[{i}].keypoints", path) for v in kp_raw], np.float32)
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
            bbox=xywh(a["bbox"], f"annotations[{i}].bbox", path) if a.get("bbox") is not None else None,
            head_box=(xywh(a["bbox_head"], f"annotations[{i}].bbox_head", path)
                      if a.get("bbox_head") is not None else None),
            track_id=integer(a.get("track_id", -1), f"annotations[{i}].track_id", path),
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
            regions += polygons([xs], [ys], path)
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
            x, y = number(unwrap_scalar(p["x"]), "point x", path), number(unwrap_scalar(p["y"]), "point y", path)
        except (KeyError, TypeError, ValueError):
            raise DataError(f"{path}: annolist[{i}] has a point without id/x/y") from None
        if not 0 <= pid < len(PT15_TO_COCO17):
            raise DataError(f"{path}: annolist[{i}] has point id {pid}, expected 0..14")
        kp[PT15_TO_COCO17[pid]] = (x, y, 1.0)
    head = None
    if all(k in rect for k in ("x1", "y1", "x2", "y2")):
        x1, y1, x2, y2 = (number(unwrap_scalar(rect[k]), f"annorect {k}", path) for k in ("x1", "y1", "x2", "y2"))
        head = (x1, y1, x2 - x1, y2 - y1)
    ann = ~((kp[:, 0] == 0) & (kp[:, 1] == 0) & (kp[:, 2] == 0))
    bbox = None
    if ann.any():  # poseval's convert.py: the keypoint extent x 1.3 about its centre
        xs, ys = kp[ann, 0], kp[ann, 1]
        cx, cy = (xs.max() + xs.min()) / 2, (ys.max() + ys.min()) / 2
        ex, ey = (xs.max() - xs.min()) * 0.65, (ys.max() - ys.min()) * 0.65
        bbox = (float(cx - ex), float(cy - ey), float(2 * ex), float(2 * ey))
    tid = rect.get("track_id")
    return Person(kp, bbox, head, integer(unwrap_scalar(tid), "track_id", path) if tid is not None else -1)


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
