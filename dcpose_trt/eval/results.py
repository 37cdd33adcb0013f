"""PoseTrack result files: one JSON per video, in the PoseTrack17 ``annolist`` form poseval reads.

Writer (spec §6.3): one ``annolist`` entry for **every** listed frame of the video, in frame order;
a frame without detections gets DCPose's dummy annorect (one point, id 0, at (0, 0) with score
-100); each person is ``{"annopoints": [{"point": [...]}], "score": [box score], "track_id": [i]}``
with the 17 COCO joints mapped to PoseTrack's 15 ids (ears dropped) and each point's score =
heatmap maxval x box score. Files are named like the GT files (``<video>.json``).

Reader: the same files, or PoseTrack18-style prediction files (``images`` / ``annotations`` with a
``scores`` list), into :class:`PredictedFrame` lists.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dcpose_trt.data.posetrack import (
    COCO17_TO_PT15,
    KEYPOINT_NAMES,
    PT15_TO_COCO17,
    Video,
    frame_number,
    load_json,
    unwrap_scalar,
)
from dcpose_trt.errors import DataError, InputError

#: poseval's score for a predicted point without one (``eval_helpers.MIN_SCORE``).
MIN_SCORE = -9999.0
#: DCPose's placeholder person for frames without detections (``data_format.py``).
DUMMY_ANNORECT = {"annopoints": [{"point": [{"id": [0], "x": [0], "y": [0], "score": [-100.0]}]}]}


@dataclass(frozen=True)
class Pose:
    """One predicted person, as the model outputs it.

    Attributes:
        keypoints (np.ndarray[17, 3]): x, y (image pixels), heatmap maxval; COCO joint order.
        box_score (float): the person box's detector score (1 for GT boxes).
    """

    keypoints: np.ndarray
    box_score: float


@dataclass
class PredictedPerson:
    """A predicted person read back from a result file.

    Attributes:
        points (np.ndarray[15, 3] float64): x, y, score per PoseTrack15 id; rows of NaN = no point;
            a point written without a score gets poseval's ``MIN_SCORE`` (-9999).
        score (float | None): the person score, when written.
        track_id (int | None)
    """

    points: np.ndarray
    score: float | None = None
    track_id: int | None = None

    @property
    def has(self) -> np.ndarray:
        """bool[15]: which joints were predicted."""
        return ~np.isnan(self.points[:, 0])


@dataclass
class PredictedFrame:
    """One frame of a result file: its image name, frame number and predicted people."""

    name: str
    index: int
    persons: list[PredictedPerson]


def pose_to_annorect(pose: Pose, track_id: int) -> dict:
    """One person in poseval's PoseTrack17 form; point score = maxval x box score (spec §6.3)."""
    kp = np.asarray(pose.keypoints, np.float64)
    if kp.shape != (17, 3):
        raise InputError(f"pose keypoints must be 17 x 3 (x, y, maxval), got {kp.shape}")
    points = []
    for pid, c in enumerate(PT15_TO_COCO17):
        x, y, maxval = kp[c]
        points.append(
            {"id": [pid], "x": [float(x)], "y": [float(y)], "score": [float(maxval * pose.box_score)]}
        )
    return {"annopoints": [{"point": points}], "score": [float(pose.box_score)], "track_id": [int(track_id)]}


def video_results(video: Video, poses: Mapping[int, Sequence[Pose]]) -> dict:
    """The result document of one video.

    Args:
        video: the GT video; every listed frame gets an entry, in frame order.
        poses: frame number -> predicted people of that frame (missing = none).

    Returns:
        dict: ``{"annolist": [{"image": [{"name"}], "imgnum": [frame], "annorect": [...]}, ...]}``.
    """
    annolist = []
    for f in video.frames:
        rects = [pose_to_annorect(p, k) for k, p in enumerate(poses.get(f.index, ()))]
        annolist.append({
            "image": [{"name": f.file_name}],
            "imgnum": [f.index],
            "annorect": rects or [json.loads(json.dumps(DUMMY_ANNORECT))],  # fresh copy per frame
        })  # fmt: skip
    return {"annolist": annolist}


