"""Inference over a PoseTrack-layout dataset → per-video PoseTrack result JSONs (spec §6)."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dcpose_trt._atomic import atomic_write_bytes
from dcpose_trt.data.posetrack import PoseTrackIndex, Video, load_split, read_boxes_file, read_frame
from dcpose_trt.errors import InputError
from dcpose_trt.eval.results import Pose, video_results
from dcpose_trt.runtime.estimator import PoseEstimator

log = logging.getLogger(__name__)


@dataclass
class PredictSummary:
    files: list[Path]
    frames: int
    persons: int
    seconds: float


def _pose(keypoints: np.ndarray, box: np.ndarray) -> Pose:
    # The writer multiplies by the box score itself: hand it the raw heatmap peak.
    raw = np.array(keypoints, np.float32, copy=True)
    raw[:, 2] /= max(float(box[4]), 1e-12)
    return Pose(raw, float(box[4]))


def load_boxes(data: PoseTrackIndex, root: str | Path, split: str, boxes: str,
               detections: str | Path | None = None) -> None:
    """Attach the detection boxes to ``data`` when ``boxes == "detections"`` (file: ``detections`` or
    ``<root>/detections/<split>.json``); check ``boxes``."""
    if boxes == "detections":
        det_path = Path(detections) if detections else Path(root) / "detections" / f"{split}.json"
        data.attach_detections(read_boxes_file(det_path))
    elif boxes != "gt":
        raise InputError(f"--boxes must be 'gt' or 'detections', got {boxes!r}")


def frames_to_predict(estimator: PoseEstimator, video: Video, labeled_only: bool = True) -> int:
    """How many frames :func:`predict_video` runs through the estimator (for progress bars)."""
    if _streams(estimator):
        return video.nframes
    return sum(1 for f in video.frames if f.labeled or not labeled_only)


def _streams(estimator: PoseEstimator) -> bool:
    # Cached and causal modes depend on the stream (tracks, earlier frames): run whole videos through
    # the estimator. The exact look-ahead mode needs only each frame's window, so only labelled frames run.
    return estimator.mode == "cached" or not estimator.lookahead


def predict_video(estimator: PoseEstimator, data: PoseTrackIndex, video: Video, boxes: str = "gt",
                  min_score: float = 0.2, labeled_only: bool = True,
                  on_frame: Callable[[], object] | None = None) -> dict[int, list[Pose]]:
    """Poses of one video: frame number -> people (the estimator is reset first; no state crosses videos).

    ``on_frame`` is called after each frame run (progress).
    """
    found: dict[int, list[Pose]] = {}
    if _streams(estimator):
        estimator.reset()
        for idx in video.frame_indices():
            for r in estimator.process(read_frame(str(video.frame_path(idx))),
                                       data.boxes(video.name, idx, boxes, min_score)):
                found[video.first_index + r.index] = [_pose(p.keypoints, p.box) for p in r.persons]
            if on_frame is not None:
                on_frame()
        for r in estimator.flush():
            found[video.first_index + r.index] = [_pose(p.keypoints, p.box) for p in r.persons]
        return found
    for frame in video.frames:
        if not (frame.labeled or not labeled_only):
            continue
        prev, nxt = video.neighbours(frame.index)
        window = [read_frame(str(video.frame_path(i))) for i in (frame.index, prev, nxt)]
        kps, kept = estimator.estimate(window, data.boxes(video.name, frame.index, boxes, min_score))
        found[frame.index] = [_pose(kps[i], kept[i]) for i in range(len(kept))]
        if on_frame is not None:
            on_frame()
    return found


def video_result_bytes(video: Video, poses: dict[int, list[Pose]]) -> bytes:
    """The bytes of ``<video>.json`` (the same as :func:`~dcpose_trt.eval.results.write_results` writes)."""
    return json.dumps(video_results(video, poses)).encode("utf-8")


def predict_dataset(estimator: PoseEstimator, root: str | Path, split: str = "val", boxes: str = "gt",
                    out: str | Path = "predictions", detections: str | Path | None = None,
                    min_score: float = 0.2, labeled_only: bool = True, progress: bool = True) -> PredictSummary:
    """Run ``estimator`` on every (labelled) frame of a split and write one PoseTrack JSON per video.

    Each video's file is written atomically as soon as the video is done (an interrupted run leaves
    whole files only).

    Args:
        boxes: ``"gt"`` (annotated boxes, score 1) or ``"detections"`` (``detections/<split>.json`` under
            ``root`` unless ``detections`` names a file; boxes below ``min_score`` dropped, spec §6.1).
        labeled_only: predict only frames that carry annotations (the only ones poseval scores);
            every frame still gets an entry in the output.
    """
    from tqdm import tqdm

    data = load_split(root, split)
    load_boxes(data, root, split, boxes, detections)
    t0, n_persons, n_frames = time.perf_counter(), 0, 0
    videos = sorted(data.videos.values(), key=lambda v: v.name)
    total = sum(frames_to_predict(estimator, v, labeled_only) for v in videos)
    bar = tqdm(total=total, desc=f"predict {split}", unit="frame", disable=None if progress else True)
    files = []
    for video in videos:
        found = predict_video(estimator, data, video, boxes, min_score, labeled_only, lambda: bar.update(1))
        files.append(atomic_write_bytes(Path(out) / f"{video.name}.json", video_result_bytes(video, found)))
        n_frames += len(found)
        n_persons += sum(len(v) for v in found.values())
    bar.close()
    return PredictSummary(files, n_frames, n_persons, time.perf_counter() - t0)
