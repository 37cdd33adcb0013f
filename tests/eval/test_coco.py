"""COCO OKS AP through pycocotools (skipped when it is not installed)."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("pycocotools")

from dcpose_trt.eval.coco import STAT_NAMES, coco_keypoint_results, coco_oks_ap  # noqa: E402


def test_gt_against_itself(shared_data):
    gt = shared_data / "coco_sample/test_coco.json"
    anns = [a for a in json.loads(gt.read_text())["annotations"] if a["num_keypoints"] > 0]
    res = [
        coco_keypoint_results(a["image_id"], np.array(a["keypoints"], float).reshape(17, 3), 1.0)
        for a in anns
    ]
    stats = coco_oks_ap(gt, res)
    assert list(stats) == list(STAT_NAMES) and stats["AP"] == pytest.approx(100)
    # Shift every keypoint far away: nothing matches.
    far = [
        {**r, "keypoints": [v + 500 if i % 3 != 2 else v for i, v in enumerate(r["keypoints"])]} for r in res
    ]
    assert coco_oks_ap(gt, far)["AP"] == pytest.approx(0)
