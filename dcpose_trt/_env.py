"""The one environment probe: installed distributions, the local CUDA GPU, and module → pip extra.

``doctor``, the engine builder and plan check, the TensorRT runtime, the DeformConv plugin and the
benchmarks ask these questions; each has one answer here. Nothing heavy is imported at import time and no
probe raises: a missing or broken optional package reads as absent (None).

    installed_version("tensorrt")      # "10.13.3.9" from package metadata (no native library load)
    at_least(trt.__version__, "10.9")  # packaging.version comparison
    local_gpu()                        # GpuInfo("NVIDIA H200", "9.0") or None
    install_hint("tensorrt_rtx")       # "pip install -e '.[rtx]' (run in the dcpose-trt checkout)"
    TRT_FLAVOURS["tensorrt-lean"]      # TrtFlavour("tensorrt-lean", "tensorrt_lean", loads="tensorrt", ...)
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from packaging.version import InvalidVersion, Version

__all__ = [
    "CPU_EXTENSIONS",
    "EXTRAS",
    "TRT_BUILDERS",
    "TRT_FLAVOURS",
    "GpuInfo",
    "LocalGpu",
    "TrtFlavour",
    "at_least",
    "cpu_extensions",
    "cpu_model",
    "cpuinfo_field",
    "distributions",
    "extra_for",
    "install_hint",
    "installed_dist",
    "installed_version",
    "local_gpu",
    "parse_version",
    "probe_gpu",
]

#: importable module -> the dcpose-trt pip extra that installs it ("": a core dependency). setup.py's
#: extras_require is the other side of this table.
EXTRAS: dict[str, str] = {
    "torch": "",
    "torchvision": "",
    "numpy": "",
    "cv2": "",
    "packaging": "",
    "onnx": "onnx",
    "onnxscript": "onnx",
    "onnxruntime": "onnx",
    "onnxslim": "onnx",
    "tensorrt": "trt",
    "tensorrt_rtx": "rtx",
    "tensorrt_lean": "lean",
    "cuda": "cuda",
    "cuda.bindings": "cuda",
    "triton": "triton",
    "matplotlib": "bench",
    "pycocotools": "eval",
    "ray": "ray",
    "openvino": "openvino",
    "nncf": "openvino",
}

# Modules whose distribution is not named after them.
_DISTRIBUTIONS: dict[str, tuple[str, ...]] = {
    "cuda": ("cuda-bindings", "cuda-python"),
    "cv2": ("opencv-contrib-python-headless", "opencv-python-headless", "opencv-python", "opencv-contrib-python"),
}


def distributions(module: str) -> tuple[str, ...]:
    """The distributions that may provide ``module``, most specific first.

    TensorRT ships as ``tensorrt`` / ``tensorrt-cu12`` / ``tensorrt-cu13`` (+ ``-bindings``), likewise its
    lean runtime; metadata lookups normalise ``_`` and ``-``, so ``tensorrt_rtx`` finds ``tensorrt-rtx``.
    """
    top = module.split(".")[0]
    if top in _DISTRIBUTIONS:
        return _DISTRIBUTIONS[top]
    name = top.replace("_", "-")
    if top.startswith("tensorrt"):
        return (name, f"{name}-cu12", f"{name}-cu13", f"{name}-cu12-bindings", f"{name}-cu13-bindings")
    return (name,)


def installed_dist(*names: str) -> str | None:
    """The first of the distributions ``names`` that is installed (package metadata, no import)."""
    for name in names:
        try:
            metadata.version(name)
        except metadata.PackageNotFoundError:  # noqa: PERF203 - a handful of names
            continue
        return name
    return None


def installed_version(module: str) -> str | None:
    """Installed version of the distribution that provides ``module``, from package metadata; None: absent."""
    dist = installed_dist(*distributions(module))
    return metadata.version(dist) if dist else None


def extra_for(module: str) -> str:
    """The pip extra that installs ``module`` (``""`` for core dependencies and unknown modules)."""
    return EXTRAS.get(module, EXTRAS.get(module.split(".")[0], ""))


def install_hint(module: str = "", *, extra: str = "") -> str:
    """The command that installs ``module`` (or the pip ``extra``), ``""`` when no extra installs it.

    Every install hint the code prints comes from here. dcpose-trt is not on the package index, so the
    command installs the extra from the checkout: ``pip install -e '.[onnx]' (run in the dcpose-trt
    checkout)``.
    """
    extra = extra or extra_for(module)
    return f"pip install -e '.[{extra}]' (run in the dcpose-trt checkout)" if extra else ""


@dataclass(frozen=True)
class TrtFlavour:
    """One TensorRT flavour: the name plan sidecars and the CLI use, its Python module, and whose plans it
    loads. The lean runtime (``tensorrt_lean``) has no builder: it runs version-compatible plans built by
    full TensorRT, and its installed version stands in for full TensorRT's when a plan is checked."""

    name: str
    module: str
    loads: str  # the builder whose plans it runs
    builds: bool  # has a builder (Builder, OnnxParser), not only Runtime/ICudaEngine/IExecutionContext

    @property
    def extra(self) -> str:
        """The pip extra that installs it."""
        return extra_for(self.module)


