"""``make gpu-check``: the GPU acceptance run of the TensorRT path's contracts (issue [trt-contact]).

``dcpose-trt bench gpu-check [--out DIR] [--quick]`` (``make gpu-check``)

On a machine with an NVIDIA GPU (TensorRT itself need not be installed) it runs, in this order:

1. ``pytest -m gpu``: the GPU tests (Triton kernel vs torchvision vs GridSample, the AOT PTX launched with
   cuda-python, the torch-CUDA executor, the GPU crop/decode kernels);
2. ``aot_launch``: the AOT PTX of :mod:`dcpose_trt.plugins.deform_conv.aot` for this GPU's arch, loaded with
   ``cuModuleLoadData`` and launched with ``cuLaunchKernel`` with **exactly** the argument list TensorRT
   passes to an ``aot_impl`` kernel (input pointers, the int32 extra args, the output pointer; nothing
   else), for 1 / 8 / 32 persons, FP32 and FP16, both tactics, checked against torchvision;
3. ``deform_conv``: the kernel benchmark (``dcpose-trt bench kernel``: ours vs torchvision CUDA vs
   GridSample, persons 1 / 8 / 32);
4. ``torch_cuda_clip``: the torch-CUDA runtime (:class:`~dcpose_trt.runtime.tensorrt.trt_backend.TorchCudaBackend`,
   CUDA graphs) end to end on the real PoseTrack clip, with per-frame latency.

Everything goes to ``benchmarks/results/<date>-<gpu>/`` (``summary.json`` with the machine description and
every step's status, plus each step's own output). A step that cannot run says ``skipped`` and why; on a
machine without a GPU every step is skipped, nothing is written and the exit code is 0. Exit code 1 when
a step that ran failed. Budget: about 8 minutes on an H100-class GPU (``--quick``: fewer repetitions).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import re
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from dcpose_trt._atomic import atomic_write_text
from dcpose_trt._env import install_hint

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
CLIP = REPO.parent / "shared" / "data" / "posetrack18_sample" / "videos" / "000001_mpiinew_test"


class Skip(Exception):
    """A step cannot run here (the message says why)."""


def gpu_or_reason() -> tuple[dict | None, str]:
    """(machine description, "") with a usable CUDA GPU, else (None, why not)."""
    try:
        import torch
    except ImportError as exc:
        return None, f"torch is not importable ({exc})"
    if not torch.cuda.is_available():
        return None, f"no CUDA GPU (torch {torch.__version__}, built for CUDA {torch.version.cuda or 'none'})"
    props = torch.cuda.get_device_properties(0)
    info = {
        "gpu": props.name,
        "compute_capability": f"{props.major}.{props.minor}",
        "memory_gib": round(props.total_memory / 2**30, 1),
        "sms": props.multi_processor_count,
        "torch": torch.__version__,
        "torch_cuda": torch.version.cuda,
        "python": platform.python_version(),
        "cpu": platform.processor() or platform.machine(),
    }
    from dcpose_trt._env import installed_version

    for mod in ("triton", "torchvision", "cuda.bindings", "tensorrt", "tensorrt_rtx"):
        info[mod] = installed_version(mod) or "absent"
    try:
        smi = subprocess.run(["nvidia-smi", "--query-gpu=driver_version,power.limit,clocks.max.sm",
                              "--format=csv,noheader"], capture_output=True, text=True, timeout=30)
        info["nvidia_smi"] = smi.stdout.strip()
    except (OSError, subprocess.TimeoutExpired) as exc:
        info["nvidia_smi"] = f"unavailable ({exc})"
    return info, ""


def step_pytest_gpu(out: Path, quick: bool) -> dict:
    cmd = [sys.executable, "-m", "pytest", "-q", "-m", "gpu", f"--junitxml={out / 'pytest_gpu.xml'}",
           str(REPO / "tests")]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300)
    atomic_write_text(out / "pytest_gpu.log", proc.stdout + proc.stderr)
    last = (proc.stdout.strip().splitlines() or [""])[-1]
    return {"ok": proc.returncode == 0, "summary": last, "log": "pytest_gpu.log"}


def step_aot_launch(out: Path, quick: bool) -> dict:
    """cuLaunchKernel of the AOT PTX with TensorRT's exact argument list, vs torchvision."""
    import ctypes

    import torch

    from dcpose_trt.model.deform import deform_conv2d_torchvision
    from dcpose_trt.plugins.deform_conv import TACTICS, launch_geometry
    from dcpose_trt.plugins.deform_conv.aot import LAUNCH_PARAM_TYPES, compile_kernel, entry_params

    try:
        from cuda.bindings import driver as cu
    except ImportError as exc:
        raise Skip(f"cuda-python is not installed ({exc}): {install_hint(extra='cuda12')} "
                   "(cuda13 for a CUDA 13 driver)") from None

    def check(result):
        err = result[0] if isinstance(result, tuple) else result
        if err != cu.CUresult.CUDA_SUCCESS:
            raise RuntimeError(f"CUDA driver error {err}")
        return result[1] if isinstance(result, tuple) and len(result) == 2 else None

    major, minor = torch.cuda.get_device_capability()
    arch, d, rows = 10 * major + minor, 9, []
    torch.cuda.synchronize()  # torch made the primary context current; the module loads into it
    for dtype in ("fp32", "fp16"):
        tdtype = torch.float16 if dtype == "fp16" else torch.float32
        for tactic in sorted(TACTICS):
            kernel = compile_kernel(arch, dtype, "dcpose", tactic=tactic)
            declared = [t for t, _ in entry_params(kernel.ptx)]
            if declared != list(LAUNCH_PARAM_TYPES):
                raise RuntimeError(f"PTX .entry {declared} != TensorRT's launch list {list(LAUNCH_PARAM_TYPES)}")
            module = check(cu.cuModuleLoadData(kernel.ptx.encode() + b"\0"))
            fn = check(cu.cuModuleGetFunction(module, kernel.kernel_name.encode()))
            for persons in (1, 8, 32):
                g = torch.Generator(device="cuda").manual_seed(persons)
                x = torch.randn(persons, 17, 96, 72, device="cuda", generator=g).to(tdtype)
                w = (torch.randn(17, 17, 3, 3, device="cuda", generator=g) * 0.1).to(tdtype)
                off = (torch.randn(persons, 2 * 17 * 9, 96, 72, device="cuda", generator=g) * 2).to(tdtype)
                m = torch.rand(persons, 17 * 9, 96, 72, device="cuda", generator=g).to(tdtype)
                b = torch.randn(17, device="cuda", generator=g).to(tdtype)
                ref = deform_conv2d_torchvision(x.float(), off.float(), w.float(), b.float(), padding=d,
                                                dilation=d, mask=m.float())
                geo = launch_geometry(tuple(x.shape), tuple(w.shape), 17, 1, d, d, tactic=tactic)
                y = torch.full(ref.shape, float("nan"), device="cuda", dtype=tdtype)
                # Exactly TensorRT's AOT launch: inputs (X, W, offset, B, mask), extra int32 args, outputs.
                values = [t.data_ptr() for t in (x, w, off, b, m)] + list(geo.scalars) + [y.data_ptr()]
                types = [ctypes.c_void_p] * 5 + [ctypes.c_int] * len(geo.scalars) + [ctypes.c_void_p]
                stream = cu.CUstream(torch.cuda.current_stream().cuda_stream)
                check(cu.cuLaunchKernel(fn, *geo.grid, *geo.block, kernel.shared_mem, stream,
                                        (tuple(values), tuple(types)), 0))
                torch.cuda.synchronize()
                err = float((y.float() - ref).abs().max() / ref.abs().max().clamp_min(1e-12))
                rows.append({"dtype": dtype, "tactic": tactic, "persons": persons, "rel_err": err,
                             "params": len(values)})
            check(cu.cuModuleUnload(module))
    tol = {"fp32": 1e-5, "fp16": 1e-2}  # fp16 I/O: ~2^-11 per element, fp32 accumulation inside
    ok = all(r["rel_err"] < tol[r["dtype"]] for r in rows)
    atomic_write_text(out / "aot_launch.json", json.dumps({"arch": arch, "tolerance": tol, "rows": rows}, indent=2))
    return {"ok": ok, "summary": f"sm_{arch}: {len(rows)} launches with {len(LAUNCH_PARAM_TYPES)} arguments, "
                                 f"max rel err {max(r['rel_err'] for r in rows):.2e}", "file": "aot_launch.json"}


