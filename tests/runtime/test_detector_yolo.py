"""``--detector MODEL.onnx`` (issue 22 §2): both Ultralytics ONNX layouts decode to person boxes in frame
pixels through real ONNX Runtime sessions, and the detector's cost shows apart from pose in the summary."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from dcpose_trt.runtime.detector import YoloDetector, decode_end2end, is_end2end, letterbox

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")


def _constant_detector(path: Path, out: np.ndarray, size: int = 64, end2end: bool | None = None) -> Path:
    """An ONNX with an image input [1, 3, size, size] whose output is ``out`` whatever the image."""
    from onnx import TensorProto, helper, numpy_helper

    value = numpy_helper.from_array(out.astype(np.float32), "value")
    graph = helper.make_graph(
        [helper.make_node("Constant", [], ["output0"], value=value)], "g",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, size, size])],
        [helper.make_tensor_value_info("output0", TensorProto.FLOAT, list(out.shape))])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    if end2end is not None:
        helper.set_model_props(model, {"end2end": str(end2end)})
    onnx.save(model, str(path))
    return path


def test_end2end_layout_is_decoded_in_frame_pixels(tmp_path):
    det = np.zeros((1, 300, 6), np.float32)
    det[0, 0] = [10, 20 + 16, 30, 60 + 16, 0.9, 0]  # a person, in the 64x64 letterbox (pad 16 rows)
    det[0, 1] = [0, 16, 8, 40, 0.95, 2]  # a car: not a person
    det[0, 2] = [40, 20, 50, 40, 0.1, 0]  # below the threshold
    yolo = YoloDetector(_constant_detector(tmp_path / "y26.onnx", det, end2end=True))
    assert yolo.end2end and yolo.size == 64
    frame = np.zeros((64, 128, 3), np.uint8)  # gain 0.5, pad (0, 16)
    boxes = yolo(0, frame)
    np.testing.assert_allclose(boxes, [[20, 40, 40, 80, 0.9]], atol=1e-4)


def test_classic_layout_still_takes_nms_and_the_metadata_decides():
    assert not is_end2end((1, 84, 8400), {})
    assert is_end2end((1, 300, 6), {})
    assert not is_end2end((1, 300, 6), {"end2end": "False"})  # a 2-class model's [1, A, 6], said so
    assert is_end2end((1, 2000, 6), {"end2end": "True"})
    img, gain, pad = letterbox(np.zeros((100, 200, 3), np.uint8), 64)
    assert decode_end2end(np.zeros((1, 300, 6)), gain, pad).shape == (0, 5)


def test_detector_cost_shows_apart_from_pose(shared_data, tmp_path):
    from dcpose_trt.runtime.pipeline import RunConfig, run_video

    clip = shared_data / "posetrack18_sample" / "videos" / "000001_mpiinew_test"
    det = np.zeros((1, 300, 6), np.float32)
    det[0, 0] = [100, 150, 300, 500, 0.9, 0]
    path = _constant_detector(tmp_path / "d.onnx", det, size=640, end2end=True)
    out = tmp_path / "poses.json"
    s = run_video(RunConfig(video=str(clip), detector=str(path), json_out=str(out), max_frames=3), progress=False)
    doc = s.to_json()
    assert doc["persons"] == 3 and "d.onnx" in doc["boxes"] and "ONNX Runtime" in doc["boxes"]
    assert 0 < doc["detector_ms"]["mean"] < doc["latency_ms"]["mean"] + doc.get("warmup_ms", 0)
    assert json.loads(out.read_text())["summary"]["detector_ms"] == doc["detector_ms"]
    boxes = run_video(RunConfig(video=str(clip), boxes=str(clip / "boxes.json"), max_frames=2), progress=False)
    assert "detector_ms" not in boxes.to_json()  # a boxes file costs nothing to report
