"""``dcpose-trt run``: a video (file, folder or camera) + boxes or a detector → overlay video and poses JSON."""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from dcpose_trt.data.transforms import as_bgr8
from dcpose_trt.data.video import FrameSource
from dcpose_trt.errors import InputError
from dcpose_trt.runtime.boxes import DEFAULT_MAX_PERSONS
from dcpose_trt.runtime.estimator import FramePoses, PoseEstimator
from dcpose_trt.runtime.follow import DEFAULT_DETECT_EVERY, check_detect_every
from dcpose_trt.runtime.io import AtomicVideoWriter, draw_poses, write_json_atomic
from dcpose_trt.runtime.stream import stream_poses

if TYPE_CHECKING:
    from dcpose_trt.runtime.detector import BoxSource

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
    strict: bool = False  # a boxes file that does not fit the video is an error, not a warning
    lenient: bool = False  # a boxes file that fits no frame at all is a warning, not an error
    max_persons: int | None = DEFAULT_MAX_PERSONS  # per frame; the highest-scoring boxes are kept
    # Run the detector on every N-th frame, boxes from the poses in between (not for a boxes file).
    detect_every: int = DEFAULT_DETECT_EVERY


@dataclass
class RunSummary:
    """What a run did. ``latency_ms`` percentiles leave out the warm-up (``warmup_ms``): the frames up
    to the first inference, which pay for lazy initialisation (torch's first call, ORT's allocator)."""

    frames: int
    persons: int
    seconds: float
    latency_ms: dict[str, float]
    backend: str
    warmup_ms: float | None = None
    interrupted: bool = False
    counts: dict[str, int] = field(default_factory=dict)  # skipped/resized frames, clipped/dropped/capped boxes
    boxes: str | None = None  # where the boxes came from (which detector, or what a boxes file matched on)
    detector_ms: dict[str, float] | None = None  # the detector's share of latency_ms (None for a boxes file)

    def to_json(self) -> dict:
        doc = {"frames": self.frames, "persons": self.persons, "seconds": round(self.seconds, 3),
               "fps": round(self.frames / max(self.seconds, 1e-9), 2), "backend": self.backend,
               "latency_ms": {k: round(v, 2) for k, v in self.latency_ms.items()}}
        if self.detector_ms is not None:  # the rest of latency_ms is pose (crops, model, decoding, tracking)
            doc["detector_ms"] = {k: round(v, 2) for k, v in self.detector_ms.items()}
        if self.warmup_ms is not None:
            doc["warmup_ms"] = round(self.warmup_ms, 2)
        if self.boxes:
            doc["boxes"] = self.boxes
        doc.update({k: v for k, v in self.counts.items() if v})
        if self.interrupted:
            doc["interrupted"] = True
        return doc


def check_outputs(cfg: RunConfig) -> None:
    """Output paths are checked before any work (InputError: one line)."""
    from dcpose_trt._atomic import check_distinct, check_writable

    check_distinct((("--out", cfg.out), ("--json", cfg.json_out)))
    for what, path in (("--out", cfg.out), ("--json", cfg.json_out)):
        if path:
            check_writable(path, what, inputs=(cfg.video, cfg.boxes, cfg.model, cfg.detector))


def _latency(lat: list[float], warmup: int) -> tuple[dict[str, float], float | None]:
    """Percentiles over the frames after the warm-up (all frames when nothing else is left)."""
    rest = lat[warmup:] or lat
    arr = np.asarray(rest) if rest else np.zeros(1)
    stats = {"p50": float(np.percentile(arr, 50)), "p90": float(np.percentile(arr, 90)),
             "p99": float(np.percentile(arr, 99)), "mean": float(arr.mean())}
    return stats, (float(sum(lat[:warmup])) if warmup and lat[warmup:] else None)


