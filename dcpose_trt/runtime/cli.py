"""``dcpose-trt run`` (pose estimation on a video with any backend) and ``dcpose-trt select-backend`` (what
``--backend auto`` picks for a checkpoint on this CPU)."""

from __future__ import annotations

import argparse


def _run(args: argparse.Namespace) -> int:
    import json
    import sys

    from dcpose_trt.errors import InputError

    if args.max_frames is not None and args.max_frames < 1:  # 0 used to end in "no frames could be read"
        raise InputError(f"--max-frames must be >= 1, got {args.max_frames}")
    if args.max_persons < 0:
        raise InputError(f"--max-persons must be >= 0 (0: no cap), got {args.max_persons}")
    from dcpose_trt.engine.plan_trust import apply_cli_args
    from dcpose_trt.runtime.pipeline import RunConfig, run_video

    apply_cli_args(args)

    cfg = RunConfig(video=args.video, model=args.model, backend=args.backend, mode=args.mode,
                    lookahead=not args.causal, boxes=args.boxes, detector=args.detector, out=args.out,
                    json_out=args.json, max_frames=args.max_frames, strict=args.strict,
                    lenient=args.lenient, max_persons=args.max_persons or None,
                    **({} if args.detect_every is None else {"detect_every": args.detect_every}))
    summary = run_video(cfg)
    print(json.dumps(summary.to_json()))
    if not args.out and not args.json:
        # A user who gives neither expects something written: say so (the summary above is all there is).
        print("dcpose-trt run: no --out or --json given: the poses were not written, only the summary above",
              file=sys.stderr)
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
        description="Runs DCPose with person boxes from a file (--boxes), a YOLO ONNX detector (--detector) or, "
        "with neither, the built-in OpenCV HOG people detector (no download; upright, unoccluded people only); "
        "writes a skeleton overlay video (--out) and/or per-frame poses JSON (--json); with neither, only the "
        "summary is printed (with a note). Ctrl-C or SIGTERM stops the run and keeps the frames done. "
        "Formats: docs/formats.md.",
    )
    p.add_argument("--video", required=True, help="video file, folder of frames, or camera index (e.g. 0)")
    p.add_argument("--model", help="checkpoint (.pth), ONNX, split-export folder or plan (default: bundled model)")
    from dcpose_trt.runtime.backends.registry import backend_names
    from dcpose_trt.runtime.boxes import DEFAULT_MAX_PERSONS

    p.add_argument("--backend", default="auto", choices=backend_names(),
                   help="auto: a plan with its TensorRT, an ONNX with ONNX Runtime, a checkpoint (or none) with "
                        "the fastest CPU backend measured on this machine (once, then remembered; "
                        "`dcpose-trt select-backend` shows it) (default: %(default)s)")
    p.add_argument("--mode", default="exact", choices=("exact", "cached"),
                   help="cached: backbone once per person-frame (an ONNX --model must be a --split export; a "
                        "checkpoint is exported as one on demand) (default: %(default)s)")
    p.add_argument("--causal", action="store_true", help="no look-ahead: refine frame t with t-1 and t-2")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--boxes", help="person boxes: a boxes JSON keyed by frame, frame_id or image name "
                     "(docs/formats.md), e.g. COCO/PoseTrack detections")
    src.add_argument("--detector", help="YOLO person detector in ONNX (Ultralytics export, docs/detector.md) "
                     "(default without --boxes: the built-in HOG people detector)")
    p.add_argument("--out", help="overlay video to write (.mp4)")
    p.add_argument("--json", help="poses JSON to write")
    p.add_argument("--max-frames", type=int, help="stop after this many frames")
    p.add_argument("--max-persons", type=int, default=DEFAULT_MAX_PERSONS,
                   help="persons per frame: a frame with more boxes keeps the highest-scoring ones, with a warning; "
                        "0: no cap (default: %(default)s)")
    from dcpose_trt.runtime.follow import DEFAULT_DETECT_EVERY

    p.add_argument("--detect-every", type=int, metavar="N",
                   help="run the detector on every N-th frame only; in between, each person's box comes from "
                        "their last keypoints (1: every frame; a --boxes file is read on every frame) "
                        f"(default: {DEFAULT_DETECT_EVERY}, docs/detector.md)")
    p.add_argument("--strict", action="store_true",
                   help="fail (instead of warning) when the boxes file fits only some of the video's frames")
    p.add_argument("--lenient", action="store_true",
                   help="warn (instead of failing) when the boxes file gives no frame of the video a box")
    from dcpose_trt.engine.plan_trust import add_cli_args

    add_cli_args(p)  # --trust-plan, --plugin-lib
    p.set_defaults(func=_run)
    _register_select(sub)


