"""The CUDA tier of :mod:`benchmarks.gpu_check`: everything that needs torch on a GPU and no TensorRT.

Each step returns ``{"ok": bool, "summary": one line, ...numbers}``; the numbers land in ``summary.json``.
Shapes are DCPose w48's head (``B x 17 x 96 x 72``, 3x3, 17 offset groups, dilations 3..15).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from benchmarks.gpu_check.core import Context, Skip, Step

PERSONS = (1, 8, 32)
W48 = "w48-384x288"
# Output vs reference, max |err| / max |ref|: FP32 I/O accumulates in FP32; FP16 I/O rounds each element
# to 2^-11 relative and accumulates in FP32.
TOL = {"fp32": 1e-4, "fp16": 1e-2}


def _cuda():
    import torch

    if not torch.cuda.is_available():  # the gate checked it; a step run by hand gets a clear line
        raise Skip("torch sees no CUDA device")
    return torch


def dcn_kernel(ctx: Context) -> dict[str, Any]:
    """Triton DCN kernel vs torchvision CUDA vs the gridsample form, FP32/FP16, persons 1/8/32: error, time."""
    _cuda()
    from benchmarks.deform_conv import bench_case

    dilations = (3, 15) if ctx.quick else (3, 6, 9, 12, 15)
    warmup, rep = (5, 20) if ctx.quick else (25, 100)
    rows = []
    for dtype in ("fp32", "fp16"):
        for n in PERSONS:
            for d in dilations:
                row = bench_case(n, d, dtype, warmup, rep)
                rows.append(row)
                imp = row["impl"]
                ctx.log(f"dcn {dtype} persons={n} d={d}: " + ", ".join(
                    f"{k} {v['median_ms'] * 1e3:.1f} us err {v['rel_err']:.1e}" for k, v in imp.items()))
    worst = {dt: max(r["impl"]["triton"]["rel_err"] for r in rows if r["dtype"] == dt) for dt in TOL}
    at8 = [r for r in rows if r["persons"] == 8 and r["dtype"] == "fp16"]
    speed = min(r["speedup"]["torchvision"] for r in at8) if at8 else float("nan")
    return {"ok": all(worst[d] < TOL[d] for d in TOL), "tolerance": TOL, "rows": rows,
            "summary": f"triton max rel err fp32 {worst['fp32']:.1e} fp16 {worst['fp16']:.1e}; "
                       f"fp16 at 8 persons >= {speed:.2f}x torchvision"}


def _dcn_inputs(torch, persons: int, dtype, seed: int):
    g = torch.Generator(device="cuda").manual_seed(seed)
    x = torch.randn(persons, 17, 96, 72, device="cuda", generator=g).to(dtype)
    w = (torch.randn(17, 17, 3, 3, device="cuda", generator=g) * 0.1).to(dtype)
    off = (torch.randn(persons, 2 * 17 * 9, 96, 72, device="cuda", generator=g) * 2).to(dtype)
    m = torch.rand(persons, 17 * 9, 96, 72, device="cuda", generator=g).to(dtype)
    b = torch.randn(17, device="cuda", generator=g).to(dtype)
    return x, w, off, b, m


def _aot_module(torch, dtype: str, tactic: int):
    """(cuda-python driver, CUfunction, compiled kernel) of the AOT PTX for this GPU."""
    try:
        from cuda.bindings import driver as cu
    except ImportError as exc:
        raise Skip(f"cuda-python is not installed ({exc})") from None
    from dcpose_trt.plugins.deform_conv.aot import compile_kernel
    from dcpose_trt.plugins.deform_conv.ptx import LAUNCH_PARAM_TYPES, entry_params

    major, minor = torch.cuda.get_device_capability()
    kernel = compile_kernel(10 * major + minor, dtype, "dcpose", tactic=tactic)
    declared = [t for t, _ in entry_params(kernel.ptx)]
    if declared != list(LAUNCH_PARAM_TYPES):
        raise RuntimeError(f"PTX .entry {declared} != TensorRT's launch list {list(LAUNCH_PARAM_TYPES)}")
    torch.cuda.synchronize()  # torch made the primary context current; the module loads into it
    module = _check(cu, cu.cuModuleLoadData(kernel.ptx.encode() + b"\0"))
    fn = _check(cu, cu.cuModuleGetFunction(module, kernel.kernel_name.encode()))
    return cu, module, fn, kernel


def _check(cu, result):
    err = result[0] if isinstance(result, tuple) else result
    if err != cu.CUresult.CUDA_SUCCESS:
        raise RuntimeError(f"CUDA driver error {err}")
    return result[1] if isinstance(result, tuple) and len(result) == 2 else None


def _launch(torch, cu, fn, kernel, tensors, y, d: int, tactic: int) -> None:
    """One cuLaunchKernel with exactly TensorRT's AOT arguments: inputs, int32 extra args, outputs."""
    import ctypes

    from dcpose_trt.plugins.deform_conv import launch_geometry

    x, w = tensors[0], tensors[1]
    geo = launch_geometry(tuple(x.shape), tuple(w.shape), 17, 1, d, d, tactic=tactic)
    values = [t.data_ptr() for t in tensors] + list(geo.scalars) + [y.data_ptr()]
    types = [ctypes.c_void_p] * 5 + [ctypes.c_int] * len(geo.scalars) + [ctypes.c_void_p]
    stream = cu.CUstream(torch.cuda.current_stream().cuda_stream)
    _check(cu, cu.cuLaunchKernel(fn, *geo.grid, *geo.block, kernel.shared_mem, stream,
                                 (tuple(values), tuple(types)), 0))