def step_deform_conv(out: Path, quick: bool) -> dict:
    cmd = [sys.executable, "-m", "dcpose_trt.cli", "bench", "kernel", "--persons", "1,8,32", "--out",
           str(out / "deform_conv.json")] + (["--rep", "30", "--warmup", "10"] if quick else [])
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=420)
    atomic_write_text(out / "deform_conv.log", proc.stdout + proc.stderr)
    if proc.returncode == 2:
        raise Skip(proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "benchmark refused")
    return {"ok": proc.returncode == 0, "summary": (proc.stdout.strip().splitlines() or [""])[-1],
            "file": "deform_conv.json"}


def step_torch_cuda_clip(out: Path, quick: bool) -> dict:
    import numpy as np

    from dcpose_trt.data.video import BoxesFromFile, FrameSource
    from dcpose_trt.model import load_model
    from dcpose_trt.runtime.estimator import PoseEstimator
    from dcpose_trt.runtime.tensorrt.torch_cuda import TorchCudaBackend

    if not CLIP.is_dir():
        raise Skip(f"the real clip is not at {CLIP}")
    model = load_model()  # the bundled model
    source = FrameSource(str(CLIP))
    boxes = BoxesFromFile(str(CLIP / "boxes.json"), source.names())
    latencies, persons = [], 0
    with TorchCudaBackend(model, buckets=(1, 8, 32)) as backend:
        est = PoseEstimator(backend=backend)
        for rep in range(1 if quick else 5):  # the clip has 5 frames: repeat for stable percentiles
            for i, frame in enumerate(source):
                t0 = time.perf_counter()
                results = est.process(frame, boxes(i, frame))
                latencies.append((time.perf_counter() - t0) * 1e3)
                persons += sum(len(r.persons) for r in results) if rep == 0 else 0
            est.flush()
    lat = np.array(latencies[1:] or latencies)  # the first frame includes graph capture
    report = {"frames": len(latencies), "persons_first_pass": persons,
              "latency_ms": {"p50": float(np.percentile(lat, 50)), "p90": float(np.percentile(lat, 90)),
                             "max": float(lat.max())}}
    atomic_write_text(out / "torch_cuda_clip.json", json.dumps(report, indent=2))
    return {"ok": persons > 0, "summary": f"{len(latencies)} frames, p50 {report['latency_ms']['p50']:.1f} ms",
            "file": "torch_cuda_clip.json"}


