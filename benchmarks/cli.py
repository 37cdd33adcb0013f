"""``dcpose-trt bench``: every benchmark on one command line, one subcommand per benchmark.

* ``dcpose-trt bench [latency] --preset ...``: the latency runner (:mod:`benchmarks.runner`; flags map
  one-to-one onto :class:`~benchmarks.config.BenchConfig`). ``latency`` is the default subcommand, so
  ``dcpose-trt bench --preset ...`` keeps working.
* ``bench cpu-export``: PyTorch vs ONNX Runtime FP32/INT8 against the CPU targets (:mod:`benchmarks.cpu_export`).
* ``bench kernel``: the deformable-conv kernels on a GPU (:mod:`benchmarks.deform_conv`).
* ``bench report``: the bundled models' accuracy report (:mod:`benchmarks.bundled_report`).
* ``bench scale``: ``predict`` throughput, one process vs Ray workers (:mod:`benchmarks.scale_bench`).
* ``bench gpu-check``: the GPU acceptance run (:mod:`benchmarks.gpu_check`, ``make gpu-check``).

Options default to None here; the config dataclasses and the benchmark functions hold the defaults. This
module imports only argparse-level code at the top (``--help`` needs no optional package).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Sequence
from pathlib import Path
from types import SimpleNamespace

from benchmarks.config import BACKENDS, MODES, PRECISIONS, BenchConfig
from benchmarks.head_profile import register as register_head
from benchmarks.serve_bench import register as register_serve

# The help shows the config's own defaults, read from its fields: an instance would look up which backend
# packages are installed while the CLI is merely being built (and `--help` would depend on them).
_D = SimpleNamespace(**{f.name: f.default for f in dataclasses.fields(BenchConfig)
                        if f.default is not dataclasses.MISSING})


def _names(text: str) -> tuple[str, ...]:
    return tuple(v.strip() for v in text.split(",") if v.strip())


def _ints(text: str | None, flag: str) -> tuple[int, ...] | None:
    from dcpose_trt.engine.config import parse_ints

    return None if text is None else parse_ints(text, flag)


def _csv(values: Sequence[object]) -> str:
    return ",".join(map(str, values))


# %% latency (the default) -------------------------------------------------------------------------------


def _run_dir(out: Path | None, default: Path) -> Path:
    """The folder a run writes: ``--out`` (refused when it holds an earlier run), else ``default`` under the
    working directory, numbered when an earlier run is there."""
    from benchmarks.config import fresh_run_dir, refuse_earlier_run
    from dcpose_trt._atomic import check_writable

    if out is not None:
        refuse_earlier_run(out)
    else:
        out = fresh_run_dir(default)
    check_writable(out, folder=True)
    return out


def _frames_and_calibration(video: Path | None, calib: Path | None, out: Path) -> tuple[Path | None, Path | None]:
    """``--video`` and ``--calib``, or, where the user gave none and the PoseTrack sample clip is not here (it is
    not shipped), a small synthetic dataset made in ``out/synth``: its val video to time, its train split to
    calibrate INT8 on. A run on a machine without our data folder thus works as typed."""
    from benchmarks.config import SAMPLE_CLIP, SAMPLE_DATASET

    need_video = video is None and not SAMPLE_CLIP.exists()
    need_calib = calib is None and not (SAMPLE_DATASET / "annotations" / "val").is_dir()
    if not (need_video or need_calib):
        return video, calib
    from dcpose_trt.data.synth import SynthConfig, generate

    root = Path(out) / "synth"
    print(f"bench: the PoseTrack sample clip is not here; using a synthetic video made in {root} "
          "(--video FRAMES and --calib DATA for your own)", file=sys.stderr)
    generate(SynthConfig(out=root, videos=2, frames=30, seed=0, split_ratio=0.5, workers=1))
    if need_video:
        video = next(p for p in sorted((root / "images" / "val").iterdir()) if p.is_dir())
    return video, root if need_calib else calib


def _latency(args: argparse.Namespace) -> int:
    from benchmarks.config import DEFAULT_OUT_ROOT

    if args.out is None:
        from benchmarks.machine import default_out, machine_info

        default = default_out(args.preset or _D.preset, machine_info())
    else:
        default = DEFAULT_OUT_ROOT
    out = _run_dir(args.out, default)
    from benchmarks.report import markdown_table
    from benchmarks.runner import run_benchmark

    BenchConfig(**{k: v for k, v in {"preset": args.preset, "backends": args.backends and _names(args.backends),
                                      "precisions": args.precisions and _names(args.precisions),
                                      "modes": args.modes and _names(args.modes)}.items() if v is not None})
    video, calib = _frames_and_calibration(args.video, args.calib, out)
    given = {
        "preset": args.preset, "model": args.model, "out": out, "video": video, "calib": calib,
        "calib_boxes": args.calib_boxes, "calib_samples": args.calib_samples, "device": args.device,
        "threads": args.threads, "iters": args.iters, "warmup": args.warmup,
        "backends": args.backends and _names(args.backends), "precisions": args.precisions and _names(args.precisions),
        "modes": args.modes and _names(args.modes), "persons": _ints(args.persons, "--persons"),
    }
    cfg = BenchConfig(**{k: v for k, v in given.items() if v is not None}, progress=not args.no_progress,
                      update_index=args.update_index)
    result = run_benchmark(cfg)
    print(markdown_table(result.rows))
    print(f"\nwrote {result.out}/{{results.json,results.csv,latency.png,machine.json,README.md}}")
    return 1 if any(r["status"] == "error" for r in result.rows) else 0


def _latency_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", type=Path, help="DCPose checkpoint (default: bundled model, else random init)")
    p.add_argument("--preset", help=f"model preset (default: {_D.preset})")
    p.add_argument("--backends", help=f"comma list of {', '.join(BACKENDS)} (default: torch and those of "
                   "onnxruntime, openvino, tensorrt that are installed)")
    p.add_argument("--precisions", help=f"comma list of {', '.join(PRECISIONS)} (bf16: torch autocast, OpenVINO) "
                   f"(default: {_csv(_D.precisions)})")
    p.add_argument("--persons", help=f"persons per frame, comma list (default: {_csv(_D.persons)})")
    p.add_argument("--modes", help=f"comma list of {', '.join(MODES)} (default: {_csv(_D.modes)})")
    p.add_argument("--iters", type=int, help=f"timed frames per row (default: {_D.iters})")
    p.add_argument("--warmup", type=int, help=f"untimed frames before them (default: {_D.warmup})")
    p.add_argument("--out", type=Path, help="output folder, refused if it holds an earlier run (default: "
                   "outputs/bench/<date>-<machine>-<preset> under the working directory, numbered -2, -3, ... "
                   "when taken)")
    p.add_argument("--update-index", action="store_true",
                   help="also rewrite the committed index benchmarks/results/README.md (needs --out "
                   "benchmarks/results/<run>)")
    p.add_argument("--video", type=Path, help="frames to read: folder of images or video (default: the PoseTrack "
                   "sample clip of our data folder, else a synthetic video made in OUT/synth)")
    p.add_argument("--calib", type=Path, help="INT8 calibration data (default: the PoseTrack sample of our data "
                   "folder, else the synthetic dataset made in OUT/synth)")
    p.add_argument("--calib-boxes", type=Path, help="person boxes for --calib when it is a video/frames folder")
    p.add_argument("--calib-samples", type=int, help="INT8 calibration crops (default: the quantizer's, 256)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), help=f"torch backend device (default: {_D.device})")
    p.add_argument("--threads", type=int, help="ONNX Runtime intra-op threads (default: usable cores)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


# %% the other benchmarks --------------------------------------------------------------------------------


def _cpu_export(args: argparse.Namespace) -> int:
    from benchmarks.cpu_export import compare

    kw = {"presets": args.presets, "persons": args.persons, "runs": args.runs, "warmup": args.warmup}
    compare(**{k: v for k, v in kw.items() if v is not None}, calib=args.calib, calib_boxes=args.calib_boxes,
            calib_samples=args.calib_samples)
    return 0


def _kernel(args: argparse.Namespace) -> int:
    from benchmarks.deform_conv import run_kernel_bench

    kw = {"persons": _ints(args.persons, "--persons"), "dilations": _ints(args.dilations, "--dilations"),
          "dtypes": args.dtypes and _names(args.dtypes), "warmup": args.warmup, "rep": args.rep, "out": args.out}
    run_kernel_bench(**{k: v for k, v in kw.items() if v is not None})
    return 0


def _report(args: argparse.Namespace) -> int:
    from benchmarks.bundled_report import bundled_report

    kw = {"out": args.out, "boxes": args.boxes and _names(args.boxes), "max_frames": args.max_frames,
          "clip": args.clip, "only": args.only}
    bundled_report(args.data, **{k: v for k, v in kw.items() if v is not None},
                   skip_precision=args.skip_precision, skip_accuracy=args.skip_accuracy)
    return 0


def _scale(args: argparse.Namespace) -> int:
    from benchmarks.config import DEFAULT_SCALE_OUT
    from benchmarks.scale_bench import scale_bench

    out = _run_dir(args.out, DEFAULT_SCALE_OUT)
    kw = {"videos": args.videos, "frames": args.frames, "model": args.model}
    scale_bench(**{k: v for k, v in kw.items() if v is not None}, out=out)
    return 0


def _gpu_check(args: argparse.Namespace) -> int:
    from benchmarks.gpu_check import gpu_check

    return gpu_check(args.out, args.quick, **({"steps": args.steps} if args.steps is not None else {}))


def _steps(text: str) -> tuple[str, ...]:
    from benchmarks.gpu_check import parse_steps

    return parse_steps(text)


def register(sub: argparse._SubParsersAction) -> None:
    description = ("Exports/quantizes what is needed into OUT/cache, streams real frames through PoseEstimator "
                   "and reports per-stage medians (read, crop, infer, align, decode, end to end), p50/p90/p99, "
                   "persons/s, the speed-up over the PyTorch eager FP32 baseline (always measured) and, on GPUs, "
                   "the share of the FLOP floor. Combinations this machine cannot run are listed as skipped with "
                   "the reason.")
    p = sub.add_parser(
        "bench", help="benchmarks: latency of backends × precisions × persons × modes (default), kernels, reports",
        description=f"{description} The latency benchmark is the default subcommand; the others are listed below.",
    )
    _latency_args(p)
    p.set_defaults(func=_latency)
    subs = p.add_subparsers(dest="bench_command", metavar="<benchmark>")
    # SUPPRESS: flags not given after `latency` keep the values given before it (`bench --preset X latency`).
    lat = subs.add_parser("latency", help="the latency runner (the default)", description=description,
                          argument_default=argparse.SUPPRESS)
    _latency_args(lat)
    lat.set_defaults(func=_latency)

    ce = subs.add_parser("cpu-export", help="PyTorch FP32 vs ONNX Runtime FP32/INT8 against the CPU targets",
                         description="CPU comparison (exact mode, one latency run per preset): ONNX Runtime FP32 "
                         ">= 1.3x and INT8 >= 2x PyTorch eager FP32 (infer).")
    ce.add_argument("--presets", nargs="+", help="presets (default: tiny-128x96 w32-256x192)")
    ce.add_argument("--persons", "--batches", nargs="+", type=int, help="persons per frame (default: 1 8)")
    ce.add_argument("--runs", type=int, help="timed frames per row, median (default: 20)")
    ce.add_argument("--warmup", type=int, help="untimed frames before them (default: 3)")
    ce.add_argument("--calib", type=Path, help="INT8 calibration data (default: shared posetrack18_sample)")
    ce.add_argument("--calib-boxes", type=Path, help="person boxes for --calib when it is a video/frames folder")
    ce.add_argument("--calib-samples", type=int, help="INT8 calibration crops (default: the quantizer's, 256)")
    ce.set_defaults(func=_cpu_export)

    k = subs.add_parser("kernel", help="deformable conv: Triton kernel vs torchvision CUDA vs GridSample (GPU)",
                        description="Checks every implementation against torchvision in FP32 and times it with "
                        "triton.testing.do_bench; needs a CUDA GPU (exit 2 without one, nothing measured).")
    k.add_argument("--persons", help="person batches, comma list (default: 1,8,32)")
    k.add_argument("--dilations", help="dilations, comma list (default: 3,6,9,12,15)")
    k.add_argument("--dtypes", help="comma list of fp32, fp16 (default: fp32,fp16)")
    k.add_argument("--warmup", type=int, help="do_bench warm-up time in ms (default: 25)")
    k.add_argument("--rep", type=int, help="do_bench measuring time in ms (default: 100)")
    k.add_argument("--out", type=Path, help="JSON path (default: benchmarks/results/deform_conv-<gpu>-<date>.json)")
    k.set_defaults(func=_kernel)

    r = subs.add_parser("report", help="accuracy report of the bundled models on a synthetic val set",
                        description="PoseTrack AP of the bundled DCPose vs the single-frame baseline, causal and "
                        "cached modes, FP16/INT8 ONNX fidelity; writes OUT/report.json and OUT/report.md.")
    r.add_argument("--data", required=True, type=Path, help="synthetic dataset root (dcpose-trt synth output)")
    r.add_argument("--out", type=Path, help="output folder (default: benchmarks/results/bundled)")
    r.add_argument("--boxes", help="comma list of gt, detections (default: gt)")
    r.add_argument("--skip-precision", action="store_true", help="no FP16/INT8 fidelity rows")
    r.add_argument("--skip-accuracy", action="store_true", help="only the FP16/INT8 fidelity rows")
    r.add_argument("--max-frames", type=int, help="limit the fidelity runs to this many frames")
    r.add_argument("--clip", type=Path, help="real clip folder with boxes.json for the exact-vs-cached report")
    r.add_argument("--only", help="run only the accuracy rows whose name contains this text")
    r.set_defaults(func=_report)

    s = subs.add_parser("scale", help="predict throughput: one process vs 1 and 2 Ray workers",
                        description="Same archive, model and boxes for every configuration, in one invocation; "
                        "checks that all outputs are the same bytes; writes OUT/results.json.")
    s.add_argument("--videos", type=int, help="synthetic videos (default: 16)")
    s.add_argument("--frames", type=int, help="frames per video (default: 8)")
    s.add_argument("--model", help="DCPose checkpoint (default: the bundled model)")
    s.add_argument("--out", type=Path, help="output folder, refused if it holds an earlier run (default: "
                   "outputs/bench/scale under the working directory, numbered -2, -3, ... when taken)")
    s.set_defaults(func=_scale)

    g = subs.add_parser("gpu-check", help="the GPU acceptance run (make gpu-check); skips cleanly without a GPU",
                        description="The same run as PYTHONPATH=. python3 -m benchmarks.gpu_check (which needs no "
                        "install): the CUDA tier (DCN kernel, AOT launch and CUDA graph, GPU pre/post, torch-CUDA "
                        "runtime, w48 baseline) and the TensorRT tier (plans of every form and precision); results "
                        "in benchmarks/results/<date>-<gpu>/.")
    g.add_argument("--out", type=Path, help="results folder (default: benchmarks/results/<date>-<gpu>/)")
    g.add_argument("--quick", action="store_true", help="fewer repetitions (a smoke run)")
    g.add_argument("--steps", type=_steps, help="comma list of steps (python3 -m benchmarks.gpu_check --list; "
                   "default: all)")
    g.set_defaults(func=_gpu_check)
    register_serve(subs)
    register_head(subs)
