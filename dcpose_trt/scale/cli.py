"""CLI verb of the scale stage: ``dcpose-trt predict`` (one process, or many Ray workers).

Only argparse-level code at import time; the estimator and Ray are imported when the verb runs.
"""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    """Add this stage's verbs to the ``dcpose-trt`` parser."""
    q = sub.add_parser(
        "predict",
        help="run a model over many videos (a PoseTrack-layout dataset or video files) and write one JSON per video",
        description="Writes <out>/<video>.json per video. --data: PoseTrack format (every frame, COCO17→PoseTrack15, "
        "point score = heatmap peak × box score) for `dcpose-trt eval`; --videos: the `run` verb's poses JSON "
        "(without timings). --workers N spreads the videos over N Ray actors (extra [ray]); outputs are "
        "written atomically and a rerun skips complete ones.",
    )
    q.add_argument("--model", help="checkpoint, ONNX or plan (default: the bundled tiny model)")
    q.add_argument("--backend", default="auto",
                   help="auto, torch, onnxruntime, openvino[-bf16|-int8], tensorrt, tensorrt-rtx; auto: a plan with "
                        "TensorRT, an ONNX with ONNX Runtime, a checkpoint with the fastest CPU backend measured on "
                        "this machine (with --workers: measured once, on the driver) (default: auto)")
    src = q.add_mutually_exclusive_group(required=True)
    src.add_argument("--data", help="PoseTrack-layout dataset root (images/, annotations/<split>/)")
    src.add_argument("--videos", help="folder of video files, or a glob ('clips/*.mp4')")
    q.add_argument("--split", default="val", help="with --data: default: %(default)s")
    q.add_argument("--boxes", choices=("gt", "detections"), default="detections",
                   help="with --data: GT boxes or detections/<split>.json (default: %(default)s)")
    q.add_argument("--detections", help="with --data: detection JSON to use instead of detections/<split>.json")
    q.add_argument("--boxes-dir", help="with --videos: folder holding <video stem>.json boxes files")
    q.add_argument("--detector", help="with --videos: YOLO person detector in ONNX instead of boxes files "
                   "(neither: the built-in HOG people detector, docs/detector.md)")
    q.add_argument("--detect-every", type=int, metavar="N",
                   help="with --videos: run the detector on every N-th frame, boxes from the poses in between "
                   "(default: `run`'s, docs/detector.md)")
    q.add_argument("--min-score", type=float, help="box score threshold (default: 0.2 with --data, 0 with --videos)")
    q.add_argument("--mode", choices=("exact", "cached"), default="exact",
                   help="cached: backbone once per person-frame (needs a --split export or a checkpoint)")
    q.add_argument("--causal", action="store_true", help="no look-ahead: refine frame t with t-1 and t-2")
    q.add_argument("--out", required=True, help="output folder for the per-video JSONs")
    q.add_argument("--workers", type=int, help="run on N Ray actors, one estimator each (needs the [ray] extra)")
    q.add_argument("--ray-address", default="local",
                   help="with --workers: local (start Ray on this machine), auto (join this machine's cluster) "
                   "or HOST:PORT (default: %(default)s)")
    q.add_argument("--ray-timeout", type=float, default=30.0,
                   help="with --workers and --ray-address auto or HOST:PORT: seconds to wait for the cluster to "
                   "answer before giving up (default: %(default)s)")
    q.add_argument("--threads", type=int,
                   help="CPU threads per estimator (default: 1 per worker with --workers, else all cores)")
    q.add_argument("--max-retries", type=int, default=2,
                   help="with --workers: re-runs of a video whose worker died (default: %(default)s)")
    q.add_argument("--gpus-per-worker", type=float, default=1.0,
                   help="with --workers and a TensorRT plan: GPU share per worker, e.g. 0.25 = 4 workers per GPU "
                   "(default: %(default)s)")
    q.add_argument("--resume", action=argparse.BooleanOptionalAction, default=True,
                   help="skip videos whose output is complete (default: on)")
    from dcpose_trt.engine.plan_trust import add_cli_args

    add_cli_args(q)  # --trust-plan, --plugin-lib
    q.set_defaults(func=_run_predict)


def _run_predict(args: argparse.Namespace) -> int:
    import sys
    from pathlib import Path

    from dcpose_trt._atomic import check_writable
    from dcpose_trt.errors import InputError
    from dcpose_trt.scale.jobs import EstimatorConfig, WorkerState, posetrack_jobs, run_in_process, video_jobs

    check_writable(args.out, "--out", folder=True,  # before the model loads and the videos run
                   protected=[Path(args.data) / "annotations" if args.data else None])
    from dcpose_trt.engine.plan_trust import apply_cli_args

    apply_cli_args(args)
    if args.data is not None:
        if args.boxes_dir or args.detector or args.detect_every is not None:
            raise InputError("--boxes-dir, --detector and --detect-every go with --videos; with --data use "
                             "--boxes/--detections")
        jobs = posetrack_jobs(args.data, args.split, args.out, args.boxes, args.detections,
                              0.2 if args.min_score is None else args.min_score)
    else:
        every = {} if args.detect_every is None else {"detect_every": args.detect_every}
        jobs = video_jobs(args.videos, args.out, args.boxes_dir, args.detector, args.min_score or 0.0, **every)
    from dcpose_trt.scale.resume import check_job_outputs

    check_job_outputs(jobs, [args.model])
    if args.threads is not None and args.threads < 1:
        raise InputError(f"--threads must be >= 1, got {args.threads}")
    progress = sys.stderr.isatty()
    est = EstimatorConfig(args.model, args.backend, args.mode, not args.causal, args.threads)
    from dcpose_trt.scale.jobs import RunInterrupted

    try:
        if args.workers is None:
            state = WorkerState(est)
            report = run_in_process(jobs, est, args.resume, progress, state)
            stats = state.estimator.stats
            calls = stats["backbone_crops"] / max(stats["person_frames"], 1)
            print(f"{report.frames} frames, {report.persons} persons in {report.seconds:.1f} s ({calls:.2f} "
                  f"backbone calls per person-frame) -> {args.out}")
        else:
            from dcpose_trt.scale.distributed import ClusterConfig, run_distributed

            cluster = ClusterConfig(args.workers, args.ray_address, args.threads or 1, args.max_retries,
                                    args.gpus_per_worker, connect_timeout_s=args.ray_timeout)
            report = run_distributed(jobs, est, cluster, args.resume, progress)
    except RunInterrupted as exc:  # the library re-raises Ctrl-C; the CLI turns it into exit 130
        report = exc.report
    for line in report.lines():
        print(line)
    if report.interrupted:
        print("dcpose-trt predict: interrupted (finished videos are written; rerun to resume)", file=sys.stderr)
        return 130
    return 1 if report.failed else 0