#: Every TensorRT flavour by name: the one table the engine builder, the plan check and the runtime share.
TRT_FLAVOURS: dict[str, TrtFlavour] = {f.name: f for f in (
    TrtFlavour("tensorrt", "tensorrt", loads="tensorrt", builds=True),
    TrtFlavour("tensorrt-rtx", "tensorrt_rtx", loads="tensorrt-rtx", builds=True),
    TrtFlavour("tensorrt-lean", "tensorrt_lean", loads="tensorrt", builds=False),
)}
#: The flavours that build plans (``dcpose-trt build --backend``).
TRT_BUILDERS: tuple[str, ...] = tuple(name for name, f in TRT_FLAVOURS.items() if f.builds)


def parse_version(text: object) -> Version | None:
    """A :class:`packaging.version.Version` of ``text`` (``"10.13.3.9"``, ``"2.14.1+cu130"``), None if
    it is not a version (``"unknown"``, None)."""
    try:
        return Version(str(text))
    except (InvalidVersion, TypeError):
        return None


def at_least(version: object, minimum: str) -> bool:
    """``version >= minimum`` by :mod:`packaging.version` rules; False when ``version`` is unparsable."""
    v = parse_version(version)
    return v is not None and v >= Version(minimum)


@dataclass(frozen=True)
class GpuInfo:
    """A CUDA device: marketing name and compute capability as ``"8.9"``."""

    name: str
    compute_capability: str


@dataclass(frozen=True)
class LocalGpu:
    """What :func:`probe_gpu` found. ``gpu`` is None without a usable CUDA device; ``driver`` is the CUDA
    version the driver supports (``"13.0"``) when cuda-python can tell; ``source`` says which probe answered."""

    gpu: GpuInfo | None
    driver: str | None = None
    count: int = 0
    source: str = ""


def _probe_cuda_python() -> LocalGpu | None:
    try:
        from cuda.bindings import runtime as cudart  # type: ignore[import-not-found]
    except Exception:  # noqa: BLE001 - absent or a broken native install: try the next probe
        return None
    driver = None
    try:
        err, drv = cudart.cudaDriverGetVersion()
        if int(err) == 0 and drv:
            driver = f"{drv // 1000}.{drv % 1000 // 10}"
        err, count = cudart.cudaGetDeviceCount()
        if int(err) == 0 and count > 0:
            err, prop = cudart.cudaGetDeviceProperties(0)
            if int(err) == 0:
                name = prop.name.decode(errors="replace").rstrip("\x00")
                return LocalGpu(GpuInfo(name, f"{prop.major}.{prop.minor}"), driver, int(count), "cuda-python")
    except Exception:  # noqa: BLE001 - a driver that fails a query counts as no GPU here
        pass
    return LocalGpu(None, driver) if driver else None


