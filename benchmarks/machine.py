"""The machine a benchmark ran on: CPU and its extensions, cores, RAM, OS, library versions, GPU, load.

Every result file carries :func:`machine_info` so a number is never separated from where it was measured;
:func:`gpu_peak` gives the dense tensor peak of known GPUs for the FLOP-floor column.
"""

from __future__ import annotations

import datetime as dt
import os
import platform
import re
import socket
from dataclasses import asdict
from pathlib import Path
from typing import Any

from benchmarks.config import DEFAULT_OUT_ROOT
from dcpose_trt._env import CPU_EXTENSIONS, cpu_extensions, cpu_model  # noqa: F401 - re-exported

# Dense tensor peaks in FLOP/s from NVIDIA's data sheets: (FP16, INT8). The FLOP floor of an FP32 row is
# taken at the FP16 peak (TensorRT runs FP32 networks on TF32/FP16-class tensor cores at best).
GPU_PEAKS: tuple[tuple[str, tuple[float, float]], ...] = (
    ("H100 PCIe", (756e12, 1513e12)),
    ("H100", (989.4e12, 1979e12)),
    ("H200", (989.4e12, 1979e12)),
    ("Orin", (42.6e12, 85e12)),
)


def loadavg() -> list[float] | None:
    """The 1/5/15-minute load average (None where the OS has none)."""
    # Other processes on a shared machine skew timings; the load average makes that visible in the results.
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:
        return None


def machine_info() -> dict[str, Any]:
    """CPU model and extensions, cores, RAM, OS, Python, library versions (``dcpose-trt doctor``), GPU, driver."""
    import torch

    from dcpose_trt.doctor import diagnose

    try:
        mem_gb: float | None = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    except (ValueError, OSError, AttributeError):
        mem_gb = None
    report = diagnose()
    return {
        "host": socket.gethostname(),
        "cpu": cpu_model(),
        "cpu_extensions": cpu_extensions(),
        "logical_cpus": os.cpu_count(),
        "usable_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "memory_gb": mem_gb,
        "os": platform.platform(),
        "python": platform.python_version(),
        "torch_threads": torch.get_num_threads(),
        "versions": {**{p.module: p.version for p in report.packages}, **_extra_versions()},
        "gpu": asdict(report.gpu) if report.gpu.name else None,
        "loadavg_start": loadavg(),
    }


def _extra_versions() -> dict[str, str]:
    # Packages of the benchmark's own rows that `doctor` does not list (read from the installed metadata,
    # so nothing is imported).
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for dist in ("openvino", "nncf"):
        try:
            out[dist] = version(dist)
        except PackageNotFoundError:  # noqa: PERF203 - an absent package is simply not listed
            continue
    return out


def machine_slug(info: dict[str, Any]) -> str:
    """Short folder-name id of a machine: the GPU, else the CPU model and usable core count."""
    if info.get("gpu"):
        name = str(info["gpu"]["name"])
    else:
        name = re.sub(r"\((R|TM)\)|CPU|Processor|@.*$|\d+-Core", " ", str(info.get("cpu", "cpu")), flags=re.I)
        name = f"{name} {info.get('usable_cpus')}c"
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    return slug[:48].strip("-") or "machine"


def default_out(preset: str, info: dict[str, Any]) -> Path:
    """``outputs/bench/<date>-<machine>-<preset>`` (git-ignored)."""
    return DEFAULT_OUT_ROOT / f"{dt.date.today().isoformat()}-{machine_slug(info)}-{preset}"


def gpu_peak(gpu_name: str | None, precision: str) -> float | None:
    """Dense tensor peak FLOP/s of a known GPU for ``precision`` (None: unknown GPU or no GPU)."""
    if not gpu_name:
        return None
    for pattern, (fp16, int8) in GPU_PEAKS:
        if all(tok.lower() in gpu_name.lower() for tok in pattern.split()):
            return int8 if precision == "int8" else fp16
    return None
