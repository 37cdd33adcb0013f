"""The head's deformable convolutions as one OpenVINO CPU op (``DcnGemm``), compiled on this machine.

OpenVINO's op set has no modulated deformable convolution that runs fast on the CPU, so the converted head
expresses each DCN as a graph (:mod:`dcpose_trt.model.cpu_head`): offset conv → base add → transpose to
GridSample's grid → GridSample → mask multiply → 1×1 conv. OpenVINO runs that as six passes over a 30 MB
grid per DCN at w32 / 8 persons. ``DcnGemm`` (``ov_dcn/dcn_gemm.cpp``) does the sampling, the mask and the
1×1 GEMM in one pass over the offsets and masks (head profile before/after: docs/cpu_backends.md).

The op is C++ against OpenVINO's own headers (the ``openvino`` wheel ships them), compiled with the
system's C++ compiler the first time a head is converted (a few seconds) and cached under
``$DCPOSE_TRT_CACHE/openvino/ext/<key>/`` (key: source, OpenVINO version, compiler, CPU flags: it is
compiled for this CPU). Where it cannot be built (no compiler, not x86-64 with AVX2 + FMA) the head keeps
the graph form, with the same numbers, only slower. ``$DCPOSE_TRT_OV_DCN``: ``auto`` (default), ``graph``
(never use the op), ``fused`` (fail when it cannot be built).

    form = dcn_form()              # "fused" or "graph"
    core = new_core()              # ov.Core() that can read IRs with DcnGemm
    ov.convert_model(..., extension=conversion_extensions())
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from dcpose_trt._deps import require
from dcpose_trt.errors import InputError, PluginError

log = logging.getLogger(__name__)

SOURCE = Path(__file__).with_name("ov_dcn") / "dcn_gemm.cpp"
#: The op's type name in the IR (``DcnGemm``, opset ``dcpose_trt``) and the torch op that converts to it.
OP_TYPE = "DcnGemm"
TORCH_OP = "dcpose_trt::dcn_gemm"
#: ``auto`` | ``graph`` | ``fused``: whether converted heads use the op (module docstring).
FORM_ENV = "DCPOSE_TRT_OV_DCN"
FORMS = ("auto", "graph", "fused")
_LIB_NAME = "libdcpose_trt_ov_dcn.so"


def _ov() -> Any:
    return require("openvino", "openvino", "the OpenVINO backend")


def _requested() -> str:
    env = os.environ.get(FORM_ENV, "").strip().lower() or "auto"
    if env not in FORMS:
        raise InputError(f"{FORM_ENV} must be one of {', '.join(FORMS)}, got {env!r}")
    return env


def dcn_form() -> str:
    """``fused`` when converted heads use ``DcnGemm`` on this machine, else ``graph`` (:data:`FORM_ENV`).

    Raises:
        PluginError: ``$DCPOSE_TRT_OV_DCN=fused`` and the op cannot be built (the reason in the message).
    """
    want = _requested()
    if want == "graph":
        return "graph"
    if want == "fused":
        build_library()  # raises with the reason
        return "fused"
    return "fused" if library() is not None else "graph"


@functools.cache
def library() -> Path | None:
    """The compiled op library (built on first use), or None where it cannot be built (logged once)."""
    try:
        return build_library()
    except PluginError as exc:
        log.warning("the head's deformable convs run as an OpenVINO graph (slower): %s", exc)
        return None


def unsupported_reason() -> str | None:
    """Why the op cannot be compiled here (platform, CPU, compiler, headers), or None."""
    if sys.platform != "linux" or platform.machine() not in ("x86_64", "AMD64"):
        return f"the DcnGemm op is built for Linux x86-64 only (this is {sys.platform} {platform.machine()})"
    from dcpose_trt._env import cpuinfo_field

    flags = set((cpuinfo_field("flags") or "").split())
    if not {"avx2", "fma"} <= flags:
        return "the DcnGemm op needs a CPU with AVX2 and FMA (its scalar fallback is slower than the graph)"
    if _compiler() is None:
        return "no C++ compiler (g++ or $CXX) to build the DcnGemm op"
    if not (_ov_root() / "include" / "openvino" / "op" / "op.hpp").is_file():
        return f"this OpenVINO install has no C++ headers ({_ov_root() / 'include'})"
    if _ov_lib("libopenvino.so.") is None:
        return f"no libopenvino.so.* in {_ov_root() / 'libs'}"
    return None


def _compiler() -> str | None:
    """``$CXX`` when set (None if it is not an executable), else ``g++`` or ``c++`` on the PATH."""
    cxx = os.environ.get("CXX")
    if cxx:
        return shutil.which(cxx)
    return shutil.which("g++") or shutil.which("c++")


def _ov_root() -> Path:
    return Path(_ov().__file__).parent


def _ov_lib(prefix: str) -> Path | None:
    """``libs/<prefix><digits>`` of the OpenVINO wheel (``libopenvino.so.2641``, ``libtbb.so.12``)."""
    libs = _ov_root() / "libs"
    found = sorted(p for p in libs.glob(f"{prefix}*") if p.name[len(prefix):].isdigit()) if libs.is_dir() else []
    return found[-1] if found else None


#: -march=native: the library is compiled on and for this CPU (its flags are in the cache key).
_CXXFLAGS = ("-O3", "-march=native", "-fno-math-errno", "-std=c++17", "-shared", "-fPIC",
             "-DOV_THREAD=OV_THREAD_TBB_ADAPTIVE", "-D_GLIBCXX_USE_CXX11_ABI=1")


def build_library(cache: Path | None = None) -> Path:
    """Compile ``ov_dcn/dcn_gemm.cpp`` for this machine into ``cache`` (default
    ``$DCPOSE_TRT_CACHE/openvino/ext``) once; returns the library's path.

    Raises:
        PluginError: it cannot be built here (:func:`unsupported_reason`) or the compiler failed.
    """
    why = unsupported_reason()
    if why:
        raise PluginError(why)
    from dcpose_trt._env import cache_root, cpuinfo_field

    cxx = _compiler()
    assert cxx is not None
    root, libov, libtbb = _ov_root(), _ov_lib("libopenvino.so."), _ov_lib("libtbb.so.")
    assert libov is not None
    try:
        version = subprocess.run([cxx, "--version"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        raise PluginError(f"cannot run the C++ compiler {cxx}: {exc}") from None
    key = hashlib.sha256(b"\0".join(s.encode() if isinstance(s, str) else s for s in (
        SOURCE.read_bytes(), _ov().__version__, version, " ".join(_CXXFLAGS), cpuinfo_field("flags") or "",
        str(libov)))).hexdigest()[:16]
    folder = (cache or cache_root("openvino") / "ext") / key
    lib = folder / _LIB_NAME
    if lib.is_file():
        return lib
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # a read-only cache: the graph form, not a failed conversion
        raise PluginError(f"cannot write the DcnGemm op into {folder}: {exc}") from None
    tmp = folder / f".{_LIB_NAME}.{os.getpid()}.tmp"
    cmd = [cxx, *_CXXFLAGS, str(SOURCE), f"-I{root / 'include'}", f"-L{libov.parent}", f"-l:{libov.name}",
           *([f"-l:{libtbb.name}"] if libtbb else []), f"-Wl,-rpath,{libov.parent}", "-o", str(tmp)]
    log.info("compiling the OpenVINO DcnGemm op for this machine (once): %s", folder)
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    except (OSError, subprocess.SubprocessError) as exc:
        tmp.unlink(missing_ok=True)
        raise PluginError(f"compiling {SOURCE.name} failed: {exc}") from None
    if r.returncode != 0:
        tmp.unlink(missing_ok=True)
        errors = [ln for ln in r.stderr.splitlines() if "error" in ln] or r.stderr.strip().splitlines() or ["?"]
        raise PluginError(f"compiling {SOURCE.name} with {cxx} failed: {errors[0][:300]}")
    try:
        os.replace(tmp, lib)  # atomic: a concurrent build of the same key writes the same file
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise PluginError(f"cannot write the DcnGemm op into {folder}: {exc}") from None
    return lib


def new_core() -> Any:
    """``ov.Core()`` that reads and compiles IRs containing ``DcnGemm`` (the op added where it builds)."""
    core = _ov().Core()
    lib = library() if _requested() != "graph" else None
    if lib is not None:
        core.add_extension(str(lib))
    return core


@functools.cache
def _factory() -> Any:
    from openvino.utils.node_factory import NodeFactory

    lib = build_library()
    f = NodeFactory()
    f.add_extension(str(lib))
    return f


def _convert(ctx: Any) -> list[Any]:
    """OpenVINO PyTorch-frontend rule: ``dcpose_trt::dcn_gemm`` (:func:`dcpose_trt.model.cpu_head.dcn_gemm`)
    → ``DcnGemm`` with its four int arguments as attributes."""
    inputs = [ctx.get_input(i) for i in range(5)]
    kh, kw, dil, pad = (int(ctx.get_values_from_const_input(i)) for i in range(5, 9))
    node = _factory().create(OP_TYPE, inputs, {"kernel_h": kh, "kernel_w": kw, "dilation": dil, "pad": pad})
    return [node.output(0)]


def conversion_extensions() -> list[Any]:
    """The frontend extensions ``ov.convert_model`` needs for a head converted with ``fused_dcn=True``."""
    from openvino.frontend.pytorch import ConversionExtension

    return [ConversionExtension(TORCH_OP, _convert)]