def _ref(tensors, d: int):
    from dcpose_trt.model.deform import deform_conv2d_torchvision

    x, w, off, b, m = (t.float() for t in tensors)
    return deform_conv2d_torchvision(x, off, w, b, padding=d, dilation=d, mask=m)


def _rel(y, ref) -> float:
    return float((y.float() - ref).abs().max() / ref.abs().max().clamp_min(1e-12))


def aot_launch(ctx: Context) -> dict[str, Any]:
    """The AOT PTX through cuda-python with TensorRT's exact argument list, vs torchvision."""
    torch = _cuda()
    from dcpose_trt.plugins.deform_conv import TACTICS

    rows, d = [], 9
    for dtype in ("fp32", "fp16"):
        tdtype = torch.float16 if dtype == "fp16" else torch.float32
        for tactic in sorted(TACTICS):
            cu, module, fn, kernel = _aot_module(torch, dtype, tactic)
            for persons in PERSONS:
                tensors = _dcn_inputs(torch, persons, tdtype, persons)
                ref = _ref(tensors, d)
                y = torch.full(ref.shape, float("nan"), device="cuda", dtype=tdtype)
                _launch(torch, cu, fn, kernel, tensors, y, d, tactic)
                torch.cuda.synchronize()
                rows.append({"dtype": dtype, "tactic": tactic, "persons": persons, "rel_err": _rel(y, ref)})
            _check(cu, cu.cuModuleUnload(module))
    ok = all(r["rel_err"] < TOL[r["dtype"]] for r in rows)
    return {"ok": ok, "rows": rows, "summary": f"{len(rows)} launches, max rel err "
                                              f"{max(r['rel_err'] for r in rows):.2e}"}


def aot_graph(ctx: Context) -> dict[str, Any]:
    """The same launch captured in a CUDA graph, replayed on new inputs (what TensorRT's graphs do)."""
    torch = _cuda()
    rows, d, tactic = [], 9, 1
    for dtype in ("fp32", "fp16"):
        tdtype = torch.float16 if dtype == "fp16" else torch.float32
        cu, module, fn, kernel = _aot_module(torch, dtype, tactic)
        for persons in PERSONS:
            static = _dcn_inputs(torch, persons, tdtype, 1000 + persons)
            y = torch.empty(persons, 17, 96, 72, device="cuda", dtype=tdtype)
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):  # warm-up outside capture, as torch.cuda.graph requires
                _launch(torch, cu, fn, kernel, static, y, d, tactic)
            torch.cuda.current_stream().wait_stream(side)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):  # a driver launch on the capturing stream becomes a graph node
                _launch(torch, cu, fn, kernel, static, y, d, tactic)
            errs = []
            for rep in range(3):
                fresh = _dcn_inputs(torch, persons, tdtype, 2000 + 10 * persons + rep)
                for s, f in zip(static, fresh, strict=True):
                    s.copy_(f)
                y.fill_(float("nan"))
                graph.replay()
                torch.cuda.synchronize()
                errs.append(_rel(y, _ref(fresh, d)))
            rows.append({"dtype": dtype, "persons": persons, "replays": len(errs), "rel_err": max(errs)})
            del graph
        _check(cu, cu.cuModuleUnload(module))
    ok = all(r["rel_err"] < TOL[r["dtype"]] for r in rows)
    return {"ok": ok, "rows": rows, "summary": f"{sum(r['replays'] for r in rows)} replays, max rel err "
                                              f"{max(r['rel_err'] for r in rows):.2e}"}


