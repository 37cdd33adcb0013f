"""The unit of work of a many-video run: one whole video in, one result JSON out.

A video is never split across workers: DCPose refines frame t with t-1 and t+1 (look-ahead), the cached
mode re-aligns heatmaps by track id, and the tracker numbers people over the whole video. A split would
need overlapping frames at every cut and a second pass to stitch track ids, and its output would differ
from the single-process run. Archives hold many videos, so whole videos keep every worker busy anyway.

The job code runs the same way in one process (:func:`run_in_process`) and in a Ray actor
(:mod:`dcpose_trt.scale.distributed`), so both write the same bytes.
"""

from __future__ import annotations

import glob
import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from dcpose_trt._atomic import atomic_write_bytes
from dcpose_trt.errors import DcposeTrtError, InputError
from dcpose_trt.runtime.follow import DEFAULT_DETECT_EVERY, check_detect_every
from dcpose_trt.scale.resume import made_by, split_done

#: File endings taken as videos when ``--videos`` names a folder.
VIDEO_EXTS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg")


@dataclass(frozen=True)
class EstimatorConfig:
    """How each worker builds its :class:`~dcpose_trt.runtime.estimator.PoseEstimator`.

    Attributes:
        model: checkpoint, ONNX (file or split folder) or plan; ``None``: the bundled tiny model.
        backend: ``auto | torch | onnxruntime | tensorrt | tensorrt-rtx``.
        mode: ``exact`` or ``cached``.
        lookahead: ``False`` for the causal mode.
        threads: CPU threads of the estimator's session (torch intra-op, ONNX Runtime intra-op, OpenVINO
            inference threads); ``None``: the library default (all cores this process may use).
    """

    model: str | None = None
    backend: str = "auto"
    mode: str = "exact"
    lookahead: bool = True
    threads: int | None = None

    def resolved_backend(self) -> str:
        """The backend ``auto`` picks for this model (:func:`~dcpose_trt.runtime.backends.autoselect.resolve_backend`,
        the one place ``auto`` is decided; a checkpoint is measured once per machine and remembered)."""
        from dcpose_trt.runtime.backends.autoselect import resolve_backend

        return resolve_backend(self.model, self.backend, mode=self.mode, progress=False)

    @property
    def uses_gpu(self) -> bool:
        """TensorRT backends need one GPU per worker; the others run on CPU threads."""
        from dcpose_trt.runtime.backends.registry import REGISTRY

        spec = REGISTRY.get(self.resolved_backend())
        return spec is not None and spec.gpu


def make_estimator(cfg: EstimatorConfig):  # -> PoseEstimator (runtime imported lazily: it pulls in torch)
    """One estimator as ``cfg`` says, its thread count given to the backend's session (every backend, through
    :func:`~dcpose_trt.runtime.backends.opener.open_backend`)."""
    from dcpose_trt.runtime.estimator import PoseEstimator

    return PoseEstimator(cfg.model, backend=cfg.backend, mode=cfg.mode, lookahead=cfg.lookahead, threads=cfg.threads)


@dataclass(frozen=True)
class JobOutput:
    """What a worker returns for one video: the output file's bytes and what it took.

    Attributes:
        data: the JSON bytes to write to the job's ``out``.
        frames: frames run through the estimator. persons: person-frames. seconds: worker-side time.
    """

    name: str
    data: bytes
    frames: int
    persons: int
    seconds: float


class WorkerState:
    """What a worker keeps between videos: its estimator and the box files it has read (one per split)."""

    def __init__(self, cfg: EstimatorConfig):
        self.estimator = make_estimator(cfg)
        self._tables: dict[str, dict] = {}

    def boxes_table(self, path: str) -> dict:
        if path not in self._tables:
            from dcpose_trt.data.posetrack import read_boxes_file

            self._tables[path] = read_boxes_file(path)
        return self._tables[path]


@dataclass(frozen=True)
class PoseTrackJob:
    """One video of a PoseTrack-layout dataset → ``<out>/<video>.json`` (the ``predict`` format).

    Attributes:
        annotation: the video's annotation file. root: dataset root. boxes: ``gt`` or ``detections``.
        detections: the split's detection file (``boxes == "detections"``).
    """

    name: str
    out: str
    annotation: str
    root: str
    boxes: str = "detections"
    detections: str | None = None
    min_score: float = 0.2
    labeled_only: bool = True

    def run(self, state: WorkerState, on_frame: Callable[[], object] | None = None) -> JobOutput:
        from dcpose_trt.data.posetrack import PoseTrackIndex, load_video
        from dcpose_trt.eval.predict import predict_video, video_result_bytes

        t0 = time.perf_counter()
        video = load_video(self.annotation, self.root)
        data = PoseTrackIndex(Path(self.root), Path(self.annotation).parent.name, {video.name: video})
        if self.boxes == "detections":
            assert self.detections is not None
            data.attach_detections(state.boxes_table(self.detections))
        found = predict_video(state.estimator, data, video, self.boxes, self.min_score, self.labeled_only,
                              on_frame)
        persons = sum(len(v) for v in found.values())
        return JobOutput(self.name, video_result_bytes(video, found), len(found), persons, time.perf_counter() - t0)