STEPS: dict[str, Callable[[Path, bool], dict]] = {
    "pytest_gpu": step_pytest_gpu,
    "aot_launch": step_aot_launch,
    "deform_conv": step_deform_conv,
    "torch_cuda_clip": step_torch_cuda_clip,
}


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower().replace("nvidia", "")).strip("-")


def parse_steps(text: str) -> tuple[str, ...]:
    """``"a,b"`` → the steps, in the order given (argparse ``type``: an unknown step is a usage error)."""
    steps = tuple(s for s in text.split(",") if s)
    unknown = [s for s in steps if s not in STEPS]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown step(s) {unknown}; choose from {', '.join(STEPS)}")
    return steps


def gpu_check(out: Path | None = None, quick: bool = False, steps: Sequence[str] = tuple(STEPS)) -> int:
    """Run ``steps`` in order; 0 when every step that ran passed (or none could run), else 1."""
    machine, why = gpu_or_reason()
    if machine is None:
        print(f"gpu-check: {why}; every step skipped, nothing written:")
        for s in steps:
            print(f"  {s:<16} skipped: {why}")
        return 0
    out = out or RESULTS / f"{dt.date.today().isoformat()}-{_slug(machine['gpu'])}"
    out.mkdir(parents=True, exist_ok=True)
    summary = {"machine": machine, "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
               "steps": {}}
    failed = False
    for s in steps:
        t0 = time.perf_counter()
        try:
            result = {"status": "ran", **STEPS[s](out, quick)}
            failed |= not result["ok"]
        except Skip as exc:
            result = {"status": "skipped", "reason": str(exc)}
        except Exception as exc:  # noqa: BLE001 - one broken step must not hide the others' results
            result = {"status": "failed", "ok": False, "reason": f"{type(exc).__name__}: {exc}"}
            failed = True
        result["seconds"] = round(time.perf_counter() - t0, 1)
        summary["steps"][s] = result
        detail = result.get("summary") or result.get("reason", "")
        print(f"  {s:<16} {result['status']:<8} {'ok' if result.get('ok') else '':<3} {detail}")
        atomic_write_text(out / "summary.json", json.dumps(summary, indent=2))
    print(f"gpu-check: results in {out}")
    return 1 if failed else 0

