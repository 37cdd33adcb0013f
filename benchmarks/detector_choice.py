"""Which person detector runs when a user gives neither boxes nor a model: candidates that need no download.

Measures each candidate's recall and precision against ground-truth person boxes (a detection is a hit
when its IoU with an unmatched GT box is >= 0.5, matched greedily by score) and its time per frame, on

- the real 5-frame clip (``posetrack18_sample/videos/000001_mpiinew_test``, hand-drawn boxes),
- the 3 annotated PoseTrack18 val frames of ``posetrack18_sample`` (GT boxes),
- a synthetic val set made here with ``dcpose-trt synth`` (GT boxes),

and writes ``results.json`` (with the machine) to ``--out``. Candidates: OpenCV's HOG people detector
(INRIA 64x128 window, at several working heights, and the Daimler 48x96 window) and OpenCV's Haar
full-body cascade; all their coefficients ship inside OpenCV (opencv-contrib-python-headless for 5.x).

    python -m benchmarks.detector_choice --data ../shared/data --out benchmarks/results/detector_choice
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path

import cv2
import numpy as np

from dcpose_trt.runtime.hog_detector import HogConfig, HogDetector
from dcpose_trt.runtime.tracker import iou_matrix

Detector = Callable[[int, np.ndarray], np.ndarray]
Sample = tuple[np.ndarray, np.ndarray]  # (BGR frame, GT boxes float[N, 4] x, y, w, h)


class HaarFullBody:
    """OpenCV's Haar full-body cascade (``cv2.data.haarcascades``), for comparison; score 1 for every box."""

    def __init__(self, work_height: int = 480):
        path = Path(cv2.data.haarcascades) / "haarcascade_fullbody.xml"
        self.cascade = cv2.CascadeClassifier(str(path))
        self.work_height = work_height

    def __call__(self, index: int, frame: np.ndarray) -> np.ndarray:
        gain = self.work_height / frame.shape[0]
        img = cv2.resize(frame, (int(round(frame.shape[1] * gain)), self.work_height))
        gray = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
        rects = np.asarray(self.cascade.detectMultiScale(gray, 1.05, 3), np.float32).reshape(-1, 4) / gain
        return np.concatenate([rects, np.ones((len(rects), 1), np.float32)], 1)


def candidates() -> dict[str, Detector]:
    out: dict[str, Detector] = {}
    for h in (360, 480, 720):
        out[f"hog-default-h{h}"] = HogDetector(HogConfig(work_height=h))
    out["hog-default-h480-tight"] = HogDetector(HogConfig(work_height=480, tight=True))
    out["hog-daimler-h480"] = HogDetector(HogConfig(work_height=480, people="daimler", hit_threshold=0.5))
    out["haar-fullbody-h480"] = HaarFullBody(480)
    return out


def real_clip(data: Path) -> Iterator[Sample]:
    from dcpose_trt.data.video import BoxesFromFile, FrameSource

    clip = data / "posetrack18_sample" / "videos" / "000001_mpiinew_test"
    src = FrameSource(clip)
    boxes = BoxesFromFile(clip / "boxes.json", src.names())
    for i, frame in src.indexed():
        yield frame, boxes(i, frame)[:, :4]


def posetrack_split(root: Path, split: str = "val", max_frames: int | None = None) -> Iterator[Sample]:
    from dcpose_trt.data.posetrack import load_split

    index = load_split(root, split)
    for n, (video, frame) in enumerate(index.labeled_frames()):
        if max_frames is not None and n >= max_frames:
            return
        yield cv2.imread(str(frame.path)), index.boxes(video.name, frame.index)[:, :4]


def match(det: np.ndarray, gt: np.ndarray, iou_min: float = 0.5) -> tuple[int, int, int]:
    """(true positives, false positives, false negatives) of ``det`` float[N, 5] against ``gt`` float[M, 4]."""
    if len(det) == 0 or len(gt) == 0:
        return 0, len(det), len(gt)
    iou = iou_matrix(det[np.argsort(-det[:, 4])], gt)
    used = np.zeros(len(gt), bool)
    tp = 0
    for row in iou:
        row = np.where(used, -1.0, row)
        j = int(np.argmax(row))
        if row[j] >= iou_min:
            used[j] = True
            tp += 1
    return tp, len(det) - tp, len(gt) - tp


def measure(det: Detector, samples: list[Sample]) -> dict:
    tp = fp = fn = 0
    ms = []
    for i, (frame, gt) in enumerate(samples):
        t0 = time.perf_counter()
        boxes = det(i, frame)
        ms.append((time.perf_counter() - t0) * 1e3)
        a, b, c = match(boxes, gt)
        tp, fp, fn = tp + a, fp + b, fn + c
    return {"frames": len(samples), "gt_boxes": tp + fn, "detections": tp + fp, "true_positives": tp,
            "recall": round(tp / max(tp + fn, 1), 3), "precision": round(tp / max(tp + fp, 1), 3),
            "ms_per_frame_median": round(float(np.median(ms)), 1), "frame_hw": list(samples[0][0].shape[:2])}


def main(argv: list[str] | None = None) -> int:
    from benchmarks.machine import loadavg, machine_info
    from dcpose_trt.data.synth import SynthConfig, generate

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default="../shared/data", help="shared data folder (posetrack18_sample)")
    p.add_argument("--out", default="benchmarks/results/detector_choice")
    p.add_argument("--synth-videos", type=int, default=4, help="synthetic val videos (default: %(default)s)")
    p.add_argument("--synth-frames", type=int, default=10, help="frames per synthetic video (default: %(default)s)")
    args = p.parse_args(argv)
    data = Path(args.data)
    with tempfile.TemporaryDirectory() as tmp:
        cfg = SynthConfig(out=Path(tmp), videos=2 * args.synth_videos, frames=args.synth_frames, seed=22,
                          split_ratio=0.5, workers=1)
        generate(cfg)
        sets = {"real_clip_5_frames_1280x720": list(real_clip(data)),
                "posetrack18_val_3_frames": list(posetrack_split(data / "posetrack18_sample")),
                f"synth_val_{args.synth_videos}x{args.synth_frames}_320x240": list(posetrack_split(Path(tmp)))}
    doc: dict = {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "machine": machine_info(),
                 "opencv": cv2.__version__, "iou_min": 0.5,
                 "synth": {"seed": 22, "videos": args.synth_videos, "frames": args.synth_frames},
                 "results": {}}
    for name, det in candidates().items():
        doc["results"][name] = {s: measure(det, samples) for s, samples in sets.items()}
        print(name, json.dumps({s: (r["recall"], r["precision"], r["ms_per_frame_median"])
                                for s, r in doc["results"][name].items()}), flush=True)
    doc["loadavg_end"] = loadavg()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(doc, indent=1) + "\n")
    print(f"wrote {out / 'results.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
