"""``dcpose-trt run``: pose estimation on a video with any backend."""

from __future__ import annotations

import argparse


def _run(args: argparse.Namespace) -> int:
    import json
    import sys

    from dcpose_trt.errors import InputError

    if args.max_frames is not None and args.max_frames < 1:  # 0 used to end in "no frames could be read"
        raise InputError(f"--max-frames must be >= 1, got {args.max_frames}")
    from dcpose_trt.runtime.pipeline import RunConfig, run_video

    cfg = RunConfig(video=args.video, model=args.model, backend=args.backend, mode=args.mode,
                    lookahead=not args.causal, boxes=args.boxes, detector=args.detector, out=args.out,
                    json_out=args.json, max_frames=args.max_frames, strict=args.strict)
    summary = run_video(cfg)
    print(json.dumps(summary.to_json()))
    for what, path in (("overlay", args.out), ("poses", args.json)):
        if path:
            print(f"{what}: {path}")
    if summary.interrupted:
        print(f"dcpose-trt run: interrupted; kept the {summary.frames} frames done", file=sys.stderr)
        return 130
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "run", help="pose estimation on a video, a folder of frames or a camera",
        description="Runs DCPose with person boxes from a file (--boxes) or a YOLO ONNX detector (--detector); "
        "writes a skeleton overlay video (--out) and per-frame poses JSON (--json).",
    )
    p.add_argument("--video", required=True, help="video file, folder of frames, or camera index (e.g. 0)")
    p.add_argument("--model", help="checkpoint (.pth), ONNX, split-export folder or plan (default: bundled model)")
    from dcpose_trt.runtime.backends import backend_names

    p.add_argument("--backend", default="auto", choices=backend_names())
    p.add_argument("--mode", default="exact", choices=("exact", "cached"),
                   help="cached: backbone once per person-frame (needs a --split export); default: %(default)s")
    p.add_argument("--causal", action="store_true", help="no look-ahead: refine frame t with t-1 and t-2")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--boxes", help="person boxes: COCO/PoseTrack detection JSON or a per-frame boxes.json")
    src.add_argument("--detector", help="YOLO person detector in ONNX (Ultralytics export layout)")
    p.add_argument("--out", help="overlay video to write (.mp4)")
    p.add_argument("--json", help="poses JSON to write")
    p.add_argument("--max-frames", type=int, help="stop after this many frames")
    p.add_argument("--strict", action="store_true",
                   help="fail (instead of warning) when the boxes file does not fit the video's frames")
    p.set_defaults(func=_run)
