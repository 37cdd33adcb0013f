"""``build_ptx(archs, out_dir)``: every arch × dtype × DCN configuration × tactic, compiled without a GPU.

Each kernel comes from :func:`~.aot.compile_kernel` (cached); this writes
``sm_XX/<kernel>_<dtype>_<config>_t<tactic>.ptx`` (+ ``.cubin``) and a ``manifest.json`` that says how to
launch each one (``dcpose-trt plugin build``). :func:`find_kernel` looks one up in a manifest.
"""

from __future__ import annotations

import concurrent.futures as cf
import datetime as _dt
import hashlib
import json
import logging
import os
import time
from dataclasses import asdict
from pathlib import Path

from dcpose_trt._atomic import atomic_write_bytes, atomic_write_text
from dcpose_trt.errors import PluginError
from dcpose_trt.plugins.deform_conv import PLUGIN_ID, SCALAR_ARGS, TACTICS
from dcpose_trt.plugins.deform_conv.aot import (
    DTYPES,
    KERNEL_NAME,
    MANIFEST_FORMAT,
    CompiledKernel,
    CompileJob,
    _cache_load,
    _compile_job,
    _interpreting,
    _pool,
    _triton_version,
    kernel_source_hash,
    parse_archs,
    parse_config,
    parse_dtypes,
)
from dcpose_trt.plugins.deform_conv.ptx import INPUT_POINTERS, LAUNCH_PARAM_TYPES, OUTPUT_POINTERS

log = logging.getLogger(__name__)

DEFAULT_ARCHS = (72, 75, 80, 86, 87, 89, 90, 100, 120)
GRID_FORMULA = {
    "x": "cdiv(H_out * W_out, BLOCK_P)",
    "y": "B * (C_in / CIN_G) * cdiv(COUT_G, BLOCK_CO)",
    "z": "1",
}
BLOCK_FORMULA = {"x": "num_warps * 32", "y": "1", "z": "1"}


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
