"""Backend fidelity: how far a candidate (FP16/INT8 ONNX, TensorRT plan) moves keypoints from a reference.

Both backends see the same person crops (GT boxes of a PoseTrack-layout split, cut by the inference
crop code); heatmaps are decoded by the official decoder. Per joint we report the mean keypoint
displacement in image pixels and in heatmap cells, the share of joints within one heatmap cell, the
peak-score change, and the PoseTrack AP of both (poseval port in :mod:`dcpose_trt.eval.posetrack_ap`).
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from dcpose_trt._atomic import atomic_write_text
from dcpose_trt.errors import DataError, InputError

log = logging.getLogger(__name__)

JOINTS = (
    "nose", "head_bottom", "head_top", "left_ear", "right_ear",
    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
    "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
)  # fmt: skip


@dataclass
class FidelityReport:
    """Candidate vs reference on ``n_persons`` person crops (``n_frames`` frames).

    Attributes:
        per_joint: joint name → {``px``: mean displacement in image pixels, ``cells``: in heatmap cells,
            ``within_cell``: share of joints displaced by at most one heatmap cell, ``score_change``:
            mean |peak score difference|}.
        overall: the same four over all joints.
        ap_reference, ap_candidate: PoseTrack AP tables (Head ... Mean), or None when not computed.
    """

    reference: str
    candidate: str
    data: str
    split: str
    n_frames: int
    n_persons: int
    per_joint: dict[str, dict[str, float]] = field(default_factory=dict)
    overall: dict[str, float] = field(default_factory=dict)
    ap_reference: dict[str, float] | None = None
    ap_candidate: dict[str, float] | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def format_table(self) -> str:
        lines = [f"{'joint':<16}{'px':>8}{'cells':>8}{'≤1 cell':>9}{'Δscore':>9}"]
        for name, r in [*self.per_joint.items(), ("all", self.overall)]:
            lines.append(f"{name:<16}{r['px']:8.2f}{r['cells']:8.3f}{100 * r['within_cell']:8.2f}%"
                         f"{r['score_change']:9.4f}")
        if self.ap_reference is not None and self.ap_candidate is not None:
            cols = list(self.ap_reference)
            lines.append("")
            lines.append(f"{'AP':<11}" + "".join(f"{c:>9}" for c in cols))
            for label, t in (("reference", self.ap_reference), ("candidate", self.ap_candidate)):
                lines.append(f"{label:<11}" + "".join(f"{t[c]:9.1f}" for c in cols))
        return "\n".join(lines)


def _open_backend(path: str | os.PathLike, preset: str | None, backend: str = "auto") -> Any:
    """Checkpoint → torch, ONNX (file or split folder) → ONNX Runtime, plan → TensorRT; or a named ``backend``."""
    p = Path(path)
    if not p.exists():
        raise InputError(f"model not found: {p}")
    if backend != "auto":
        from dcpose_trt.runtime.backends.opener import open_backend

        return open_backend(p, backend, preset=preset)
    if p.suffix in (".pth", ".pt", ".tar"):
        from dcpose_trt.runtime.backends.torch_backend import TorchBackend

        return TorchBackend.from_checkpoint(p, preset)
    if p.suffix == ".onnx" or p.is_dir():
        from dcpose_trt.runtime.backends.ort_backend import OnnxRuntimeBackend

        return OnnxRuntimeBackend(p, preset=preset)
    if p.suffix in (".plan", ".engine"):
        from dcpose_trt.runtime.backends.opener import open_backend

        return open_backend(p, "auto", preset=preset)
    raise InputError(f"{p}: expected a checkpoint (.pth), an ONNX (.onnx or split folder) or a plan (.plan)")


def _pt15_points(coords: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """COCO-17 (x, y) + scores → PoseTrack-15 ``[15, 3]`` rows for the AP code."""
    from dcpose_trt.data.posetrack import PT15_TO_COCO17

    idx = list(PT15_TO_COCO17)
    return np.concatenate([coords[idx], scores[idx, None]], axis=1).astype(np.float64)


def fidelity(reference: str | os.PathLike, candidate: str | os.PathLike, data: str | os.PathLike,
             split: str = "val", batch: int = 16, max_frames: int | None = None,
             candidate_backend: str = "auto") -> FidelityReport:
    """Compare a candidate backend with a reference on a PoseTrack-layout split (GT boxes).

    Args:
        reference: checkpoint (``.pth``) or ONNX of the reference model (usually FP32).
        candidate: ONNX (FP16/INT8/another DCN form) or TensorRT plan; must use the same preset.
        data: dataset root with ``annotations/<split>/*.json`` and the images.
        split: dataset split. Defaults to ``val``.
        batch: persons per backend call. max_frames: stop after this many labeled frames.
        candidate_backend: ``auto`` (by file type) or a registered backend name (``openvino-bf16``...).
    """
    from dcpose_trt.data.posetrack import load_split
    from dcpose_trt.data.transforms import clean_boxes, decode_heatmaps, make_inputs
    from dcpose_trt.data.video import posetrack_windows
    from dcpose_trt.eval.posetrack_ap import evaluate_frames, frames_for_video
    from dcpose_trt.eval.results import PredictedFrame, PredictedPerson
    from dcpose_trt.model import get_preset

    ref = _open_backend(reference, None)
    cand = _open_backend(candidate, ref.preset_name, candidate_backend)
    if cand.preset_name != ref.preset_name:
        raise InputError(f"reference preset {ref.preset_name} != candidate preset {cand.preset_name}")
    preset = get_preset(ref.preset_name)
    hh, hw = preset.heatmap_size
    index = load_split(data, split)
    disp_px, disp_cells, dscore = [], [], []
    pred: dict[str, dict[str, list]] = {"ref": {}, "cand": {}}
    n_frames = 0
    for video, frame, window, gt_boxes in posetrack_windows(index):
        if max_frames is not None and n_frames >= max_frames:
            break
        boxes = clean_boxes(gt_boxes)
        if not len(boxes):
            continue
        n_frames += 1
        frames, centers, scales = make_inputs(window, boxes, preset.image_size, preset.mean, preset.std)
        margin = np.ones((len(frames), 2), np.float32)
        outs = {}
        for key, backend in (("ref", ref), ("cand", cand)):
            hm = np.concatenate([backend.infer(frames[i:i + batch], margin[i:i + batch])
                                 for i in range(0, len(frames), batch)])
            outs[key] = decode_heatmaps(hm, centers, scales)
            persons = [PredictedPerson(_pt15_points(c, s * b[4]), float(b[4]))
                       for c, s, b in zip(outs[key][0], outs[key][1], boxes, strict=True)]
            pred[key].setdefault(video.name, []).append(PredictedFrame(frame.file_name, frame.index, persons))
        d = np.linalg.norm(outs["ref"][0] - outs["cand"][0], axis=-1)  # [N, 17] pixels
        # Pixels per heatmap cell: the crop covers scale * 200 px across the heatmap's width.
        cell_px = scales[:, 0] * 200.0 / hw
        disp_px.append(d)
        disp_cells.append(d / cell_px[:, None])
        dscore.append(np.abs(outs["ref"][1] - outs["cand"][1]))
    if not disp_px:
        raise InputError(f"{data} ({split}): no labeled frame with a person box")
    px, cells, ds = (np.concatenate(a) for a in (disp_px, disp_cells, dscore))

    def stats(sel: Any) -> dict[str, float]:
        return {"px": float(px[:, sel].mean()), "cells": float(cells[:, sel].mean()),
                "within_cell": float((cells[:, sel] <= 1.0).mean()), "score_change": float(ds[:, sel].mean())}

    report = FidelityReport(str(reference), str(candidate), str(data), split, n_frames, len(px),
                            per_joint={name: stats(j) for j, name in enumerate(JOINTS)},
                            overall=stats(slice(None)))
    try:
        aps = {}
        for key in ("ref", "cand"):
            ev = [f for v in index.videos.values() if v.name in pred[key]
                  for f in frames_for_video(v, pred[key][v.name])]
            aps[key] = evaluate_frames(ev).table
        report.ap_reference, report.ap_candidate = aps["ref"], aps["cand"]
    except DataError as exc:  # AP needs full GT (head boxes, every labeled frame); displacement stands alone
        log.warning("AP not computed: %s", exc)
    log.info("fidelity over %d persons in %d frames: %.2f%% within one heatmap cell (%dx%d heatmaps)",
             len(px), n_frames, 100 * report.overall["within_cell"], hh, hw)
    return report


def write_report(report: FidelityReport, path: str | os.PathLike) -> Path:
    """Write the report as JSON (atomically)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write_text(path, json.dumps(report.to_json(), indent=2) + "\n")
