"""Writing the synthetic dataset: JPEG frames, per-video PoseTrack18 documents and per-split detection
files, every file atomically; :func:`generate` spreads the videos over worker processes."""

from __future__ import annotations

import logging
import os
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from dcpose_trt._atomic import atomic_write_bytes
from dcpose_trt.data.posetrack import write_boxes_file, write_video_annotations
from dcpose_trt.data.synth.config import SynthConfig, split_of, video_name
from dcpose_trt.data.synth.render import render_video

log = logging.getLogger(__name__)

_JPEG_QUALITY = 90


def write_frame(path: Path, image: np.ndarray) -> None:
    """Encode ``image`` (BGR uint8) as a quality-90 JPEG and write it atomically."""
    ok, jpg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, _JPEG_QUALITY])
    if not ok:  # pragma: no cover - cv2 always encodes a valid uint8 image
        raise RuntimeError("cv2.imencode failed")
    atomic_write_bytes(path, jpg.tobytes())


def write_video(index: int, cfg: SynthConfig) -> list[dict]:
    """Render video ``index`` of ``cfg`` and write its frames and annotation file under ``cfg.out``.

    Returns:
        its detection entries (COCO detection dicts); :func:`generate` writes them per split.
    """
    cv2.setNumThreads(1)  # workers are processes already; cv2's own threads would oversubscribe
    split = split_of(index, cfg)
    name = video_name(index, split)
    img_dir = Path(cfg.out) / "images" / split / name
    images, annotations, detections = [], [], []
    for f in render_video(index, cfg):
        write_frame(img_dir / f"{f.index:06d}.jpg", f.image)
        images.append(f.image_entry)
        annotations += f.annotations
        detections += f.detections
    write_video_annotations(Path(cfg.out) / "annotations" / split / f"{name}.json", images, annotations)
    return detections



@dataclass(frozen=True)
class SynthSummary:
    """What :func:`generate` wrote: video names per split, frame count, seconds taken."""

    out: Path
    videos: dict[str, list[str]]
    frames: int
    seconds: float


def _write_video_star(args: tuple[int, SynthConfig]) -> list[dict]:
    return write_video(*args)


def generate(cfg: SynthConfig) -> SynthSummary:
    """Write the synthetic dataset described by ``cfg`` (see the module docstring for the layout).

    Returns:
        SynthSummary: the video names per split and the time taken.
    """
    start = time.perf_counter()
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    workers = cfg.workers or min(4, os.cpu_count() or 1)
    jobs = [(i, cfg) for i in range(cfg.videos)]
    if workers > 1 and cfg.videos > 1:
        with ProcessPoolExecutor(max_workers=min(workers, cfg.videos)) as ex:
            dets_per_video = list(ex.map(_write_video_star, jobs))
    else:
        dets_per_video = [write_video(i, cfg) for i, _ in jobs]
    names: dict[str, list[str]] = {"train": [], "val": []}
    dets: dict[str, list[dict]] = {"train": [], "val": []}
    for i, d in enumerate(dets_per_video):
        split = split_of(i, cfg)
        names[split].append(video_name(i, split))
        dets[split] += d
    for split in ("train", "val"):
        if names[split]:
            write_boxes_file(out / "detections" / f"{split}.json", dets[split])
    seconds = time.perf_counter() - start
    n_frames = cfg.videos * cfg.frames
    log.info(
        "synth: %d videos x %d frames in %.1f s (%.1f ms/frame)",
        cfg.videos,
        cfg.frames,
        seconds,
        1000 * seconds / n_frames,
    )
    return SynthSummary(out, names, n_frames, seconds)
