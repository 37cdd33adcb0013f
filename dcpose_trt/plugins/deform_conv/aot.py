"""Ahead-of-time compilation of the deformable-conv kernel to PTX (and cubin), without a GPU.

``build_ptx(archs, out_dir)`` compiles :func:`~.kernels.deform_conv2d_kernel` for every
arch × dtype × DCN configuration × tactic with ``triton.compile(ASTSource(...), target=GPUTarget("cuda",
cc, 32))``, writes ``sm_XX/<kernel>_<dtype>_<config>_t<tactic>.ptx`` (+ ``.cubin``) and a
``manifest.json`` that says how to launch each one. ``compile_kernel()`` is the single-kernel entry that
the TensorRT ``aot_impl`` uses at engine-build time.

Decisions, each checked on this Triton (3.8):

* **Portable PTX.** Triton targets ``sm_90a`` / ``sm_100a`` / ``sm_120a`` (arch-specific PTX that only
  JITs on exactly that GPU) and the newest PTX ISA its ptxas knows (8.8 / 9.3, i.e. a CUDA 12.9 / 13.3
  driver). The kernel uses no arch-specific instruction, so we compile with the *lowest* PTX ISA each
  arch needs (:data:`MIN_PTX_VERSION`; older drivers, e.g. on Jetson, accept it) and rewrite
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
* **Cache.** Keyed by (kernels.py sha256, Triton version, arch, dtype, constexprs, num_warps, PTX ISA),
  stored under ``$DCPOSE_TRT_CACHE/ptx`` (default ``~/.cache/dcpose_trt/ptx``); a repeated build copies
  from it and compiles nothing.
"""

from __future__ import annotations

import concurrent.futures as cf
import datetime as _dt
import functools
import hashlib
import json
import logging
import multiprocessing
import os
import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from dcpose_trt._atomic import atomic_write_bytes, atomic_write_text
from dcpose_trt.errors import PluginError
from dcpose_trt.plugins.deform_conv import (
    PLUGIN_ID,
    SCALAR_ARGS,
    TACTICS,
    block_co_for,
)

log = logging.getLogger(__name__)

MANIFEST_FORMAT = 2
KERNEL_NAME = "deform_conv2d_kernel"
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
DEFAULT_ARCHS = (72, 75, 80, 86, 87, 89, 90, 100, 120)
DTYPES = ("fp32", "fp16")

GRID_FORMULA = {
    "x": "cdiv(H_out * W_out, BLOCK_P)",
    "y": "B * (C_in / CIN_G) * cdiv(COUT_G, BLOCK_CO)",
    "z": "1",
}
BLOCK_FORMULA = {"x": "num_warps * 32", "y": "1", "z": "1"}


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


def _ptxas_for(arch: int) -> tuple[str | None, str | None]:
    """(path, version line) of the ptxas Triton uses for ``arch``, or (None, None)."""
    try:
        from triton.backends.nvidia.compiler import get_ptxas

        tool = get_ptxas(arch)
        return tool.path, tool.version
    except Exception as exc:  # noqa: BLE001 - a missing/broken ptxas only costs the cubin
        log.warning("no ptxas for sm_%d (%s); writing PTX only", arch, exc)
        return None, None


def _assemble(ptx: str, arch: int) -> tuple[bytes | None, str | None, dict]:
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


_ENTRY = re.compile(r"\.entry\s+(\w+)\s*\(([^)]*)\)", re.DOTALL)
_PARAM = re.compile(r"\.param\s+\.(\w+)[^,]*?(\w+)\s*(?:,|$)")


def entry_params(ptx: str) -> list[tuple[str, str]]:
    """``[(type, name), ...]`` of the PTX ``.entry``'s parameters, in order (type e.g. ``"u64"``, ``"u32"``)."""
    m = _ENTRY.search(ptx)
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
    m = _ENTRY.search(ptx)
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
    entry = _ENTRY.search(ptx)
    if entry is None:
        raise PluginError(f"no .entry in the PTX compiled for sm_{job.arch}")
    cubin, ptxas, stats = _assemble(ptx, job.arch)
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


