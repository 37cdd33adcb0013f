"""``dcpose-trt run``: a video (file, folder or camera) + boxes or a detector → overlay video and poses JSON."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dcpose_trt.data.transforms import as_bgr8
from dcpose_trt.errors import InputError
from dcpose_trt.runtime.estimator import FramePoses, PoseEstimator
from dcpose_trt.runtime.io import AtomicVideoWriter, BoxesFromFile, FrameSource, draw_poses, write_json_atomic

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunConfig:
    video: str
    model: str | None = None
    backend: str = "auto"
    mode: str = "exact"
    lookahead: bool = True
    boxes: str | None = None
    detector: str | None = None
    out: str | None = None
    json_out: str | None = None
    max_frames: int | None = None


@dataclass
class RunSummary:
    frames: int
    persons: int
    seconds: float
    latency_ms: dict[str, float]
    backend: str

    def to_json(self) -> dict:
        return {"frames": self.frames, "persons": self.persons, "seconds": round(self.seconds, 3),
                "fps": round(self.frames / max(self.seconds, 1e-9), 2), "backend": self.backend,
                "latency_ms": {k: round(v, 2) for k, v in self.latency_ms.items()}}


def run_video(cfg: RunConfig, estimator: PoseEstimator | None = None, progress: bool = True) -> RunSummary:
    """Pose-estimate a whole video; writes the overlay video and/or the JSON when asked.

    JSON: ``{"frames": [{"frame": i, "persons": [{"track_id", "box": [x, y, w, h, score],
    "keypoints": [[x, y, score] × 17]}]}], "summary": {...}}``.
    """
    from tqdm import tqdm

    if (cfg.boxes is None) == (cfg.detector is None):
        raise InputError("give exactly one source of person boxes: --boxes FILE or --detector YOLO.onnx")
    source = FrameSource(cfg.video)
    boxes_fn: Callable[[int, np.ndarray], np.ndarray]
    if cfg.boxes is not None:
        if not Path(cfg.boxes).is_file():
            raise InputError(f"boxes file not found: {cfg.boxes}")
        boxes_fn = BoxesFromFile(cfg.boxes, source.names())
    else:
        from dcpose_trt.runtime.detector import YoloDetector

        boxes_fn = YoloDetector(str(cfg.detector))
    est = estimator or PoseEstimator(cfg.model, backend=cfg.backend, mode=cfg.mode, lookahead=cfg.lookahead)
    writer = AtomicVideoWriter(cfg.out, source.fps) if cfg.out else None
    frames_kept: dict[int, np.ndarray] = {}
    results: list[FramePoses] = []
    lat: list[float] = []
    t_start = time.perf_counter()
    ok = False

    def emit(done: list[FramePoses]) -> None:
        for r in done:
            results.append(r)
            if writer is not None:
                writer.write(draw_poses(frames_kept.pop(r.index), r.persons))
            else:
                frames_kept.pop(r.index, None)

    total = len(source) or None
    if cfg.max_frames and total:
        total = min(total, cfg.max_frames)
    bar = tqdm(total=total, desc="run", unit="frame", disable=not progress)
    try:
        for i, frame in enumerate(source):
            if cfg.max_frames is not None and i >= cfg.max_frames:
                break
            t0 = time.perf_counter()
            b = boxes_fn(i, frame)
            frames_kept[i] = as_bgr8(frame)
            emit(est.process(frame, b))
            lat.append((time.perf_counter() - t0) * 1e3)
            bar.update(1)
            bar.set_postfix(fps=f"{len(lat) / (time.perf_counter() - t_start):.1f}")
        emit(est.flush())
        if not results:
            raise InputError(f"no frames could be read from {cfg.video}")
        ok = True
    finally:
        bar.close()
        if writer is not None:
            writer.close(ok)
    seconds = time.perf_counter() - t_start
    arr = np.asarray(lat) if lat else np.zeros(1)
    summary = RunSummary(len(results), sum(len(r.persons) for r in results), seconds,
                         {"p50": float(np.percentile(arr, 50)), "p90": float(np.percentile(arr, 90)),
                          "p99": float(np.percentile(arr, 99)), "mean": float(arr.mean())},
                         est.backend.name)
    if cfg.json_out:
        write_json_atomic(cfg.json_out, {"frames": [r.to_json() for r in results], "summary": summary.to_json()})
    return summary
