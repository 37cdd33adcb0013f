"""Throughput of ``dcpose-trt predict`` over a synthetic archive: one process vs 1 and 2 Ray workers.

    dcpose-trt bench scale --videos 16 --frames 8 --out benchmarks/results/scale_cpu

Every configuration runs the same archive, model and boxes (detections), one intra-op thread per
estimator, in one invocation (side by side); the outputs of all runs are checked to be the same bytes.
Writes ``<out>/results.json``.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from benchmarks.config import DEFAULT_SCALE_OUT
from dcpose_trt._atomic import atomic_write_text
from dcpose_trt.data.synth import SynthConfig, generate
from dcpose_trt.scale.distributed import ClusterConfig, run_distributed
from dcpose_trt.scale.jobs import EstimatorConfig, RunReport, WorkerState, posetrack_jobs, run_in_process


def _row(name: str, r: RunReport, wall: float) -> dict:
    per_video = [w.busy_s / w.videos for w in r.workers.values() if w.videos]
    ms = sorted(r.overhead_s)
    return {
        "config": name, "videos": len(r.done), "frames": r.frames, "seconds": round(r.seconds, 2),
        "frames_per_s": round(r.fps, 3), "wall_incl_startup_s": round(wall, 2), "startup_s": round(r.startup_s, 2),
        "seconds_per_video": round(sum(per_video) / max(len(per_video), 1), 3),
        "overhead_ms_per_video_mean": round(1e3 * sum(ms) / len(ms), 1) if ms else None,
        "overhead_ms_per_video_median": round(1e3 * ms[len(ms) // 2], 1) if ms else None,
        "workers": {w.label: {"videos": w.videos, "frames": w.frames, "fps_busy": round(w.fps, 3)}
                    for w in r.workers.values()},
    }


def scale_bench(videos: int = 16, frames: int = 8, model: str | None = None,
                out: Path = DEFAULT_SCALE_OUT) -> dict:
    """Run the three configurations side by side on one synthetic archive; write ``out/results.json``.

    Args:
        videos, frames: size of the synthetic archive (videos × frames per video, 320×240).
        model: DCPose checkpoint (None: the bundled model).
        out: results folder, relative to the working directory (the CLI's default, numbered when taken, is
            ``outputs/bench/scale``; the committed runs are under ``benchmarks/results/``).
    """
    from dcpose_trt.errors import InputError

    if videos < 1 or frames < 1:
        raise InputError(f"--videos and --frames must be >= 1, got {videos} and {frames}")
    work = Path(tempfile.mkdtemp(prefix="scale_bench."))
    rows = []
    try:
        generate(SynthConfig(out=work / "ds", videos=videos, frames=frames, seed=11, split_ratio=0.0,
                             workers=1))
        est = EstimatorConfig(model, threads=1)
        outputs = {}
        t = time.perf_counter()
        state = WorkerState(est)
        jobs = posetrack_jobs(work / "ds", "val", work / "single")
        r = run_in_process(jobs, est, progress=False, state=state)
        rows.append(_row("single process, 1 thread", r, time.perf_counter() - t))
        outputs["single"] = {p.name: p.read_bytes() for p in (work / "single").iterdir()}
        for n in (1, 2):
            t = time.perf_counter()
            jobs = posetrack_jobs(work / "ds", "val", work / f"ray{n}")
            r = run_distributed(jobs, EstimatorConfig(model), ClusterConfig(workers=n, threads=1),
                                progress=False)
            rows.append(_row(f"Ray, {n} worker(s) x 1 thread", r, time.perf_counter() - t))
            outputs[f"ray{n}"] = {p.name: p.read_bytes() for p in (work / f"ray{n}").iterdir()}
        same = all(o == outputs["single"] for o in outputs.values())
    finally:
        shutil.rmtree(work, ignore_errors=True)
    doc = {
        "archive": {"videos": videos, "frames_per_video": frames, "size": [320, 240],
                    "boxes": "detections", "model": model or "bundled"},
        "machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                    "lscpu_model": subprocess.run(["sh", "-c", "lscpu | grep 'Model name'"], capture_output=True,
                                                  text=True).stdout.strip(),
                    "loadavg_after": os.getloadavg()},
        "same_bytes_all_runs": same,
        "rows": rows,
    }
    atomic_write_text(Path(out) / "results.json", json.dumps(doc, indent=2) + "\n")
    print(json.dumps(doc, indent=2))
    return doc
