"""Detect every N frames, follow people with their poses in between: PoseTrack AP and frames/s per N.

Runs the bundled model (exact mode, look-ahead) over every frame of a synthetic val set, with boxes from

- ``gt``: the ground-truth boxes on every frame (the reference),
- ``hog``: the built-in HOG people detector, run on every N-th frame,
- ``synth-detections``: the set's own detections file (a detector that works on these figures) on every
  N-th frame,

and between two detections each person's box from its last keypoints
(:class:`dcpose_trt.runtime.follow.DetectEvery`). With look-ahead the poses of frame t are out when frame
t+1 has gone in, so the boxes of frame t+1 come from the poses of frame t-1. Writes ``results.json``.

    python -m benchmarks.detector_every --out benchmarks/results/detector_every
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from dcpose_trt.data.posetrack import PoseTrackIndex, Video, load_split, read_boxes_file, read_frame
from dcpose_trt.eval.posetrack_ap import evaluate_dirs
from dcpose_trt.eval.results import Pose, video_results
from dcpose_trt.runtime.estimator import PoseEstimator
from dcpose_trt.runtime.follow import DetectEvery
from dcpose_trt.runtime.hog_detector import HogDetector

Detector = Callable[[Video, int, np.ndarray], np.ndarray]


def _pose(p) -> Pose:
    raw = np.array(p.keypoints, np.float32, copy=True)
    raw[:, 2] /= max(float(p.box[4]), 1e-12)  # the writer multiplies by the box score itself
    return Pose(raw, float(p.box[4]))


def run_video(est: PoseEstimator, video: Video, detector: Detector, n: int) -> tuple[dict[int, list[Pose]], int]:
    """Poses per frame number of one video, and how many frames the detector ran on."""
    est.reset()
    follow = DetectEvery(lambda i, frame: detector(video, i, frame), n)
    found: dict[int, list[Pose]] = {}
    for idx in video.frame_indices():
        frame = read_frame(str(video.frame_path(idx)))
        done = est.process(frame, follow(idx, frame))  # boxes as any source gives them to the estimator
        for r in done:
            found[video.first_index + r.index] = [_pose(p) for p in r.persons]
        if done:
            persons = done[-1].persons
            follow.observe([p.keypoints for p in persons], [float(p.box[4]) for p in persons])
    for r in est.flush():
        found[video.first_index + r.index] = [_pose(p) for p in r.persons]
    return found, follow.detections


def measure(est: PoseEstimator, data: PoseTrackIndex, gt_dir: Path, detector: Detector, n: int) -> dict:
    frames = detections = 0
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as pred:
        for video in data.videos.values():
            found, d = run_video(est, video, detector, n)
            frames += len(list(video.frame_indices()))
            detections += d
            (Path(pred) / f"{video.name}.json").write_text(json.dumps(video_results(video, found)))
        seconds = time.perf_counter() - t0
        ap = evaluate_dirs(gt_dir, pred)
    return {"mean_ap": round(ap.table["Mean"], 2), "ap": {k: round(v, 2) for k, v in ap.table.items()},
            "frames": frames, "detector_runs": detections, "seconds": round(seconds, 2),
            "fps": round(frames / seconds, 2)}


def main(argv: list[str] | None = None) -> int:
    from benchmarks.machine import loadavg, machine_info
    from dcpose_trt.data.synth import SynthConfig, generate

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="benchmarks/results/detector_every")
    p.add_argument("--videos", type=int, default=4, help="synthetic val videos (default: %(default)s)")
    p.add_argument("--frames", type=int, default=30, help="frames per video (default: %(default)s)")
    p.add_argument("--every", default="1,2,5,10", help="values of N (default: %(default)s)")
    p.add_argument("--backend", default="torch", help="pose backend for the bundled model (default: %(default)s)")
    args = p.parse_args(argv)
    every = [int(v) for v in args.every.split(",")]
    hog = HogDetector()
    doc: dict = {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "machine": machine_info(),
                 "model": "bundled", "backend": args.backend, "mode": "exact, look-ahead",
                 "synth": {"seed": 22, "videos": args.videos, "frames": args.frames, "size": "320x240"},
                 "results": {}}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    def save() -> None:  # after every row: a run cut short keeps what it measured
        (out / "results.json").write_text(json.dumps({**doc, "loadavg_now": loadavg()}, indent=1) + "\n")

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        generate(SynthConfig(out=root, videos=2 * args.videos, frames=args.frames, seed=22, split_ratio=0.5,
                             workers=1))
        data = load_split(root, "val")
        data.attach_detections(read_boxes_file(root / "detections" / "val.json"))
        gt_dir = root / "annotations" / "val"
        est = PoseEstimator(None, backend=args.backend)
        sources: dict[str, Detector] = {
            "synth-detections": lambda v, i, f: data.boxes(v.name, i, "detections", 0.2).astype(np.float32),
            "hog": lambda v, i, f: hog(i, f),
        }
        doc["results"]["gt/N=1"] = measure(est, data, gt_dir,
                                           lambda v, i, f: data.boxes(v.name, i, "gt").astype(np.float32), 1)
        print("gt/N=1", doc["results"]["gt/N=1"]["mean_ap"], doc["results"]["gt/N=1"]["fps"], flush=True)
        save()
        for name, det in sources.items():
            for n in every:
                r = measure(est, data, gt_dir, det, n)
                doc["results"][f"{name}/N={n}"] = r
                print(f"{name}/N={n}", r["mean_ap"], r["fps"], r["detector_runs"], flush=True)
                save()
    doc["complete"] = True
    save()
    print(f"wrote {out / 'results.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
