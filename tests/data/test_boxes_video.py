"""Boxes files against videos (issue 22 §4): synth's own detections file fits the video made from its
frames, a file that fits no frame is one line naming what was tried (a warning with ``--lenient``)."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import pytest

from dcpose_trt.cli import main
from dcpose_trt.data.synth import SynthConfig, generate


def frames_to_mp4(frames: list[Path], out: Path, fps: float = 10.0) -> Path:
    """An mp4 (OpenCV's mp4v) of the images ``frames``, in order."""
    first = cv2.imread(str(frames[0]))
    h, w = first.shape[:2]
    writer = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
    assert writer.isOpened()
    for p in frames:
        writer.write(cv2.imread(str(p)))
    writer.release()
    return out


@pytest.fixture(scope="module")
def synth(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("synth")
    generate(SynthConfig(out=root, videos=2, frames=6, seed=5, split_ratio=0.0, workers=1))
    return root


@pytest.fixture(scope="module")
def synth_video(synth, tmp_path_factory) -> Path:
    """The first val video of ``synth`` as ``<video name>.mp4`` (the name the detections file uses)."""
    folder = sorted((synth / "images" / "val").iterdir())[0]
    out = tmp_path_factory.mktemp("video") / f"{folder.name}.mp4"
    return frames_to_mp4(sorted(folder.glob("*.jpg")), out)


def _persons(path: Path) -> int:
    return sum(len(f["persons"]) for f in json.loads(path.read_text())["frames"])


def test_synth_detections_file_fits_the_video_of_its_frames(synth, synth_video, tmp_path, capsys):
    """Failed before the fix: the loader keyed synth's entries by image_name only, matched no frame of
    an mp4, warned and wrote 0 poses with exit 0."""
    out = tmp_path / "poses.json"
    rc = main(["run", "--video", str(synth_video), "--boxes", str(synth / "detections" / "val.json"),
               "--json", str(out)])
    assert rc == 0
    assert _persons(out) > 0
