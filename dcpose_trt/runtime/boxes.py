"""The one box policy of every stream (``run``, ``predict``, the Python API, the examples).

A frame's boxes are cleaned (rows with NaN/inf or non-positive size dropped, a missing score set to 1),
clipped to the frame (a box reaching past the border is cut at it; one wholly outside is dropped: its
keypoints would lie off the image), then capped: at most ``max_persons`` per frame, keeping the
highest-scoring boxes (in their original order), so that a detector gone wild (10^5 boxes) cannot
exhaust memory in the tracker or the batches.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from dcpose_trt.data.transforms import clean_boxes

#: Persons per frame by default (``--max-persons``): crowded PoseTrack frames hold a few dozen.
DEFAULT_MAX_PERSONS = 100


def clip_boxes(boxes: np.ndarray, shape: tuple[int, ...]) -> tuple[np.ndarray, int, int]:
    """Clip boxes ``float32[N, 5]`` (x, y, w, h, score) to a frame of ``shape`` (H, W, ...).

    Returns the boxes that overlap the frame, clipped, plus the counts of clipped and dropped boxes.
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


def cap_boxes(boxes: np.ndarray, max_persons: int | None) -> tuple[np.ndarray, int]:
    """At most ``max_persons`` of ``boxes`` ``float32[N, 5]``: the highest-scoring ones, in their order;
    returns them and how many were left out."""
    if max_persons is None or len(boxes) <= max_persons:
        return boxes, 0
    keep = np.sort(np.argsort(-boxes[:, 4], kind="stable")[:max_persons])
    return boxes[keep], len(boxes) - max_persons


def frame_boxes(boxes: np.ndarray | Sequence | None, shape: tuple[int, ...], max_persons: int | None
                ) -> tuple[np.ndarray, dict[str, int]]:
    """The policy: ``boxes`` (x, y, w, h[, score]) of a frame of ``shape`` → clean boxes ``float32[N, 5]``
    and the counts ``{"boxes_clipped", "boxes_dropped", "boxes_capped"}``.

    Raises:
        InputError: boxes that are not an N×4 or N×5 numeric array.
    """
    b, clipped, dropped = clip_boxes(clean_boxes(boxes), shape)
    b, capped = cap_boxes(b, max_persons)
    return b, {"boxes_clipped": clipped, "boxes_dropped": dropped, "boxes_capped": capped}
