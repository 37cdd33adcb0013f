"""Boxes files against videos (issue 22 §4): synth's own detections file fits the video made from its
frames, a file that fits no frame is one line naming what was tried (a warning with ``--lenient``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dcpose_trt.cli import main
from dcpose_trt.data.synth import SynthConfig, generate


@pytest.fixture(scope="module")
def synth(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("synth")
    generate(SynthConfig(out=root, videos=2, frames=6, seed=5, split_ratio=0.0, workers=1))
    return root


@pytest.fixture(scope="module")
def synth_video(synth, tmp_path_factory, write_mp4) -> Path:
    """The first val video of ``synth`` as ``<video name>.mp4`` (the name the detections file uses)."""
    folder = sorted((synth / "images" / "val").iterdir())[0]
    out = tmp_path_factory.mktemp("video") / f"{folder.name}.mp4"
    return write_mp4(sorted(folder.glob("*.jpg")), out)


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


def test_a_boxes_file_that_fits_no_frame_fails_with_one_line_naming_what_it_tried(synth_video, tmp_path, capsys):
    boxes = tmp_path / "late.json"
    boxes.write_text(json.dumps([{"frame": 100 + i, "image_name": f"elsewhere/{100 + i:06d}.jpg",
                                  "bbox": [10, 10, 40, 80]} for i in range(6)]))
    out = tmp_path / "poses.json"
    assert main(["run", "--video", str(synth_video), "--boxes", str(boxes), "--json", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("dcpose-trt run: error: "), err
    assert "matches no frame of" in err[0] and "frames 0-5" in err[0]
    assert "tried 'frame' (values 100, 101, 102, ...: 0 frame(s))" in err[0]
    assert "'image number'" in err[0] and "--lenient" in err[0]
    assert not out.exists()  # nothing half-written
    assert main(["run", "--video", str(synth_video), "--boxes", str(boxes), "--json", str(out), "--lenient"]) == 0
    assert _persons(out) == 0


def test_the_summary_says_what_the_boxes_file_matched_on(synth, synth_video, tmp_path, capsys):
    out = tmp_path / "poses.json"
    main(["run", "--video", str(synth_video), "--boxes", str(synth / "detections" / "val.json"), "--json", str(out)])
    said = json.loads(out.read_text())["summary"]["boxes"]
    assert "on 'frame_id'" in said and f"entries of video {synth_video.stem}" in said, said