def build_ptx(
    archs: list[int] | str,
    out_dir: str | Path,
    dtypes: list[str] | str = DTYPES,
    configs: list[str] | str = ("dcpose",),
    tactics: list[int] | None = None,
    jobs: int | None = None,
    use_cache: bool = True,
    progress: bool = True,
) -> dict:
    """Compile every arch × dtype × config × tactic, write PTX/cubin files and ``manifest.json``.

    Args:
        archs: compute capabilities (``[75, 80]`` or ``"75,80"``).
        out_dir: output folder; files go to ``out_dir/sm_XX/``.
        dtypes: subset of ``("fp32", "fp16")``.
        configs: names or specs accepted by :func:`parse_config`.
        tactics: subset of :data:`TACTICS` keys (default: all).
        jobs: parallel compile processes (default: CPU count).
        use_cache: read/write the compile cache (:func:`cache_dir`).
        progress: show a tqdm progress bar.

    Returns:
        The manifest (also written to ``out_dir/manifest.json``); each kernel entry has a ``cached`` flag.
    """
    arch_list = parse_archs(archs)
    dtype_list = parse_dtypes(dtypes)
    cfg_list = [parse_config(c) for c in ([configs] if isinstance(configs, str) else configs)]
    tactic_list = sorted(TACTICS) if tactics is None else list(tactics)
    unknown = [t for t in tactic_list if t not in TACTICS]
    if unknown:
        raise PluginError(f"unknown tactic(s) {unknown}: expected a subset of {sorted(TACTICS)}")
    version = _triton_version()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)

    all_jobs = [CompileJob(a, d, c, t) for a in arch_list for d in dtype_list for c in cfg_list for t in tactic_list]
    keys = {job: job.key(version) for job in all_jobs}
    results: dict[CompileJob, CompiledKernel] = {}
    todo: list[CompileJob] = []
    for job in all_jobs:
        hit = _cache_load(keys[job]) if use_cache else None
        if hit is not None:
            hit.config = job.config.name
            results[job] = hit
        else:
            todo.append(job)

    from tqdm import tqdm

    t0 = time.perf_counter()
    bar = tqdm(total=len(all_jobs), initial=len(results), desc="compile deform_conv", unit="kernel",
               disable=None if progress else True)  # fmt: skip
    try:
        n_workers = max(1, min(jobs or os.cpu_count() or 1, len(todo)))
        if n_workers == 1 and not _interpreting():
            for job in todo:
                bar.set_postfix_str(f"sm_{job.arch} {job.dtype} t{job.tactic}")
                results[job] = _compile_job(job, keys[job], use_cache)
                bar.update()
        elif todo:
            with _pool(n_workers) as pool:
                futures = {pool.submit(_compile_job, job, keys[job], use_cache): job for job in todo}
                for fut in cf.as_completed(futures):
                    results[futures[fut]] = fut.result()
                    bar.update()
    finally:
        bar.close()
    log.info("compiled %d kernel(s), %d from cache, in %.1f s", len(todo), len(all_jobs) - len(todo),
             time.perf_counter() - t0)  # fmt: skip

    entries = []
    for job in all_jobs:
        k = results[job]
        sub = out / f"sm_{job.arch}"
        sub.mkdir(exist_ok=True)
        atomic_write_text(sub / f"{job.stem}.ptx", k.ptx)
        entry = {
            **k.meta(),
            "ptx": f"sm_{job.arch}/{job.stem}.ptx",
            "ptx_sha256": hashlib.sha256(k.ptx.encode()).hexdigest(),
            "cubin": None,
            "cached": k.cached,
        }
        if k.cubin is not None:
            atomic_write_bytes(sub / f"{job.stem}.cubin", k.cubin)
            entry["cubin"] = f"sm_{job.arch}/{job.stem}.cubin"
        entries.append(entry)

    manifest = {
        "format": MANIFEST_FORMAT,
        "plugin": PLUGIN_ID,
        "kernel": KERNEL_NAME,
        "triton": version,
        "kernel_source_sha256": kernel_source_hash(),
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "arguments": {
            "input_pointers": list(INPUT_POINTERS),
            "scalars_int32": list(SCALAR_ARGS),
            "output_pointers": list(OUTPUT_POINTERS),
            "order": list(INPUT_POINTERS) + list(SCALAR_ARGS) + list(OUTPUT_POINTERS),
            "ptx_param_types": list(LAUNCH_PARAM_TYPES),  # exactly TensorRT's AOT launch (no scratch)
        },
        "layout": "NCHW contiguous; offset[:, 2*(g*K+k)] = dy, +1 = dx; mask[:, g*K+k]",
        "launch": {"grid": GRID_FORMULA, "block": BLOCK_FORMULA, "shared_mem": "kernels[i].shared_mem"},
        "tactics": {str(t): TACTICS[t] for t in tactic_list},
        "configs": {c.name: asdict(c) for c in cfg_list},
        "kernels": entries,
    }
    atomic_write_text(out / "manifest.json", json.dumps(manifest, indent=1))  # last: the index
    return manifest


def find_kernel(manifest: dict, arch: int, dtype: str, config: str = "dcpose", tactic: int = 1) -> dict:
    """The manifest entry for one (arch, dtype, config, tactic); raises :class:`PluginError` if absent."""
    for e in manifest["kernels"]:
        if (e["arch"], e["dtype"], e["config"], e["tactic"]) == (arch, dtype, config, tactic):
            return e
    raise PluginError(f"no kernel for sm_{arch} {dtype} {config} tactic {tactic} in the manifest")
