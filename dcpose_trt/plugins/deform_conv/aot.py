"""Ahead-of-time compilation of one deformable-conv kernel to PTX (and cubin), without a GPU, and its cache.

``compile_kernel(arch, dtype, config, tactic)`` compiles :func:`~.kernels.deform_conv2d_kernel` with
``triton.compile(ASTSource(...), target=GPUTarget("cuda", cc, 32))`` into PTX that declares exactly
TensorRT's launch arguments (:mod:`.ptx`); the TensorRT ``aot_impl`` calls it at engine-build time and
:func:`~.aot_build.build_ptx` for every arch × dtype × config × tactic.

**Cache.** Keyed by (kernels.py sha256, Triton version, arch, dtype, constexprs, num_warps, PTX ISA, launch
ABI), stored under ``$DCPOSE_TRT_CACHE/ptx`` (default ``~/.cache/dcpose_trt/ptx``); a repeated build copies
from it and compiles nothing.
"""

from __future__ import annotations

import concurrent.futures as cf
import functools
import hashlib
import json
import logging
import multiprocessing
import os
import re
import shutil
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

from dcpose_trt.errors import PluginError
from dcpose_trt.plugins.deform_conv import (
    SCALAR_ARGS,
    TACTICS,
    block_co_for,
)
from dcpose_trt.plugins.deform_conv.ptx import (
    ABI_VERSION,
    ENTRY_RE,
    INPUT_POINTERS,
    MIN_PTX_VERSION,
    OUTPUT_POINTERS,
    assemble,
    match_launch_abi,
)

log = logging.getLogger(__name__)

MANIFEST_FORMAT = 2
KERNEL_NAME = "deform_conv2d_kernel"
DTYPES = ("fp32", "fp16")


@dataclass(frozen=True)
class DeformConfig:
    """The compile-time part of one DCN layer: kernel size, output channels per conv group, mask, bias.

    Everything else (batch, channels, H, W, stride, padding, dilation, groups) is a runtime int32
    argument, so one PTX serves all five DCPose dilations and every person batch.
    """

    name: str
    kh: int
    kw: int
    cout_per_group: int
    has_mask: bool = True
    has_bias: bool = True
    single_channel_groups: bool = False  # one input channel per offset group (Cin == G)

    def constexprs(self, tactic: int) -> dict[str, int | bool]:
        return {
            "KH": self.kh,
            "KW": self.kw,
            "BLOCK_CO": block_co_for(self.cout_per_group),
            "BLOCK_P": TACTICS[tactic]["BLOCK_P"],
            "HAS_MASK": self.has_mask,
            "HAS_BIAS": self.has_bias,
            "SINGLE_CH": self.single_channel_groups,
        }


CONFIGS: dict[str, DeformConfig] = {
    # DCPose's PCN: ModulatedDeformConv(17, 17, 3x3, deformable_groups=17), mask and bias.
    "dcpose": DeformConfig("dcpose", 3, 3, 17, single_channel_groups=True),
}


def parse_config(spec: str) -> DeformConfig:
    """A named config (``dcpose``) or ``KHxKW:COUT[:nomask][:nobias][:cpg1]`` (e.g. ``3x3:64:nobias``;
    ``cpg1``: one input channel per offset group)."""
    if spec in CONFIGS:
        return CONFIGS[spec]
    m = re.fullmatch(r"(\d+)x(\d+):(\d+)((?::nomask|:nobias|:cpg1)*)", spec)
    if not m:
        raise PluginError(
            f"unknown DCN config {spec!r}: use one of {sorted(CONFIGS)} or KHxKW:COUT[:nomask][:nobias][:cpg1]"
        )
    kh, kw, cout = int(m[1]), int(m[2]), int(m[3])
    if min(kh, kw, cout) < 1:
        raise PluginError(f"DCN config {spec!r}: kernel size and channels must be >= 1")
    flags = m[4]
    return DeformConfig(spec.replace(":", "-"), kh, kw, cout, "nomask" not in flags, "nobias" not in flags,
                        "cpg1" in flags)  # fmt: skip


def parse_archs(text: str | list[int] | tuple[int, ...]) -> list[int]:
    """``"72,75,sm_80"`` → ``[72, 75, 80]``; raises :class:`PluginError` for an unknown arch."""
    items = text.split(",") if isinstance(text, str) else list(text)
    archs: list[int] = []
    for item in items:
        s = str(item).strip().lower().removeprefix("sm_").removeprefix("sm")
        if not s:
            continue
        if not s.isdigit() or int(s) not in MIN_PTX_VERSION:
            raise PluginError(
                f"unsupported arch {str(item).strip()!r}: expected compute capabilities from "
                f"{','.join(map(str, MIN_PTX_VERSION))}"
            )
        if int(s) not in archs:
            archs.append(int(s))
    if not archs:
        raise PluginError("no arch given: expected e.g. --arch 80,86,90")
    return archs


