"""``dcpose-trt bench serve``: many camera streams on one Triton server vs one in-process ``run``.

    dcpose-trt bench serve --streams 1,2,4,8 --frames 20 --out outputs/bench/serve

One invocation, one machine: a synthetic archive (one video per stream), a CPU repository of the model
(``serve export``: ONNX Runtime or OpenVINO part models; or ``--plans`` for ``--target tensorrt``), one
``tritonserver`` on loopback ports. First the in-process baseline (``run_video`` with the same split model
and backend, one estimator, every video in turn after one warm-up video), then for each stream count N: N
clients at once, each sending its own video as one stream; each row also gets the in-process rate over the
same N videos and the ratio. Reported per configuration: total frames/s, per-request round-trip p50/p99
(a request returns the previous frame's poses: one frame of look-ahead), the batch sizes Triton's dynamic
batcher formed on the backbone, and the compute and queue seconds of each model (from Triton's statistics, counted for
this configuration only: where the server's time went). Writes ``OUT/results.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import tempfile
import threading
import time
from pathlib import Path

MODELS = ("dcpose_stream", "dcpose_backbone", "dcpose_head")


def _stats(url: str) -> dict[str, dict]:
    """Per model: compute and queue nanoseconds so far, and executions per batch size (Triton's statistics)."""
    import tritonclient.grpc as g

    out = {}
    with g.InferenceServerClient(url) as c:
        for m in MODELS:
            st = c.get_inference_statistics(m, as_json=True)["model_stats"][0]
            inf = st.get("inference_stats", {})
            out[m] = {"compute_ns": int(inf.get("compute_infer", {}).get("ns", 0)),
                      "queue_ns": int(inf.get("queue", {}).get("ns", 0)),
                      "batches": {int(b["batch_size"]): int(b["compute_infer"]["count"])
                                  for b in st.get("batch_stats", [])}}  # absent before the first batch
    return out


def _delta(before: dict[str, dict], after: dict[str, dict]) -> dict:
    """What one configuration added: the backbone's batch sizes, and each model's compute and queue seconds
    (where the server's time went: the stream model's Python work vs the batched parts)."""
    b0, b1 = before["dcpose_backbone"]["batches"], after["dcpose_backbone"]["batches"]
    formed = {str(k): b1[k] - b0.get(k, 0) for k in sorted(b1) if b1[k] - b0.get(k, 0)}
    time_s = {m: {k: round((after[m][f"{k}_ns"] - before[m][f"{k}_ns"]) / 1e9, 3) for k in ("compute", "queue")}
              for m in MODELS}
    return {"backbone_batches": formed, "server_seconds": time_s}


def _pct(values: list[float]) -> dict[str, float]:
    import numpy as np

    a = np.asarray(values or [0.0])
    return {"p50": round(float(np.percentile(a, 50)), 2), "p99": round(float(np.percentile(a, 99)), 2)}


def _streams(url: str, videos: list[tuple[Path, Path]]) -> dict:
    """Every video as its own stream, all at once; frames/s over the wall time of the slowest."""
    from dcpose_trt.data.video import BoxesFromFile, FrameSource
    from dcpose_trt.runtime.boxes import clip_boxes
    from dcpose_trt.serve.client import StreamClient

    lat: list[float] = []
    frames = [0]
    errors: list[BaseException] = []
    lock = threading.Lock()

    def one(video: Path, boxes: Path) -> None:
        try:
            src = FrameSource(str(video))
            table = BoxesFromFile(str(boxes), src.names(), video=video.name)  # a split-wide detections file
            mine = []
            with StreamClient(url) as c:
                for i, frame in src.indexed():
                    b, _, _ = clip_boxes(table(i, frame), frame.shape)
                    t0 = time.perf_counter()
                    c.process(frame, b)
                    mine.append((time.perf_counter() - t0) * 1e3)
                c.flush()
            with lock:
                lat.extend(mine[1:])  # the first request of a stream runs no model (look-ahead)
                frames[0] += len(mine)
        except BaseException as exc:  # noqa: BLE001 - reported by the caller
            errors.append(exc)

    before = _stats(url)
    threads = [threading.Thread(target=one, args=v) for v in videos]
    t = time.perf_counter()
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    wall = time.perf_counter() - t
    if errors:
        raise errors[0]
    return {"streams": len(videos), "frames": frames[0], "seconds": round(wall, 3),
            "frames_per_s": round(frames[0] / wall, 2), "request_ms": _pct(lat), **_delta(before, _stats(url))}


def _in_process(videos: list[tuple[Path, Path]], manifest: dict, mode: str) -> dict:
    """One in-process estimator (the repository's model and backend) runs every video in turn, after one
    untimed warm-up video; per video: frames, seconds, frames/s, per-frame p50/p99."""
    from dcpose_trt.runtime.estimator import PoseEstimator
    from dcpose_trt.runtime.pipeline import RunConfig, run_video

    est = PoseEstimator(manifest["model"], backend=manifest["backend"], mode=mode)
    cfgs = [RunConfig(video=str(v), boxes=str(b), model=manifest["model"], backend=manifest["backend"], mode=mode)
            for v, b in videos]
    run_video(cfgs[0], est, progress=False)  # warm-up: lazy initialisation, caches, page faults
    per = []
    for c in cfgs:
        s = run_video(c, est, progress=False)
        per.append({"frames": s.frames, "seconds": round(s.seconds, 3), "frames_per_s": round(s.frames / s.seconds, 2),
                    "frame_ms": {k: round(s.latency_ms[k], 2) for k in ("p50", "p99")}})
    frames, seconds = sum(p["frames"] for p in per), sum(p["seconds"] for p in per)
    return {"config": f"in-process run ({manifest['backend']}, one estimator, the videos one after another, "
                      "after one warm-up video)", "frames": frames, "seconds": round(seconds, 3),
            "frames_per_s": round(frames / seconds, 2), "videos": per}


def _batch_scaling(manifest: dict, persons: tuple[int, ...] = (1, 4, 8, 16)) -> dict:
    """In-process ms per person of the backbone (3 crops per person, as exact mode sends) and the head at
    several batch sizes: whether bigger batches, what the server's batcher forms, are cheaper per person on
    this machine. Random inputs of the model's shapes; median of 5 calls after 2."""
    import numpy as np

    from benchmarks.timing import call_ms
    from dcpose_trt.runtime.backends.base import SplitBackend
    from dcpose_trt.runtime.backends.opener import open_backend

    be = open_backend(Path(manifest["model"]) if manifest.get("model") else None, manifest["backend"],
                      progress=False, mode="cached")
    assert isinstance(be, SplitBackend), type(be)
    h, w = be.input_size
    rng = np.random.default_rng(0)
    out: dict[str, dict[str, float]] = {"backbone": {}, "head": {}}
    for b in persons:
        calls = {"backbone": (be.backbone, [rng.random((3 * b, 3, h, w), dtype=np.float32)]),
                 "head": (be.head, [rng.random((b, 17, h // 4, w // 4), dtype=np.float32) for _ in range(3)]
                          + [np.ones((b, 2), np.float32)])}
        for part, (fn, args) in calls.items():
            ms = call_ms(lambda fn=fn, args=args: fn(*args), 5)
            out[part][str(b)] = round(sorted(ms)[2] / b, 2)
    be.close()
    return out


def _persons_per_frame(videos: list[tuple[Path, Path]]) -> float:
    """Mean detections per frame over the videos (what each frame sends to the model)."""
    from dcpose_trt.data.video import BoxesFromFile, FrameSource

    total = n = 0
    for video, boxes in videos:
        src = FrameSource(str(video))
        table = BoxesFromFile(str(boxes), src.names(), video=video.name)
        for i in range(len(src)):
            total += len(table(i, None))
            n += 1
    return round(total / max(n, 1), 2)


def serve_bench(out: Path, streams: tuple[int, ...] = (1, 2, 4, 8), frames: int = 20, model: str | None = None,
                backend: str = "onnxruntime", mode: str = "exact", target: str = "cpu") -> dict:
    """Run the baseline and every stream count against one server; write ``out/results.json``."""
    from dcpose_trt._atomic import atomic_write_text
    from dcpose_trt.data.synth import SynthConfig, generate
    from dcpose_trt.errors import InputError
    from dcpose_trt.serve.repository import ServeExportConfig, export_repository, read_manifest
    from dcpose_trt.serve.server import TritonServer

    if not streams or min(streams) < 1 or frames < 2:
        raise InputError(f"--streams must be >= 1 and --frames >= 2, got {streams} and {frames}")
    load0 = os.getloadavg()
    work = Path(tempfile.mkdtemp(prefix="serve_bench."))
    try:
        n = max(streams)
        generate(SynthConfig(out=work / "ds", videos=n, frames=frames, seed=11, split_ratio=0.0, workers=1))
        vids = sorted(p for p in (work / "ds" / "images" / "val").iterdir() if p.is_dir())
        videos = [(v, work / "ds" / "detections" / "val.json") for v in vids]
        repo = export_repository(ServeExportConfig(out=str(work / "repo"), model=model, target=target, mode=mode,
                                                   backend=backend, stream_instances=n))
        manifest = read_manifest(repo)
        base = _in_process(videos, manifest, mode) if target == "cpu" else None
        scaling = _batch_scaling(manifest) if target == "cpu" else None
        with TritonServer(repo) as server:
            _streams(server.grpc_url, videos[:1])  # warm-up: lazy session start-up in every process
            rows = [_streams(server.grpc_url, videos[:k]) for k in streams]
        persons = _persons_per_frame(videos)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if base is not None:  # the in-process rate over the same videos as each row, and the ratio
        for r in rows:
            k = r["streams"]
            ref = sum(v["frames"] for v in base["videos"][:k]) / sum(v["seconds"] for v in base["videos"][:k])
            r["in_process_frames_per_s"] = round(ref, 2)
            r["vs_in_process"] = round(r["frames_per_s"] / ref, 2)
    doc = {"target": target, "backend": manifest["backend"], "mode": mode, "model": model or "bundled",
           "frames_per_stream": frames, "size": [320, 240], "persons_per_frame": persons,
           "machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                       "loadavg_before": load0, "loadavg_after": os.getloadavg()},
           "baseline": base, "in_process_ms_per_person": scaling, "rows": rows}
    atomic_write_text(Path(out) / "results.json", json.dumps(doc, indent=2) + "\n")
    print(json.dumps(doc, indent=2))
    return doc


def _run(args: argparse.Namespace) -> int:
    from dcpose_trt.engine.config import parse_ints

    serve_bench(args.out, parse_ints(args.streams, "--streams"), args.frames, args.model, args.backend, args.mode,
                args.target)
    return 0


def register(subs: argparse._SubParsersAction) -> None:
    """``bench serve`` (one line in :mod:`benchmarks.cli`)."""
    s = subs.add_parser("serve", help="N camera streams on one Triton server vs one in-process run",
                        description=__doc__.split("\n\n")[2] if __doc__ else None)
    s.add_argument("--out", type=Path, required=True, help="output folder (results.json)")
    s.add_argument("--streams", default="1,2,4,8", help="comma list of concurrent stream counts (default: %(default)s)")
    s.add_argument("--frames", type=int, default=20, help="frames per stream (default: %(default)s)")
    s.add_argument("--model", help="checkpoint (default: bundled) or, with --target tensorrt, the plans' folder")
    s.add_argument("--backend", default="onnxruntime", help="cpu part models' backend (default: %(default)s)")
    s.add_argument("--mode", default="exact", choices=("exact", "cached"), help="default: %(default)s")
    s.add_argument("--target", default="cpu", choices=("cpu", "tensorrt"), help="default: %(default)s")
    s.set_defaults(func=_run)
