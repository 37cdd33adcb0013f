"""PoseTrack multi-person pose AP, computed the way poseval's ``evaluateAP`` computes it.

A faithful port of ``poseval/py/eval_helpers.py`` (``cleanupData``, ``removeIgnoredPoints``,
``assignGTmulti``, ``computeRPC``, ``VOCap``) and ``evaluateAP.computeMetrics`` (spec §6.4):

1. GT frames without people are dropped (with their predictions); people without points too.
2. Points (GT and predicted) strictly inside an ignore region are removed, and people left with no
   point are dropped.
3. Per frame, a prediction is matched to the GT person with the highest PCKh (fraction of the GT's
   annotated joints within 0.5 x head size, head size = 0.6 x head-box diagonal); each GT person keeps
   only its best-scoring prediction among those that chose it. This is poseval's greedy
   argmax assignment (it does not use Hungarian assignment for AP).
4. Every predicted joint becomes a detection with its score, true positive when its person was matched
   and the joint is within threshold. Per joint, VOC-style AP over all frames of all videos.
5. Columns: Head (head_top, neck = head_bottom, nose), Shoulder, Elbow, Wrist, Hip, Knee, Ankle
   (left/right means) and Mean = the mean of the 15 joint APs (NaN ones left out).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from dcpose_trt.data.posetrack import PT15_TO_COCO17, Video, load_video
from dcpose_trt.errors import DataError
from dcpose_trt.eval.results import PredictedFrame, read_video_results

log = logging.getLogger(__name__)

#: poseval's joint names by PoseTrack15 id.
JOINT_NAMES = (
    "right_ankle", "right_knee", "right_hip", "left_hip", "left_knee", "left_ankle",
    "right_wrist", "right_elbow", "right_shoulder", "left_shoulder", "left_elbow", "left_wrist",
    "neck", "nose", "head_top",
)  # fmt: skip
#: Table columns -> PoseTrack15 ids they average (``eval_helpers.getCum``).
COLUMNS: dict[str, tuple[int, ...]] = {
    "Head": (14, 12, 13),
    "Shoulder": (8, 9),
    "Elbow": (7, 10),
    "Wrist": (6, 11),
    "Hip": (2, 3),
    "Knee": (1, 4),
    "Ankle": (0, 5),
}
DIST_THRESH = 0.5


@dataclass
class _GTPerson:
    xy: np.ndarray  # 15 x 2
    has: np.ndarray  # bool[15]
    head: tuple[float, float, float, float]  # x1, y1, x2, y2


@dataclass
class _PrPerson:
    xy: np.ndarray  # 15 x 2
    score: np.ndarray  # 15
    has: np.ndarray  # bool[15]


@dataclass
class EvalFrame:
    """One GT frame and its predictions, in poseval's terms (15 PoseTrack joints)."""

    gt: list[_GTPerson]
    pr: list[_PrPerson]
    ignore: list[np.ndarray] = field(default_factory=list)


@dataclass(frozen=True)
class APResult:
    """PoseTrack AP (percent).

    Attributes:
        table (dict[str, float]): Head, Shoulder, Elbow, Wrist, Hip, Knee, Ankle, Mean.
        per_joint (dict[str, float]): AP of each of the 15 joints by poseval name.
        precision, recall (dict[str, float]): at the lowest score, per joint (poseval's pre/rec).
        n_frames (int): evaluated GT frames.
    """

    table: dict[str, float]
    per_joint: dict[str, float]
    precision: dict[str, float]
    recall: dict[str, float]
    n_frames: int


# ----------------------------------------------------------------------------------------------
# The metric (ports of eval_helpers.computeRPC / VOCap and evaluateAP.computeMetrics)


