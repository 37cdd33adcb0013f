"""``dcpose-trt serve {export,start,stream}``: DCPose for many live camera streams on Triton Inference Server."""

from __future__ import annotations

import argparse
import sys


def _export(args: argparse.Namespace) -> int:
    from dcpose_trt.serve.repository import ServeExportConfig, export_repository, read_manifest

    cfg = ServeExportConfig(out=args.out, model=args.model, target=args.target, mode=args.mode, backend=args.backend,
                            preset=args.preset, idle_timeout_s=args.idle_timeout, part_max_batch=args.part_max_batch,
                            queue_delay_us=args.queue_delay_us, stream_instances=args.stream_instances,
                            part_instances=args.part_instances,
                            python_path=args.python_path)
    repo = export_repository(cfg)
    m = read_manifest(repo)
    print(f"wrote {repo}: {m['target']} target, {m['backend']} backend, {m['mode']} mode, preset {m['preset']}")
    return 0


def _start(args: argparse.Namespace) -> int:
    from dcpose_trt.serve.repository import read_manifest
    from dcpose_trt.serve.server import Ports, TritonServer, serve_forever

    read_manifest(args.repo)
    server = TritonServer(args.repo, Ports(args.http_port, args.grpc_port, args.metrics_port), host=args.host,
                          log_verbose=args.log_verbose)
    return serve_forever(server, args.ready_timeout)


def _stream(args: argparse.Namespace) -> int:
    import json

    from dcpose_trt.serve.client import ServerUnavailableError, stream_video

    try:
        summary = stream_video(args.url, args.video, boxes=args.boxes, detector=args.detector, json_out=args.json,
                               out=args.out, max_frames=args.max_frames, timeout_s=args.timeout)
    except ServerUnavailableError as exc:  # the server, not the caller: exit 1
        print(f"dcpose-trt serve stream: error: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(summary.to_json()))
    for what, path in (("overlay", args.out), ("poses", args.json)):
        if path:
            print(f"{what}: {path}")
    return 130 if summary.interrupted else 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="serve many camera streams from one Triton Inference Server",
                       description="A Triton model repository keeps each stream's state (frame window, tracker, "
                       "cached backbone outputs) and batches the persons of all streams on one accelerator.")
    verbs = p.add_subparsers(dest="serve_command", metavar="<verb>", required=True)

    e = verbs.add_parser("export", help="write a Triton model repository")
    e.add_argument("--model", help="checkpoint (default: bundled), a --split ONNX folder (cpu), or a folder with "
                   "backbone.plan + head.plan (tensorrt)")
    e.add_argument("--out", required=True, help="the repository folder to write (must not exist or be empty)")
    e.add_argument("--target", default="cpu", choices=("cpu", "tensorrt"), help="default: %(default)s")
    e.add_argument("--mode", default="exact", choices=("exact", "cached"), help="default: %(default)s")
    e.add_argument("--backend", default="auto", help="cpu target: auto, onnxruntime, openvino, openvino-bf16 "
                   "(auto: the fastest measured on this machine, resolved now) (default: %(default)s)")
    e.add_argument("--preset", help="preset for a model that records none")
    e.add_argument("--idle-timeout", type=float, default=30.0,
                   help="seconds without a request after which a stream's state is freed (default: %(default)s)")
    e.add_argument("--part-max-batch", type=int, default=96,
                   help="rows per backbone/head batch; exact mode sends 3 crops per person (default: %(default)s)")
    e.add_argument("--queue-delay-us", type=int, default=2000,
                   help="how long the part models' batcher waits for more rows (default: %(default)s)")
    e.add_argument("--stream-instances", type=int, default=4,
                   help="stream-model processes; streams are spread over them (default: %(default)s)")
    e.add_argument("--part-instances", type=int, default=1,
                   help="instances of the backbone and of the head model each (default: %(default)s)")
    e.add_argument("--python-path", help="where the server's Python finds dcpose_trt and its dependencies, "
                   "os.pathsep-separated (default: this interpreter's; set it for a container)")
    e.set_defaults(func=_export)

    s = verbs.add_parser("start", help="run tritonserver on a repository until Ctrl-C / SIGTERM")
    s.add_argument("--repo", required=True, help="a repository written by 'serve export'")
    s.add_argument("--host", default="127.0.0.1", help="address to bind (0.0.0.0: all) (default: %(default)s)")
    s.add_argument("--grpc-port", type=int, default=8001, help="default: %(default)s")
    s.add_argument("--http-port", type=int, default=8000, help="default: %(default)s")
    s.add_argument("--metrics-port", type=int, default=8002, help="default: %(default)s")
    s.add_argument("--ready-timeout", type=float, default=300.0, help="seconds to wait for all models to load "
                   "(default: %(default)s)")
    s.add_argument("--log-verbose", type=int, default=0, help="Triton's --log-verbose (default: %(default)s)")
    s.set_defaults(func=_start)

    c = verbs.add_parser("stream", help="send a video or camera as one stream; writes what 'run' writes")
    c.add_argument("--url", required=True, help="the server's gRPC address HOST:PORT")
    c.add_argument("--video", required=True, help="video file, folder of frames, or camera index")
    src = c.add_mutually_exclusive_group(required=True)
    src.add_argument("--boxes", help="person boxes file (as for run)")
    src.add_argument("--detector", help="YOLO person detector in ONNX, run on this side")
    c.add_argument("--json", help="poses JSON to write")
    c.add_argument("--out", help="overlay video to write (.mp4)")
    c.add_argument("--max-frames", type=int, help="stop after this many frames")
    c.add_argument("--timeout", type=float, default=60.0,
                   help="seconds one frame may take before the server counts as gone (default: %(default)s)")
    c.set_defaults(func=_stream)
