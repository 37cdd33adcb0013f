"""The GPU acceptance run, in two tiers, from a plain checkout: ``PYTHONPATH=. python3 -m benchmarks.gpu_check
--out DIR`` (``make gpu-check``).

Nothing is installed, fetched or looked up in package metadata of this project, so it runs from a copy of
the tree on a machine without a package registry (the GPU machine we may be lent).

* **CUDA tier** (:mod:`.cuda_tier`; runs wherever torch sees a GPU): the Triton DCN kernel vs
  torchvision's CUDA ``deform_conv2d`` and the gridsample form at DCPose w48's head shapes; the AOT PTX
  launched through cuda-python with exactly TensorRT's argument list, and that launch captured in a CUDA
  graph and replayed; the GPU crop/decode kernels vs the CPU path; the torch-CUDA runtime on the real clip
  and the synthetic video vs the CPU output; the model on CUDA in FP32/FP16/BF16 vs the CPU; DCPose w48
  PyTorch CUDA latency at 1/8/32 persons (the baseline for TensorRT).
* **TensorRT tier** (:mod:`.trt_tier`; runs where ``tensorrt`` imports): export tiny and w48 in the
  plugin, deformconv and gridsample forms, build FP32/FP16/INT8 plans, load each with the project's
  runtime, compare with torch-CUDA, replay with CUDA graphs and time against the CUDA-tier baseline.

Every step is independent (one failing does not stop the others) and ends ``passed``, ``failed`` or
``skipped`` with its reason. Without any GPU every step is ``skipped: no GPU`` and the exit code is 0.
Where a GPU is visible (``nvidia-smi`` or cuda-python) but torch has no CUDA, or TensorRT does not
import, the steps that need them are ``failed`` (that machine is misconfigured) and the exit code is 1.
``--out`` receives at most :data:`MAX_FILES` files of at most :data:`MAX_FILE_BYTES` each:
``summary.json`` (machine and every step's status and numbers), ``report.md`` (the same as a table) and
``gpu_check.log``; exported models and plans go to a temporary folder.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks.gpu_check.core import Context, Env, Skip, Step, one_line

REPO = Path(__file__).resolve().parents[2]
RESULTS = REPO / "benchmarks" / "results"
MAX_FILES = 8
MAX_FILE_BYTES = 16 << 20
TIERS = ("cuda", "tensorrt")


def probe_nvidia_smi() -> tuple[str | None, str]:
    """(GPU name, "") from ``nvidia-smi -L``, else (None, why not)."""
    if shutil.which("nvidia-smi") is None:
        return None, "nvidia-smi not found"
    try:
        proc = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return None, f"nvidia-smi failed ({one_line(exc)})"
    m = re.search(r"GPU 0: (.+?)(?: \(UUID|$)", proc.stdout, re.MULTILINE)
    if proc.returncode != 0 or m is None:
        return None, f"nvidia-smi lists no GPU ({(proc.stderr or proc.stdout).strip()[:200]})"
    return m.group(1).strip(), ""


def probe_cuda_python() -> tuple[str | None, str]:
    """(GPU name, "") from the CUDA driver through cuda-python, else (None, why not)."""
    try:
        from cuda.bindings import driver as cu
    except Exception as exc:  # noqa: BLE001 - not installed or broken: no answer from this probe
        return None, f"cuda-python unavailable ({one_line(exc)})"
    try:
        (err,) = cu.cuInit(0)
    except Exception as exc:  # noqa: BLE001 - cuda-python raises when there is no driver library at all
        return None, f"cuda-python finds no CUDA driver ({one_line(exc)})"
    if err != cu.CUresult.CUDA_SUCCESS:
        return None, f"cuInit: {err.name}"
    err, n = cu.cuDeviceGetCount()
    if err != cu.CUresult.CUDA_SUCCESS or n == 0:
        return None, "the CUDA driver reports no device"
    err, dev = cu.cuDeviceGet(0)
    err, name = cu.cuDeviceGetName(256, dev)
    return (name.split(b"\0", 1)[0].decode(errors="replace") if err == cu.CUresult.CUDA_SUCCESS else "GPU 0"), ""


def probe_torch_cuda() -> tuple[str, dict[str, Any]]:
    """("", facts) when torch runs on CUDA, else (why not, facts)."""
    try:
        import torch
    except Exception as exc:  # noqa: BLE001
        return f"torch does not import ({one_line(exc)})", {}
    facts: dict[str, Any] = {"torch": torch.__version__, "torch_cuda": torch.version.cuda}
    if not torch.cuda.is_available():
        return (f"torch {torch.__version__} sees no CUDA device (built for CUDA "
                f"{torch.version.cuda or 'none: a CPU-only build'})"), facts
    props = torch.cuda.get_device_properties(0)
    facts.update({"gpu": props.name, "compute_capability": f"{props.major}.{props.minor}",
                  "memory_gib": round(props.total_memory / 2**30, 1), "sms": props.multi_processor_count})
    return "", facts


def probe_tensorrt() -> tuple[str, dict[str, Any]]:
    """("", facts) when ``import tensorrt`` works, else (why not, {})."""
    try:
        import tensorrt as trt
    except Exception as exc:  # noqa: BLE001
        return f"tensorrt does not import ({one_line(exc)})", {}
    return "", {"tensorrt": str(trt.__version__)}


def _module_version(name: str) -> str:
    try:
        mod = __import__(name, fromlist=["__version__"])
    except Exception:  # noqa: BLE001
        return "absent"
    return str(getattr(mod, "__version__", "unknown"))


def probe_env() -> Env:
    """This machine, by its own probes (tests give :func:`run_checks` other :class:`Env` values)."""
    smi, smi_why = probe_nvidia_smi()
    cup, cup_why = probe_cuda_python()
    torch_why, facts = probe_torch_cuda()
    trt_why, trt_facts = probe_tensorrt()
    facts.update(trt_facts)
    facts.update({"python": platform.python_version(), "machine": platform.machine(),
                  **{m: _module_version(m) for m in ("triton", "torchvision", "onnx", "onnxruntime")}})
    gpu = f"{smi} (nvidia-smi)" if smi else f"{cup} (cuda-python)" if cup else None
    if gpu is None and not torch_why:
        gpu = f"{facts.get('gpu', 'GPU 0')} (torch)"
    no_gpu = "" if gpu else f"{smi_why}; {cup_why}; {torch_why}"
    return Env(gpu, no_gpu, torch_why, trt_why, facts)


def gate(step: Step, env: Env) -> tuple[str, str] | None:
    """(status, reason) when ``step`` cannot run on ``env``, else None.

    No GPU at all: ``skipped``. A visible GPU that torch cannot use, or (TensorRT tier) a TensorRT that
    does not import: ``failed`` - on a GPU machine that is the defect this check exists to report.
    """
    if env.gpu is None:
        return "skipped", f"no GPU: {env.no_gpu}"
    if env.torch_cuda:
        return "failed", f"a GPU is visible ({env.gpu}) but torch has no CUDA: {env.torch_cuda}"
    if step.tier == "tensorrt" and env.tensorrt:
        return "failed", f"a GPU is visible ({env.gpu}) but TensorRT does not import: {env.tensorrt}"
    return None


def all_steps() -> dict[str, Step]:
    """Every step in run order: the CUDA tier, then the TensorRT tier."""
    from benchmarks.gpu_check import cuda_tier, trt_tier

    return {s.name: s for s in (*cuda_tier.STEPS, *trt_tier.STEPS)}


def parse_steps(text: str) -> tuple[str, ...]:
    """``"a,b"`` -> the steps, in the order given (argparse ``type``: an unknown step is a usage error)."""
    known = all_steps()
    steps = tuple(s for s in text.split(",") if s)
    unknown = [s for s in steps if s not in known]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown step(s) {unknown}; choose from {', '.join(known)}")
    return steps


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower().replace("nvidia", "")).strip("-") or "gpu"


def _clip(text: str) -> str:
    """``text`` cut to :data:`MAX_FILE_BYTES` (the head is kept: it says what ran first)."""
    data = text.encode()
    if len(data) <= MAX_FILE_BYTES:
        return text
    note = b"\n[... cut at 16 MiB ...]\n"
    return (data[: MAX_FILE_BYTES - len(note)] + note).decode(errors="ignore")


def _report(summary: dict[str, Any]) -> str:
    rows = ["| step | tier | status | seconds | result |", "|---|---|---|---|---|"]
    for name, r in summary["steps"].items():
        detail = (r.get("summary") or r.get("reason") or "").replace("|", "/").replace("\n", " ")
        rows.append(f"| {name} | {r['tier']} | {r['status']} | {r.get('seconds', '')} | {detail} |")
    head = [f"# gpu-check {summary['date']}", "", f"GPU: {summary['gpu'] or 'none'}", ""]
    return "\n".join(head + rows) + "\n"


def _write(out: Path, name: str, text: str) -> None:
    tmp = out / f".{name}.tmp"
    tmp.write_text(_clip(text))
    os.replace(tmp, out / name)


def run_checks(out: Path | None, steps: Sequence[str] | None = None, quick: bool = False,
               env: Env | None = None, tiers: Sequence[str] = TIERS) -> tuple[int, dict[str, Any]]:
    """Run ``steps`` (default: every step of ``tiers``) in order; returns (exit code, summary).

    Exit code 0 when no step failed (skipped ones included), else 1. ``out`` None: results go to
    ``benchmarks/results/<date>-<gpu>/`` when there is a GPU, and nowhere without one.
    """
    known = all_steps()
    names = list(steps) if steps else [n for n, s in known.items() if s.tier in tiers]
    env = env or probe_env()
    if out is None and env.gpu is not None:
        out = RESULTS / f"{dt.date.today().isoformat()}-{_slug(env.facts.get('gpu') or env.gpu)}"
    summary: dict[str, Any] = {"schema": "dcpose_trt.gpu_check/1",
                               "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                               "gpu": env.gpu, "no_gpu": env.no_gpu, "torch_cuda": env.torch_cuda or "ok",
                               "tensorrt": env.tensorrt or "ok", "machine": env.facts, "steps": {}}
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
    failed = False
    print(f"gpu-check: GPU {env.gpu or 'none: ' + env.no_gpu}; {len(names)} step(s)", flush=True)
    with tempfile.TemporaryDirectory(prefix="gpu_check_") as tmp:
        ctx = Context(out or Path(tmp), Path(tmp), quick, env)
        for name in names:
            step = known[name]
            ctx.lines.append(f"== {name}")
            t0 = time.perf_counter()
            result: dict[str, Any] = {"tier": step.tier}
            blocked = gate(step, env)
            if blocked is not None:
                result["status"], result["reason"] = blocked
            else:
                try:
                    data = step.run(ctx)
                    result.update(data)
                    result["status"] = "passed" if data.get("ok", True) else "failed"
                except Skip as exc:
                    result.update(status="skipped", reason=str(exc))
                except Exception as exc:  # noqa: BLE001 - one broken step must not hide the others
                    import traceback

                    ctx.lines.append(traceback.format_exc())
                    result.update(status="failed", reason=one_line(exc))
            result["seconds"] = round(time.perf_counter() - t0, 1)
            failed |= result["status"] == "failed"
            summary["steps"][name] = result
            detail = result.get("summary") or result.get("reason", "")
            detail = "no GPU (above)" if env.gpu is None else detail
            print(f"  {name:<22} {result['status']:<8} {detail}", flush=True)
            if out is not None:  # after every step: a killed run keeps what it measured
                _write(out, "summary.json", json.dumps(summary, indent=1, default=str) + "\n")
        if out is not None:
            _write(out, "report.md", _report(summary))
            _write(out, "gpu_check.log", "\n".join(ctx.lines) + "\n")
    print(f"gpu-check: {'results in ' + str(out) if out else 'nothing written (no GPU and no --out)'}")
    return (1 if failed else 0), summary


def gpu_check(out: Path | None = None, quick: bool = False, steps: Sequence[str] | None = None,
              tiers: Sequence[str] = TIERS) -> int:
    """:func:`run_checks` on this machine; returns the exit code."""
    return run_checks(out, steps, quick, tiers=tiers)[0]


def main(argv: Sequence[str] | None = None) -> int:
    """``PYTHONPATH=. python3 -m benchmarks.gpu_check [--out DIR] [--tier cuda|tensorrt] [--steps a,b] [--quick]``."""
    p = argparse.ArgumentParser(prog="python3 -m benchmarks.gpu_check", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, help="results folder (default with a GPU: benchmarks/results/<date>-<gpu>/)")
    p.add_argument("--tier", choices=(*TIERS, "all"), default="all", help="which tier to run (default: both)")
    p.add_argument("--steps", type=parse_steps, help="comma list of steps (default: every step of --tier)")
    p.add_argument("--quick", action="store_true", help="fewer repetitions and shapes (a smoke run)")
    p.add_argument("--list", action="store_true", help="list the steps and exit")
    args = p.parse_args(argv)
    if args.list:
        for s in all_steps().values():
            print(f"{s.name:<22} {s.tier:<9} {s.doc}")
        return 0
    tiers = TIERS if args.tier == "all" else (args.tier,)
    return gpu_check(args.out, args.quick, args.steps, tiers)


__all__ = ["MAX_FILES", "MAX_FILE_BYTES", "Env", "Skip", "Step", "all_steps", "gate", "gpu_check", "main",
           "parse_steps", "probe_env", "run_checks"]