@dataclass(frozen=True)
class VideoFileJob:
    """One video file (or folder of frames) with a boxes file or a YOLO detector → ``<out>/<stem>.json``.

    The output is ``{"video": name, "frames": [{"frame", "persons": [...]}], "summary": {"frames",
    "persons", "backend"}}``: the ``run`` verb's poses JSON without its timings (which would make two
    runs differ).
    """

    name: str
    out: str
    video: str
    boxes: str | None = None
    detector: str | None = None
    min_score: float = 0.0
    detect_every: int = DEFAULT_DETECT_EVERY  # detector on every N-th frame, poses in between (not a boxes file)

    def run(self, state: WorkerState, on_frame: Callable[[], object] | None = None) -> JobOutput:
        from dcpose_trt.data.video import FrameSource
        from dcpose_trt.runtime.detector import open_box_source
        from dcpose_trt.runtime.stream import stream_poses

        t0 = time.perf_counter()
        source = FrameSource(self.video)
        # A boxes file matched to this video's frames, a YOLO ONNX, or neither: the built-in detector.
        boxes_fn = open_box_source(self.video, source, self.boxes, self.detector, min_score=self.min_score)
        est = state.estimator
        tick = (lambda *_: on_frame()) if on_frame is not None else None
        # The one stream loop: frames keep their positions through unreadable ones, one box policy.
        results = [r for r in stream_poses(est, source.indexed(), boxes_fn, on_frame=tick,
                                           detect_every=self.detect_every)]
        for r in results:
            r.image = None
        if not results:
            raise InputError(f"no frames could be read from {self.video}")
        persons = sum(len(r.persons) for r in results)
        doc = {"video": self.name, "frames": [r.to_json() for r in results],
               "summary": {"frames": len(results), "persons": persons, "backend": est.backend.name}}
        return JobOutput(self.name, json.dumps(doc).encode("utf-8"), len(results), persons, time.perf_counter() - t0)


Job = PoseTrackJob | VideoFileJob


def posetrack_jobs(root: str | Path, split: str, out: str | Path, boxes: str = "detections",
                   detections: str | Path | None = None, min_score: float = 0.2) -> list[PoseTrackJob]:
    """One job per ``<root>/annotations/<split>/*.json``, in name order (the driver reads no annotations)."""
    root = Path(root)
    ann_dir = root / "annotations" / split
    if not ann_dir.is_dir():
        raise InputError(f"no annotation folder {ann_dir}")
    files = sorted(ann_dir.glob("*.json"))
    if not files:
        raise InputError(f"{ann_dir}: no per-video annotation files (*.json)")
    if boxes not in ("gt", "detections"):
        raise InputError(f"--boxes must be 'gt' or 'detections', got {boxes!r}")
    det = None
    if boxes == "detections":
        det = Path(detections) if detections else root / "detections" / f"{split}.json"
        if not det.is_file():
            raise InputError(f"detection file not found: {det} (or use --boxes gt)")
    return [PoseTrackJob(fp.stem, str(Path(out) / f"{fp.stem}.json"), str(fp.resolve()), str(root.resolve()),
                         boxes, str(det.resolve()) if det else None, min_score) for fp in files]


def video_jobs(videos: str, out: str | Path, boxes_dir: str | Path | None = None, detector: str | None = None,
               min_score: float = 0.0, detect_every: int = DEFAULT_DETECT_EVERY) -> list[VideoFileJob]:
    """One job per video file of a folder (by extension, see :data:`VIDEO_EXTS`) or a glob.

    Boxes come from ``<boxes_dir>/<video stem>.json`` (any file ``dcpose-trt run --boxes`` reads), from
    the YOLO ``detector``, or with neither from the built-in HOG people detector; a detector runs on
    every ``detect_every``-th frame (:func:`~dcpose_trt.runtime.stream.stream_poses`).
    """
    check_detect_every(detect_every)
    if boxes_dir is not None and detector is not None:
        raise InputError("with --videos give one source of person boxes: --boxes-dir DIR or --detector "
                         "YOLO.onnx (neither: the built-in HOG people detector)")
    p = Path(videos)
    if p.is_dir():
        paths = sorted(q for q in p.iterdir() if q.suffix.lower() in VIDEO_EXTS)
    else:
        paths = sorted(Path(q) for q in glob.glob(videos))
    if not paths:
        raise InputError(f"no videos found in {videos} (a folder of {', '.join(VIDEO_EXTS)} files, or a glob)")
    stems = [q.stem for q in paths]
    dup = sorted({s for s in stems if stems.count(s) > 1})
    if dup:
        raise InputError(f"two videos would write the same output: {', '.join(dup)}")
    if detector is not None and not Path(detector).is_file():
        raise InputError(f"detector not found: {detector}")
    jobs = []
    missing = []
    for q in paths:
        b = Path(boxes_dir) / f"{q.stem}.json" if boxes_dir is not None else None
        if b is not None and not b.is_file():
            missing.append(b.name)
        jobs.append(VideoFileJob(q.stem, str(Path(out) / f"{q.stem}.json"), str(q.resolve()),
                                 str(b.resolve()) if b is not None else None,
                                 str(Path(detector).resolve()) if detector else None, min_score, detect_every))
    if missing:
        raise InputError(f"no boxes file in {boxes_dir} for {len(missing)} video(s): {', '.join(missing[:5])}"
                         + (" ..." if len(missing) > 5 else ""))
    return jobs


