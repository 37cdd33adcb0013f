"""Accuracy report of the bundled models on the synthetic val set: the README's tables, reproducibly.

    dcpose-trt bench report --data outputs/synth --out benchmarks/results/bundled

Measures (all on ``--data``'s val split, GT person boxes, PyTorch on the CPU unless said otherwise):
- PoseTrack AP of the bundled DCPose vs the bundled single-frame HRNet baseline;
- DCPose causal mode (frames t, t-1, t-2: no look-ahead) and cached-backbone mode (one backbone call per
  person-frame), with backbone calls per person-frame and wall time;
- FP16 and INT8 ONNX (ONNX Runtime) against the FP32 ONNX: keypoint fidelity and AP.
Writes ``report.json`` and ``report.md``.
"""

from __future__ import annotations

import json
import os
import platform
import time
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from dcpose_trt._atomic import atomic_write_text

COLS = ("Head", "Shoulder", "Elbow", "Wrist", "Hip", "Knee", "Ankle", "Mean")
ASSETS = Path(__file__).resolve().parents[1] / "dcpose_trt" / "assets"


def _ap_row(est, data: Path, out: Path, boxes: str) -> dict:
    from dcpose_trt.eval.posetrack_ap import evaluate_dirs
    from dcpose_trt.eval.predict import predict_dataset

    s = predict_dataset(est, data, "val", boxes, out, progress=False)
    table = evaluate_dirs(data / "annotations" / "val", out).table
    calls = est.stats["backbone_crops"] / max(est.stats["person_frames"], 1)
    return {**{k: round(float(table[k]), 2) for k in COLS}, "seconds": round(s.seconds, 1),
            "person_frames": s.persons, "backbone_calls_per_person_frame": round(calls, 2)}


def exports(work: Path) -> tuple[Path, Path]:
    """The bundled model as FP32 ONNX (standard DeformConv) and as a backbone/head split."""
    from dcpose_trt.export import ExportConfig, export_onnx

    full = export_onnx(None, work / "tiny.fp32.onnx", ExportConfig(deform="deformconv"))
    split = export_onnx(None, work / "tiny.split", ExportConfig(deform="deformconv", split=True))
    return full, split


def accuracy(data: Path, work: Path, boxes: str, full: Path, split: Path, only: str = "") -> dict:
    from dcpose_trt.runtime import PoseEstimator

    dcpose, baseline = ASSETS / "dcpose_tiny.pth", ASSETS / "hrnet_tiny_single_frame.pth"
    runs = {
        "DCPose (bundled), PyTorch": (dcpose, "torch", {}),
        "single-frame HRNet baseline (bundled), PyTorch": (baseline, "torch", {}),
        "DCPose, ONNX Runtime, exact": (full, "onnxruntime", {}),
        "DCPose, ONNX Runtime, cached backbone": (split, "onnxruntime", {"mode": "cached"}),
        "DCPose, ONNX Runtime, causal (t, t-1, t-2)": (full, "onnxruntime", {"lookahead": False}),
    }
    rows = {}
    for name, (model, backend, kw) in runs.items():
        if only and only not in name:
            continue
        est = PoseEstimator(str(model), backend=backend, **kw)
        rows[name] = _ap_row(est, data, work / f"pred_{boxes}_{len(rows)}", boxes)
        print(name, rows[name], flush=True)
    return rows


def precision(data: Path, work: Path, fp32: Path, max_frames: int | None) -> dict:
    from dcpose_trt.eval.fidelity import fidelity
    from dcpose_trt.export import QuantizeConfig, quantize_onnx

    out = {}
    for prec in ("fp16", "int8"):
        cfg = QuantizeConfig(precision=prec, calib=data if prec == "int8" else None, calib_split="train")
        cand = quantize_onnx(fp32, work / f"tiny.{prec}.onnx", cfg)
        rep = fidelity(fp32, cand, data, "val", max_frames=max_frames)
        out[prec] = rep.to_json()
        print(prec, rep.overall, rep.ap_reference and rep.ap_reference.get("Mean"),
              rep.ap_candidate and rep.ap_candidate.get("Mean"), flush=True)
    return out


def real_clip(clip: Path, full: Path, split: Path, repeats: int = 5) -> dict:
    """Exact vs cached backbone on a real clip (its ``boxes.json``): speed, backbone calls, displacement.

    The clip is run ``repeats`` times per mode (the median wall time is reported); the cached mode's
    keypoints are compared with the exact mode's, person by person (same boxes, same order).
    """
    from dcpose_trt.data.video import BoxesFromFile, FrameSource
    from dcpose_trt.runtime import PoseEstimator

    src = FrameSource(clip)
    frames = list(src)
    boxes_of = BoxesFromFile(clip / "boxes.json", src.names())
    boxes = [boxes_of(i, f) for i, f in enumerate(frames)]
    rows, poses = {}, {}
    for mode, model in (("exact", full), ("cached", split)):
        est = PoseEstimator(str(model), backend="onnxruntime", mode=mode)
        est.run(frames, boxes)  # warm-up (session start, first-call allocations)
        times = []
        for _ in range(repeats):
            est.stats.update(backbone_crops=0, person_frames=0)
            t0 = time.perf_counter()
            out = est.run(frames, boxes)
            times.append(time.perf_counter() - t0)
        poses[mode] = np.stack([p.keypoints for f in out for p in f.persons])
        pf = max(est.stats["person_frames"], 1)
        rows[mode] = {"seconds_median": round(float(np.median(times)), 3), "frames": len(frames),
                      "person_frames": est.stats["person_frames"],
                      "ms_per_frame": round(1e3 * float(np.median(times)) / len(frames), 1),
                      "backbone_calls_per_person_frame": round(est.stats["backbone_crops"] / pf, 2)}
    d = np.linalg.norm(poses["cached"][..., :2] - poses["exact"][..., :2], axis=-1)
    rows["cached"].update(mean_displacement_px=round(float(d.mean()), 2), median_displacement_px=round(
        float(np.median(d)), 2), speedup_vs_exact=round(rows["exact"]["seconds_median"]
                                                        / rows["cached"]["seconds_median"], 2))
    return {"clip": str(clip), "repeats": repeats, **rows}


