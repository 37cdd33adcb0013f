"""Person-box files: detector output (COCO/PoseTrack detection lists) and per-video ``boxes.json``."""

from __future__ import annotations

import json
from pathlib import Path

from dcpose_trt.data.posetrack.fields import load_json, number, xywh
from dcpose_trt.data.posetrack.schema import BoxKey
from dcpose_trt.errors import DataError


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
        x, y, w, h = xywh(e["bbox"], f"entry {i} bbox", path)
        if w < 0 or h < 0:
            raise DataError(f"{path}: entry {i} bbox has a negative size {e['bbox']!r}")
        score = number(e.get("score", 1.0), f"entry {i} score", path)
        if "category_id" in e and e["category_id"] != category_id:
            continue
        if score < min_score:
            continue
        key: BoxKey
        if "frame" in e:
            key = int(number(e["frame"], f"entry {i} frame", path))
        elif "image_name" in e or "file_name" in e:
            key = str(e.get("image_name", e.get("file_name")))
        elif "image_id" in e:
            key = int(number(e["image_id"], f"entry {i} image_id", path))
        else:
            raise DataError(f"{path}: entry {i} has none of image_name, image_id, file_name, frame")
        out.setdefault(key, []).append((x, y, w, h, score))
    return out


def write_boxes_file(path: Path | str, entries: list[dict]) -> Path:
    """Write a detection file (a JSON list of COCO detection dicts, see :func:`read_boxes_file`) atomically."""
    from dcpose_trt._atomic import atomic_write_text

    return atomic_write_text(path, json.dumps(entries))

