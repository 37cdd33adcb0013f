"""``dcpose-trt run`` for a newcomer (issue 12 §2): outputs checked up front, Ctrl-C keeps the frames,
odd frames and boxes handled, a non-detector refused, warm-up reported apart.

All runs use the bundled tiny checkpoint on the PyTorch backend (the CLI default) on the real clip.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from dcpose_trt.cli import main
from dcpose_trt.data.video import BoxesFromFile
from dcpose_trt.errors import InputError
from dcpose_trt.runtime import PoseEstimator
from dcpose_trt.runtime.boxes import clip_boxes
from dcpose_trt.runtime.pipeline import RunConfig, _latency, run_video


@pytest.fixture
def frames_dir(clip, tmp_path) -> Path:
    """A writable copy of the clip's five frames and its boxes.json."""
    d = tmp_path / "frames"
    d.mkdir()
    for p in sorted(clip.glob("*.jpg")):
        shutil.copy(p, d / p.name)
    shutil.copy(clip / "boxes.json", tmp_path / "boxes.json")
    return d


def _video_frames(path: Path) -> int:
    cap = cv2.VideoCapture(str(path))
    n = 0
    while cap.read()[0]:
        n += 1
    cap.release()
    return n


def _one_line_error(capsys, verb: str = "run") -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert err and err[-1].startswith(f"dcpose-trt {verb}: error: "), err
    assert "Traceback" not in "\n".join(err)
    return err[-1]


# -- 4: output paths are checked before any work ----------------------------------------------------


@pytest.mark.parametrize("case", ["out-is-folder", "parent-is-file", "read-only-parent", "json-is-folder"])
def test_output_paths_checked_up_front(case, clip, tmp_path, capsys):
    (tmp_path / "a_file").write_text("x")
    (tmp_path / "a_dir").mkdir()
    out, js = {
        "out-is-folder": (tmp_path / "a_dir", None),
        "parent-is-file": (tmp_path / "a_file" / "sub" / "o.mp4", None),
        "read-only-parent": (Path("/proc/o.mp4"), None),  # read-only even for root
        "json-is-folder": (tmp_path / "o.mp4", tmp_path / "a_dir"),
    }[case]
    # A missing model file: if outputs were checked after loading the model, that error would come first.
    argv = ["run", "--video", str(clip), "--boxes", str(clip / "boxes.json"), "--model", str(tmp_path / "none.pth"),
            "--out", str(out)] + (["--json", str(js)] if js else [])
    assert main(argv) == 2
    line = _one_line_error(capsys)
    assert "none.pth" not in line and ("folder" in line or "writable" in line), line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_dir", "a_file"]  # nothing written


def test_predict_checks_out_up_front(tmp_path, capsys):
    (tmp_path / "f").write_text("x")
    assert main(["predict", "--data", str(tmp_path / "no_data"), "--out", str(tmp_path / "f"),
                 "--model", str(tmp_path / "none.pth")]) == 2
    assert "is not a folder" in _one_line_error(capsys, "predict")


# -- 5: Ctrl-C keeps the frames done ----------------------------------------------------------------


def test_ctrl_c_writes_frames_done(clip, tmp_path, monkeypatch, capsys):
    real = PoseEstimator.process
    calls = {"n": 0}

    def process(self, frame, boxes, index=None):  # Ctrl-C arrives while the 4th frame is fed
        calls["n"] += 1
        if calls["n"] == 4:
            raise KeyboardInterrupt
        return real(self, frame, boxes, index)

    monkeypatch.setattr(PoseEstimator, "process", process)
    out, js = tmp_path / "o.mp4", tmp_path / "o.json"
    rc = main(["run", "--video", str(clip), "--boxes", str(clip / "boxes.json"), "--backend", "torch",
               "--out", str(out), "--json", str(js)])
    assert rc == 130
    assert "interrupted" in capsys.readouterr().err
    doc = json.loads(js.read_text())
    assert [f["frame"] for f in doc["frames"]] == [0, 1, 2]  # the look-ahead frame 2 is finished too
    assert doc["summary"]["interrupted"] is True
    assert _video_frames(out) == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o.json", "o.mp4"]  # no temporaries left