def _probe_torch(driver: str | None) -> LocalGpu | None:
    try:
        import torch

        if not torch.cuda.is_available():
            return None
        major, minor = torch.cuda.get_device_capability(0)
        if driver is None and torch.version.cuda:
            driver = f">= {torch.version.cuda} (torch build)"
        return LocalGpu(GpuInfo(torch.cuda.get_device_name(0), f"{major}.{minor}"), driver,
                        torch.cuda.device_count(), "torch")
    except Exception:  # noqa: BLE001 - a broken torch CUDA setup = no GPU
        return None


def _probe_nvidia_smi(driver: str | None) -> LocalGpu | None:
    if not shutil.which("nvidia-smi"):
        return None
    try:
        proc = subprocess.run(["nvidia-smi", "--query-gpu=name,compute_cap", "--format=csv,noheader"],
                              capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    lines = proc.stdout.strip().splitlines() if proc.returncode == 0 else []
    if not lines or "," not in lines[0]:
        return None
    name, cc = (s.strip() for s in lines[0].split(",", 1))
    return LocalGpu(GpuInfo(name, cc), driver, len(lines), "nvidia-smi")


def probe_gpu() -> LocalGpu:
    """The first CUDA GPU and the driver, via cuda-python (what the runtime uses), else torch, else
    ``nvidia-smi``; ``LocalGpu(None, ...)`` when none answers."""
    first = _probe_cuda_python()
    if first is not None and first.gpu is not None:
        return first
    driver = first.driver if first is not None else None
    return _probe_torch(driver) or _probe_nvidia_smi(driver) or LocalGpu(None, driver)


def local_gpu() -> GpuInfo | None:
    """The first CUDA GPU (name, compute capability), or None."""
    return probe_gpu().gpu


def cache_root(sub: str = "") -> Path:
    """Where every cache of dcpose-trt lives: ``$DCPOSE_TRT_CACHE``, else ``~/.cache/dcpose_trt``.

    Each user keeps its own sub-folder (``models`` for on-demand exports, ``openvino``, ``ptx``, ``trt_api``),
    so one variable moves (or isolates, in tests) all of them.
    """
    env = os.environ.get("DCPOSE_TRT_CACHE")
    root = Path(env).expanduser() if env else Path.home() / ".cache" / "dcpose_trt"
    return root / sub if sub else root


# /proc/cpuinfo flag → name, for the CPU extensions that decide which precisions run fast on the CPU.
CPU_EXTENSIONS = (("avx2", "AVX2"), ("fma", "FMA"), ("avx512f", "AVX-512F"), ("avx512bw", "AVX-512BW"),
                  ("avx512_vnni", "AVX-512 VNNI"), ("avx_vnni", "AVX-VNNI"), ("avx512_bf16", "AVX-512 BF16"),
                  ("avx512_fp16", "AVX-512 FP16"), ("amx_tile", "AMX"), ("amx_int8", "AMX-INT8"),
                  ("amx_bf16", "AMX-BF16"), ("amx_fp16", "AMX-FP16"))


def cpuinfo_field(name: str) -> str | None:
    """The value of the first ``name`` line of ``/proc/cpuinfo`` (None where there is none)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(name):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def cpu_extensions(flags: Sequence[str] | None = None) -> list[str]:
    """Vector/matrix extensions of this CPU (AVX2, AVX-512, VNNI, BF16, AMX) from ``/proc/cpuinfo`` flags."""
    if flags is None:
        flags = (cpuinfo_field("flags") or "").split()
    have = set(flags)
    return [name for flag, name in CPU_EXTENSIONS if flag in have]


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``, else what ``platform`` knows)."""
    import platform

    return cpuinfo_field("model name") or platform.processor() or platform.machine()
