"""Boxes that follow people with their poses between detections (issue 22 §3, building blocks)."""

from __future__ import annotations

import numpy as np
import pytest

from dcpose_trt.runtime.follow import DetectEvery, box_from_keypoints, boxes_from_poses


def _person(x0: float, y0: float, w: float, h: float, score: float = 0.9) -> np.ndarray:
    """17 keypoints spread over the box (x0, y0, w, h)."""
    rng = np.random.default_rng(0)
    kp = np.zeros((17, 3))
    kp[:, 0] = x0 + rng.uniform(0, 1, 17) * w
    kp[:, 1] = y0 + rng.uniform(0, 1, 17) * h
    kp[[0, 1], 0] = x0, x0 + w  # the extremes reached exactly
    kp[[2, 3], 1] = y0, y0 + h
    kp[:, 2] = score
    return kp


def test_box_is_the_keypoint_extent_grown_by_the_margin():
    b = box_from_keypoints(_person(100, 50, 40, 120), margin=0.2)
    assert b is not None
    np.testing.assert_allclose(b[:4], [100 - 8, 50 - 24, 40 * 1.4, 120 * 1.4], rtol=1e-5)
    assert b[4] == pytest.approx(0.9)


def test_margin_zero_is_the_extent_and_the_box_contains_every_confident_point():
    kp = _person(10, 20, 30, 90)
    b = box_from_keypoints(kp, margin=0.0)
    np.testing.assert_allclose(b[:4], [10, 20, 30, 90], rtol=1e-5)
    grown = box_from_keypoints(kp, margin=0.15)
    assert grown[0] < kp[:, 0].min() and grown[0] + grown[2] > kp[:, 0].max()
    assert grown[1] < kp[:, 1].min() and grown[1] + grown[3] > kp[:, 1].max()


def test_low_score_points_are_ignored_and_too_few_give_no_box():
    kp = _person(100, 100, 50, 100)
    kp[5:, 2] = 0.05
    kp[4] = [5000, 5000, 0.01]  # an outlier with a low score: not in the box
    b = box_from_keypoints(kp, margin=0.0, min_score=0.2, min_points=3)
    assert b is not None and b[0] + b[2] < 1000
    kp[2:, 2] = 0.0
    assert box_from_keypoints(kp, min_points=3) is None
    kp[:, :2] = np.nan
    kp[:, 2] = 1.0
    assert box_from_keypoints(kp) is None  # NaN points do not count


def test_points_on_a_line_keep_a_body():
    kp = np.zeros((17, 3))
    kp[:, 0] = 200.0
    kp[:, 1] = np.linspace(100, 250, 17)
    kp[:, 2] = 1.0
    b = box_from_keypoints(kp, margin=0.0)
    assert b[2] == pytest.approx(150 / 3) and b[3] == pytest.approx(150)
    assert b[0] + b[2] / 2 == pytest.approx(200)


def test_boxes_from_poses_keeps_the_indices_of_people_that_gave_a_box():
    lost = _person(0, 0, 10, 10)
    lost[:, 2] = 0.0
    boxes, kept = boxes_from_poses([_person(0, 0, 20, 40), lost, _person(100, 0, 20, 40)])
    assert boxes.shape == (2, 5) and kept.tolist() == [0, 2]
    empty, none = boxes_from_poses([])
    assert empty.shape == (0, 5) and none.shape == (0,)


def test_box_scores_carry_over_and_points_are_judged_on_the_heatmap_peak():
    kp = _person(0, 0, 20, 40, score=0.15)  # the estimator's scores: peak 0.3 x box score 0.5
    boxes, kept = boxes_from_poses([kp], box_scores=[0.5])
    assert kept.tolist() == [0] and boxes[0, 4] == pytest.approx(0.5)  # the box keeps its score
    assert boxes_from_poses([kp])[0].shape == (0, 5)  # 0.15 alone is below MIN_SCORE


def test_detect_every_runs_the_detector_once_per_n_frames_and_follows_poses_between():
    calls = []

    def detector(i, frame):
        calls.append(i)
        return np.array([[10, 10, 20, 40, 0.8]], np.float32)

    follow = DetectEvery(detector, n=3)
    frame = np.zeros((100, 100, 3), np.uint8)
    out = []
    for i in range(7):
        out.append(follow(i, frame))
        follow.observe([_person(12 + i, 10, 20, 40)])
    assert calls == [0, 3, 6] and follow.detections == 3
    np.testing.assert_allclose(out[1][0, 0], 12 - 4)  # frame 1: frame 0's pose (x0 12) grown by 0.2 * 20
    np.testing.assert_allclose(out[3][0], [10, 10, 20, 40, 0.8])  # frame 3: the detector's box


def test_detect_every_detects_again_when_everyone_was_lost():
    calls = []
    follow = DetectEvery(lambda i, f: calls.append(i) or np.array([[0, 0, 5, 5, 1.0]], np.float32), n=10)
    frame = np.zeros((8, 8, 3), np.uint8)
    follow(0, frame)
    follow.observe([])  # nobody followed
    follow(1, frame)
    assert calls == [0, 1]
    with pytest.raises(ValueError):
        DetectEvery(lambda i, f: np.zeros((0, 5)), n=0)
