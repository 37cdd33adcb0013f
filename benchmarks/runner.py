"""The benchmark runner: every backend × precision × mode × person count, one run, one machine description.

``run_benchmark(BenchConfig(...))`` exports and quantizes what the requested combinations need into
``<out>/cache`` (:mod:`benchmarks.backends`), then for each combination drives the real runtime
(:class:`~dcpose_trt.runtime.PoseEstimator`) on real frames and times every stage of every streamed frame
(:mod:`benchmarks.timing`: read, crop, infer, align, decode, end to end).

The PyTorch eager FP32 exact-mode baseline is always measured in the same run (added when not asked
for), and every row carries its speed-up over it at the same person count. Combinations a machine or
backend cannot run (TensorRT without TensorRT or a GPU, torch INT8, INT8 of a split export, ...) become
``skipped`` rows with the reason. Outputs in ``<out>`` (:mod:`benchmarks.report`): ``results.json``,
``results.csv``, ``latency.png``, ``machine.json`` (:mod:`benchmarks.machine`) and ``README.md``.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
import traceback
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from benchmarks import config
from benchmarks.backends import Artifacts, Skip, open_backend
from benchmarks.config import DEFORM_FOR, SAMPLE_CLIP, STAGES, BenchConfig
from benchmarks.flops import count_flops
from benchmarks.machine import default_out, gpu_peak, loadavg, machine_info
from benchmarks.report import CSV_COLUMNS, BenchResult, update_results_index, write_outputs
from benchmarks.timing import FrameStream, percentile, time_pipeline
from dcpose_trt.errors import DcposeTrtError, InputError

__all__ = ["BenchConfig", "BenchResult", "run_benchmark"]

log = logging.getLogger(__name__)


def run_benchmark(cfg: BenchConfig) -> BenchResult:
    """Run every combination of ``cfg``; write the outputs (see module docstring) and return the result.

    Raises:
        InputError: no frames to read (bad settings raise when the config is made).
    """
    import torch
    from tqdm import tqdm

    from dcpose_trt.model import load_model
    from dcpose_trt.runtime import bundled_model_path

    t_start = time.perf_counter()
    started = dt.datetime.now().isoformat(timespec="seconds")
    info = machine_info()
    out = Path(cfg.out) if cfg.out is not None else default_out(cfg.preset, info)
    out.mkdir(parents=True, exist_ok=True)
    video = Path(cfg.video) if cfg.video is not None else SAMPLE_CLIP
    if not video.exists():
        raise InputError(f"frames to read not found: {video}; pass --video (a folder of jpgs or a video file)")
    frames = FrameStream(video)

    bundled = bundled_model_path()
    if cfg.model is not None:
        model_desc = str(cfg.model)
    elif bundled is not None and cfg.preset == "tiny-128x96":
        model_desc = f"bundled {bundled.name}"
    else:
        model_desc = f"random init of {cfg.preset} (timings do not depend on weights)"  # load_model warns
    model = load_model(cfg.model, cfg.preset).eval()
    device = cfg.device if cfg.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
    flops = count_flops(cfg.preset, model)
    art = Artifacts(model, cfg.preset, out / "cache", cfg)
    result = BenchResult(out, _config_json(cfg, video), info, flops, model_desc, started=started)

    combos = _combos(cfg)
    bar = tqdm(total=len(combos) * len(cfg.persons), desc=f"bench {cfg.preset}", unit="cfg",
               disable=None if cfg.progress else True, dynamic_ncols=True)  # None: off when not a tty
    for backend_name, precision, mode, is_base in combos:
        bar.set_postfix_str(f"{backend_name} {precision} {mode}")
        row = {"cfg": cfg, "backend": backend_name, "precision": precision, "mode": mode, "baseline": is_base}
        try:
            backend = open_backend(backend_name, precision, mode, art, cfg, device, info["gpu"] is not None)
        except Exception as exc:  # noqa: BLE001 - a bug in one combination's preparation must not lose the others
            result.rows += _not_measured(exc, cfg.persons, "preparing the backend", **row)
            bar.update(len(cfg.persons))
            continue
        on_gpu = backend_name.startswith("tensorrt") or (backend_name == "torch" and device == "cuda")
        row["device"] = "cuda" if on_gpu else "cpu"
        with backend:  # releases sessions and device buffers before the next combination opens its own
            for n in cfg.persons:
                try:
                    t = time_pipeline(backend, mode, n, frames, cfg.iters, cfg.warmup)
                except Exception as exc:  # noqa: BLE001 - one broken combination must not lose the others
                    result.rows += _not_measured(exc, (n,), f"persons={n}", **row)
                else:
                    peak = gpu_peak((info.get("gpu") or {}).get("name"), precision) if on_gpu else None
                    result.rows.append(_measured(t, n, flops[mode], peak, **row))
                bar.update(1)
        del backend
    bar.close()
    _speedups(result.rows)
    result.machine["loadavg_end"] = loadavg()
    result.seconds = time.perf_counter() - t_start
    write_outputs(result)
    if cfg.update_index:
        update_results_index(config.RESULTS)
    return result


def _row(cfg: BenchConfig, backend: str, precision: str, mode: str, persons: int, **kw: Any) -> dict[str, Any]:
    row: dict[str, Any] = dict.fromkeys(CSV_COLUMNS)
    row.update(preset=cfg.preset, backend=backend, precision=precision, mode=mode, persons=persons,
               deform=DEFORM_FOR[backend], iters=cfg.iters, warmup=cfg.warmup, baseline=False, reason="")
    row.update(kw)
    return row


def _not_measured(exc: Exception, persons: Sequence[int], what: str, **row: Any) -> list[dict[str, Any]]:
    """One row per person count that could not be measured: ``skipped`` with the reason, or ``error``.

    ``skipped``: :class:`Skip` or a :class:`~dcpose_trt.errors.DcposeTrtError` (this machine or backend
    cannot run it); anything else is a bug, logged with its traceback (call this inside the ``except``).
    """
    if isinstance(exc, Skip | DcposeTrtError):
        status, reason = "skipped", str(exc)
    else:
        log.error("%s %s %s: %s failed:\n%s", row["backend"], row["precision"], row["mode"], what,
                  traceback.format_exc())
        status, reason = "error", f"{type(exc).__name__}: {exc}"
    return [_row(persons=n, status=status, reason=reason, **row) for n in persons]


def _measured(t: dict[str, Any], persons: int, gflop: float, peak: float | None, **row: Any) -> dict[str, Any]:
    """The ``ok`` row of per-frame stage times ``t`` (ms, :func:`~benchmarks.timing.time_pipeline`).

    ``gflop``: per person for this mode; ``peak``: the GPU's dense FLOP/s for the FLOP-floor columns.
    """
    e2e50 = percentile(t["e2e"], 50)
    out = _row(persons=persons, status="ok", **row, **{f"{s}_ms": percentile(t[s], 50) for s in STAGES if s != "e2e"},
               e2e_p50_ms=e2e50, e2e_p90_ms=percentile(t["e2e"], 90), e2e_p99_ms=percentile(t["e2e"], 99),
               infer_p90_ms=percentile(t["infer"], 90), infer_p99_ms=percentile(t["infer"], 99),
               persons_per_s=round(persons * 1e3 / e2e50, 2), gflop_per_person=round(gflop, 3))
    if peak:
        floor = gflop * 1e9 * persons / peak * 1e3
        out.update(floor_ms=round(floor, 4), floor_share=round(floor / out["infer_ms"], 4))
    return out


def _combos(cfg: BenchConfig) -> list[tuple[str, str, str, bool]]:
    """(backend, precision, mode, is_baseline) in run order, the torch FP32 exact baseline first."""
    rest = [(b, p, m, False) for b in cfg.backends for p in cfg.precisions for m in cfg.modes
            if (b, p, m) != ("torch", "fp32", "exact")]
    return [("torch", "fp32", "exact", True), *rest]


def _config_json(cfg: BenchConfig, video: Path) -> dict[str, Any]:
    d = asdict(cfg)
    d.update(video=str(video), out=str(cfg.out) if cfg.out else None)
    return {k: (str(v) if isinstance(v, Path) else list(v) if isinstance(v, tuple) else v) for k, v in d.items()}


def _speedups(rows: list[dict[str, Any]]) -> None:
    """Speed-up of every measured row over the torch FP32 exact baseline at the same person count."""
    base = {r["persons"]: r for r in rows if r["baseline"] and r["status"] == "ok"}
    for r in rows:
        b = base.get(r["persons"])
        if r["status"] == "ok" and b is not None:
            r["speedup"] = round(b["e2e_p50_ms"] / r["e2e_p50_ms"], 3)
            r["speedup_infer"] = round(b["infer_ms"] / r["infer_ms"], 3)
