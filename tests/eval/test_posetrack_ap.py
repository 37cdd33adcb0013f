"""PoseTrack AP as poseval computes it: hand-computed cases, ignore regions, files and CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest

from dcpose_trt.cli import main
from dcpose_trt.data.posetrack import PT15_TO_COCO17, load_split
from dcpose_trt.errors import DataError
from dcpose_trt.eval.posetrack_ap import (
    EvalFrame,
    _GTPerson,
    _PrPerson,
    compute_rpc,
    evaluate_dirs,
    evaluate_frames,
    voc_ap,
)
from dcpose_trt.eval.results import DUMMY_ANNORECT, Pose, read_video_results, write_results

COLS = ["Head", "Shoulder", "Elbow", "Wrist", "Hip", "Knee", "Ankle", "Mean"]


def _skeleton(x0: float) -> np.ndarray:
    """15 x 2 joint positions of a person standing at x0 (PoseTrack ids), joints 20 px apart."""
    return np.stack([np.full(15, x0) + np.arange(15) % 3 * 20, 50.0 + np.arange(15) * 20], -1)


def _gt(x0: float) -> _GTPerson:
    # Head box diagonal 50 -> head size 30 -> a match needs distance <= 15 px.
    return _GTPerson(_skeleton(x0), np.ones(15, bool), (x0, 0, x0 + 30, 40))


def _pr(xy: np.ndarray, score: float) -> _PrPerson:
    return _PrPerson(xy.copy(), np.full(15, score), np.ones(15, bool))


def test_voc_ap_and_rpc():
    p, r = compute_rpc(np.array([0.9, 0.8, 0.3]), np.array([1, 0, 1]), 2)
    np.testing.assert_allclose(p, [1, 0.5, 2 / 3])
    np.testing.assert_allclose(r, [0.5, 0.5, 1])
    assert voc_ap(r, p) == pytest.approx(0.5 * 1 + 0.5 * 2 / 3)


def test_perfect():
    res = evaluate_frames([EvalFrame([_gt(0), _gt(300)], [_pr(_skeleton(300), 0.5), _pr(_skeleton(0), 0.9)])])
    assert all(res.table[c] == pytest.approx(100) for c in COLS)


def test_missed_joint():
    pr = _pr(_skeleton(0), 0.9)
    pr.has[14] = False  # head_top never predicted: AP 0 for it (poseval leaves it at 0, not NaN)
    res = evaluate_frames([EvalFrame([_gt(0)], [pr])])
    assert res.per_joint["head_top"] == 0
    assert res.table["Head"] == pytest.approx(200 / 3)
    assert res.table["Mean"] == pytest.approx(1400 / 15)


def test_far_joint():
    xy = _skeleton(0)
    xy[6] += (16, 0)  # right wrist 16 px off: beyond 0.5 x head size (15 px) -> false positive
    res = evaluate_frames([EvalFrame([_gt(0)], [_pr(xy, 0.9)])])
    assert res.per_joint["right_wrist"] == 0 and res.table["Wrist"] == 50
    assert res.table["Mean"] == pytest.approx(1400 / 15)
    xy[6] -= (2, 0)  # 14 px: inside
    assert evaluate_frames([EvalFrame([_gt(0)], [_pr(xy, 0.9)])]).table["Mean"] == pytest.approx(100)


@pytest.mark.parametrize(("fp_score", "ap"), [(0.8, 100 * (0.5 + 0.5 * 2 / 3)), (0.2, 100.0)])
def test_score_ordering(fp_score, ap):
    # TP 0.9, a person nowhere near anyone (FP) with fp_score, TP 0.3; 2 GT per joint.
    frame = EvalFrame(
        [_gt(0), _gt(300)],
        [_pr(_skeleton(0), 0.9), _pr(_skeleton(600), fp_score), _pr(_skeleton(300), 0.3)],
    )
    res = evaluate_frames([frame])
    assert res.table["Mean"] == pytest.approx(ap)
    assert all(v == pytest.approx(ap) for v in res.per_joint.values())


def test_each_gt_keeps_its_best_prediction():
    # Two predictions choose the same GT: the one with more joints within threshold wins; the other
    # is a false positive for all its joints, even the ones it has right.
    worse = _skeleton(0)
    worse[:5] += 40
    res = evaluate_frames([EvalFrame([_gt(0)], [_pr(worse, 0.95), _pr(_skeleton(0), 0.5)])])
    # Per joint: FP at 0.95 then TP at 0.5 -> precision 0.5 at recall 1 -> AP 50.
    assert all(v == pytest.approx(50) for v in res.per_joint.values())


def test_frames_without_gt_are_not_evaluated():
    res = evaluate_frames(
        [EvalFrame([_gt(0)], [_pr(_skeleton(0), 0.9)]), EvalFrame([], [_pr(_skeleton(0), 1.0)])]
    )
    assert res.table["Mean"] == pytest.approx(100) and res.n_frames == 1


def test_ignore_regions():
    region = np.array([[500.0, 0], [800, 0], [800, 400], [500, 400]])
    # A confident prediction of an unannotated person inside the region (an FP without it) ...
    ghost = _pr(_skeleton(600), 0.99)
    # ... and a GT person partly inside: joints 10..14 there are neither evaluated nor counted,
    # so the prediction's wrong guesses for them do not matter.
    gt = _gt(200)
    gt.xy[10:] += (550, 0)
    pred = _pr(gt.xy, 0.5)
    pred.xy[10:] -= (60, 0)

    def frame(ignore):
        return EvalFrame([_gt(0), gt], [ghost, pred, _pr(_skeleton(0), 0.7)], ignore)

    assert evaluate_frames([frame([])]).table["Mean"] < 90
    res = evaluate_frames([frame([region])])
    assert res.table["Mean"] == pytest.approx(100)
    assert res.recall["head_top"] == pytest.approx(100)


def _gt_as_poses(idx):
    # Perfect predictions: score 1 on annotated joints, 0 (sorted last) elsewhere.
    return {
        n: {f.index: [Pose(np.c_[p.keypoints[:, :2], p.annotated], 1.0) for p in f.persons] for f in v.frames}
        for n, v in idx.videos.items()
    }


def test_gt_against_itself_is_100(shared_data, tmp_path):
    idx = load_split(shared_data / "posetrack18_sample", "val")
    write_results(tmp_path, idx.videos.values(), _gt_as_poses(idx))
    res = evaluate_dirs(shared_data / "posetrack18_sample/annotations/val", tmp_path)
    assert all(res.table[c] == pytest.approx(100) for c in COLS)


def test_results_roundtrip(shared_data, tmp_path):
    idx = load_split(shared_data / "posetrack18_sample", "val")
    v = idx.videos["009473_mpii_test"]
    kp = np.c_[np.arange(17) * 10.0, np.arange(17) + 100.0, np.linspace(0.1, 0.9, 17)]
    (fp,) = write_results(tmp_path, [v], {v.name: {0: [Pose(kp, 0.5)]}})
    assert fp.name == "009473_mpii_test.json"
    doc = json.loads(fp.read_text())
    (entry,) = doc["annolist"]
    assert entry["image"][0]["name"] == "images/val/009473_mpii_test/000000.jpg" and entry["imgnum"] == [0]
    (rect,) = entry["annorect"]
    assert rect["score"] == [0.5] and rect["track_id"] == [0] and len(rect["annopoints"][0]["point"]) == 15
    (frame,) = read_video_results(fp)
    (person,) = frame.persons
    np.testing.assert_allclose(person.points[:, :2], kp[list(PT15_TO_COCO17), :2])
    np.testing.assert_allclose(person.points[:, 2], kp[list(PT15_TO_COCO17), 2] * 0.5)  # maxval x box score
    # No detections in a frame: DCPose's dummy annorect keeps the frame in the file.
    (fp,) = write_results(tmp_path, [v], {})
    assert json.loads(fp.read_text())["annolist"][0]["annorect"] == [DUMMY_ANNORECT]


def test_missing_prediction_file_and_frame(shared_data, tmp_path):
    gt = shared_data / "posetrack18_sample/annotations/val"
    with pytest.raises(DataError, match="does not exist"):
        evaluate_dirs(gt, tmp_path)
    for name in ("003418_mpii_test", "009473_mpii_test", "012834_mpii_test"):
        (tmp_path / f"{name}.json").write_text(json.dumps({"annolist": []}))
    with pytest.raises(DataError, match="no entry for frame 0"):
        evaluate_dirs(gt, tmp_path)


def test_cli_json(shared_data, tmp_path, capsys):
    idx = load_split(shared_data / "posetrack18_sample", "val")
    write_results(tmp_path / "pred", idx.videos.values(), _gt_as_poses(idx))
    out = tmp_path / "ap.json"
    gt = str(shared_data / "posetrack18_sample")
    assert main(["eval", "--gt", gt, "--pred", str(tmp_path / "pred"), "--json", str(out)]) == 0
    assert "Mean" in capsys.readouterr().out
    doc = json.loads(out.read_text())
    assert [k for k in doc if k != "details"] == COLS and doc["Mean"] == pytest.approx(100)
    assert main(["eval", "--gt", str(tmp_path / "nope"), "--pred", str(tmp_path)]) == 2
