"""PoseEstimator with the torch backend on real frames."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from dcpose_trt.errors import InputError
from dcpose_trt.model import load_model
from dcpose_trt.runtime import PoseEstimator, TorchBackend


@pytest.fixture(scope="module")
def estimator(tiny_model_perturbed):
    return PoseEstimator(backend=TorchBackend(tiny_model_perturbed))


def test_real_posetrack_frames_with_detector_boxes(estimator, shared_data):
    root = shared_data / "posetrack18_sample"
    dets = json.loads((root / "annotations" / "test_posetrack18_human_detections.json").read_text())
    coco = json.loads((root / "annotations" / "test_posetrack18_val.json").read_text())
    checked = 0
    for image in coco["images"]:
        frame = cv2.imread(str(root / image["file_name"]))
        assert frame is not None, image["file_name"]
        boxes = np.array([d["bbox"] + [d["score"]] for d in dets
                          if d["image_id"] == image["id"] and d["score"] >= 0.2], np.float32)
        assert len(boxes) > 0
        # A single annotated frame: it is its own previous and next frame.
        kps, kept = estimator.estimate([frame, frame, frame], boxes)
        assert kps.shape == (len(boxes), 17, 3)
        assert np.isfinite(kps).all()
        checked += 1
    assert checked == 3


def test_streaming_equals_run_and_order(estimator, shared_data):
    clip = shared_data / "posetrack18_sample" / "videos" / "000001_mpiinew_test"
    frames = [cv2.imread(str(p)) for p in sorted(clip.glob("*.jpg"))]
    boxes = [[[100, 100, 80, 200, 0.9], [600, 150, 120, 300, 0.8]]] * len(frames)
    whole = estimator.run(frames, boxes)
    assert [r.index for r in whole] == list(range(len(frames)))
    streamed = []
    for f, b in zip(frames, boxes, strict=True):
        got = estimator.process(f, b)
        assert len(got) <= 1
        streamed += got
    streamed += estimator.flush()
    assert [r.index for r in streamed] == list(range(len(frames)))
    for a, b in zip(whole, streamed, strict=True):
        np.testing.assert_allclose(a.persons[0].keypoints, b.persons[0].keypoints, atol=1e-5)
    # The first result arrives with the second frame (one frame of look-ahead).
    estimator.reset()
    assert estimator.process(frames[0], boxes[0]) == []
    assert [r.index for r in estimator.process(frames[1], boxes[1])] == [0]
    estimator.reset()


def test_window_uses_neighbours(estimator):
    """Frame t's result depends on frame t+1 (look-ahead) and, causally, on t-1."""
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 255, (120, 160, 3), dtype=np.uint8) for _ in range(3)]
    box = [[20, 10, 60, 100, 1.0]]
    a = estimator.run(frames, [box] * 3)
    frames2 = frames[:2] + [np.zeros_like(frames[2])]
    b = estimator.run(frames2, [box] * 3)
    assert not np.allclose(a[1].persons[0].keypoints[:, 2], b[1].persons[0].keypoints[:, 2])
    np.testing.assert_allclose(a[0].persons[0].keypoints, b[0].persons[0].keypoints)


def test_bad_boxes_and_frames(estimator):
    frame = np.zeros((100, 100, 3), np.uint8)
    kps, kept = estimator.estimate([frame] * 3, [[0, 0, 0, 10, 1], [np.nan, 1, 2, 3, 1]])
    assert kps.shape == (0, 17, 3) and kept.shape == (0, 5)
    kps, _ = estimator.estimate([frame] * 3, [[-500, -500, 50, 50, 1]])  # wholly outside: still decoded
    assert np.isfinite(kps).all()
    with pytest.raises(InputError):
        estimator.process(np.zeros((3,), np.uint8), [])
    estimator.reset()


def test_more_persons_than_max_batch(assert_same_poses):
    # The trained bundled model: real heatmap peaks (the official init's heatmaps are ~1e-11, all ties).
    model = load_model(None, None)
    sizes: list[int] = []

    class Recording(TorchBackend):
        def _infer_impl(self, frames, margin):
            sizes.append(len(frames))
            return super()._infer_impl(frames, margin)

    big = PoseEstimator(backend=TorchBackend(model), max_batch=32)
    small = PoseEstimator(backend=Recording(model), max_batch=2)
    rng = np.random.default_rng(1)
    frame = rng.integers(0, 255, (120, 160, 3), dtype=np.uint8)
    boxes = [[10 + 5 * i, 10, 50, 90, 1.0] for i in range(5)]
    a, _ = big.estimate([frame] * 3, boxes)
    b, _ = small.estimate([frame] * 3, boxes)
    assert sizes == [2, 2, 1]
    assert_same_poses(a, b)


def test_resolution_change_mid_stream(estimator):
    f1 = np.zeros((100, 120, 3), np.uint8)
    f2 = np.zeros((80, 60, 3), np.uint8)
    box = [[10, 10, 30, 60, 1]]
    out = estimator.process(f1, box) + estimator.process(f1, box) + estimator.process(f2, box)
    out += estimator.process(f2, box) + estimator.flush()
    assert len(out) == 4
    estimator.reset()
