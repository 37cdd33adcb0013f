"""CLI verbs of the eval stage: ``dcpose-trt eval``.

Only argparse-level code at import time; the metric is imported when the verb runs.
"""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    """Add this stage's verbs to the ``dcpose-trt`` parser."""
    p = sub.add_parser(
        "eval",
        help="PoseTrack AP (poseval's evaluateAP) of per-video predictions against GT",
        description=(
            "Prints Head, Shoulder, Elbow, Wrist, Hip, Knee, Ankle and Mean (mean of the 15 joint APs). "
            "--gt: folder of per-video GT JSONs (or a dataset root: annotations/val); "
            "--pred: folder of result JSONs with the same file names."
        ),
    )
    p.add_argument("--gt", required=True, help="GT folder (per-video PoseTrack17/18 JSON files)")
    p.add_argument("--pred", required=True, help="prediction folder (one JSON per GT file)")
    p.add_argument(
        "--json", dest="json_out", help="also write the table (+ per-joint details) to this JSON file"
    )
    p.set_defaults(func=_run_eval)

    q = sub.add_parser(
        "predict",
        help="run a model over a PoseTrack-layout dataset and write per-video PoseTrack result JSONs",
        description="Writes <out>/<video>.json (PoseTrack format, every frame, COCO17→PoseTrack15, "
        "point score = heatmap peak × box score) for `dcpose-trt eval`.",
    )
    q.add_argument("--model", help="checkpoint, ONNX or plan (default: the bundled tiny model)")
    q.add_argument("--backend", default="auto", help="auto, torch, onnxruntime, tensorrt (default: auto)")
    q.add_argument("--data", required=True, help="dataset root (images/, annotations/<split>/)")
    q.add_argument("--split", default="val", help="default: %(default)s")
    q.add_argument("--boxes", choices=("gt", "detections"), default="detections",
                   help="person boxes: GT or detections/<split>.json (default: %(default)s)")
    q.add_argument("--detections", help="detection JSON to use instead of detections/<split>.json")
    q.add_argument("--min-score", type=float, default=0.2, help="detection score threshold (default 0.2)")
    q.add_argument("--mode", choices=("exact", "cached"), default="exact",
                   help="cached: backbone once per person-frame (needs a --split export or a checkpoint)")
    q.add_argument("--causal", action="store_true", help="no look-ahead: refine frame t with t-1 and t-2")
    q.add_argument("--out", required=True, help="output folder for the per-video JSONs")
    q.set_defaults(func=_run_predict)


def _run_predict(args: argparse.Namespace) -> int:
    from dcpose_trt._atomic import check_writable
    from dcpose_trt.eval.predict import predict_dataset
    from dcpose_trt.runtime import PoseEstimator

    check_writable(args.out, "--out", folder=True)  # before the model loads and the dataset runs
    est = PoseEstimator(args.model, backend=args.backend, mode=args.mode, lookahead=not args.causal)
    s = predict_dataset(est, args.data, args.split, args.boxes, args.out, args.detections, args.min_score)
    calls = est.stats["backbone_crops"] / max(est.stats["person_frames"], 1)
    print(f"{s.frames} frames, {s.persons} persons in {s.seconds:.1f} s ({calls:.2f} backbone calls per "
          f"person-frame) -> {args.out}")
    return 0


def _run_eval(args: argparse.Namespace) -> int:
    import json
    import math
    from pathlib import Path

    from dcpose_trt.eval.posetrack_ap import evaluate_dirs, format_table

    res = evaluate_dirs(args.gt, args.pred)
    print(format_table(res.table))
    if args.json_out:

        def clean(d: dict) -> dict:  # NaN (a joint without GT) is not valid JSON: write null
            return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in d.items()}

        doc = clean(res.table)
        doc["details"] = {
            "per_joint_ap": clean(res.per_joint),
            "precision": clean(res.precision),
            "recall": clean(res.recall),
            "frames": res.n_frames,
        }
        out = Path(args.json_out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(doc, indent=2) + "\n")
    return 0