# -- 6: frames of another size go into the video, resized ---------------------------------------------


def test_frames_of_another_size_are_resized_into_the_video(frames_dir, tmp_path, caplog):
    third = sorted(frames_dir.glob("*.jpg"))[2]
    img = cv2.imread(str(third))
    cv2.imwrite(str(third), cv2.resize(img, (img.shape[1] // 2, img.shape[0] // 2)))
    out = tmp_path / "o.mp4"
    with caplog.at_level(logging.WARNING):
        s = run_video(RunConfig(video=str(frames_dir), boxes=str(tmp_path / "boxes.json"), out=str(out)),
                      progress=False)
    assert s.frames == 5 and _video_frames(out) == 5
    assert s.to_json()["resized_frames"] == 1
    assert sum("resiz" in r.message for r in caplog.records) >= 1


# -- 7: a boxes file that does not fit the video -------------------------------------------------------


def _shifted(src: Path, dst: Path) -> Path:
    rows = json.loads(src.read_text())
    for r in rows:
        r["frame"] += 1
        r.pop("file_name", None)
        r.pop("image_name", None)
    dst.write_text(json.dumps(rows))
    return dst


@pytest.mark.parametrize("kind", ["empty", "other-sequence"])
def test_boxes_that_fit_no_frame_fail_and_warn_with_lenient(kind, clip, tmp_path, caplog, capsys):
    boxes = tmp_path / "b.json"
    if kind == "empty":
        boxes.write_text("[]")
    else:  # PoseTrack detections keyed by image_id: another sequence's numbering
        boxes.write_text(json.dumps([{"image_id": 10010000 + i, "bbox": [10, 10, 50, 100], "score": 0.9}
                                     for i in range(5)]))
    assert main(["run", "--video", str(clip), "--boxes", str(boxes)]) == 2
    line = _one_line_error(capsys)
    assert ("holds no person boxes" if kind == "empty" else "matches no frame") in line, line
    with caplog.at_level(logging.WARNING):
        s = run_video(RunConfig(video=str(clip), boxes=str(boxes), lenient=True), progress=False)
    assert s.persons == 0
    assert any("matches no frame" in r.message or "no person boxes" in r.message for r in caplog.records)


def test_boxes_shifted_by_one_frame_warn_and_fail_with_strict(clip, tmp_path, caplog, capsys):
    boxes = _shifted(clip / "boxes.json", tmp_path / "b.json")
    with caplog.at_level(logging.WARNING):
        run_video(RunConfig(video=str(clip), boxes=str(boxes)), progress=False)
    assert any("does not fit" in r.message for r in caplog.records), [r.message for r in caplog.records]
    assert main(["run", "--video", str(clip), "--boxes", str(boxes), "--strict"]) == 2
    assert "does not fit" in _one_line_error(capsys)


def test_matching_boxes_file_fits(clip):
    assert BoxesFromFile(clip / "boxes.json").mismatch(5) is None


# -- 8: boxes outside the frame or absurdly large -----------------------------------------------------


def test_clip_boxes_counts():
    b = np.array([[-50, -50, 100, 100, 0.9],      # partly outside: clipped
                  [2000, 10, 50, 50, 0.8],        # outside: dropped
                  [10, 10, 1e9, 1e9, 0.7],        # absurdly large: clipped to the frame
                  [10, 10, 20, 20, 0.6]], np.float32)
    out, clipped, dropped = clip_boxes(b, (480, 640, 3))
    assert (clipped, dropped) == (2, 1)
    np.testing.assert_array_equal(out, np.array([[0, 0, 50, 50, 0.9], [10, 10, 630, 470, 0.7],
                                                 [10, 10, 20, 20, 0.6]], np.float32))


def test_absurd_boxes_give_keypoints_near_the_frame(clip, tmp_path):
    h, w = cv2.imread(str(sorted(clip.glob("*.jpg"))[0])).shape[:2]
    rows = [{"frame": i, "bbox": b, "score": 0.9} for i in range(5)
            for b in ([100, 100, 3e8, 3e8], [-5000, -5000, 100, 100], [200, 150, 120, 300])]
    boxes = tmp_path / "b.json"
    boxes.write_text(json.dumps(rows))
    js = tmp_path / "o.json"
    s = run_video(RunConfig(video=str(clip), boxes=str(boxes), json_out=str(js)), progress=False)
    assert s.to_json()["boxes_clipped"] == 5 and s.to_json()["boxes_dropped"] == 5
    kps = np.array([p["keypoints"] for f in json.loads(js.read_text())["frames"] for p in f["persons"]])
    assert kps.shape == (10, 17, 3)
    # A crop is the box enlarged by at most 1.25x and padded to the crop's aspect: keypoints stay within
    # one frame size of the frame.
    assert np.abs(kps[..., 0]).max() < 2 * w and np.abs(kps[..., 1]).max() < 2 * h


# -- 15: an unreadable image in a folder is skipped -----------------------------------------------------


def test_corrupt_jpeg_is_skipped(frames_dir, tmp_path, caplog):
    bad = sorted(frames_dir.glob("*.jpg"))[2]
    bad.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    js = tmp_path / "o.json"
    with caplog.at_level(logging.WARNING):
        s = run_video(RunConfig(video=str(frames_dir), boxes=str(tmp_path / "boxes.json"), json_out=str(js),
                                out=str(tmp_path / "o.mp4")), progress=False)
    doc = json.loads(js.read_text())
    assert [f["frame"] for f in doc["frames"]] == [0, 1, 3, 4]  # positions in the folder, not a renumbering
    assert all(len(f["persons"]) == 3 for f in doc["frames"])  # boxes still matched by frame after the gap
    assert doc["summary"]["skipped_frames"] == 1 == s.counts["skipped_frames"]
    assert any(bad.name in r.message for r in caplog.records)


# -- 10: --detector with an ONNX that is not a detector ------------------------------------------------


def _onnx(path: Path, in_shape: list[int], out_shape: list[int]) -> Path:
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    shape = helper.make_tensor("shape", TensorProto.INT64, [len(out_shape)], out_shape)
    graph = helper.make_graph([helper.make_node("Reshape", ["images", "shape"], ["output0"])], "g",
                              [helper.make_tensor_value_info("images", TensorProto.FLOAT, in_shape)],
                              [helper.make_tensor_value_info("output0", TensorProto.FLOAT, out_shape)], [shape])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


def test_detector_that_is_not_a_detector(clip, tmp_path, capsys):
    pytest.importorskip("onnxruntime")
    from dcpose_trt.runtime.detector import YoloDetector

    not_det = _onnx(tmp_path / "classifier.onnx", [1, 3, 64, 64], [1, 3, 4096])  # wrong output layout
    assert main(["run", "--video", str(clip), "--detector", str(not_det)]) == 2
    assert "is not a YOLO person detector" in _one_line_error(capsys)
    # The Ultralytics layout [1, 4 + C, anchors] is accepted (here 4 + 2 classes over 2048 anchors).
    det = YoloDetector(_onnx(tmp_path / "yolo.onnx", [1, 3, 64, 64], [1, 6, 2048]))
    assert det.size == 64


# -- 17: warm-up is not inside the latency percentiles -------------------------------------------------


def test_warmup_reported_apart():
    stats, warm = _latency([800.0, 80.0, 81.0, 82.0], warmup=1)
    assert warm == 800.0 and stats["p90"] < 100
    stats, warm = _latency([800.0], warmup=1)  # nothing after the warm-up: percentiles over it, no warm-up
    assert warm is None and stats["p50"] == 800.0


def test_run_summary_has_warmup(clip):
    s = run_video(RunConfig(video=str(clip), boxes=str(clip / "boxes.json")), progress=False).to_json()
    # Look-ahead: the first inference runs with frame 1, so the warm-up spans frames 0 and 1.
    assert s["warmup_ms"] > 0 and set(s["latency_ms"]) == {"p50", "p90", "p99", "mean"}


def test_unknown_max_frames(clip):
    with pytest.raises(InputError, match="--max-frames"):
        run_video(RunConfig(video=str(clip), boxes=str(clip / "boxes.json"), max_frames=0), progress=False)