def _select(args: argparse.Namespace) -> int:
    from pathlib import Path

    from dcpose_trt.errors import InputError
    from dcpose_trt.model.presets import bundled_model_path
    from dcpose_trt.runtime.backends import autoselect

    path = Path(args.model) if args.model else bundled_model_path()
    if path is None:
        raise InputError("no --model given and this install has no bundled checkpoint")
    if not path.is_file() or path.suffix.lower() not in (".pth", ".pt", ".tar"):
        raise InputError(f"--model must be a checkpoint file (.pth): {path}")
    wanted = args.candidates.split(",") if args.candidates else None
    sel = autoselect.select_backend(path, args.preset, args.mode, remeasure=args.remeasure, wanted=wanted,
                                    budget_s=args.budget)
    if not sel.times_ms:
        print(f"{sel.backend}: the only candidate ({sel.path}); nothing to measure")
        return 0
    how = f"remembered, measured {sel.measured_at}" if sel.reused else f"measured now ({sel.measured_at})"
    persons = list(next(iter(sel.times_ms.values())).keys())
    print(f"{path.name}, {args.mode} mode, {sel.key['cpu']} ({sel.key['cpu_extensions'] or 'extensions unknown'}), "
          f"{sel.key['cores']} cores; {how}")
    print(f"{'backend':<16}" + "".join(f"{p + ' person(s)':>16}" for p in persons) + "   (median ms per frame)")
    for name in sorted(sel.times_ms, key=sel.score):
        mark = "  <- auto" if name == sel.backend else ""
        print(f"{name:<16}" + "".join(f"{sel.times_ms[name][p]:>16.1f}" for p in persons) + mark)
    for name, why in sel.skipped.items():
        print(f"{name:<16}skipped: {why}")
    print(f"remembered in {sel.path}")
    return 0


def _register_select(sub: argparse._SubParsersAction) -> None:
    from dcpose_trt.runtime.backends.autoselect import CANDIDATES, CANDIDATES_ENV

    p = sub.add_parser(
        "select-backend", help="show (or re-measure) which CPU backend --backend auto picks for a checkpoint",
        description="Times each installed CPU backend on the checkpoint at 1 and 8 persons in the given mode and "
        "remembers the fastest for this machine; `run`, `predict` and the Python API then use it for "
        f"--backend auto. Candidates: {', '.join(CANDIDATES)} (${CANDIDATES_ENV} restricts them).",
    )
    p.add_argument("--model", help="checkpoint (.pth) (default: the bundled model)")
    p.add_argument("--preset", help="preset for a checkpoint without one recorded")
    p.add_argument("--mode", default="exact", choices=("exact", "cached"), help="default: %(default)s")
    p.add_argument("--candidates", help=f"comma list out of {', '.join(CANDIDATES)} (default: ${CANDIDATES_ENV}, "
                   "else all)")
    p.add_argument("--remeasure", action="store_true", help="measure again even if a choice is remembered")
    p.add_argument("--budget", type=float, default=2.0,
                   help="seconds of timed calls per backend and person count, at least 3 calls (default: %(default)s)")
    p.set_defaults(func=_select)
