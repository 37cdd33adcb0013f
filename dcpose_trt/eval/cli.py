"""CLI verbs of the eval stage: ``dcpose-trt eval`` (``predict`` is the scale stage's, ``scale/cli.py``).

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
