"""[trust] item 14: ``eval`` refuses NaN keypoints and infinite scores with one line naming file and frame
(before the fix a NaN keypoint gave Mean 0.0 and an infinite score ranked first, without a word)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from dcpose_trt.cli import main
from dcpose_trt.data.posetrack import load_split
from dcpose_trt.eval.results import Pose, write_results


@pytest.fixture
def preds(shared_data, tmp_path):
    idx = load_split(shared_data / "posetrack18_sample", "val")
    poses = {n: {f.index: [Pose(np.c_[p.keypoints[:, :2], p.annotated], 1.0) for p in f.persons] for f in v.frames}
             for n, v in idx.videos.items()}
    files = write_results(tmp_path / "pred", idx.videos.values(), poses)
    return shared_data / "posetrack18_sample" / "annotations" / "val", files


def _first_labelled(doc):
    for e in doc["annolist"]:
        for r in e["annorect"]:
            if r.get("annopoints"):
                return e, r
    raise AssertionError("no labelled frame")


@pytest.mark.parametrize("what", ["x-nan", "y-inf", "point-score-inf", "person-score-nan"])
def test_nonfinite_prediction_is_one_line(preds, capsys, what):
    gt, files = preds
    fp = files[0]
    doc = json.loads(fp.read_text())
    entry, rect = _first_labelled(doc)
    point = rect["annopoints"][0]["point"][0]
    bad = float("nan") if what.endswith("nan") else float("inf")
    if what.startswith("x"):
        point["x"] = [bad]
    elif what.startswith("y"):
        point["y"] = [bad]
    elif what.startswith("point"):
        point["score"] = [bad]
    else:
        rect["score"] = [bad]
    fp.write_text(json.dumps(doc))  # Python writes NaN / Infinity literals, as a buggy exporter would
    rc = main(["eval", "--gt", str(gt), "--pred", str(fp.parent)])
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert rc == 2, captured.out
    name = entry["image"][0]["name"]
    assert len(err.splitlines()) == 1 and fp.name in err and name in err, err


def test_nonfinite_pt18_keypoint_is_one_line(tmp_path):
    from dcpose_trt.errors import DataError
    from dcpose_trt.eval.results import read_video_results

    kp = [10.0, 20.0, 1.0] * 17
    kp[3] = float("nan")
    doc = {"images": [{"file_name": "images/val/v/000007.jpg", "id": 7}],
           "annotations": [{"image_id": 7, "keypoints": kp, "scores": [1.0] * 17}]}
    fp = tmp_path / "v.json"
    fp.write_text(json.dumps(doc))
    with pytest.raises(DataError, match="000007"):
        read_video_results(fp)
    kp[3] = 10.0
    doc["annotations"][0]["scores"][2] = float("-inf")
    fp.write_text(json.dumps(doc))
    with pytest.raises(DataError, match="v.json.*000007"):
        read_video_results(fp)
