"""CLI verbs of the eval stage: ``eval`` and ``fidelity`` (``predict`` is the scale stage's, ``scale/cli.py``).

Only argparse-level code at import time; the metric is imported when the verb runs.
"""

from __future__ import annotations

import argparse
from pathlib import Path


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

    f = sub.add_parser("fidelity", help="keypoint displacement and AP of a candidate backend vs a reference",
                       description="Compare keypoints of two models on a PoseTrack-layout split (GT boxes).")
    f.add_argument("--reference", type=Path, required=True, help="checkpoint (.pth) or ONNX")
    f.add_argument("--candidate", type=Path, required=True, help="ONNX (FP16/INT8) or TensorRT plan")
    f.add_argument("--data", type=Path, required=True, help="PoseTrack-layout dataset root")
    f.add_argument("--split", default="val", help="dataset split (default: val)")
    f.add_argument("--max-frames", type=int, help="stop after this many labeled frames")
    f.add_argument("--candidate-backend", default="auto",
                   choices=("auto", "openvino", "openvino-bf16", "openvino-int8"),
                   help="auto: by file type; openvino*: run the candidate (checkpoint, IR or gridsample ONNX) "
                        "on OpenVINO at that precision (default: %(default)s)")
    f.add_argument("--json", type=Path, help="also write the report as JSON")
    f.set_defaults(func=_fidelity)


def _run_eval(args: argparse.Namespace) -> int:
    import json
    import math

    from dcpose_trt._atomic import atomic_write_text
    from dcpose_trt.eval.posetrack_ap import evaluate_dirs, format_table

    if args.json_out:
        from dcpose_trt._atomic import check_writable

        check_writable(args.json_out, "--json", protected=[args.gt])
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
        atomic_write_text(out, json.dumps(doc, indent=2) + "\n")
    return 0


def _fidelity(args: argparse.Namespace) -> int:
    import logging

    from dcpose_trt.errors import InputError
    from dcpose_trt.eval.fidelity import fidelity, write_report

    if args.max_frames is not None and args.max_frames < 1:
        raise InputError(f"--max-frames must be >= 1, got {args.max_frames}")
    if args.json:
        from dcpose_trt._atomic import check_writable

        check_writable(args.json, "--json", inputs=[args.reference, args.candidate],
                       protected=[args.data / "annotations"])
    logger = logging.getLogger("dcpose_trt.eval.fidelity")  # progress (INFO) even without -v: it takes a while
    if logger.getEffectiveLevel() > logging.INFO:
        logger.setLevel(logging.INFO)
    report = fidelity(args.reference, args.candidate, args.data, split=args.split, max_frames=args.max_frames,
                      candidate_backend=args.candidate_backend)
    print(report.format_table())
    if args.json:
        print(f"wrote {write_report(report, args.json)}")
    return 0
