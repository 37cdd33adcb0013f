"""The TensorRT tier of :mod:`benchmarks.gpu_check`: export, build, load, compare and time plans.

One step per model x DCN form (``trt_<model>_<form>``). Each exports the model with the product's
exporter, makes the FP16 and INT8 ONNX (``quantize``; INT8 calibrated on a small synthetic dataset), builds
an FP32, FP16 and INT8 plan (person profile 1/8/32), opens each with the project's runtime
(:func:`dcpose_trt.runtime.backends.opener.open_backend`, CUDA graphs on), compares its heatmaps with torch on
CUDA (FP32) and times it at 1/8/32 persons; w48 times stand beside the CUDA tier's torch baseline
(``torch_w48_latency``). Models and plans live in the scratch folder, never in ``--out``.

Nothing of this tier has run on a GPU yet (TensorRT cannot be installed on the machines this project has
used): its tolerances are first guesses, marked so in ``docs/tensorrt_support.md``.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from benchmarks.gpu_check.core import Context, Step

PERSONS = (1, 8, 32)
MODELS = {"tiny": "tiny-128x96", "w48": "w48-384x288"}
FORMS = ("plugin", "deformconv", "gridsample")
# Heatmap max |err| / peak vs torch FP32 (unverified on a GPU: first guesses).
TOL = {"fp32": 1e-2, "fp16": 5e-2, "int8": 0.25}


def _calib(ctx: Context):
    from dcpose_trt.data.synth import SynthConfig, generate

    root = ctx.work / "calib"
    if not (root / "annotations").is_dir():
        generate(SynthConfig(out=root, videos=2, frames=8, seed=11, split_ratio=1.0, workers=1))
    return root


def _model(preset: str):
    import torch

    from dcpose_trt.model import build_dcpose, load_model

    if preset == MODELS["tiny"]:
        return load_model()  # the bundled, trained tiny model
    torch.manual_seed(0)
    return build_dcpose(preset)


def _onnx_files(ctx: Context, model, key: str, form: str) -> dict[str, Any]:
    """{precision: ONNX path, or the exception that stopped it}."""
    from dcpose_trt.export import ExportConfig, QuantizeConfig, export_onnx, quantize_onnx

    fp32 = export_onnx(model, ctx.work / f"{key}.{form}.onnx", ExportConfig(deform=form, check=False))
    files: dict[str, Any] = {"fp32": fp32}
    for precision, cfg in (("fp16", QuantizeConfig(precision="fp16")),
                           ("int8", QuantizeConfig(precision="int8", calib=_calib(ctx), calib_samples=64,
                                                   calib_split="train"))):
        try:
            files[precision] = quantize_onnx(fp32, ctx.work / f"{key}.{form}.{precision}.onnx", cfg)
        except Exception as exc:  # noqa: BLE001, PERF203 - reported per precision; the others still run
            files[precision] = exc
    return files


def _time_infer(backend, frames: np.ndarray, margin: np.ndarray, reps: int) -> float:
    for _ in range(3):
        backend.infer(frames, margin)
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        backend.infer(frames, margin)
        times.append((time.perf_counter() - t0) * 1e3)
    return float(np.median(times))


def _plan_row(ctx: Context, onnx_path, plan_path, ref_model, precision: str, key: str) -> dict[str, Any]:
    import torch

    from dcpose_trt.engine import BuildConfig, build_engine
    from dcpose_trt.runtime.backends.opener import open_backend

    t0 = time.perf_counter()
    build_engine(onnx_path, plan_path, BuildConfig(profiles=((1, 8, 32),), progress=False))
    row: dict[str, Any] = {"precision": precision, "build_s": round(time.perf_counter() - t0, 1), "persons": {}}
    h, w = ref_model.preset.image_size
    g = torch.Generator().manual_seed(0)
    with open_backend(str(plan_path), "tensorrt") as backend:
        for n in PERSONS:
            frames = (torch.rand(n, 9, h, w, generator=g) * 4 - 2).numpy()
            margin = np.full((n, 2), 0.25, np.float32)
            got = backend.infer(frames, margin)
            with torch.inference_mode():
                ref = ref_model(torch.from_numpy(frames).cuda(), torch.from_numpy(margin).cuda()).float().cpu().numpy()
            rel = float(np.abs(got - ref).max() / max(float(np.abs(ref).max()), 1e-12))
            ms = _time_infer(backend, frames, margin, 5 if ctx.quick else 20)
            base = ctx.shared.get("torch_w48_ms", {}).get(("fp16" if precision != "fp32" else "fp32", n))
            row["persons"][n] = {"rel_err": rel, "median_ms": ms,
                                 **({"torch_cuda_ms": base} if key == "w48" and base else {})}
            ctx.log(f"{key} {precision} persons={n}: rel err {rel:.2e}, {ms:.2f} ms"
                    + (f" (torch-cuda {base:.2f} ms)" if key == "w48" and base else ""))
    row["ok"] = all(p["rel_err"] < TOL[precision] for p in row["persons"].values())
    return row


def _step(key: str, form: str):
    def run(ctx: Context) -> dict[str, Any]:
        model = _model(MODELS[key])
        files = _onnx_files(ctx, model, key, form)
        ref_model = model.cuda().eval()
        rows = []
        for precision in ("fp32", "fp16", "int8"):
            onnx_path = files[precision]
            if isinstance(onnx_path, Exception):
                rows.append({"precision": precision, "ok": False, "error": f"quantize: {onnx_path}"})
                continue
            try:
                rows.append(_plan_row(ctx, onnx_path, ctx.work / f"{key}.{form}.{precision}.plan", ref_model,
                                      precision, key))
            except Exception as exc:  # noqa: BLE001, PERF203 - one precision failing must not hide the others
                rows.append({"precision": precision, "ok": False, "error": f"{type(exc).__name__}: {exc}"})
        summary = "; ".join(
            f"{r['precision']} " + (f"err {max(p['rel_err'] for p in r['persons'].values()):.1e}, "
                                    f"{r['persons'][8]['median_ms']:.2f} ms@8" if "persons" in r else "FAILED")
            for r in rows)
        return {"ok": all(r["ok"] for r in rows), "tolerance": TOL, "rows": rows, "summary": summary}

    run.__doc__ = f"{key} ({MODELS[key]}) in the {form} form: FP32/FP16/INT8 plans vs torch-CUDA, timed"
    return Step(f"trt_{key}_{form}", "tensorrt", run, run.__doc__)


STEPS = tuple(_step(key, form) for key in MODELS for form in FORMS)