def write_results(out_dir: Path | str, videos: Iterable[Video],
                  poses: Mapping[str, Mapping[int, Sequence[Pose]]]) -> list[Path]:  # fmt: skip
    """Write ``<out_dir>/<video>.json`` for every video (also those without any prediction).

    Args:
        poses: video name -> frame number -> people.

    Returns:
        list[Path]: the files written.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for v in videos:
        fp = out / f"{v.name}.json"
        fp.write_text(json.dumps(video_results(v, poses.get(v.name, {}))))
        written.append(fp)
    return written


# ----------------------------------------------------------------------------------------------
# Reading


def _num_or_nan(v: object) -> float:
    v = unwrap_scalar(v)
    if isinstance(v, bool) or not isinstance(v, int | float):
        return math.nan
    return float(v)


def _finite(v: object, what: str, where: str) -> float:
    """``v`` as a finite float; NaN, infinities and non-numbers are one line naming file and frame."""
    v = unwrap_scalar(v)
    try:
        f = float(v)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):
        raise DataError(f"{where}: {what} is not a number ({v!r:.40})") from None
    if isinstance(v, bool) or not math.isfinite(f):
        raise DataError(f"{where}: {what} is {v!r:.40} (NaN and infinite values are not valid predictions)")
    return f


def _finite_score(v: object, what: str, where: str) -> float:
    """A score as poseval reads it (a non-number counts as NaN, ranked last), but never NaN or infinite
    when written as a number."""
    u = unwrap_scalar(v)
    if isinstance(u, float) and not math.isfinite(u):
        _finite(u, what, where)
    return _num_or_nan(u)


def _person_pt17(rect: dict, path: Path, frame: str = "?") -> PredictedPerson | None:
    """poseval keeps a rect only if it has ``annopoints[0].point`` (``removeRectsWithoutPoints``)."""
    ap = rect.get("annopoints") if isinstance(rect, dict) else None
    if not (isinstance(ap, list) and ap and isinstance(ap[0], dict) and "point" in ap[0]):
        return None
    where = f"{path}: frame {frame}"
    pts = np.full((15, 3), np.nan)
    points = ap[0]["point"] or []
    if not isinstance(points, list):
        raise DataError(f"{where}: annopoints[0].point must be a list")
    for p in points:
        try:
            pid = int(unwrap_scalar(p["id"]))
            x, y = _finite(p["x"], "a keypoint x", where), _finite(p["y"], "a keypoint y", where)
        except (KeyError, TypeError, ValueError, OverflowError, IndexError):
            raise DataError(f"{where}: a predicted point lacks a numeric id/x/y") from None
        if not 0 <= pid < 15:
            raise DataError(f"{path}: predicted point id {pid} is not a PoseTrack joint id (0..14)")
        if not np.isnan(pts[pid, 0]):
            continue  # poseval's getPointGTbyID takes the first point with that id
        s = _finite_score(p["score"], "a keypoint score", where) if "score" in p else MIN_SCORE
        pts[pid] = (x, y, s)
    score = _finite_score(rect["score"], "a person score", where) if "score" in rect else None
    tid = _num_or_nan(rect.get("track_id")) if rect.get("track_id") is not None else None
    return PredictedPerson(pts, score, int(tid) if tid is not None and math.isfinite(tid) else None)


def _person_pt18(a: dict, names: Sequence[str], path: Path, frame: str = "?") -> PredictedPerson:
    """poseval's convert: PoseTrack18 -> 17 form, dropping points written as (0, 0, 0)."""
    where = f"{path}: frame {frame}"
    kp = a.get("keypoints") or []
    scores = a.get("scores") or []
    if not isinstance(kp, list) or not isinstance(scores, list):
        raise DataError(f"{where}: 'keypoints' and 'scores' must be lists")
    if len(kp) != 3 * len(names):
        raise DataError(
            f"{path}: a prediction has {len(kp) // 3} keypoints, the categories list {len(names)}"
        )
    pts = np.full((15, 3), np.nan)
    for j, name in enumerate(names):
        if name not in KEYPOINT_NAMES or KEYPOINT_NAMES.index(name) not in COCO17_TO_PT15:
            continue
        x, y, v = (_finite(c, "a keypoint value", where) for c in kp[3 * j : 3 * j + 3])
        if x == 0 and y == 0 and v == 0:
            continue
        s = _finite(scores[j], "a keypoint score", where) if j < len(scores) else MIN_SCORE
        pts[COCO17_TO_PT15[KEYPOINT_NAMES.index(name)]] = (x, y, s)
    score = a.get("score")
    tid = a.get("track_id")
    return PredictedPerson(pts, _finite(score, "a person score", where) if score is not None else None,
                           tid if isinstance(tid, int) and not isinstance(tid, bool) else None)