def compute_rpc(scores: np.ndarray, labels: np.ndarray, total_pos: float) -> tuple[np.ndarray, np.ndarray]:
    """Precision and recall after each detection, detections sorted by score, highest first."""
    scores = np.asarray(scores, np.float64)
    labels = np.asarray(labels)
    # Same call as poseval, so ties are broken in the same order.
    order = np.array(scores).argsort()[::-1]
    tp = np.cumsum(labels[order] == 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        recall = tp / np.float64(total_pos)
    precision = tp / np.arange(1, len(order) + 1)
    return precision, recall


def voc_ap(recall: np.ndarray, precision: np.ndarray) -> float:
    """Area under the interpolated precision/recall curve (VOC, all points), as a fraction."""
    mrec = np.concatenate([[0.0], recall, [1.0]])
    mpre = np.concatenate([[0.0], precision, [0.0]])
    mpre = np.maximum.accumulate(mpre[::-1])[::-1]  # precision envelope: max to the right
    i = np.flatnonzero(mrec[1:] != mrec[:-1]) + 1
    with np.errstate(invalid="ignore"):
        return float(np.sum((mrec[i] - mrec[i - 1]) * mpre[i]))


def compute_metrics(scores: Sequence[np.ndarray], labels: Sequence[np.ndarray], n_gt: np.ndarray):
    """Per-joint AP, final precision and recall in percent; index 15 holds the mean over joints.

    Args:
        scores, labels: per joint, the concatenated detection scores and 0/1 labels.
        n_gt (np.ndarray[15]): annotated GT joints per joint.

    Returns:
        tuple of three float64 arrays of 16: ap, precision, recall.
    """
    nj = len(n_gt)
    ap, pre, rec = np.zeros(nj + 1), np.zeros(nj + 1), np.zeros(nj + 1)
    for j in range(nj):
        precision, recall = compute_rpc(scores[j], labels[j], n_gt[j])
        if len(precision):  # no predicted joint at all: AP stays 0, as in poseval
            ap[j] = voc_ap(recall, precision) * 100
            pre[j] = precision[-1] * 100
            rec[j] = recall[-1] * 100
    for arr in (ap, pre, rec):  # joints with no GT give NaN and are left out of the mean
        ok = ~np.isnan(arr[:nj])
        arr[nj] = arr[:nj][ok].mean() if ok.any() else np.nan
    return ap, pre, rec


def _inside(poly: np.ndarray, x: float, y: float) -> bool:
    """Strictly inside, like shapely's ``Polygon.contains`` (points on the border are outside)."""
    if len(poly) < 3:
        return False
    return cv2.pointPolygonTest(poly.astype(np.float32).reshape(-1, 1, 2), (float(x), float(y)), False) > 0


def _remove_ignored(persons: list, polys: list[np.ndarray]) -> list:
    """``removeIgnoredPointsRects``: drop points inside any polygon, then people with no point left."""
    kept = []
    for p in persons:
        has = p.has.copy()
        for i in np.flatnonzero(has):
            if any(_inside(poly, p.xy[i, 0], p.xy[i, 1]) for poly in polys):
                has[i] = False
        if has.any():
            p.has = has
            kept.append(p)
    return kept


def assign_frame(frame: EvalFrame, thresh: float = DIST_THRESH):
    """``assignGTmulti`` for one frame.

    Returns:
        tuple: per joint a list of (score, label) detections, and bool[15] counts of GT joints.
    """
    gt, pr = frame.gt, frame.pr
    nj = 15
    has_gt = np.array([g.has for g in gt], bool).reshape(len(gt), nj)
    has_pr = np.array([p.has for p in pr], bool).reshape(len(pr), nj)
    score = np.array([p.score for p in pr], np.float64).reshape(len(pr), nj)
    det_scores: list[list[float]] = [[] for _ in range(nj)]
    det_labels: list[list[bool]] = [[] for _ in range(nj)]
    if len(pr) and len(gt):
        gxy = np.array([g.xy for g in gt])  # G x 15 x 2
        pxy = np.array([p.xy for p in pr])  # P x 15 x 2
        head = np.array([0.6 * np.hypot(g.head[2] - g.head[0], g.head[3] - g.head[1]) for g in gt])
        with np.errstate(divide="ignore", invalid="ignore"):
            dist = np.linalg.norm(pxy[:, None] - gxy[None], axis=-1) / head[None, :, None]  # P x G x 15
        dist = np.where(has_pr[:, None] & has_gt[None], dist, np.inf)
        match = dist <= thresh
        pck = match.sum(axis=2).astype(np.float64)
        n_gtp = has_gt.sum(axis=1)
        pck[:, n_gtp > 0] /= n_gtp[n_gtp > 0]
        # Each prediction keeps only its best GT; each GT then keeps its best prediction.
        best = np.argmax(pck, axis=1)
        keep = np.zeros_like(pck, bool)
        keep[np.arange(len(pr)), best] = True
        pck = np.where(keep, pck, 0.0)
        pr_to_gt = np.argmax(pck, axis=0)
        pr_to_gt[np.max(pck, axis=0) == 0] = -1
        for ip in range(len(pr)):
            hit = np.flatnonzero(pr_to_gt == ip)
            m = match[ip, hit[0]] if len(hit) else np.zeros(nj, bool)
            for i in np.flatnonzero(has_pr[ip]):
                det_scores[i].append(score[ip, i])
                det_labels[i].append(bool(m[i]))
    elif not len(gt):  # no GT left: every prediction is a false positive
        for ip in range(len(pr)):
            for i in np.flatnonzero(has_pr[ip]):
                det_scores[i].append(score[ip, i])
                det_labels[i].append(False)
    return det_scores, det_labels, has_gt.sum(axis=0)


def evaluate_frames(frames: Sequence[EvalFrame], thresh: float = DIST_THRESH) -> APResult:
    """AP over already aligned frames (ignore regions are applied here)."""
    nj = 15
    scores: list[list[float]] = [[] for _ in range(nj)]
    labels: list[list[bool]] = [[] for _ in range(nj)]
    n_gt = np.zeros(nj)
    n = 0
    for fr in frames:
        if not fr.gt:  # cleanupData: GT frames without people are not evaluated
            continue
        n += 1
        if fr.ignore:
            fr = EvalFrame(_remove_ignored(fr.gt, fr.ignore), _remove_ignored(fr.pr, fr.ignore))
        s, lab, g = assign_frame(fr, thresh)
        for i in range(nj):
            scores[i] += s[i]
            labels[i] += lab[i]
        n_gt += g
    ap, pre, rec = compute_metrics(
        [np.array(s, np.float64) for s in scores], [np.array(x, np.int8) for x in labels], n_gt
    )
    table = {name: float(np.mean(ap[list(ids)])) for name, ids in COLUMNS.items()}
    table["Mean"] = float(ap[nj])
    return APResult(
        table=table,
        per_joint={JOINT_NAMES[i]: float(ap[i]) for i in range(nj)},
        precision={JOINT_NAMES[i]: float(pre[i]) for i in range(nj)} | {"total": float(pre[nj])},
        recall={JOINT_NAMES[i]: float(rec[i]) for i in range(nj)} | {"total": float(rec[nj])},
        n_frames=n,
    )


# ----------------------------------------------------------------------------------------------
# Files -> frames


def _gt_persons(video: Video, frame_idx: int) -> tuple[list[_GTPerson], list[np.ndarray]]:
    f = video.frame(frame_idx)
    out = []
    for p in f.persons:
        if p.head_box is None:
            raise DataError(
                f"{video.source}: a person in frame {frame_idx} has no bbox_head (needed for PCKh)"
            )
        kp = p.keypoints[list(PT15_TO_COCO17)]
        ann = p.annotated[list(PT15_TO_COCO17)]
        x, y, w, h = p.head_box
        out.append(_GTPerson(kp[:, :2].astype(np.float64), ann, (x, y, x + w, y + h)))
    return out, f.ignore_regions


def _pr_persons(frame: PredictedFrame | None) -> list[_PrPerson]:
    if frame is None:
        return []
    return [_PrPerson(p.points[:, :2].copy(), p.points[:, 2].copy(), p.has) for p in frame.persons]


def frames_for_video(video: Video, predicted: Sequence[PredictedFrame]) -> list[EvalFrame]:
    """Align a GT video with its predictions by frame number (poseval aligns by position, which is
    the same for files written by :mod:`dcpose_trt.eval.results`)."""
    by_index = {f.index: f for f in predicted}
    out = []
    for f in video.frames:
        if not f.persons:
            continue
        if f.index not in by_index:
            raise DataError(f"predictions for {video.name} have no entry for frame {f.index} ({f.file_name})")
        gt, ignore = _gt_persons(video, f.index)
        out.append(EvalFrame(gt, _pr_persons(by_index[f.index]), ignore))
    return out


def _gt_files(gt: Path) -> list[Path]:
    if gt.is_file():
        return [gt]
    files = sorted(gt.glob("*.json"))
    if not files and (gt / "annotations" / "val").is_dir():  # a dataset root: evaluate val
        files = sorted((gt / "annotations" / "val").glob("*.json"))
    if not files:
        raise DataError(f"no GT annotation files (*.json) in {gt}")
    return files


def evaluate_dirs(gt: Path | str, pred: Path | str, thresh: float = DIST_THRESH) -> APResult:
    """poseval's ``evaluate.py --evalPoseEstimation`` on a folder of per-video GT files.

    Args:
        gt: folder of per-video GT JSONs (PoseTrack17 or 18), one GT file, or a dataset root
            (then ``annotations/val``).
        pred: folder with one result file per GT file, same file names.
    """
    gt, pred = Path(gt), Path(pred)
    if not pred.is_dir():
        raise DataError(f"prediction folder {pred} does not exist")
    frames: list[EvalFrame] = []
    for fp in _gt_files(gt):
        video = load_video(fp)
        pf = pred / fp.name
        if not pf.is_file():
            raise DataError(f"prediction file {pf} does not exist (one per GT file, same name)")
        frames += frames_for_video(video, read_video_results(pf))
    if not frames:
        raise DataError(f"{gt}: no annotated frames to evaluate")
    res = evaluate_frames(frames, thresh)
    log.info("posetrack AP over %d frames: Mean %.1f", res.n_frames, res.table["Mean"])
    return res


def format_table(table: Mapping[str, float]) -> str:
    """Two-line text table: the column names and the values with one decimal."""
    names = [*COLUMNS, "Mean"]
    head = " ".join(f"{n:>8}" for n in names)
    row = " ".join(f"{table[n]:8.1f}" for n in names)
    return f"{head}\n{row}"
