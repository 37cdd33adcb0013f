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

Modules: :mod:`.schema` (joints, persons, frames, videos, a split's index), :mod:`.fields` (checked JSON
fields), :mod:`.annotations` (annotation files, read and written), :mod:`.boxes` (box files).
"""

from __future__ import annotations

from dcpose_trt.data.posetrack.annotations import load_split, load_video, video_document, write_video_annotations
from dcpose_trt.data.posetrack.boxes import read_boxes_file, write_boxes_file
from dcpose_trt.data.posetrack.fields import load_json, unwrap_scalar
from dcpose_trt.data.posetrack.schema import (
    COCO17_TO_PT15,
    KEYPOINT_NAMES,
    NUM_JOINTS,
    PT15_TO_COCO17,
    SKELETON,
    Box,
    BoxKey,
    Frame,
    Person,
    PoseTrackIndex,
    Video,
    clean_box,
    frame_number,
    frame_path,
    read_frame,
)

__all__ = [
    "COCO17_TO_PT15",
    "KEYPOINT_NAMES",
    "NUM_JOINTS",
    "PT15_TO_COCO17",
    "SKELETON",
    "Box",
    "BoxKey",
    "Frame",
    "Person",
    "PoseTrackIndex",
    "Video",
    "clean_box",
    "frame_number",
    "frame_path",
    "load_json",
    "load_split",
    "load_video",
    "read_boxes_file",
    "read_frame",
    "unwrap_scalar",
    "video_document",
    "write_boxes_file",
    "write_video_annotations",
]