@dataclass
class _Signals:
    finishing: bool = False  # the outputs are being written: a further SIGTERM waits for them


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[_Signals]:
    """SIGTERM (``kill``, a service manager, a container stop) ends the run like Ctrl-C: outputs closed and
    published with the frames done. Once ``finishing`` is set, SIGTERM no longer interrupts (the outputs
    are being written). Only the main thread can take signals; elsewhere nothing changes."""
    state = _Signals()
    if threading.current_thread() is not threading.main_thread():
        yield state
        return

    def interrupt(signum: int, frame: object) -> None:
        if state.finishing:
            log.warning("signal %d while writing the outputs: finishing them first", signum)
            return
        raise KeyboardInterrupt(f"signal {signum}")

    before = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield state
    finally:
        signal.signal(signal.SIGTERM, before)


def run_video(cfg: RunConfig, estimator: PoseEstimator | None = None, progress: bool = True) -> RunSummary:
    """Pose-estimate a whole video; writes the overlay video and/or the JSON when asked.

    JSON: ``{"frames": [{"frame": i, "persons": [{"track_id", "box": [x, y, w, h, score],
    "keypoints": [[x, y, score] × 17]}]}], "summary": {...}}``. ``frame`` is the frame's position in
    the video (or folder). Ctrl-C stops the run and still writes the frames done so far (the summary
    says ``"interrupted": true``), and so does SIGTERM: the output holds frames 0..k with no gap.
    """
    from tqdm import tqdm

    from dcpose_trt.runtime.detector import open_box_source

    check_outputs(cfg)
    check_detect_every(cfg.detect_every)
    source = FrameSource(cfg.video)
    # A boxes file, a YOLO ONNX, or neither: the built-in detector. Its boxes go through the estimator's box
    # policy (clean, clip to the frame, cap: dcpose_trt.runtime.boxes).
    boxes_fn = open_box_source(cfg.video, source, cfg.boxes, cfg.detector, cfg.strict, cfg.lenient)
    est = estimator or PoseEstimator(cfg.model, backend=cfg.backend, mode=cfg.mode, lookahead=cfg.lookahead,
                                     max_persons=cfg.max_persons)
    writer = AtomicVideoWriter(cfg.out, source.fps) if cfg.out else None
    results: list[FramePoses] = []
    lat: list[float] = []
    warmup = 0  # frames up to and including the first one that ran the model
    det_seen = 0  # detector calls counted into det_lat
    # A stand-in estimator (the serve client) applies the box policy on its server and counts nothing here.
    before = dict(getattr(est, "stats", {}))
    t_start = time.perf_counter()
    ok = interrupted = False
    total = len(source) or None
    if cfg.max_frames and total:
        total = min(total, cfg.max_frames)
    bar = tqdm(total=total, desc="run", unit="frame", disable=None if progress else True)

    det_lat: list[float] = []  # the detector's ms in each frame (0 where --detect-every skipped it)

    def on_frame(index: int, seconds: float, returned: int) -> None:
        nonlocal warmup, det_seen
        lat.append(seconds * 1e3)
        det_lat.append(sum(boxes_fn.ms[det_seen:]))
        det_seen = len(boxes_fn.ms)
        if not warmup and returned:
            warmup = len(lat)
        bar.update(1)
        bar.set_postfix(fps=f"{len(lat) / (time.perf_counter() - t_start):.1f}")

    kept: dict[int, np.ndarray] = {}  # frames in flight, for an estimator whose results carry no image

    def frames() -> Iterator[tuple[int, np.ndarray]]:
        for index, frame in source.indexed():
            kept[index] = frame
            yield index, frame

    def emit(r: FramePoses) -> None:
        image = r.image if r.image is not None else kept.get(r.index)
        for k in [k for k in kept if k <= r.index]:
            del kept[k]
        if writer is not None and image is not None:
            writer.write(draw_poses(as_bgr8(image), r.persons))
        r.image = None  # the JSON needs the poses only
        results.append(r)

    with sigterm_as_interrupt() as signals:
        try:
            try:
                for r in stream_poses(est, frames(), boxes_fn, max_frames=cfg.max_frames, on_frame=on_frame,
                                      detect_every=cfg.detect_every):
                    emit(r)
            except KeyboardInterrupt:
                # Ctrl-C (the only way to end a camera run) or SIGTERM: keep what was done, and finish the
                # frames received (the one in flight and the look-ahead frame), so the output has no gap.
                interrupted = True
                log.warning("interrupted after %d frames; writing the results so far", len(lat))
                signals.finishing = True
                for r in est.flush():
                    emit(r)
            signals.finishing = True
            if not results:
                if interrupted:
                    raise KeyboardInterrupt
                if cfg.max_frames is not None and cfg.max_frames <= 0:
                    raise InputError(f"--max-frames must be at least 1, got {cfg.max_frames}")
                raise InputError(f"no frames could be read from {cfg.video}")
            ok = True
        finally:
            bar.close()
            if writer is not None:
                writer.close(ok)
        return _finish(cfg, est, source, boxes_fn, writer, results, lat, det_lat, warmup, before, t_start,
                       interrupted)


