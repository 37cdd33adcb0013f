"""A plain video in, poses out (issue 22 §1, done-when): with neither --boxes nor --detector the built-in
OpenCV HOG people detector finds the people, says so in one line, and its cost shows apart from pose."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import cv2
import numpy as np
import pytest

from dcpose_trt.cli import main
from dcpose_trt.data.synth import SynthConfig, generate
from dcpose_trt.data.video import BoxesFromFile, FrameSource
from dcpose_trt.runtime.detector import open_box_source
from dcpose_trt.runtime.hog_detector import HogConfig, HogDetector
from dcpose_trt.runtime.tracker import iou_matrix


def _run_without_boxes(video: Path, out: Path, capsys, caplog) -> dict:
    with caplog.at_level(logging.WARNING):
        rc = main(["run", "--video", str(video), "--json", str(out)])
    assert rc == 0, capsys.readouterr().err
    said = [r.message for r in caplog.records if "built-in" in r.message]
    assert len(said) == 1 and "HOG" in said[0] and "--detector" in said[0], said  # which one, and its limits
    doc = json.loads(out.read_text())
    summary = doc["summary"]
    assert "HOG" in summary["boxes"]
    # the detector's share of each frame (mean: with --detect-every N > 1 most frames do not run it)
    assert 0 < summary["detector_ms"]["mean"] <= summary["latency_ms"]["p50"] * 1.5 and summary["detector_runs"] >= 1
    return doc


def test_run_on_the_real_clip_video_without_boxes_gives_poses(clip, tmp_path, capsys, caplog, write_mp4):
    video = write_mp4(sorted(clip.glob("*.jpg")), tmp_path / "clip.mp4")
    doc = _run_without_boxes(video, tmp_path / "poses.json", capsys, caplog)
    assert len(doc["frames"]) == 5
    assert sum(len(f["persons"]) for f in doc["frames"]) >= 3  # the nearest player, in most frames


def test_run_on_a_synthetic_video_without_boxes_gives_poses(tmp_path, capsys, caplog, write_mp4):
    generate(SynthConfig(out=tmp_path / "synth", videos=1, frames=10, seed=3, split_ratio=0.0, workers=1))
    folder = next((tmp_path / "synth" / "images" / "val").iterdir())
    video = write_mp4(sorted(folder.glob("*.jpg")), tmp_path / "synth.mp4")
    doc = _run_without_boxes(video, tmp_path / "poses.json", capsys, caplog)
    assert len(doc["frames"]) == 10
    assert sum(len(f["persons"]) for f in doc["frames"]) > 0


def test_hog_finds_the_nearest_player_of_the_real_clip(clip):
    det = HogDetector()
    gt = BoxesFromFile(clip / "boxes.json")
    hits = 0
    for i, frame in FrameSource(clip).indexed():
        boxes = det(i, frame)
        assert boxes.dtype == np.float32 and boxes.shape[1] == 5
        assert ((boxes[:, 4] > 0) & (boxes[:, 4] < 1)).all()
        if len(boxes):
            hits += bool((iou_matrix(boxes, gt(i, frame)) >= 0.5).any())
    assert hits >= 3


def test_hog_takes_any_frame_the_reader_gives_and_finds_nobody_in_a_blank_one(clip):
    det = HogDetector(HogConfig(work_height=240))
    assert det(0, np.zeros((240, 320, 3), np.uint8)).shape == (0, 5)
    frame = cv2.imread(str(clip / "000000.jpg"))
    gray = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
    deep = frame.astype(np.uint16) * 257
    ref = det(0, frame)
    np.testing.assert_allclose(det(0, deep), ref)
    assert det(0, gray).shape[1] == 5


def test_the_boxes_source_is_one_of_three(clip, tmp_path):
    src = FrameSource(clip)
    assert open_box_source(clip, src).kind == "builtin"
    table = open_box_source(clip, src, boxes=clip / "boxes.json")
    assert table.kind == "file" and not table.is_detector and "'frame'" in table.line
    from dcpose_trt.errors import InputError

    with pytest.raises(InputError, match="not both"):
        open_box_source(clip, src, boxes=clip / "boxes.json", detector=tmp_path / "y.onnx")


def test_predict_videos_without_boxes_uses_the_built_in_detector(clip, tmp_path, capsys, write_mp4):
    videos = tmp_path / "videos"
    videos.mkdir()
    write_mp4(sorted(clip.glob("*.jpg"))[:3], videos / "clip.mp4")
    assert main(["predict", "--videos", str(videos), "--out", str(tmp_path / "out")]) == 0, capsys.readouterr().err
    doc = json.loads((tmp_path / "out" / "clip.json").read_text())
    assert len(doc["frames"]) == 3 and sum(len(f["persons"]) for f in doc["frames"]) > 0
