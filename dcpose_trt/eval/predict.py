"""Inference over a PoseTrack-layout dataset → per-video PoseTrack result JSONs (spec §6)."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from dcpose_trt.data.posetrack import load_split, read_boxes_file
from dcpose_trt.errors import DataError, InputError
from dcpose_trt.eval.results import Pose, write_results
from dcpose_trt.runtime.estimator import PoseEstimator

log = logging.getLogger(__name__)


@dataclass
class PredictSummary:
    files: list[Path]
    frames: int
    persons: int
    seconds: float


@lru_cache(maxsize=8)
def _imread(path: str) -> np.ndarray:
    img = cv2.imread(path, cv2.IMREAD_COLOR)
    if img is None:
        raise DataError(f"cannot read frame {path}")
    return img


def predict_dataset(estimator: PoseEstimator, root: str | Path, split: str = "val", boxes: str = "gt",
                    out: str | Path = "predictions", detections: str | Path | None = None,
                    min_score: float = 0.2, labeled_only: bool = True, progress: bool = True) -> PredictSummary:
    """Run ``estimator`` on every (labelled) frame of a split and write one PoseTrack JSON per video.

    Args:
        boxes: ``"gt"`` (annotated boxes, score 1) or ``"detections"`` (``detections/<split>.json`` under
            ``root`` unless ``detections`` names a file; boxes below ``min_score`` dropped, spec §6.1).
        labeled_only: predict only frames that carry annotations (the only ones poseval scores);
            every frame still gets an entry in the output.
    """
    from tqdm import tqdm

    data = load_split(root, split)
    if boxes == "detections":
        det_path = Path(detections) if detections else Path(root) / "detections" / f"{split}.json"
        data.attach_detections(read_boxes_file(det_path))
    elif boxes != "gt":
        raise InputError(f"--boxes must be 'gt' or 'detections', got {boxes!r}")
    jobs = [(v, f) for v in data.videos.values() for f in v.frames if f.labeled or not labeled_only]
    poses: dict[str, dict[int, list[Pose]]] = {}
    t0, n_persons = time.perf_counter(), 0
    for video, frame in tqdm(jobs, desc=f"predict {split}", unit="frame", disable=not progress):
        prev, nxt = video.neighbours(frame.index)
        window = [_imread(str(video.frame_path(i))) for i in (frame.index, prev, nxt)]
        b = data.boxes(video.name, frame.index, boxes, min_score)
        kps, kept = estimator.estimate(window, b)
        # The writer multiplies by the box score itself: hand it the raw heatmap peak.
        raw = kps.copy()
        raw[:, :, 2] = kps[:, :, 2] / np.maximum(kept[:, 4:5], 1e-12)
        poses.setdefault(video.name, {})[frame.index] = [Pose(raw[i], float(kept[i, 4])) for i in range(len(kept))]
        n_persons += len(kept)
    files = write_results(out, data.videos.values(), poses)
    return PredictSummary(files, len(jobs), n_persons, time.perf_counter() - t0)
