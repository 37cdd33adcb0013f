"""Stable person ids across frames: IoU matching with Hungarian assignment (scipy).

Each track predicts its next box with a constant-velocity model, so people who cross keep their ids
as long as their boxes move smoothly; unmatched tracks survive ``max_age`` frames. Memory is bounded: at
most ``max_tracks`` tracks are kept (the most recently seen), so one frame's IoU matrix is at most
``max_tracks`` × boxes (the estimator caps the boxes per frame, ``--max-persons``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of boxes ``a`` float[N, ≥4] and ``b`` float[M, ≥4] in (x, y, w, h) → float[N, M]."""
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)))
    ax1, ay1, ax2, ay2 = a[:, 0], a[:, 1], a[:, 0] + a[:, 2], a[:, 1] + a[:, 3]
    bx1, by1, bx2, by2 = b[:, 0], b[:, 1], b[:, 0] + b[:, 2], b[:, 1] + b[:, 3]
    iw = np.clip(np.minimum(ax2[:, None], bx2[None]) - np.maximum(ax1[:, None], bx1[None]), 0, None)
    ih = np.clip(np.minimum(ay2[:, None], by2[None]) - np.maximum(ay1[:, None], by1[None]), 0, None)
    inter = iw * ih
    union = (a[:, 2] * a[:, 3])[:, None] + (b[:, 2] * b[:, 3])[None] - inter
    return inter / np.maximum(union, 1e-9)


@dataclass
class _Track:
    id: int
    box: np.ndarray  # (x, y, w, h)
    velocity: np.ndarray  # per-frame change of (x, y, w, h)
    age: int = 0  # frames since last matched

    def predicted(self) -> np.ndarray:
        return self.box + self.velocity * (self.age + 1)


class IoUTracker:
    """Assigns track ids to each frame's boxes.

    Args:
        iou_threshold: minimum IoU between a track's predicted box and a detection to match.
        max_age: frames a track survives without a match.
        max_tracks: tracks kept at most (the most recently matched); older ones are forgotten.
    """

    def __init__(self, iou_threshold: float = 0.3, max_age: int = 5, max_tracks: int = 1000):
        self.iou_threshold = iou_threshold
        self.max_age = max_age
        self.max_tracks = max(1, int(max_tracks))
        self.reset()

    def reset(self) -> None:
        self._tracks: list[_Track] = []
        self._next_id = 0

    def update(self, boxes: np.ndarray) -> np.ndarray:
        """Match ``boxes`` float[N, ≥4] (x, y, w, h, ...) to tracks; returns int64[N] track ids."""
        boxes = np.asarray(boxes, np.float64).reshape(-1, boxes.shape[-1] if np.ndim(boxes) == 2 else 5)
        ids = np.full(len(boxes), -1, np.int64)
        if self._tracks and len(boxes):
            pred = np.stack([t.predicted() for t in self._tracks])
            iou = iou_matrix(pred, boxes[:, :4])
            rows, cols = linear_sum_assignment(-iou)
            for r, c in zip(rows, cols, strict=True):
                if iou[r, c] >= self.iou_threshold:
                    t = self._tracks[r]
                    new = boxes[c, :4]
                    # Smoothed velocity: robust to detector jitter, still follows real motion.
                    t.velocity = 0.5 * t.velocity + 0.5 * (new - t.box) / (t.age + 1)
                    t.box, t.age = new.copy(), 0
                    ids[c] = t.id
        matched = set(ids[ids >= 0].tolist())
        for t in self._tracks:
            if t.id not in matched:
                t.age += 1
        self._tracks = [t for t in self._tracks if t.age <= self.max_age]
        for c in np.nonzero(ids < 0)[0]:
            ids[c] = self._next_id
            self._tracks.append(_Track(self._next_id, boxes[c, :4].copy(), np.zeros(4)))
            self._next_id += 1
        if len(self._tracks) > self.max_tracks:  # this frame's tracks (age 0) first, then the youngest
            self._tracks = sorted(self._tracks, key=lambda t: t.age)[: self.max_tracks]
        return ids