def reason_of(exc: BaseException) -> str:
    """One line for a failed video: our errors as they are, others with their type."""
    msg = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return msg if isinstance(exc, DcposeTrtError) else f"{type(exc).__name__}: {msg}"


@dataclass
class WorkerStats:
    """One worker's share: videos, frames, and seconds spent inside its jobs."""

    label: str
    videos: int = 0
    frames: int = 0
    busy_s: float = 0.0

    @property
    def fps(self) -> float:
        return self.frames / self.busy_s if self.busy_s > 0 else 0.0


@dataclass
class RunReport:
    """What a many-video run did.

    Attributes:
        done / skipped: video names. failed: name -> reason. seconds: wall time from the first job to
        the last. startup_s: cluster connection + workers ready (0 in one process).
        overhead_s: per finished video, driver round trip minus the worker's own time (scheduling and
        result transfer). retries: videos re-queued after a worker died. interrupted: Ctrl-C.
    """

    done: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    frames: int = 0
    persons: int = 0
    seconds: float = 0.0
    startup_s: float = 0.0
    workers: dict[str, WorkerStats] = field(default_factory=dict)
    overhead_s: list[float] = field(default_factory=list)
    retries: int = 0
    interrupted: bool = False
    dashboard: str | None = None
    redone: dict[str, str] = field(default_factory=dict)  # name -> why its existing output was not kept

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    def lines(self) -> list[str]:
        """The summary printed at the end of a run."""
        out = [f"videos: {len(self.done)} done, {len(self.skipped)} skipped, {len(self.failed)} failed"
               + (" (interrupted)" if self.interrupted else "")
               + f"; {self.frames} frames in {self.seconds:.1f} s ({self.fps:.2f} frames/s overall)"]
        out += [f"  {w.label}: {w.videos} videos, {w.frames} frames, {w.fps:.2f} frames/s while busy"
                for w in self.workers.values()]
        if self.startup_s:
            extra = ""
            if self.overhead_s:
                ms = sorted(self.overhead_s)
                extra = (f", per video {1e3 * sum(ms) / len(ms):.0f} ms mean / {1e3 * ms[len(ms) // 2]:.0f} ms "
                         "median (scheduling + result transfer)")
            out.append(f"  Ray overhead: start-up {self.startup_s:.1f} s{extra}; {self.retries} retries")
        for name, why in sorted(self.redone.items()):
            out.append(f"  redone {name}: {why}")
        for name, why in sorted(self.failed.items()):
            out.append(f"  failed {name}: {why}")
        return out


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C during a many-video run, raised after the cleanup; ``report`` says what was finished."""

    def __init__(self, report: RunReport):
        super().__init__("interrupted")
        self.report = report


def write_output(job: Job, out: JobOutput, want: Callable[[Job], dict] | None = None) -> Path:
    """Publish one video's result (atomic: a reader never sees half a file), then its record of what made
    it (``want``; :mod:`dcpose_trt.scale.resume`)."""
    path = atomic_write_bytes(job.out, out.data)
    if want is not None:
        from dcpose_trt.scale.resume import record

        record(job, out.data, want(job))
    return path


def run_in_process(jobs: Sequence[Job], cfg: EstimatorConfig, resume: bool = True, progress: bool = True,
                   state: WorkerState | None = None) -> RunReport:
    """All jobs one after another in this process (the single-process reference of the Ray run).

    A video that fails (corrupt file, bad boxes) is reported with its reason and the others still run.
    """
    from tqdm import tqdm

    want = made_by(cfg)
    report = RunReport()
    todo, report.skipped = split_done(jobs, resume, want, report.redone)
    state = state or WorkerState(cfg)
    w = report.workers.setdefault("in-process", WorkerStats(f"in-process (pid {os.getpid()})"))
    t0 = time.perf_counter()
    bar = tqdm(total=len(todo), desc="predict", unit="video", disable=None if progress else True)
    try:
        for job in todo:
            try:
                out = job.run(state)
            except (DcposeTrtError, OSError, ValueError) as exc:  # this video's input; the others go on
                report.failed[job.name] = reason_of(exc)
                bar.update(1)
                continue
            write_output(job, out, want)
            report.done.append(job.name)
            report.frames += out.frames
            report.persons += out.persons
            w.videos, w.frames, w.busy_s = w.videos + 1, w.frames + out.frames, w.busy_s + out.seconds
            bar.update(1)
            bar.set_postfix(fps=f"{report.frames / (time.perf_counter() - t0):.1f}")
    except KeyboardInterrupt:
        report.interrupted = True
        raise RunInterrupted(report) from None  # a Python caller sees Ctrl-C; finished videos are written
    finally:
        bar.close()
        report.seconds = time.perf_counter() - t0
    return report
