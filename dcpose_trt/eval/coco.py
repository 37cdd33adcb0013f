"""COCO keypoint AP (OKS) through pycocotools, for COCO-format data (e.g. ``coco_sample/test_coco.json``).

pycocotools is optional (the ``eval`` extra) and imported only when called.
"""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from dcpose_trt._deps import require
from dcpose_trt.errors import DataError

#: Names of ``COCOeval.stats`` for keypoints, in order.
STAT_NAMES = ("AP", "AP50", "AP75", "APm", "APl", "AR", "AR50", "AR75", "ARm", "ARl")


def coco_keypoint_results(image_id: int, keypoints: np.ndarray, score: float, category_id: int = 1) -> dict:
    """One COCO keypoint result: ``keypoints`` 17 x 3 (x, y, confidence) in image pixels."""
    kp = np.asarray(keypoints, np.float64)
    if kp.shape != (17, 3):
        raise DataError(f"keypoints must be 17 x 3, got {kp.shape}")
    return {"image_id": int(image_id), "category_id": int(category_id),
            "keypoints": [round(float(v), 3) for v in kp.reshape(-1)], "score": float(score)}  # fmt: skip


def coco_oks_ap(gt: Path | str, results: Sequence[dict] | Path | str) -> dict[str, float]:
    """COCO keypoint AP/AR (OKS) of ``results`` against the COCO GT file ``gt``.

    Args:
        gt: a COCO keypoint annotation file (``images``, ``annotations``, ``categories``).
        results: a list of :func:`coco_keypoint_results` dicts, or a JSON file holding one.

    Returns:
        dict: ``STAT_NAMES`` -> value in percent (pycocotools' -1 for an empty area range stays -1).
    """
    coco_mod = require("pycocotools.coco", extra="eval", purpose="COCO OKS AP")
    cocoeval_mod = require("pycocotools.cocoeval", extra="eval", purpose="COCO OKS AP")
    if not isinstance(results, list | tuple):
        try:
            results = json.loads(Path(results).read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise DataError(f"{results}: cannot read COCO results ({exc})") from None
    if not results:
        raise DataError("no COCO keypoint results to evaluate")
    # pycocotools prints progress to stdout; keep the CLI's output to the table.
    with contextlib.redirect_stdout(io.StringIO()):
        try:
            coco_gt = coco_mod.COCO(str(gt))
        except (OSError, ValueError, KeyError, json.JSONDecodeError) as exc:
            raise DataError(f"{gt}: not a COCO annotation file ({exc})") from None
        coco_dt = coco_gt.loadRes(list(results))
        ev = cocoeval_mod.COCOeval(coco_gt, coco_dt, "keypoints")
        ev.params.imgIds = sorted({int(r["image_id"]) for r in results})
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return {n: (float(v) * 100 if v >= 0 else float(v)) for n, v in zip(STAT_NAMES, ev.stats, strict=True)}
