"""Benchmark DCPose's deformable convolution: fused Triton kernel vs torchvision CUDA vs GridSample.

``dcpose-trt bench kernel [--persons 1,8,32] [--dilations 3,6,9,12,15] [--dtypes fp32,fp16]``

For each person batch, dilation and I/O type it checks every implementation against torchvision in fp32
(max |err| / max |ref|) and times it with ``triton.testing.do_bench`` (median and p20/p80 in ms, CUDA
events, L2 flushed). Targets at 8 persons: the Triton kernel ≥ 3× faster than torchvision and ≥ 1.5×
faster than GridSample; the JSON records whether each case meets them. Results go to
``benchmarks/results/deform_conv-<gpu>-<date>.json`` with the machine, library versions and date.
Without a CUDA GPU it refuses with a one-line error and exit code 2 (no number is ever made up).
"""

from __future__ import annotations

import datetime as dt
import json
import platform
import re
from collections.abc import Sequence
from pathlib import Path

from dcpose_trt._atomic import atomic_write_text

RESULTS = Path(__file__).resolve().parent / "results"
TARGETS = {"torchvision": 3.0, "gridsample": 1.5}  # required speedup of the Triton kernel at 8 persons


def machine_info() -> dict:
    """The GPU (name, capability, SMs, memory, driver) and the versions the kernels depend on."""
    import torch

    from dcpose_trt._env import installed_version, probe_gpu

    props = torch.cuda.get_device_properties(0)
    info = {
        "gpu": props.name,
        "compute_capability": f"{props.major}.{props.minor}",
        "sms": props.multi_processor_count,
        "memory_gib": round(props.total_memory / 2**30, 1),
        "cuda_runtime": torch.version.cuda,
        **{m: installed_version(m) for m in ("torch", "torchvision", "triton")},
        "host": platform.node(),
        "python": platform.python_version(),
    }
    driver = probe_gpu().driver
    if driver is not None:
        info["cuda_driver"] = driver
    return info


def bench_case(persons: int, d: int, dtype_name: str, warmup: int, rep: int) -> dict:
    import torch
    from triton.testing import do_bench

    from dcpose_trt.model.deform import deform_conv2d_gridsample, deform_conv2d_torchvision
    from dcpose_trt.plugins.deform_conv import deform_conv2d

    dtype = {"fp32": torch.float32, "fp16": torch.float16}[dtype_name]
    g = torch.Generator(device="cuda").manual_seed(persons * 100 + d)
    kw = {"device": "cuda", "generator": g}
    args = {
        "input": torch.randn(persons, 17, 96, 72, **kw).to(dtype),
        "offset": (torch.randn(persons, 306, 96, 72, **kw) * 4).to(dtype),
        "weight": torch.randn(17, 17, 3, 3, **kw).to(dtype),
        "bias": torch.randn(17, **kw).to(dtype),
        "mask": torch.randn(persons, 153, 96, 72, **kw).to(dtype),
    }
    conv = {"padding": d, "dilation": d}
    ref = deform_conv2d_torchvision(**{n: t.float() for n, t in args.items()}, **conv).double()
    impls = {"triton": deform_conv2d, "torchvision": deform_conv2d_torchvision, "gridsample": deform_conv2d_gridsample}
    row: dict = {"persons": persons, "dilation": d, "dtype": dtype_name, "impl": {}}
    for name, fn in impls.items():
        out = fn(**args, **conv)
        err = ((out.double() - ref).abs().max() / ref.abs().max()).item()
        med, p20, p80 = do_bench(lambda fn=fn: fn(**args, **conv), warmup=warmup, rep=rep, quantiles=[0.5, 0.2, 0.8])
        row["impl"][name] = {"median_ms": med, "p20_ms": p20, "p80_ms": p80, "rel_err": err}
    t = row["impl"]["triton"]["median_ms"]
    row["speedup"] = {other: row["impl"][other]["median_ms"] / t for other in TARGETS}
    if persons == 8:
        row["meets_target"] = {o: row["speedup"][o] >= need for o, need in TARGETS.items()}
    return row


def run_kernel_bench(persons: Sequence[int] = (1, 8, 32), dilations: Sequence[int] = (3, 6, 9, 12, 15),
                     dtypes: Sequence[str] = ("fp32", "fp16"), warmup: int = 25, rep: int = 100,
                     out: Path | None = None) -> Path:
    """Check and time every case; write the JSON (default ``benchmarks/results/deform_conv-<gpu>-<date>.json``).

    ``warmup``/``rep``: ``do_bench`` warm-up and measuring time in ms.

    Raises:
        CudaError: no CUDA GPU (nothing is measured).
        InputError: a dtype other than fp32/fp16.
    """
    import torch

    from dcpose_trt.errors import CudaError, InputError

    bad = [d for d in dtypes if d not in ("fp32", "fp16")]
    if bad:
        raise InputError(f"--dtypes must be fp32 and/or fp16, got {bad}")
    if not torch.cuda.is_available():
        raise CudaError("needs a CUDA GPU (torch.cuda.is_available() is False); nothing measured")
    machine = machine_info()
    rows = []
    for dtype_name in dtypes:
        for n in persons:
            for d in dilations:
                row = bench_case(n, d, dtype_name, warmup, rep)
                rows.append(row)
                imp = row["impl"]
                print(f"{dtype_name} persons={n:3d} d={d:2d}  "
                      + "  ".join(f"{k}={v['median_ms'] * 1e3:8.1f}us (err {v['rel_err']:.1e})" for k, v in imp.items())
                      + "  speedup " + " ".join(f"{o}×{s:.2f}" for o, s in row["speedup"].items()))  # fmt: skip
    now = dt.datetime.now(dt.timezone.utc)
    result = {"benchmark": "deform_conv", "date": now.isoformat(timespec="seconds"), "machine": machine,
              "shape": "B×17×96×72, 3×3, 17 offset groups, padding = dilation", "targets_at_8_persons": TARGETS,
              "cases": rows}  # fmt: skip
    out = out or RESULTS / f"deform_conv-{re.sub(r'[^A-Za-z0-9]+', '_', machine['gpu'])}-{now:%Y%m%d}.json"
    atomic_write_text(out, json.dumps(result, indent=1))
    print(f"wrote {out}")
    return out
