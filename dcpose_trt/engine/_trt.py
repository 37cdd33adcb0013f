"""Which TensorRT module a build uses, and what machine it runs on.

``tensorrt`` (10.x/11.x) and ``tensorrt_rtx`` have the same Python API under different module names, so the
builder imports the module for ``BuildConfig.backend`` at call time. For type checking, each function that
touches TensorRT starts with::

    if TYPE_CHECKING:
        from dcpose_trt.engine._trt import trt
    else:
        trt = import_backend(backend)

so mypy sees the real API. ``tools.trt_api`` runs mypy once per TensorRT version and sets ``TRT_API_RTX``
(``always_true``/``always_false``), so the same code is checked against ``tensorrt_rtx`` as well.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING

from dcpose_trt._deps import require
from dcpose_trt.errors import InputError

TRT_API_RTX = False
if TYPE_CHECKING:
    if TRT_API_RTX:
        import tensorrt_rtx as trt
    else:
        import tensorrt as trt

__all__ = ["BACKENDS", "GpuInfo", "Machine", "import_backend", "local_machine", "trt"]

log = logging.getLogger(__name__)

# backend name (CLI / sidecar) -> (module, pip extra)
BACKENDS: dict[str, tuple[str, str]] = {
    "tensorrt": ("tensorrt", "trt"),
    "tensorrt-rtx": ("tensorrt_rtx", "rtx"),
}


def import_backend(backend: str) -> ModuleType:
    """Import the Python module of ``backend`` (``"tensorrt"`` or ``"tensorrt-rtx"``)."""
    if backend not in BACKENDS:
        raise InputError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    module, extra = BACKENDS[backend]
    return require(module, extra, f"the {backend} engine builder")


@dataclass(frozen=True)
class GpuInfo:
    """A CUDA device: marketing name and compute capability as ``"8.9"``."""

    name: str
    compute_capability: str


@dataclass(frozen=True)
class Machine:
    """What decides whether a plan runs here: installed backend versions and the GPU (None: no GPU)."""

    backend_versions: dict[str, str]
    gpu: GpuInfo | None


def _backend_version(backend: str) -> str | None:
    """Version of the installed backend module, read from package metadata (no native library load)."""
    from importlib import metadata

    module = BACKENDS[backend][0]
    # tensorrt ships as tensorrt / tensorrt-cu12 / tensorrt-cu13 (+ _bindings) distributions.
    candidates = [module, f"{module}-cu12", f"{module}-cu13", f"{module}_cu12", f"{module}_cu13",
                  f"{module}-cu12-bindings", f"{module}-cu13-bindings"]
    for dist in candidates:
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:  # noqa: PERF203 - a handful of names
            continue
    return None


def _local_gpu() -> GpuInfo | None:
    """The first CUDA GPU, via cuda-python, torch or nvidia-smi (whichever is present), else None."""
    try:
        from cuda.bindings import runtime as cudart  # type: ignore[import-not-found]

        err, count = cudart.cudaGetDeviceCount()
        if int(err) == 0 and count > 0:
            err, prop = cudart.cudaGetDeviceProperties(0)
            if int(err) == 0:
                name = prop.name.decode(errors="replace").rstrip("\x00")
                return GpuInfo(name, f"{prop.major}.{prop.minor}")
    except ImportError:
        pass
    try:
        import torch

        if torch.cuda.is_available():
            major, minor = torch.cuda.get_device_capability(0)
            return GpuInfo(torch.cuda.get_device_name(0), f"{major}.{minor}")
    except ImportError:
        pass
    if shutil.which("nvidia-smi"):
        proc = subprocess.run(["nvidia-smi", "--query-gpu=name,compute_cap", "--format=csv,noheader"],
                              capture_output=True, text=True)
        line = proc.stdout.strip().splitlines()[0] if proc.returncode == 0 and proc.stdout.strip() else ""
        if "," in line:
            name, cc = (s.strip() for s in line.split(",", 1))
            return GpuInfo(name, cc)
    return None


def local_machine() -> Machine:
    """Describe this machine (installed TensorRT / TensorRT-RTX versions, first GPU)."""
    versions = {b: v for b in BACKENDS if (v := _backend_version(b)) is not None}
    return Machine(versions, _local_gpu())