def to_markdown(doc: dict) -> str:
    lines = [f"Synthetic val set `{doc['data']}` ({doc['machine']}, {doc['date']}).", ""]
    for boxes, rows in doc["accuracy"].items():
        lines += [f"PoseTrack AP, {boxes} boxes:", "",
                  "| model | " + " | ".join(COLS) + " | backbone calls / person-frame | time (s) |",
                  "|---|" + "---:|" * (len(COLS) + 2)]
        for name, r in rows.items():
            lines.append(f"| {name} | " + " | ".join(f"{r[c]:.1f}" for c in COLS)
                         + f" | {r['backbone_calls_per_person_frame']:.2f} | {r['seconds']:.0f} |")
        lines.append("")
    if doc.get("precision"):
        lines += ["| ONNX Runtime | joints within 1 heatmap cell of FP32 | mean displacement (px) | Mean AP "
                  "| AP change |",
                  "|---|---:|---:|---:|---:|"]
        for prec, rep in doc["precision"].items():
            ref, cand = (rep.get("ap_reference") or {}).get("Mean"), (rep.get("ap_candidate") or {}).get("Mean")
            delta = f"{cand - ref:+.2f}" if ref is not None and cand is not None else "n/a"
            lines.append(f"| {prec.upper()} vs FP32 | {100 * rep['overall']['within_cell']:.2f}% | "
                         f"{rep['overall']['px']:.3f} | {cand if cand is None else round(cand, 2)} | {delta} |")
        lines.append("")
    if doc.get("real_clip"):
        rc = doc["real_clip"]
        lines += [f"Real clip `{rc['clip']}` (its boxes.json), ONNX Runtime, median of {rc['repeats']} runs:", "",
                  "| mode | ms / frame | backbone calls / person-frame | speed-up vs exact "
                  "| displacement vs exact (mean / median px) |", "|---|---:|---:|---:|---:|"]
        for mode in ("exact", "cached"):
            r = rc[mode]
            disp = (f"{r['mean_displacement_px']:.2f} / {r['median_displacement_px']:.2f}"
                    if "mean_displacement_px" in r else "-")
            lines.append(f"| {mode} | {r['ms_per_frame']:.1f} | {r['backbone_calls_per_person_frame']:.2f} | "
                         f"{r.get('speedup_vs_exact', 1.0):.2f} | {disp} |")
    return "\n".join(lines) + "\n"


def bundled_report(data: Path, out: Path = Path("benchmarks/results/bundled"), boxes: Sequence[str] = ("gt",),
                   skip_precision: bool = False, skip_accuracy: bool = False, max_frames: int | None = None,
                   clip: Path | None = None, only: str = "") -> dict:
    """Measure the sections asked for on ``data``; write ``out/report.json`` and ``out/report.md``.

    Args:
        data: synthetic dataset root (``dcpose-trt synth`` output).
        boxes: person boxes of the accuracy rows, any of ``gt``, ``detections``.
        skip_precision, skip_accuracy: leave out the FP16/INT8 fidelity rows, or the accuracy rows.
        max_frames: limit the fidelity runs to this many frames.
        clip: real clip folder with ``boxes.json`` for the exact-vs-cached report.
        only: run only the accuracy rows whose name contains this text.
    """
    from dcpose_trt.errors import InputError

    if not (data / "annotations").is_dir():
        raise InputError(f"{data} is not a dataset root (no annotations/): make one with 'dcpose-trt synth'")
    bad = [b for b in boxes if b not in ("gt", "detections")]
    if bad:
        raise InputError(f"--boxes must be gt and/or detections, got {bad}")
    work = out / "work"
    work.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    full, split = exports(work)  # once, for every section
    doc = {"data": str(data), "date": datetime.now(timezone.utc).strftime("%Y-%m-%d"),
           "machine": f"{platform.machine()} CPU, {os.cpu_count()} cores, no GPU",
           "accuracy": {} if skip_accuracy else {b: accuracy(data, work, b, full, split, only) for b in boxes}}
    if not skip_precision:
        doc["precision"] = precision(data, work, full, max_frames)
    if clip is not None:
        doc["real_clip"] = real_clip(clip, full, split)
    doc["seconds"] = round(time.perf_counter() - t0)
    atomic_write_text(out / "report.json", json.dumps(doc, indent=2) + "\n")
    atomic_write_text(out / "report.md", to_markdown(doc))
    print(to_markdown(doc))
    return doc
