"""Follow people with their poses between detections (``--detect-every N``, building blocks).

Between two runs of the detector, each tracked person's next box comes from its last keypoints: the
extent of the confident keypoints grown by a margin on every side, as PoseTrack top-down pipelines do
(the pose of frame t gives the box of frame t+1; people move little in one frame at 25-30 fps). A person
with too few confident keypoints is dropped until the next detection finds it again.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

#: Grow the keypoints' extent by this fraction of its width/height on each side (the keypoints stop at
#: the joints: the head's top, the hands and the feet reach past them; motion until the next frame too).
MARGIN = 0.2
#: Keypoints scoring below this do not count (heatmap maxval).
MIN_SCORE = 0.2
#: A person with fewer confident keypoints gives no box.
MIN_POINTS = 3


def box_from_keypoints(keypoints: np.ndarray, margin: float = MARGIN, min_score: float = MIN_SCORE,
                       min_points: int = MIN_POINTS) -> np.ndarray | None:
    """The box that follows one person into the next frame.

    Args:
        keypoints: float[K, 3] (x, y, score) in frame pixels, K = 17 (COCO).
        margin: fraction of the extent's width/height added on each side.

    Returns:
        float32[5] (x, y, w, h, score), score = mean score of the confident keypoints; None when fewer
        than ``min_points`` keypoints score ``>= min_score``. The extent's smaller side is taken as at
        least a third of its larger one first, so a person seen edge-on (points on a line) keeps a body.
    """
    kp = np.asarray(keypoints, np.float64).reshape(-1, 3)
    ok = np.isfinite(kp).all(axis=1) & (kp[:, 2] >= min_score)
    if int(ok.sum()) < min_points:
        return None
    pts = kp[ok]
    x0, y0 = pts[:, 0].min(), pts[:, 1].min()
    x1, y1 = pts[:, 0].max(), pts[:, 1].max()
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    w, h = x1 - x0, y1 - y0
    w, h = max(w, h / 3), max(h, w / 3)
    w, h = w * (1 + 2 * margin), h * (1 + 2 * margin)
    return np.array([cx - w / 2, cy - h / 2, w, h, pts[:, 2].mean()], np.float32)


def boxes_from_poses(keypoints: Sequence[np.ndarray], box_scores: Sequence[float] | None = None,
                     margin: float = MARGIN, min_score: float = MIN_SCORE,
                     min_points: int = MIN_POINTS) -> tuple[np.ndarray, np.ndarray]:
    """Boxes for the next frame from one frame's people.

    Args:
        keypoints: float[17, 3] per person.
        box_scores: the score of the box each person was estimated in. The estimator's keypoint scores
            are heatmap peak x box score: given these, points are judged on the peak alone and the new box
            keeps the person's box score (else a followed person's scores would shrink frame after frame).

    Returns:
        (boxes float32[M, 5], kept int64[M]): the boxes of the people that gave one, and their indices in
        ``keypoints`` (to carry track ids over).
    """
    rows, kept = [], []
    for i, kp in enumerate(keypoints):
        score = float(box_scores[i]) if box_scores is not None else None
        if score is not None and score > 0:
            kp = np.array(kp, np.float64, copy=True)
            kp[:, 2] /= score
        b = box_from_keypoints(kp, margin, min_score, min_points)
        if b is not None and score is not None:
            b[4] = score
        if b is not None:
            rows.append(b)
            kept.append(i)
    return np.asarray(rows, np.float32).reshape(-1, 5), np.asarray(kept, np.int64)


class DetectEvery:
    """Boxes from ``detector`` on every ``n``-th frame, from the last observed poses in between.

    The stream loop calls ``boxes(index, frame)`` for each frame and ``observe(keypoints)`` with the
    people of each frame whose poses it has (with look-ahead those arrive a frame late: the boxes then
    come from the poses of frame t-2). Until poses were observed after a detection, the detection's
    boxes are reused. ``n = 1`` is the detector on every frame.
    """

    def __init__(self, detector: Callable[[int, np.ndarray], np.ndarray], n: int, margin: float = MARGIN):
        if n < 1:
            raise ValueError(f"detect every n frames needs n >= 1, got {n}")
        self.detector, self.n, self.margin = detector, n, margin
        self._last = np.zeros((0, 5), np.float32)
        self._count = 0
        self.detections = 0  # frames the detector ran on

    def boxes(self, index: int, frame: np.ndarray) -> np.ndarray:
        """float32[N, 5] (x, y, w, h, score) for this frame."""
        if self._count % self.n == 0 or len(self._last) == 0:
            # Also detect when everyone was lost: nobody to follow until the next scheduled detection.
            self._last = np.asarray(self.detector(index, frame), np.float32).reshape(-1, 5)
            self.detections += 1
            self._count = 0
        self._count += 1
        return self._last

    __call__ = boxes

    def observe(self, keypoints: Sequence[np.ndarray], box_scores: Sequence[float] | None = None) -> None:
        """The newest poses (float[17, 3] per person, and the scores of their boxes, see
        :func:`boxes_from_poses`): the boxes of the frames until the next detection."""
        self._last = boxes_from_poses(keypoints, box_scores, self.margin)[0]