def read_video_results(path: Path | str) -> list[PredictedFrame]:
    """Read one result file (PoseTrack17 ``annolist`` or PoseTrack18 ``images``/``annotations``)."""
    path = Path(path)
    doc = load_json(path)
    frames: list[PredictedFrame] = []
    if isinstance(doc, dict) and isinstance(doc.get("annolist"), list):
        from dcpose_trt.schemas import validate

        validate(doc, "posetrack", path)  # one line saying where a hand-made file goes wrong
        for i, e in enumerate(doc["annolist"]):
            try:
                name = str(unwrap_scalar(e["image"])["name"])
            except (KeyError, TypeError, IndexError):
                raise DataError(f"{path}: annolist[{i}] has no image name") from None
            rects = e.get("annorect") or []
            if not isinstance(rects, list):
                raise DataError(f"{path}: annolist[{i}].annorect must be a list")
            persons = [p for p in (_person_pt17(r, path, name) for r in rects) if p is not None]
            frames.append(PredictedFrame(name, frame_number(name)[0], persons))
        return frames
    if isinstance(doc, dict) and isinstance(doc.get("images"), list):
        cats = doc.get("categories")
        names = list(KEYPOINT_NAMES)
        if isinstance(cats, list) and cats and isinstance(cats[0], dict) and "keypoints" in cats[0]:
            names = cats[0]["keypoints"]
            if not (isinstance(names, list) and all(isinstance(n, str) for n in names)):
                raise DataError(f"{path}: categories[0].keypoints must be a list of joint names")
        by_id: dict[object, PredictedFrame] = {}
        for i, im in enumerate(doc["images"]):
            if not isinstance(im, dict) or not isinstance(im.get("file_name"), str) \
                    or not isinstance(im.get("id"), int | str):
                raise DataError(f"{path}: images[{i}] needs 'file_name' (a string) and 'id' (a number or string)")
            by_id[im["id"]] = PredictedFrame(im["file_name"], frame_number(im["file_name"])[0], [])
            frames.append(by_id[im["id"]])
        annotations = doc.get("annotations") or []
        if not isinstance(annotations, list):
            raise DataError(f"{path}: 'annotations' must be a list")
        for i, a in enumerate(annotations):
            key = a.get("image_id") if isinstance(a, dict) else None
            f = by_id.get(key) if isinstance(key, int | str) else None
            if f is None:
                raise DataError(f"{path}: annotations[{i}] refers to no listed image")
            f.persons.append(_person_pt18(a, names, path, f.name))
        return frames
    raise DataError(f"{path}: not a PoseTrack result file (expected an 'annolist' or 'images' key)")


def read_results(pred_dir: Path | str) -> dict[str, list[PredictedFrame]]:
    """Every ``*.json`` in ``pred_dir``: video name (file stem) -> frames."""
    d = Path(pred_dir)
    if not d.is_dir():
        raise DataError(f"prediction folder {d} does not exist")
    return {fp.stem: read_video_results(fp) for fp in sorted(d.glob("*.json"))}