def parse_dtypes(text: str | list[str] | tuple[str, ...]) -> list[str]:
    items = [s.strip().lower() for s in (text.split(",") if isinstance(text, str) else text) if s.strip()]
    bad = [s for s in items if s not in DTYPES]
    if bad or not items:
        raise PluginError(f"unsupported dtype(s) {bad or items}: expected a subset of {','.join(DTYPES)}")
    return list(dict.fromkeys(items))


def cache_dir() -> Path:
    """``$DCPOSE_TRT_CACHE/ptx`` (default ``~/.cache/dcpose_trt/ptx``)."""
    from dcpose_trt._env import cache_root

    return cache_root("ptx")


@functools.lru_cache(maxsize=1)
def kernel_source_hash() -> str:
    """sha256 of kernels.py: any edit of the kernel invalidates the cache."""
    return hashlib.sha256((Path(__file__).parent / "kernels.py").read_bytes()).hexdigest()


@dataclass(frozen=True)
class CompileJob:
    arch: int
    dtype: str
    config: DeformConfig
    tactic: int

    @property
    def num_warps(self) -> int:
        return TACTICS[self.tactic]["num_warps"]

    @property
    def ptx_version(self) -> int:
        return MIN_PTX_VERSION[self.arch]

    @property
    def stem(self) -> str:
        return f"{KERNEL_NAME}_{self.dtype}_{self.config.name}_t{self.tactic}"

    def key(self, triton_version: str) -> str:
        ident = {
            "format": MANIFEST_FORMAT,
            "source": kernel_source_hash(),
            "triton": triton_version,
            "arch": self.arch,
            "dtype": self.dtype,
            "constexprs": self.config.constexprs(self.tactic),
            "num_warps": self.num_warps,
            "ptx_version": self.ptx_version,
            "abi": ABI_VERSION,
        }
        return hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()


@dataclass
class CompiledKernel:
    """One compiled kernel: PTX text, optional cubin and the launch metadata."""

    arch: int
    dtype: str
    config: str
    tactic: int
    constexprs: dict[str, int | bool]
    kernel_name: str
    num_warps: int
    shared_mem: int
    ptx_version: str
    target: str
    num_params: int
    global_scratch_size: int
    profile_scratch_size: int
    ptxas: str | None
    registers: int | None  # per thread, from ptxas -v (occupancy check without a GPU)
    spill_bytes: int | None
    key: str
    ptx: str = field(repr=False)
    cubin: bytes | None = field(default=None, repr=False)
    cached: bool = False

    def meta(self) -> dict:
        d = asdict(self)
        for k in ("ptx", "cubin", "cached"):
            d.pop(k)
        return d


def _triton_version() -> str:
    from dcpose_trt._deps import require

    return require("triton", "triton", "compiling the deformable-conv plugin").__version__


def _interpreting() -> bool:
    """True when this process runs Triton kernels in the interpreter (``TRITON_INTERPRET=1``): its
    ``@triton.jit`` objects, and Triton's own standard library, cannot be compiled here."""
    return os.environ.get("TRITON_INTERPRET", "0").strip().lower() in ("1", "true", "on", "yes")


def _signature(dtype: str, constexprs: dict) -> dict[str, str]:
    sig = {name: f"*{dtype}" for name in INPUT_POINTERS}
    sig.update({name: "i32" for name in SCALAR_ARGS})
    sig.update({name: f"*{dtype}" for name in OUTPUT_POINTERS})
    sig.update({name: "constexpr" for name in constexprs})
    return sig


