"""CPU comparison of issue 4, all measured in one run: PyTorch eager FP32 vs ONNX Runtime FP32 vs ONNX Runtime INT8.

A thin wrapper over :mod:`benchmarks.runner` (one ``dcpose-trt bench`` run per preset, exact mode): for each
preset it writes ``benchmarks/results/<date>-<machine>-<preset>/`` and prints the engine speed-ups against
the issue's targets (ONNX Runtime FP32 >= 1.3x PyTorch; INT8 >= 2x PyTorch FP32).

    python -m benchmarks.cpu_export [--presets tiny-128x96 w32-256x192] [--persons 1 8] [--runs 20]
"""

from __future__ import annotations

import argparse
from pathlib import Path

TARGETS = {"fp32": 1.3, "int8": 2.0}


def main(argv: list[str] | None = None) -> int:
    from benchmarks.runner import BenchConfig, run_benchmark

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--presets", nargs="+", default=["tiny-128x96", "w32-256x192"])
    p.add_argument("--persons", "--batches", nargs="+", type=int, default=[1, 8])
    p.add_argument("--runs", type=int, default=20, help="timed frames per row (median)")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--calib", type=Path, help="INT8 calibration data (default: shared posetrack18_sample)")
    p.add_argument("--calib-boxes", type=Path)
    p.add_argument("--calib-samples", type=int)
    args = p.parse_args(argv)
    if args.runs < 20:
        print("note: fewer than 20 timed runs; results are a smoke test, not numbers to commit")
    for preset in args.presets:
        result = run_benchmark(BenchConfig(
            preset=preset, backends=("torch", "onnxruntime"), precisions=("fp32", "int8"),
            persons=tuple(args.persons), modes=("exact",), iters=args.runs, warmup=args.warmup, calib=args.calib,
            calib_boxes=args.calib_boxes, calib_samples=args.calib_samples))
        for r in result.rows:
            if r["backend"] == "onnxruntime" and r["status"] == "ok":
                goal = TARGETS[r["precision"]]
                verdict = "meets" if r["speedup_infer"] >= goal else "misses"
                print(f"{preset} persons={r['persons']} ORT {r['precision']}: {r['speedup_infer']:.2f}x PyTorch FP32 "
                      f"(infer), {r['speedup']:.2f}x end to end; {verdict} the {goal}x target")
        print(f"wrote {result.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