def prepost(ctx: Context) -> dict[str, Any]:
    """GPU crop/normalise and heatmap decode kernels vs the CPU path (``data.transforms``), w48 sizes."""
    torch = _cuda()
    from dcpose_trt.data.transforms import decode_heatmaps, make_inputs
    from dcpose_trt.runtime.tensorrt import gpu_kernels as gk

    mean, std = np.array(gk.IMAGENET_MEAN, np.float32), np.array(gk.IMAGENET_STD, np.float32)
    rng = np.random.default_rng(0)
    h, w, hw = 720, 1280, (384, 288)
    frames = [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for _ in range(3)]
    rows = []
    for n in PERSONS:
        boxes = np.stack([rng.uniform(-100, w - 50, n), rng.uniform(-100, h - 50, n), rng.uniform(40, 500, n),
                          rng.uniform(80, 700, n), np.ones(n)], axis=1).astype(np.float32)
        t0 = time.perf_counter()
        ref, centers, scales = make_inputs(frames, boxes, hw, mean, std)
        cpu_ms = (time.perf_counter() - t0) * 1e3
        inv, _, _ = gk.crop_affines(boxes, hw)
        dev_frames = torch.from_numpy(np.stack(frames)).cuda()
        args = (dev_frames, torch.from_numpy(inv).cuda(),
                torch.from_numpy(np.tile(np.arange(3, dtype=np.int32), n)).cuda(), hw, mean, std)
        gk.gpu_crop(*args)
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        got = gk.gpu_crop(*args)
        torch.cuda.synchronize()
        gpu_ms = (time.perf_counter() - t0) * 1e3
        levels = np.tile(std, 3)[None, :, None, None] * 255.0
        crop_err = float(np.abs((got.cpu().numpy() - ref) * levels).max())
        hm = rng.random((n, 17, hw[0] // 4, hw[1] // 4), dtype=np.float32)
        ref_xy, ref_v = decode_heatmaps(hm, centers, scales)
        xy, v = gk.gpu_decode(torch.from_numpy(hm).cuda(),
                              torch.from_numpy(gk.decode_affines(centers, scales, hm.shape[2:])).cuda())
        dec_err = float(np.abs(xy.cpu().numpy() - ref_xy).max())
        same_v = bool(np.array_equal(v.cpu().numpy(), ref_v))
        rows.append({"persons": n, "crop_max_levels": crop_err, "decode_max_px": dec_err, "scores_equal": same_v,
                     "crop_cpu_ms": round(cpu_ms, 3), "crop_gpu_ms": round(gpu_ms, 3)})
        ctx.log(f"prepost persons={n}: crop err {crop_err:.2f} levels, decode err {dec_err:.1e} px, "
                f"crop {cpu_ms:.1f} ms CPU / {gpu_ms:.2f} ms GPU")
    ok = all(r["crop_max_levels"] <= 1.0 + 1e-3 and r["decode_max_px"] <= 1e-3 and r["scores_equal"] for r in rows)
    return {"ok": ok, "rows": rows, "summary": f"crop <= {max(r['crop_max_levels'] for r in rows):.2f} levels, "
                                              f"decode <= {max(r['decode_max_px'] for r in rows):.1e} px"}


def _videos(ctx: Context) -> dict[str, tuple[Any, Any]]:
    """{name: (frame folder, boxes file)}: the synthetic video (generated in the scratch folder) and the
    real clip where the shared data is present."""
    import json

    from dcpose_trt.data.posetrack import read_boxes_file
    from dcpose_trt.data.synth import SynthConfig, generate
    from dcpose_trt.data.video import boxes_of_video
    from dcpose_trt.demo import CLIP_IN_DATA, default_data_root

    root = ctx.work / "synth"
    if not (root / "annotations").is_dir():
        generate(SynthConfig(out=root, videos=1, frames=12 if ctx.quick else 30, seed=2026, split_ratio=0.0,
                             workers=1))
    video = next((root / "images" / "val").iterdir())
    boxes = root / "synth_boxes.json"
    boxes.write_text(json.dumps(boxes_of_video(read_boxes_file(root / "detections" / "val.json", min_score=0.2),
                                               video.name)))
    videos = {"synthetic": (video, boxes)}
    clip = default_data_root() / CLIP_IN_DATA
    if (clip / "boxes.json").is_file():
        videos["real_clip"] = (clip, clip / "boxes.json")
    else:
        ctx.log(f"real clip not at {clip} (set DCPOSE_TRT_SHARED_DATA): synthetic video only")
    return videos


def _poses(backend, video, boxes_file) -> list[np.ndarray]:
    from dcpose_trt.data.video import BoxesFromFile, FrameSource
    from dcpose_trt.runtime.estimator import PoseEstimator
    from dcpose_trt.runtime.stream import stream_poses

    source = FrameSource(str(video))
    boxes = BoxesFromFile(str(boxes_file), source.names())
    # The one stream loop over the indexed source: a skipped (unreadable) frame keeps its number, so the
    # boxes of the frames after it stay theirs.
    return [np.stack([p.keypoints for p in r.persons]) if r.persons else np.zeros((0, 17, 3), np.float32)
            for r in stream_poses(PoseEstimator(backend=backend), source.indexed(), boxes)]


def torch_cuda_runtime(ctx: Context) -> dict[str, Any]:
    """The torch-CUDA runtime (stream, pinned buffers, CUDA graphs) on the real clip and the synthetic
    video vs the torch CPU backend: keypoints in pixels."""
    _cuda()
    from dcpose_trt.model import load_model
    from dcpose_trt.runtime.backends.torch_backend import TorchBackend
    from dcpose_trt.runtime.tensorrt.torch_cuda import TorchCudaBackend

    rows = []
    for name, (video, boxes) in _videos(ctx).items():
        cpu = _poses(TorchBackend(load_model()), video, boxes)
        with TorchCudaBackend(load_model(), buckets=PERSONS) as backend:
            t0 = time.perf_counter()
            gpu = _poses(backend, video, boxes)
            seconds = time.perf_counter() - t0
        persons = sum(len(p) for p in cpu)
        same = len(cpu) == len(gpu) and all(a.shape == b.shape for a, b in zip(cpu, gpu, strict=True))
        diffs = (np.concatenate([np.linalg.norm(a[..., :2] - b[..., :2], axis=-1).ravel()
                                 for a, b in zip(cpu, gpu, strict=True) if len(a)]) if same and persons
                 else np.array([np.inf]))
        rows.append({"video": name, "frames": len(cpu), "persons": persons, "same_layout": same,
                     "p50_px": float(np.median(diffs)), "p95_px": float(np.percentile(diffs, 95)),
                     "max_px": float(diffs.max()), "seconds_gpu": round(seconds, 2)})
        ctx.log(f"torch-cuda runtime {name}: {len(cpu)} frames, {persons} persons, keypoints vs CPU: "
                f"p50 {rows[-1]['p50_px']:.3f} px, p95 {rows[-1]['p95_px']:.3f} px, max {rows[-1]['max_px']:.2f} px")
    # The GPU crop differs from OpenCV's by at most one intensity level, which can move a heatmap argmax by one
    # cell on a flat peak (4 px of a 128x96 crop, more in a large box): most keypoints must agree closely,
    # a few may jump (first guesses, unverified on a GPU).
    ok = all(r["persons"] > 0 and r["same_layout"] and r["p95_px"] < 1.0 for r in rows)
    return {"ok": ok, "rows": rows,
            "summary": "; ".join(f"{r['video']} p95 {r['p95_px']:.3f} px, max {r['max_px']:.2f} px" for r in rows)}


def torch_precisions(ctx: Context) -> dict[str, Any]:
    """The bundled model on CUDA in FP32 / FP16 / BF16 (autocast) vs the CPU in FP32 (random frames)."""
    torch = _cuda()
    from dcpose_trt.data.transforms import decode_heatmaps
    from dcpose_trt.model import load_model

    model = load_model()
    h, w = model.preset.image_size
    g = torch.Generator().manual_seed(0)
    frames = torch.rand(8, 9, h, w, generator=g) * 4 - 2
    margin = torch.full((8, 2), 0.25)
    with torch.inference_mode():
        ref = model(frames, margin).numpy()
        gpu_model = model.cuda()
        rows = []
        for name, dtype in (("fp32", None), ("fp16", torch.float16), ("bf16", torch.bfloat16)):
            with torch.autocast("cuda", dtype=dtype or torch.float32, enabled=dtype is not None):
                out = gpu_model(frames.cuda(), margin.cuda()).float().cpu().numpy()
            centers, scales = np.zeros((8, 2), np.float32) + 100, np.ones((8, 2), np.float32)
            a, _ = decode_heatmaps(ref, centers, scales)
            b, _ = decode_heatmaps(out, centers, scales)
            rows.append({"precision": name, "heatmap_max_abs": float(np.abs(out - ref).max()),
                         "heatmap_peak": float(np.abs(ref).max()), "keypoint_max_px": float(np.abs(a - b).max())})
    tol = {"fp32": 1e-3, "fp16": 5e-2, "bf16": 2e-1}  # of the heatmap peak
    ok = all(r["heatmap_max_abs"] <= tol[r["precision"]] * r["heatmap_peak"] for r in rows)
    return {"ok": ok, "tolerance_of_peak": tol, "rows": rows,
            "summary": ", ".join(f"{r['precision']} {r['heatmap_max_abs'] / r['heatmap_peak']:.1e}" for r in rows)}


def torch_w48_latency(ctx: Context) -> dict[str, Any]:
    """DCPose w48 (random weights) PyTorch CUDA latency at 1/8/32 persons, FP32 and FP16: the baseline."""
    torch = _cuda()
    from dcpose_trt.model import build_dcpose

    model = build_dcpose(W48).cuda().eval()
    h, w = model.preset.image_size
    reps = 5 if ctx.quick else 20
    rows = []
    with torch.inference_mode():
        for name, dtype in (("fp32", None), ("fp16", torch.float16)):
            for n in PERSONS:
                x, m = torch.randn(n, 9, h, w, device="cuda"), torch.full((n, 2), 0.25, device="cuda")
                times = []
                for i in range(reps + 3):
                    torch.cuda.synchronize()
                    t0 = time.perf_counter()
                    with torch.autocast("cuda", dtype=dtype or torch.float32, enabled=dtype is not None):
                        model(x, m)
                    torch.cuda.synchronize()
                    if i >= 3:
                        times.append((time.perf_counter() - t0) * 1e3)
                rows.append({"precision": name, "persons": n, "median_ms": float(np.median(times)),
                             "p90_ms": float(np.percentile(times, 90))})
                ctx.log(f"w48 torch-cuda {name} persons={n}: {rows[-1]['median_ms']:.2f} ms")
    ctx.shared["torch_w48_ms"] = {(r["precision"], r["persons"]): r["median_ms"] for r in rows}
    return {"ok": True, "rows": rows,
            "summary": ", ".join(f"{r['precision']}x{r['persons']} {r['median_ms']:.1f} ms" for r in rows)}


STEPS = (
    Step("dcn_kernel", "cuda", dcn_kernel, dcn_kernel.__doc__.splitlines()[0]),
    Step("aot_launch", "cuda", aot_launch, aot_launch.__doc__.splitlines()[0]),
    Step("aot_graph", "cuda", aot_graph, aot_graph.__doc__.splitlines()[0]),
    Step("prepost", "cuda", prepost, prepost.__doc__.splitlines()[0]),
    Step("torch_cuda_runtime", "cuda", torch_cuda_runtime, torch_cuda_runtime.__doc__.splitlines()[0]),
    Step("torch_precisions", "cuda", torch_precisions, torch_precisions.__doc__.splitlines()[0]),
    Step("torch_w48_latency", "cuda", torch_w48_latency, torch_w48_latency.__doc__.splitlines()[0]),
)
