"""CPU comparison, all in one run: PyTorch eager FP32 vs ONNX Runtime FP32 vs ONNX Runtime INT8.

For the ``tiny-128x96`` and ``w32-256x192`` presets at 1 and 8 persons: export (``deformconv`` form),
quantize to INT8 on real person crops (the PoseTrack sample clip by default), then time each backend's
``infer(frames, margin)``: warm-up, then the median (and p20/p80) of ``--runs`` runs. Writes
``benchmarks/results/cpu_export-<host>-<date>.{json,md}`` with the machine description.

Targets (issue 4): ONNX Runtime FP32 >= 1.3x PyTorch; INT8 >= 2x PyTorch FP32.

    python -m benchmarks.cpu_export [--presets tiny-128x96 w32-256x192] [--batches 1 8] [--runs 20]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import socket
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
SAMPLE_CLIP = REPO.parent / "shared" / "data" / "posetrack18_sample" / "videos" / "000001_mpiinew_test"


def machine() -> dict[str, object]:
    """CPU model, cores, memory and library versions."""
    import onnxruntime as ort

    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        mem_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError):
        mem_gb = float("nan")
    return {
        "host": socket.gethostname(),
        "cpu": cpu,
        "logical_cpus": os.cpu_count(),
        "usable_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "memory_gb": round(mem_gb, 1),
        "os": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "onnxruntime": ort.__version__,
        "date": dt.datetime.now().isoformat(timespec="seconds"),
    }


def time_fn(fn: Callable[[], object], runs: int, warmup: int) -> dict[str, float]:
    """Median, p20 and p80 wall time (ms) of ``runs`` calls after ``warmup`` calls."""
    for _ in range(warmup):
        fn()
    ts = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        ts.append((time.perf_counter() - t0) * 1e3)
    q = np.percentile(ts, [50, 20, 80])
    return {"median_ms": float(q[0]), "p20_ms": float(q[1]), "p80_ms": float(q[2]), "runs": runs}


def bench_preset(
    preset: str,
    batches: list[int],
    runs: int,
    warmup: int,
    calib: Path,
    calib_boxes: Path,
    calib_samples: int,
    work: Path,
) -> list[dict[str, object]]:
    from dcpose_trt.export import ExportConfig, QuantizeConfig, export_onnx, quantize_onnx
    from dcpose_trt.export.onnx_export import load_model
    from dcpose_trt.runtime.backends import TorchBackend
    from dcpose_trt.runtime.ort_backend import OnnxRuntimeBackend

    model = load_model(None, preset)
    fp32 = export_onnx(model, work / f"{preset}.onnx", ExportConfig(deform="deformconv"))
    int8 = quantize_onnx(
        fp32,
        work / f"{preset}.int8.onnx",
        QuantizeConfig("int8", calib=calib, calib_boxes=calib_boxes, calib_samples=calib_samples),
    )
    backends = {
        "torch_fp32": TorchBackend(model),
        "ort_fp32": OnnxRuntimeBackend(fp32),
        "ort_int8": OnnxRuntimeBackend(int8),
    }
    h, w = model.preset.image_size
    rows = []
    for b in batches:
        rng = np.random.default_rng(b)
        frames = rng.standard_normal((b, 9, h, w)).astype(np.float32)
        margin = np.ones((b, 2), np.float32)
        times = {}
        for name, backend in backends.items():
            times[name] = time_fn(lambda be=backend, f=frames, m=margin: be.infer(f, m), runs, warmup)
            print(f"{preset} b={b} {name}: {times[name]['median_ms']:.1f} ms", flush=True)
        base = times["torch_fp32"]["median_ms"]
        rows.append(
            {
                "preset": preset,
                "batch": b,
                **{k: v for k, v in times.items()},
                "speedup_ort_fp32": base / times["ort_fp32"]["median_ms"],
                "speedup_ort_int8": base / times["ort_int8"]["median_ms"],
            }
        )
    return rows


def to_markdown(info: dict[str, object], rows: list[dict[str, object]]) -> str:
    lines = [
        "# CPU: PyTorch eager FP32 vs ONNX Runtime FP32 vs ONNX Runtime INT8",
        "",
        "Median of the timed runs after warm-up (ms per `infer` call, whole batch); speed-up vs PyTorch.",
        "",
        "| preset | persons | torch FP32 | ORT FP32 | ORT INT8 | ORT FP32 speed-up | INT8 speed-up |",
        "|---|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {r['preset']} | {r['batch']} | {r['torch_fp32']['median_ms']:.1f} | "  # type: ignore[index]
        f"{r['ort_fp32']['median_ms']:.1f} | {r['ort_int8']['median_ms']:.1f} | "  # type: ignore[index]
        f"{r['speedup_ort_fp32']:.2f}x | {r['speedup_ort_int8']:.2f}x |"
        for r in rows
    ]
    lines += ["", "Targets: ORT FP32 >= 1.3x, INT8 >= 2x PyTorch FP32.", "", "Machine:", ""]
    lines += [f"- {k}: {v}" for k, v in info.items()]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--presets", nargs="+", default=["tiny-128x96", "w32-256x192"])
    p.add_argument("--batches", nargs="+", type=int, default=[1, 8])
    p.add_argument("--runs", type=int, default=20)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--calib", type=Path, default=SAMPLE_CLIP, help="calibration video/frames or dataset")
    p.add_argument("--calib-boxes", type=Path, default=SAMPLE_CLIP / "boxes.json")
    p.add_argument("--calib-samples", type=int, default=256)
    p.add_argument("--out", type=Path, default=RESULTS)
    args = p.parse_args(argv)
    if args.runs < 20:
        print("note: fewer than 20 timed runs; results are a smoke test, not committed numbers")
    info = machine()
    rows = []
    with tempfile.TemporaryDirectory(prefix="dcpose_bench_") as tmp:
        for preset in args.presets:
            rows += bench_preset(
                preset,
                args.batches,
                args.runs,
                args.warmup,
                args.calib,
                args.calib_boxes,
                args.calib_samples,
                Path(tmp),
            )
    args.out.mkdir(parents=True, exist_ok=True)
    stem = f"cpu_export-{info['host']}-{dt.date.today().isoformat()}"
    (args.out / f"{stem}.json").write_text(json.dumps({"machine": info, "results": rows}, indent=2) + "\n")
    (args.out / f"{stem}.md").write_text(to_markdown(info, rows))
    print(to_markdown(info, rows))
    print(f"wrote {args.out / stem}.json and .md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