def _finish(cfg: RunConfig, est: PoseEstimator, source: FrameSource, boxes_fn: BoxSource,
            writer: AtomicVideoWriter | None, results: list[FramePoses], lat: list[float], det_lat: list[float],
            warmup: int,
            before: dict[str, int], t_start: float, interrupted: bool) -> RunSummary:
    """The run's counts and warnings, its summary, and the poses JSON (when asked)."""
    after = getattr(est, "stats", {})
    counts = {k: after.get(k, 0) - before.get(k, 0) for k in ("boxes_clipped", "boxes_dropped", "boxes_capped",
                                                              "frames_with_boxes")}
    counts["resized_frames"] = writer.resized if writer is not None else 0
    counts = {"skipped_frames": source.skipped, **counts}
    if counts["skipped_frames"]:
        log.warning("skipped %d unreadable frame(s) of %s", counts["skipped_frames"], cfg.video)
    if counts["resized_frames"]:
        log.warning("%d frame(s) of another size were resized to the first frame's size in %s",
                    counts["resized_frames"], cfg.out)
    if counts["boxes_capped"]:
        log.warning("%d box(es) over --max-persons %s left out (the highest-scoring kept)", counts["boxes_capped"],
                    cfg.max_persons)
    if counts["boxes_clipped"] or counts["boxes_dropped"]:
        # Boxes reaching a little past the border are normal detector output: only dropped ones warn.
        level = logging.WARNING if counts["boxes_dropped"] else logging.INFO
        log.log(level, "%d box(es) clipped to the frame, %d outside it dropped", counts["boxes_clipped"],
                counts["boxes_dropped"])
    if cfg.boxes is not None and counts["frames_with_boxes"] == 0 and not interrupted:
        # (--strict already failed up front for a file that fits no frame of a stream of known length.)
        log.warning("the boxes file %s gave no box inside any frame of %s: no poses", cfg.boxes, cfg.video)
    counts.pop("frames_with_boxes")
    seconds = time.perf_counter() - t_start
    stats, warmup_ms = _latency(lat, warmup)
    # The detector's share of each frame, over all frames: the warm-up is the pose model's (the detectors
    # ran once at load), and with --detect-every N the mean is its cost per frame, paid once per N frames.
    det_stats = _latency(det_lat, 0)[0] if boxes_fn.is_detector else None
    if boxes_fn.is_detector:
        counts["detector_runs"] = len(boxes_fn.ms)  # fewer than the frames with --detect-every N > 1
    summary = RunSummary(len(results), sum(len(r.persons) for r in results), seconds, stats, est.backend.name,
                         warmup_ms, interrupted, counts, boxes_fn.line, det_stats)
    if cfg.json_out:
        write_json_atomic(cfg.json_out, {"frames": [r.to_json() for r in results], "summary": summary.to_json()})
    return summary
