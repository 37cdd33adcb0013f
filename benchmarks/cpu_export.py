"""CPU comparison of issue 4, all measured in one run: PyTorch eager FP32 vs ONNX Runtime FP32 vs ONNX Runtime INT8.

A thin wrapper over :mod:`benchmarks.runner` (one latency run per preset, exact mode): for each preset it
writes ``<out root>/<date>-<machine>-<preset>/`` and prints the engine speed-ups against the issue's
targets (ONNX Runtime FP32 >= 1.3x PyTorch; INT8 >= 2x PyTorch FP32).

    dcpose-trt bench cpu-export [--presets tiny-128x96 w32-256x192] [--persons 1 8] [--runs 20]
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

TARGETS = {"fp32": 1.3, "int8": 2.0}


def compare(presets: Sequence[str] = ("tiny-128x96", "w32-256x192"), persons: Sequence[int] = (1, 8),
            runs: int = 20, warmup: int = 3, calib: Path | None = None, calib_boxes: Path | None = None,
            calib_samples: int | None = None) -> list[str]:
    """Run the comparison for every preset; returns the verdict lines (one per ONNX Runtime row)."""
    from benchmarks.runner import BenchConfig, run_benchmark

    if runs < 20:
        print("note: fewer than 20 timed runs; results are a smoke test, not numbers to commit")
    lines = []
    for preset in presets:
        result = run_benchmark(BenchConfig(
            preset=preset, backends=("torch", "onnxruntime"), precisions=("fp32", "int8"), persons=tuple(persons),
            modes=("exact",), iters=runs, warmup=warmup, calib=calib, calib_boxes=calib_boxes,
            calib_samples=calib_samples))
        for r in result.rows:
            if r["backend"] == "onnxruntime" and r["status"] == "ok":
                goal = TARGETS[r["precision"]]
                verdict = "meets" if r["speedup_infer"] >= goal else "misses"
                lines.append(f"{preset} persons={r['persons']} ORT {r['precision']}: {r['speedup_infer']:.2f}x "
                             f"PyTorch FP32 (infer), {r['speedup']:.2f}x end to end; {verdict} the {goal}x target")
                print(lines[-1])
        print(f"wrote {result.out}")
    return lines