def _compile_uncached(job: CompileJob, key: str) -> CompiledKernel:
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    from dcpose_trt.plugins.deform_conv.kernels import deform_conv2d_kernel

    constexprs = job.config.constexprs(job.tactic)
    src = ASTSource(fn=deform_conv2d_kernel, signature=_signature(job.dtype, constexprs), constexprs=constexprs)
    compiled = triton.compile(
        src,
        target=GPUTarget("cuda", job.arch, 32),
        options={"num_warps": job.num_warps, "ptx_version": job.ptx_version},
    )
    ptx = compiled.asm["ptx"]
    # sm_XXa -> sm_XX: arch-specific PTX would not JIT onto any other GPU; ptxas below validates it.
    ptx = re.sub(r"^(\.target\s+sm_\d+)a\b", r"\1", ptx, flags=re.MULTILINE)
    md = compiled.metadata
    if getattr(md, "global_scratch_size", 0) or getattr(md, "profile_scratch_size", 0):
        # A launcher (TensorRT) that passes no scratch buffer would make such a kernel fault.
        raise PluginError(f"the kernel needs Triton scratch memory on sm_{job.arch}; it cannot run as a plugin")
    # Declare exactly TensorRT's launch arguments (inputs, int32 extra args, outputs).
    ptx = match_launch_abi(ptx)
    entry = ENTRY_RE.search(ptx)
    if entry is None:
        raise PluginError(f"no .entry in the PTX compiled for sm_{job.arch}")
    cubin, ptxas, stats = assemble(ptx, job.arch)
    version = re.search(r"^\.version\s+(\S+)", ptx, re.MULTILINE)
    target = re.search(r"^\.target\s+(\S+)", ptx, re.MULTILINE)
    return CompiledKernel(
        arch=job.arch,
        dtype=job.dtype,
        config=job.config.name,
        tactic=job.tactic,
        constexprs=constexprs,
        kernel_name=entry.group(1),
        num_warps=int(md.num_warps),
        shared_mem=int(md.shared),
        ptx_version=version.group(1) if version else "",
        target=target.group(1).rstrip(",") if target else "",
        num_params=entry.group(2).count(".param"),
        global_scratch_size=int(getattr(md, "global_scratch_size", 0)),
        profile_scratch_size=int(getattr(md, "profile_scratch_size", 0)),
        ptxas=ptxas,
        registers=stats.get("registers"),
        spill_bytes=stats.get("spill_bytes"),
        key=key,
        ptx=ptx,
        cubin=cubin,
    )


def _cache_load(key: str) -> CompiledKernel | None:
    d = cache_dir() / key[:2] / key
    try:
        meta = json.loads((d / "meta.json").read_text())
        ptx = (d / "kernel.ptx").read_text()
        cubin = (d / "kernel.cubin").read_bytes() if (d / "kernel.cubin").is_file() else None
    except (OSError, ValueError):
        return None
    return CompiledKernel(**meta, ptx=ptx, cubin=cubin, cached=True)


def _cache_store(k: CompiledKernel) -> None:
    final = cache_dir() / k.key[:2] / k.key
    if final.is_dir():
        return
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=final.parent))
    (tmp / "kernel.ptx").write_text(k.ptx)
    if k.cubin is not None:
        (tmp / "kernel.cubin").write_bytes(k.cubin)
    (tmp / "meta.json").write_text(json.dumps(k.meta(), indent=1))
    try:
        tmp.rename(final)  # atomic: concurrent builders never see a half-written entry
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)


def _compile_job(job: CompileJob, key: str, use_cache: bool) -> CompiledKernel:
    kernel = _compile_uncached(job, key)
    if use_cache:
        _cache_store(kernel)
    return kernel


def compile_kernel(
    arch: int, dtype: str, config: DeformConfig | str = "dcpose", tactic: int = 1, use_cache: bool = True
) -> CompiledKernel:
    """Compile (or fetch from the cache) one kernel for ``sm_<arch>``.

    Args:
        arch: compute capability as an int (``80`` for sm_80).
        dtype: ``"fp32"`` or ``"fp16"``: the type of every tensor the kernel reads and writes.
        config: a :class:`DeformConfig` or a spec for :func:`parse_config`.
        tactic: a key of :data:`~dcpose_trt.plugins.deform_conv.TACTICS`.
    """
    (arch,) = parse_archs([arch])
    (dtype,) = parse_dtypes([dtype])
    cfg = parse_config(config) if isinstance(config, str) else config
    if tactic not in TACTICS:
        raise PluginError(f"unknown tactic {tactic}: expected one of {sorted(TACTICS)}")
    job = CompileJob(arch, dtype, cfg, tactic)
    key = job.key(_triton_version())
    if use_cache and (hit := _cache_load(key)) is not None:
        hit.config = cfg.name
        return hit
    if _interpreting():
        with _pool(1) as pool:
            return pool.submit(_compile_job, job, key, use_cache).result()
    return _compile_job(job, key, use_cache)


def _worker_init() -> None:
    # Worker processes compile only; an inherited TRITON_INTERPRET=1 would turn the kernel into an
    # interpreter object there.
    os.environ["TRITON_INTERPRET"] = "0"


def _pool(n_workers: int) -> cf.ProcessPoolExecutor:
    # spawn: a fresh interpreter per worker (LLVM and forked threads do not mix), triton imported
    # after _worker_init.
    ctx = multiprocessing.get_context("spawn")
    return cf.ProcessPoolExecutor(n_workers, mp_context=ctx, initializer=_worker_init)
