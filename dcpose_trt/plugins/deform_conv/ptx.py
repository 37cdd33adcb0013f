"""The kernel's PTX: TensorRT's launch ABI, the PTX ISA per arch, and ptxas (cubin + register counts).

Decisions, each checked on this Triton (3.8):

* **Portable PTX.** Triton targets ``sm_90a`` / ``sm_100a`` / ``sm_120a`` (arch-specific PTX that only
  JITs on exactly that GPU) and the newest PTX ISA its ptxas knows (8.8 / 9.3, i.e. a CUDA 12.9 / 13.3
  driver). The kernel uses no arch-specific instruction, so :mod:`.aot` compiles with the *lowest* PTX ISA
  each arch needs (:data:`MIN_PTX_VERSION`; older drivers, e.g. on Jetson, accept it) and rewrites
  ``.target sm_XXa`` to ``.target sm_XX``. The rewritten PTX is then assembled by ptxas, which proves
  it is valid for that arch.
* **cubin.** Triton ships ``ptxas`` (CUDA 12.9: sm_72..sm_90) and ``ptxas-blackwell`` (CUDA 13.x:
  sm_75..sm_121, no Volta/sm_72). Every arch of :data:`MIN_PTX_VERSION` gets a cubin from one of them;
  TensorRT's ``aot_impl`` takes the PTX, the cubin is for direct loading and inspection.
* **Kernel ABI = TensorRT's launch.** TensorRT launches an ``aot_impl`` kernel with exactly: one pointer
  per plugin input, then the ``extra_args`` (int32 here), then one pointer per output, and nothing else
  (``tensorrt.plugin._lib.aot_impl``: extra args are "located after the tensor inputs and before the
  tensor outputs"; ``_TemplateAOTPlugin.get_launch_params`` hands TensorRT only the grid/block/shared
  memory and those extra args). ``cuLaunchKernel`` reads one argument per declared ``.param``, so the
  entry must declare exactly that list. Triton >= 3.3 appends ``global_scratch`` (and >= 3.5
  ``profile_scratch``) pointers to every kernel; NVIDIA's QDP sample sidesteps that by pinning
  ``triton==3.2.0``. We strip them from the ``.entry`` instead (:func:`match_launch_abi`), after checking
  that the kernel needs no scratch (sizes 0) and that the body never reads them; ptxas then assembles the
  stripped PTX, which proves it is still valid.
"""

from __future__ import annotations

import logging
import re
import subprocess
import tempfile
from pathlib import Path

from dcpose_trt.errors import PluginError
from dcpose_trt.plugins.deform_conv import SCALAR_ARGS

log = logging.getLogger(__name__)

INPUT_POINTERS = ("x_ptr", "weight_ptr", "offset_ptr", "bias_ptr", "mask_ptr")  # ONNX DeformConv order
OUTPUT_POINTERS = ("out_ptr",)
TRAILING_PARAMS = ("global_scratch", "profile_scratch")  # appended by Triton >= 3.3; stripped (unused)
# TensorRT's AOT launch: plugin inputs, extra int32 args, outputs (PTX param types).
LAUNCH_PARAM_TYPES = ("u64",) * len(INPUT_POINTERS) + ("u32",) * len(SCALAR_ARGS) + ("u64",) * len(OUTPUT_POINTERS)
ABI_VERSION = 2  # 2: trailing Triton scratch params stripped (part of the cache key)

# Lowest PTX ISA that both ptxas and Triton's LLVM accept per arch (LLVM wants 8.0 for sm_90).
MIN_PTX_VERSION: dict[int, int] = {
    72: 64, 75: 64, 80: 70, 86: 71, 87: 74, 89: 78, 90: 80,
    100: 86, 103: 88, 110: 90, 120: 87, 121: 88,
}  # fmt: skip


def _ptxas_for(arch: int) -> tuple[str | None, str | None]:
    """(path, version line) of the ptxas Triton uses for ``arch``, or (None, None)."""
    try:
        from triton.backends.nvidia.compiler import get_ptxas

        tool = get_ptxas(arch)
        return tool.path, tool.version
    except Exception as exc:  # noqa: BLE001 - a missing/broken ptxas only costs the cubin
        log.warning("no ptxas for sm_%d (%s); writing PTX only", arch, exc)
        return None, None


def assemble(ptx: str, arch: int) -> tuple[bytes | None, str | None, dict]:
    """(cubin, "ptxas <version>", {"registers", "spill_bytes"}) from ptxas -v, or (None, None, {})."""
    path, version = _ptxas_for(arch)
    if path is None:
        return None, None, {}
    with tempfile.TemporaryDirectory(prefix="dcpose_trt_ptxas_") as tmp:
        src, dst = Path(tmp) / "k.ptx", Path(tmp) / "k.cubin"
        src.write_text(ptx)
        proc = subprocess.run(
            [path, "-v", f"--gpu-name=sm_{arch}", "-O3", str(src), "-o", str(dst)], capture_output=True, text=True
        )
        if proc.returncode != 0:
            raise PluginError(f"ptxas rejected the PTX for sm_{arch}: {proc.stderr.strip()[:500]}")
        regs = re.search(r"Used (\d+) registers", proc.stderr)
        spills = re.search(r"(\d+) bytes spill stores", proc.stderr)
        stats = {"registers": int(regs[1]) if regs else None, "spill_bytes": int(spills[1]) if spills else None}
        return dst.read_bytes(), f"ptxas {version}", stats


ENTRY_RE = re.compile(r"\.entry\s+(\w+)\s*\(([^)]*)\)", re.DOTALL)
_PARAM = re.compile(r"\.param\s+\.(\w+)[^,]*?(\w+)\s*(?:,|$)")


def entry_params(ptx: str) -> list[tuple[str, str]]:
    """``[(type, name), ...]`` of the PTX ``.entry``'s parameters, in order (type e.g. ``"u64"``, ``"u32"``)."""
    m = ENTRY_RE.search(ptx)
    if m is None:
        raise PluginError("no .entry in the PTX")
    return [(t, n) for t, n in _PARAM.findall(m.group(2).strip())]


def match_launch_abi(ptx: str, expected: tuple[str, ...] = LAUNCH_PARAM_TYPES) -> str:
    """The PTX with Triton's trailing scratch parameters removed from the ``.entry``, so that it declares
    exactly the arguments TensorRT passes (``expected`` types, in order).

    Only parameters past ``expected`` are removed, and only if the body never references them.

    Raises:
        PluginError: the entry does not start with ``expected``, or a surplus parameter is used.
    """
    m = ENTRY_RE.search(ptx)
    if m is None:
        raise PluginError("no .entry in the PTX")
    params = entry_params(ptx)
    types = tuple(t for t, _ in params)
    if types[: len(expected)] != expected or len(params) > len(expected) + len(TRAILING_PARAMS):
        raise PluginError(f"the kernel's PTX parameters {list(types)} do not start with TensorRT's launch "
                          f"arguments {list(expected)}")
    surplus = params[len(expected):]
    body = ptx[m.end():]
    used = [n for _, n in surplus if re.search(rf"\b{re.escape(n)}\b", body)]
    if used:
        raise PluginError(f"the kernel reads Triton's scratch parameters {used}; TensorRT does not pass them")
    if not surplus:
        return ptx
    decls = [d.strip() for d in m.group(2).split(",")][: len(expected)]
    header = ",\n".join(f"\t{d}" for d in decls)
    return ptx[: m.start(2)] + "\n" + header + "\n" + ptx[m.end(2):]
