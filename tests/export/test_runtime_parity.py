"""ONNX Runtime and PyTorch give the same poses on the real clip (issue: runtime, done-when)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from dcpose_trt.data.posetrack import read_boxes_file
from dcpose_trt.runtime import PoseEstimator, TorchBackend


@pytest.fixture(scope="module")
def clip(shared_data):
    root = shared_data / "posetrack18_sample" / "videos" / "000001_mpiinew_test"
    frames = [cv2.imread(str(p)) for p in sorted(root.glob("*.jpg"))]
    table = read_boxes_file(root / "boxes.json")
    boxes = [np.asarray(table[i], np.float32) for i in range(len(frames))]
    return frames, boxes


@pytest.mark.parametrize("mode,form", [("exact", "deformconv"), ("exact", "gridsample"), ("cached", "split")])
def test_onnxruntime_equals_torch_on_real_clip(clip, tiny_model_lively, exports, mode, form):
    frames, boxes = clip
    ref = PoseEstimator(backend=TorchBackend(tiny_model_lively), mode=mode).run(frames, boxes)
    got = PoseEstimator(str(exports(form)), backend="onnxruntime", mode=mode).run(frames, boxes)
    assert [r.index for r in got] == [r.index for r in ref] == list(range(5))
    for a, b in zip(ref, got, strict=True):
        assert len(a.persons) == len(b.persons) == 3
        for p, q in zip(a.persons, b.persons, strict=True):
            assert p.track_id == q.track_id
            np.testing.assert_allclose(q.keypoints[:, :2], p.keypoints[:, :2], atol=0.5)
            np.testing.assert_allclose(q.keypoints[:, 2], p.keypoints[:, 2], rtol=1e-3, atol=1e-4)
