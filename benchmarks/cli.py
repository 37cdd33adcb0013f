"""``dcpose-trt bench``: the benchmark runner on the command line (flags map one-to-one onto ``BenchConfig``)."""

from __future__ import annotations

import argparse
from pathlib import Path


def _names(text: str) -> tuple[str, ...]:
    return tuple(v.strip() for v in text.split(",") if v.strip())


def _run(args: argparse.Namespace) -> int:
    from dcpose_trt._atomic import check_writable

    if args.out is not None:
        check_writable(args.out, folder=True)
    from benchmarks.runner import DEFAULT_OUT_ROOT, BenchConfig, markdown_table, run_benchmark

    if args.out is None:
        check_writable(DEFAULT_OUT_ROOT, folder=True)
    from dcpose_trt.engine.config import parse_ints

    cfg = BenchConfig(
        preset=args.preset, model=args.model, backends=_names(args.backends), precisions=_names(args.precisions),
        persons=parse_ints(args.persons, "--persons"), modes=_names(args.modes), iters=args.iters,
        warmup=args.warmup, out=args.out, video=args.video, calib=args.calib, calib_boxes=args.calib_boxes,
        calib_samples=args.calib_samples, device=args.device, threads=args.threads, progress=not args.no_progress,
        update_index=args.update_index,
    )
    result = run_benchmark(cfg)
    print(markdown_table(result.rows))
    print(f"\nwrote {result.out}/{{results.json,results.csv,latency.png,machine.json,README.md}}")
    return 1 if any(r["status"] == "error" for r in result.rows) else 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "bench", help="benchmark backends × precisions × persons × modes against PyTorch eager FP32",
        description="Exports/quantizes what is needed into OUT/cache, streams real frames through PoseEstimator "
        "and reports per-stage medians (read, crop, infer, align, decode, end to end), p50/p90/p99, persons/s, "
        "the speed-up over the PyTorch eager FP32 baseline (always measured) and, on GPUs, the share of the FLOP "
        "floor. Combinations this machine cannot run are listed as skipped with the reason.",
    )
    p.add_argument("--model", type=Path, help="DCPose checkpoint (default: bundled model, else random init)")
    p.add_argument("--preset", default="tiny-128x96", help="model preset (default: %(default)s)")
    p.add_argument("--backends", default="torch,onnxruntime,tensorrt",
                   help="comma list of torch, onnxruntime, tensorrt, tensorrt-rtx, openvino (default: %(default)s)")
    p.add_argument("--precisions", default="fp32,fp16,int8",
                   help="comma list of fp32, fp16, bf16 (torch autocast, OpenVINO), int8 (default: %(default)s)")
    p.add_argument("--persons", default="1,4,8,16", help="persons per frame, comma list (default: %(default)s)")
    p.add_argument("--modes", default="exact,cached", help="comma list of exact, cached (default: %(default)s)")
    p.add_argument("--iters", type=int, default=20, help="timed frames per row (default: %(default)s)")
    p.add_argument("--warmup", type=int, default=3, help="untimed frames before them (default: %(default)s)")
    p.add_argument("--out", type=Path, help="output folder (default: outputs/bench/<date>-<machine>-<preset>, "
                   "git-ignored)")
    p.add_argument("--update-index", action="store_true",
                   help="also rewrite the committed index benchmarks/results/README.md (needs --out "
                   "benchmarks/results/<run>)")
    p.add_argument("--video", type=Path, help="frames to read: folder of images or video (default: shared sample clip)")
    p.add_argument("--calib", type=Path, help="INT8 calibration data (default: shared posetrack18_sample)")
    p.add_argument("--calib-boxes", type=Path, help="person boxes for --calib when it is a video/frames folder")
    p.add_argument("--calib-samples", type=int, help="INT8 calibration crops (default: the quantizer's, 256)")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"), help="torch backend device")
    p.add_argument("--threads", type=int, help="ONNX Runtime / OpenVINO threads (default: usable cores)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_run)
