"""The benchmark runner: every backend × precision × mode × person count, one run, one machine description.

``run_benchmark(BenchConfig(...))`` exports and quantizes what the requested combinations need into
``<out>/cache``, then for each combination drives the real runtime (:class:`~dcpose_trt.runtime.PoseEstimator`)
on real frames and times, per streamed frame:

* ``read``: decoding the next frame (jpg or video, :class:`~dcpose_trt.runtime.io.FrameSource`);
* ``crop``: from the ``process`` call to the first backend call (box cleaning, tracking, affine crops);
* ``infer``: inside the backend (``infer``, or ``backbone`` + ``head`` in cached mode);
* ``align``: between backend calls (cached mode: warping the neighbours' heatmaps into the key crop);
* ``decode``: from the last backend call to the end of ``process`` (heatmaps → keypoints);
* ``e2e``: read + ``process``, i.e. the latency a streaming user sees per frame (look-ahead excluded).

The stages partition ``e2e`` exactly, because they are cut from one call by a timing wrapper around the
backend (it is just another :class:`~dcpose_trt.runtime.backends.Backend`), not re-run separately.

The PyTorch eager FP32 exact-mode baseline is always measured in the same run (added when not asked
for), and every row carries its speed-up over it at the same person count. Combinations a machine or
backend cannot run (TensorRT without TensorRT or a GPU, torch INT8, INT8 of a split export, ...) become
``skipped`` rows with the reason. Outputs in ``<out>``: ``results.json``, ``results.csv``,
``latency.png``, ``machine.json`` and ``README.md``.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import logging
import math
import os
import platform
import re
import socket
import time
import traceback
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from dcpose_trt._atomic import atomic_write_text
from dcpose_trt.errors import DcposeTrtError, InputError

log = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"  # committed runs; its README.md index changes only on request
# Default output root: outside the committed results (outputs/ is git-ignored), so a plain `dcpose-trt bench`
# never rewrites a committed file.
DEFAULT_OUT_ROOT = REPO / "outputs" / "bench"
SHARED_DATA = Path(os.environ.get("DCPOSE_TRT_SHARED_DATA", REPO.parent / "shared" / "data"))
SAMPLE_DATASET = SHARED_DATA / "posetrack18_sample"
SAMPLE_CLIP = SAMPLE_DATASET / "videos" / "000001_mpiinew_test"
SAMPLE_DETECTIONS = SAMPLE_DATASET / "annotations" / "test_posetrack18_human_detections.json"

BACKENDS = ("torch", "onnxruntime", "tensorrt", "tensorrt-rtx", "openvino")
PRECISIONS = ("fp32", "fp16", "bf16", "int8")
MODES = ("exact", "cached")
STAGES = ("read", "crop", "infer", "align", "decode", "e2e")
# The DCN form each backend gets (architecture.md: TensorRT-RTX has no built-in DeformConv plugin).
# OpenVINO converts the torch module (torchvision's deform_conv2d → its native DeformableConvolution).
DEFORM_FOR = {"torch": "torchvision", "onnxruntime": "deformconv", "tensorrt": "deformconv",
              "tensorrt-rtx": "gridsample", "openvino": "torchvision"}
# /proc/cpuinfo flag → name, for the CPU extensions that decide which precisions run fast on the CPU.
CPU_EXTENSIONS = (("avx2", "AVX2"), ("fma", "FMA"), ("avx512f", "AVX-512F"), ("avx512bw", "AVX-512BW"),
                  ("avx512_vnni", "AVX-512 VNNI"), ("avx_vnni", "AVX-VNNI"), ("avx512_bf16", "AVX-512 BF16"),
                  ("avx512_fp16", "AVX-512 FP16"), ("amx_tile", "AMX"), ("amx_int8", "AMX-INT8"),
                  ("amx_bf16", "AMX-BF16"), ("amx_fp16", "AMX-FP16"))

# Dense tensor peaks in FLOP/s (performance_anchors.md §3.3): (FP16, INT8). The §3 floor of an FP32 row is
# taken at the FP16 peak (TensorRT runs FP32 networks on TF32/FP16-class tensor cores at best).
GPU_PEAKS: tuple[tuple[str, tuple[float, float]], ...] = (
    ("H100 PCIe", (756e12, 1513e12)),
    ("H100", (989.4e12, 1979e12)),
    ("H200", (989.4e12, 1979e12)),
    ("Orin", (42.6e12, 85e12)),
)

CSV_COLUMNS = (
    "preset", "backend", "precision", "mode", "persons", "status", "reason", "baseline", "deform", "device",
    "iters", "warmup", "read_ms", "crop_ms", "infer_ms", "align_ms", "decode_ms", "e2e_p50_ms", "e2e_p90_ms",
    "e2e_p99_ms", "infer_p90_ms", "infer_p99_ms", "persons_per_s", "speedup", "speedup_infer",
    "gflop_per_person", "floor_ms", "floor_share",
)


# %% Configuration -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BenchConfig:
    """One benchmark run (one preset). Defaults live here only.

    Attributes:
        preset: model preset. Defaults to ``"tiny-128x96"``.
        model: DCPose checkpoint; None uses the bundled model for its preset, else the preset's random
            initialisation with a warning (timings do not depend on weights).
        backends: any of ``torch``, ``onnxruntime``, ``tensorrt``, ``tensorrt-rtx``, ``openvino``.
        precisions: any of ``fp32``, ``fp16``, ``bf16``, ``int8`` (bf16: torch autocast and OpenVINO only).
        persons: person counts per frame, e.g. ``(1, 4, 8, 16)``; each is one batch.
        modes: ``exact`` (backbone on t-1, t, t+1 crops of the key box) and/or ``cached`` (backbone once
            per person-frame, split export).
        iters: timed frames per combination (median = p50). Defaults to 20.
        warmup: untimed frames before them, after the 2 frames that fill the look-ahead window.
        out: output folder. Defaults to ``outputs/bench/<date>-<machine>-<preset>`` (git-ignored).
        video: real frames to read: a folder of images or a video file. Defaults to the shared sample clip.
        calib, calib_boxes: INT8 calibration source (see :class:`dcpose_trt.export.QuantizeConfig`).
            Defaults to the shared ``posetrack18_sample`` dataset with its detector boxes.
        calib_samples: person crops to calibrate on; None keeps the quantizer's default (256).
        device: torch device for the torch backend: ``auto`` (CUDA when available), ``cpu`` or ``cuda``.
        threads: ONNX Runtime intra-op threads (None: the cores this process may use).
        progress: tqdm bar over the combinations (off when stderr is not a terminal).
        update_index: rewrite the committed index ``benchmarks/results/README.md`` after the run; needs
            ``out`` directly under ``benchmarks/results``. Off by default: the index changes only on purpose.
    """

    preset: str = "tiny-128x96"
    model: Path | None = None
    backends: tuple[str, ...] = ("torch", "onnxruntime", "tensorrt")
    precisions: tuple[str, ...] = ("fp32", "fp16", "int8")
    persons: tuple[int, ...] = (1, 4, 8, 16)
    modes: tuple[str, ...] = ("exact", "cached")
    iters: int = 20
    warmup: int = 3
    out: Path | None = None
    video: Path | None = None
    calib: Path | None = None
    calib_boxes: Path | None = None
    calib_samples: int | None = None
    device: str = "auto"
    threads: int | None = None
    progress: bool = True
    update_index: bool = False

    def validate(self) -> None:
        from dcpose_trt.model.presets import get_preset

        get_preset(self.preset)  # InputError listing the presets
        for what, values, allowed in (("backend", self.backends, BACKENDS), ("precision", self.precisions,
                                      PRECISIONS), ("mode", self.modes, MODES)):
            bad = [v for v in values if v not in allowed]
            if bad or not values:
                raise InputError(f"unknown or no --{what}s {bad or ''}; choose from: {', '.join(allowed)}")
        if not self.persons or min(self.persons) < 1:
            raise InputError(f"--persons must be positive integers, got {list(self.persons)}")
        if self.iters < 1 or self.warmup < 0:
            raise InputError(f"--iters must be >= 1 and --warmup >= 0, got {self.iters} and {self.warmup}")
        if self.device not in ("auto", "cpu", "cuda"):
            raise InputError(f"--device must be auto, cpu or cuda, got {self.device!r}")
        if self.model is not None and not Path(self.model).is_file():
            raise InputError(f"checkpoint not found: {self.model}")
        if self.update_index and (self.out is None or Path(self.out).resolve().parent != RESULTS.resolve()):
            raise InputError(f"--update-index indexes the runs in {RESULTS}: give --out {RESULTS}/<run name>")


@dataclass
class BenchResult:
    """What :func:`run_benchmark` measured: ``rows`` (one dict per combination, keys :data:`CSV_COLUMNS`)."""

    out: Path
    config: dict[str, Any]
    machine: dict[str, Any]
    flops: dict[str, float]
    model: str
    rows: list[dict[str, Any]] = field(default_factory=list)
    started: str = ""
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {"schema": 1, "started": self.started, "seconds": round(self.seconds, 1), "model": self.model,
                "config": self.config, "machine": self.machine, "flops": self.flops, "rows": self.rows}


class Skip(Exception):
    """A combination this machine or backend cannot run; the message is the reason shown in the results."""


# %% Machine -------------------------------------------------------------------------------------------


def cpu_extensions(flags: Sequence[str] | None = None) -> list[str]:
    """Vector/matrix extensions of this CPU (AVX2, AVX-512, VNNI, BF16, AMX) from ``/proc/cpuinfo`` flags."""
    if flags is None:
        flags = []
        try:
            for line in Path("/proc/cpuinfo").read_text().splitlines():
                if line.startswith("flags"):
                    flags = line.split(":", 1)[1].split()
                    break
        except OSError:
            return []
    have = set(flags)
    return [name for flag, name in CPU_EXTENSIONS if flag in have]


def machine_info() -> dict[str, Any]:
    """CPU model and extensions, cores, RAM, OS, Python, library versions (``dcpose-trt doctor``), GPU, driver."""
    from dcpose_trt._deps import available
    from dcpose_trt.doctor import diagnose

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions = {}
    for mod in ("openvino", "nncf"):
        if available(mod):
            import importlib

            versions[mod] = str(getattr(importlib.import_module(mod), "__version__", "?")).split("-")[0]
    try:
        mem_gb: float | None = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    except (ValueError, OSError, AttributeError):
        mem_gb = None
    report = diagnose()
    import torch

    return {
        "host": socket.gethostname(),
        "cpu": cpu,
        "cpu_extensions": cpu_extensions(),
        "logical_cpus": os.cpu_count(),
        "usable_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "memory_gb": mem_gb,
        "os": platform.platform(),
        "python": platform.python_version(),
        "torch_threads": torch.get_num_threads(),
        "versions": {**{p.module: p.version for p in report.packages}, **versions},
        "gpu": asdict(report.gpu) if report.gpu.name else None,
        "loadavg_start": _loadavg(),
    }


def _loadavg() -> list[float] | None:
    # Other processes on a shared machine skew timings; the load average makes that visible in the results.
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:
        return None


def machine_slug(info: dict[str, Any]) -> str:
    """Short folder-name id of a machine: the GPU, else the CPU model and usable core count."""
    if info.get("gpu"):
        name = str(info["gpu"]["name"])
    else:
        name = re.sub(r"\((R|TM)\)|CPU|Processor|@.*$|\d+-Core", " ", str(info.get("cpu", "cpu")), flags=re.I)
        name = f"{name} {info.get('usable_cpus')}c"
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    return slug[:48].strip("-") or "machine"


def default_out(preset: str, info: dict[str, Any]) -> Path:
    return DEFAULT_OUT_ROOT / f"{dt.date.today().isoformat()}-{machine_slug(info)}-{preset}"


# %% FLOPs ---------------------------------------------------------------------------------------------


def _flops_cache_file() -> Path:
    root = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return root / "dcpose_trt" / "flops.json"


def count_flops(preset: str, model: Any | None = None) -> dict[str, float]:
    """GFLOP (2 × MAC) per person of ``preset``, counted once with ``FlopCounterMode`` and cached on disk.

    Returns ``{"exact": ..., "cached": ..., "backbone_image": ..., "head": ...}``: exact = the whole model on
    ``frames[1, 9, H, W]`` (3 backbone images + head); cached = one backbone image + the head. Counted by
    torch's FLOP counter over aten ops (convolutions dominate; the deformable sampling, 0.08 % of the
    model per performance_anchors §3.2, is not an aten op and is not counted).
    """
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    cache = _flops_cache_file()
    key = f"{preset}@torch{torch.__version__.split('+')[0]}"
    try:
        table = json.loads(cache.read_text())
    except (OSError, ValueError):
        table = {}
    if key in table:
        return table[key]
    from dcpose_trt.model import build_dcpose

    m = (model if model is not None else build_dcpose(preset)).eval().cpu()
    h, w = m.preset.image_size
    hh, hw = m.preset.heatmap_size

    def gflop(fn: Any) -> float:
        with torch.inference_mode(), FlopCounterMode(display=False) as fc:
            fn()
        return fc.get_total_flops() / 1e9

    full = gflop(lambda: m(torch.zeros(1, 9, h, w), torch.ones(1, 2)))
    bb = gflop(lambda: m.backbone(torch.zeros(1, 3, h, w)))
    hm = torch.zeros(1, 17, hh, hw)
    head = gflop(lambda: m.head(hm, hm, hm, torch.ones(1, 2)))
    result = {"exact": full, "cached": bb + head, "backbone_image": bb, "head": head}
    table[key] = result
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(table, indent=1))
        os.replace(tmp, cache)
    except OSError as exc:  # a read-only home only costs a recount next time
        log.info("cannot cache FLOP counts in %s: %s", cache, exc)
    return result


def gpu_peak(gpu_name: str | None, precision: str) -> float | None:
    """Dense tensor peak FLOP/s of a known GPU for ``precision`` (None: unknown GPU or no GPU)."""
    if not gpu_name:
        return None
    for pattern, (fp16, int8) in GPU_PEAKS:
        if all(tok.lower() in gpu_name.lower() for tok in pattern.split()):
            return int8 if precision == "int8" else fp16
    return None


# %% Artifacts -----------------------------------------------------------------------------------------


class Artifacts:
    """Exports and quantizes on demand into ``cache`` (memoised for the run; failures are remembered too)."""

    def __init__(self, model: Any, preset: str, cache: Path, cfg: BenchConfig):
        self.model, self.preset, self.cache, self.cfg = model, preset, cache, cfg
        self._done: dict[tuple[str, str, bool], Path | Exception] = {}
        cache.mkdir(parents=True, exist_ok=True)

    def onnx(self, deform: str, precision: str, split: bool) -> Path:
        """``<preset>.<deform>.<precision>.onnx`` (or a split-export folder) in the cache."""
        key = (deform, precision, split)
        if key not in self._done:
            try:
                self._done[key] = self._make(deform, precision, split)
            except Exception as exc:  # noqa: BLE001 - remembered so a failed artifact is not rebuilt per row
                self._done[key] = exc
        got = self._done[key]
        if isinstance(got, DcposeTrtError):
            raise Skip(f"{'split ' if split else ''}{deform} {precision} ONNX: {got}")
        if isinstance(got, Exception):
            raise got  # a bug in export/quantize: run_benchmark records it as an error row
        return got

    def _make(self, deform: str, precision: str, split: bool) -> Path:
        from dcpose_trt.export import ExportConfig, QuantizeConfig, export_onnx, quantize_onnx

        stem = f"{self.preset}.{deform}{'.split' if split else ''}"
        if precision == "fp32":
            out = self.cache / (stem if split else f"{stem}.onnx")
            t0 = time.perf_counter()
            # No parity check here: the export tests own correctness, the benchmark only needs the graph.
            export_onnx(self.model, out, ExportConfig(deform=deform, split=split, check=False))
            log.info("exported %s in %.1f s", out, time.perf_counter() - t0)
            return out
        src = self.onnx(deform, "fp32", split)
        qc: dict[str, Any] = {"precision": precision}
        if precision == "int8":
            calib, boxes = self.calibration()
            qc.update(calib=calib, calib_boxes=boxes)
            if self.cfg.calib_samples is not None:
                qc["calib_samples"] = self.cfg.calib_samples
        q = QuantizeConfig(**qc)
        t0 = time.perf_counter()
        if split:
            out = self.cache / f"{stem}.{precision}"
            for part in ("backbone.onnx", "head.onnx"):
                out.mkdir(exist_ok=True)
                quantize_onnx(src / part, out / part, q)
        else:
            out = self.cache / f"{stem}.{precision}.onnx"
            quantize_onnx(src, out, q)
        log.info("quantized %s in %.1f s", out, time.perf_counter() - t0)
        return out

    def openvino_ir(self, precision: str) -> Path:
        """The OpenVINO IR pair (``backbone.xml`` + ``head.xml``) for ``precision`` in the cache.

        FP32 and BF16 share the FP32 IR (BF16 is a compile-time hint); INT8 is NNCF's quantization of it.
        """
        from dcpose_trt.runtime import ov_backend

        key = ("openvino", "int8" if precision == "int8" else "fp32", True)
        if key in self._done:
            got = self._done[key]
            if isinstance(got, Exception):
                raise Skip(f"OpenVINO {key[1]} IR: {got}") if isinstance(got, DcposeTrtError) else got
            return got
        try:
            fp32 = self.cache / f"{self.preset}.openvino.fp32"
            if not ov_backend.is_ir_pair(fp32):
                t0 = time.perf_counter()
                ov_backend.build_ir(self.model, fp32)
                log.info("converted %s in %.1f s", fp32, time.perf_counter() - t0)
            out = fp32
            if key[1] == "int8":
                out = self.cache / f"{self.preset}.openvino.int8"
                if not ov_backend.is_ir_pair(out):
                    import openvino as ov

                    calib, boxes = self.calibration()
                    core = ov.Core()
                    parts = {p: core.read_model(str(fp32 / f"{p}.xml")) for p in ("backbone", "head")}
                    ov_backend.build_ir(self.model, out, "int8", calib, boxes, self.cfg.calib_samples or 256, parts)
            self._done[key] = out
        except Exception as exc:  # noqa: BLE001 - remembered, as in onnx()
            self._done[key] = exc
            if isinstance(exc, DcposeTrtError):
                raise Skip(f"OpenVINO {key[1]} IR: {exc}") from None
            raise
        return out

    def calibration(self) -> tuple[Path, Path | None]:
        """INT8 calibration source: the configured one, else the shared PoseTrack sample with its detections."""
        if self.cfg.calib is not None:
            return Path(self.cfg.calib), self.cfg.calib_boxes
        if (SAMPLE_DATASET / "annotations" / "val").is_dir():
            return SAMPLE_DATASET, SAMPLE_DETECTIONS if SAMPLE_DETECTIONS.is_file() else None
        raise InputError("INT8 needs real calibration data and the shared PoseTrack sample is absent: pass --calib "
                         "(e.g. a set made with 'dcpose-trt synth --out DIR --videos 4 --frames 10 --seed 0')")

    def plan(self, backend: str, precision: str, persons: Sequence[int]) -> Path:
        """A TensorRT / TensorRT-RTX plan whose one profile spans ``persons``, built from the cached ONNX."""
        from dcpose_trt.engine import BuildConfig, build_engine, profiles_from_persons

        src = self.onnx(DEFORM_FOR[backend], precision, False)
        out = self.cache / f"{src.stem}.{backend}.plan"
        if not out.is_file():
            build_engine(src, out, BuildConfig(backend=backend, profiles=profiles_from_persons(persons),
                                               timing_cache=self.cache / "timing.cache", progress=False))
        return out


# %% Timing --------------------------------------------------------------------------------------------


class TimedBackend:
    """A :class:`~dcpose_trt.runtime.backends.Backend` that records ``(start, end)`` of every call it forwards.

    ``calls`` holds ``perf_counter`` pairs since the last ``calls.clear()``; the runner cuts a ``process`` call
    into crop / infer / align / decode at these boundaries.
    """

    def __init__(self, inner: Any):
        self.inner = inner
        self.name: str = inner.name
        self.preset_name: str = inner.preset_name
        self.input_size: tuple[int, int] = inner.input_size
        self.calls: list[tuple[float, float]] = []

    def _timed(self, fn: Any, *args: np.ndarray) -> np.ndarray:
        t0 = time.perf_counter()
        out = fn(*args)
        self.calls.append((t0, time.perf_counter()))
        return out

    def infer(self, frames: np.ndarray, margin: np.ndarray) -> np.ndarray:
        """frames float32[B, 9, H, W], margin float32[B, 2] → heatmaps float32[B, 17, H/4, W/4]."""
        return self._timed(self.inner.infer, frames, margin)

    def backbone(self, x: np.ndarray) -> np.ndarray:
        """crops float32[B, 3, H, W] → heatmaps float32[B, 17, H/4, W/4] (split backends)."""
        return self._timed(self.inner.backbone, x)

    def head(self, cur: np.ndarray, prev: np.ndarray, nxt: np.ndarray, margin: np.ndarray) -> np.ndarray:
        """three float32[B, 17, h, w] heatmaps + margin float32[B, 2] → refined heatmaps (split backends)."""
        return self._timed(self.inner.head, cur, prev, nxt, margin)


def _deform_conv2d_fp32(input: Any, offset: Any, weight: Any, bias: Any = None, stride: Any = 1, padding: Any = 0,
                        dilation: Any = 1, mask: Any = None) -> Any:
    """torchvision's deform_conv2d with autocast off and every tensor in FP32 (same signature)."""
    import torch

    from dcpose_trt.model import deform_conv2d_torchvision

    def f(t: Any) -> Any:
        return None if t is None else t.float()

    with torch.autocast(input.device.type, enabled=False):
        return deform_conv2d_torchvision(f(input), f(offset), f(weight), f(bias), stride, padding, dilation, f(mask))


class TorchAutocastBackend:
    """A :class:`~dcpose_trt.runtime.backends.TorchBackend` under ``torch.autocast(dtype=bfloat16)``.

    What a PyTorch user tries first for BF16; outputs come back as FP32 numpy arrays.
    """

    name = "torch"

    def __init__(self, inner: Any):
        self.inner = inner
        self.preset_name: str = inner.preset_name
        self.input_size: tuple[int, int] = inner.input_size

    def _autocast(self) -> Any:
        import contextlib

        import torch

        from dcpose_trt.model import use_deform_conv

        stack = contextlib.ExitStack()
        stack.enter_context(torch.autocast(self.inner.device.type, dtype=torch.bfloat16))
        # torchvision's deform_conv2d has no BF16 CPU kernel and no autocast rule: it runs in FP32, as a
        # PyTorch user would have to arrange.
        stack.enter_context(use_deform_conv(self.inner.model, _deform_conv2d_fp32))
        return stack

    def infer(self, frames: np.ndarray, margin: np.ndarray) -> np.ndarray:
        """frames float32[B, 9, H, W], margin float32[B, 2] → heatmaps float32[B, 17, H/4, W/4]."""
        with self._autocast():
            return self.inner.infer(frames, margin)

    def backbone(self, x: np.ndarray) -> np.ndarray:
        """crops float32[B, 3, H, W] → heatmaps float32[B, 17, H/4, W/4]."""
        with self._autocast():
            return self.inner.backbone(x)

    def head(self, cur: np.ndarray, prev: np.ndarray, nxt: np.ndarray, margin: np.ndarray) -> np.ndarray:
        """three float32[B, 17, h, w] heatmaps + margin float32[B, 2] → refined heatmaps."""
        with self._autocast():
            return self.inner.head(cur, prev, nxt, margin)


def person_boxes(n: int, frame_hw: tuple[int, int], t: int) -> np.ndarray:
    """``n`` person-shaped boxes float32[n, 5] (x, y, w, h, score) tiled over a frame, drifting 2 px per frame.

    The drift keeps the IoU tracker matching the same ids across frames (cached mode relies on them) while
    the crops change a little, as they would on video.
    """
    h, w = frame_hw
    cols = math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    cw, ch = w / cols, h / rows
    dx = 2.0 * (t % 8)
    out = np.empty((n, 5), np.float32)
    for i in range(n):
        r, c = divmod(i, cols)
        out[i] = (c * cw + 0.15 * cw + dx, r * ch + 0.05 * ch, 0.6 * cw, 0.9 * ch, 1.0)
    return out


class _Frames:
    """Endless stream of decoded frames from a folder of images or a video (restarted, untimed, at its end)."""

    def __init__(self, source: Path):
        from dcpose_trt.runtime.io import FrameSource

        self.source = FrameSource(source)
        self._it: Iterator[np.ndarray] = iter(self.source)

    def read(self) -> tuple[np.ndarray, float]:
        """The next BGR uint8 frame [H, W, 3] and the seconds its decode took."""
        t0 = time.perf_counter()
        frame = next(self._it, None)
        dt_s = time.perf_counter() - t0
        if frame is None:
            self._it = iter(self.source)
            t0 = time.perf_counter()
            frame = next(self._it, None)
            dt_s = time.perf_counter() - t0
            if frame is None:
                raise InputError(f"no frames in {self.source.source}")
        return frame, dt_s


def time_pipeline(backend: Any, mode: str, persons: int, frames: _Frames, iters: int, warmup: int
                  ) -> dict[str, np.ndarray]:
    """Stream frames with ``persons`` boxes through a fresh ``PoseEstimator``; per-frame stage times in ms.

    Returns ``{stage: float64[iters]}`` for every stage in :data:`STAGES`.
    """
    from dcpose_trt.runtime import PoseEstimator

    timed = TimedBackend(backend)
    est = PoseEstimator(backend=timed, mode=mode, max_batch=max(persons, 1))
    samples: dict[str, list[float]] = {s: [] for s in STAGES}
    # Two frames fill the look-ahead window (the first process() returns nothing and calls no backend).
    for i in range(2 + warmup + iters):
        frame, read_s = frames.read()
        boxes = person_boxes(persons, frame.shape[:2], i)
        timed.calls.clear()
        t0 = time.perf_counter()
        est.process(frame, boxes)
        t1 = time.perf_counter()
        if i < 2 + warmup:
            continue
        calls = timed.calls
        if not calls:
            raise RuntimeError("PoseEstimator.process made no backend call in steady state")
        infer = sum(e - s for s, e in calls)
        align = sum(calls[k + 1][0] - calls[k][1] for k in range(len(calls) - 1))
        for stage, sec in (("read", read_s), ("crop", calls[0][0] - t0), ("infer", infer), ("align", align),
                           ("decode", t1 - calls[-1][1]), ("e2e", read_s + t1 - t0)):
            samples[stage].append(sec * 1e3)
    return {s: np.asarray(v) for s, v in samples.items()}


# %% Backends ------------------------------------------------------------------------------------------


def open_backend(name: str, precision: str, mode: str, art: Artifacts, cfg: BenchConfig, device: str,
                 gpu: bool) -> Any:
    """The backend for one combination, or :class:`Skip` with the reason it cannot run here."""
    from dcpose_trt._deps import available

    split = mode == "cached"
    if name == "torch":
        if precision not in ("fp32", "bf16"):
            raise Skip("the torch backend runs FP32 eager and BF16 autocast; FP16/INT8 run on onnxruntime, "
                       "OpenVINO or TensorRT")
        from dcpose_trt.runtime import TorchBackend

        if precision == "bf16":
            return TorchAutocastBackend(TorchBackend(art.model, device))
        return TorchBackend(art.model, device)
    if name == "openvino":
        if not available("openvino"):
            raise Skip("openvino is not installed: pip install 'dcpose-trt[openvino]'")
        if precision not in ("fp32", "bf16", "int8"):
            raise Skip("OpenVINO runs fp32, bf16 and int8 on the CPU")
        from dcpose_trt.runtime import ov_backend

        if precision == "bf16" and not ov_backend.cpu_has_bf16():
            raise Skip("this CPU has neither AVX-512 BF16 nor AMX (OpenVINO reports no BF16)")
        return ov_backend.OpenVINOBackend(art.openvino_ir(precision), precision, threads=cfg.threads,
                                          cache_dir=art.cache / "openvino")
    if precision == "bf16":
        raise Skip(f"{name}: BF16 rows are torch autocast and OpenVINO only")
    if name == "onnxruntime":
        if not available("onnxruntime"):
            raise Skip("onnxruntime is not installed: pip install 'dcpose-trt[onnx]'")
        from dcpose_trt.runtime.ort_backend import OnnxRuntimeBackend

        return OnnxRuntimeBackend(art.onnx(DEFORM_FOR[name], precision, split), threads=cfg.threads)
    # tensorrt / tensorrt-rtx
    module, extra = {"tensorrt": ("tensorrt", "trt"), "tensorrt-rtx": ("tensorrt_rtx", "rtx")}[name]
    if split:
        raise Skip(f"the {name} backend runs whole-model plans only (no split backbone/head plans yet)")
    if not available(module):
        raise Skip(f"{module} is not installed (or does not import): pip install 'dcpose-trt[{extra}]'")
    if not gpu:
        raise Skip(f"no CUDA GPU: {name} plans run only on an NVIDIA GPU")
    from dcpose_trt.runtime.trt_backend import TensorRTBackend

    return TensorRTBackend(art.plan(name, precision, cfg.persons), backend=name)


def _pct(a: np.ndarray, q: float) -> float:
    return round(float(np.percentile(a, q)), 3)


def _row(cfg: BenchConfig, backend: str, precision: str, mode: str, persons: int, **kw: Any) -> dict[str, Any]:
    row: dict[str, Any] = dict.fromkeys(CSV_COLUMNS)
    row.update(preset=cfg.preset, backend=backend, precision=precision, mode=mode, persons=persons,
               deform=DEFORM_FOR[backend], iters=cfg.iters, warmup=cfg.warmup, baseline=False, reason="")
    row.update(kw)
    return row


def _combos(cfg: BenchConfig) -> list[tuple[str, str, str, bool]]:
    """(backend, precision, mode, is_baseline) in run order, the torch FP32 exact baseline first."""
    rest = [(b, p, m, False) for b in cfg.backends for p in cfg.precisions for m in cfg.modes
            if (b, p, m) != ("torch", "fp32", "exact")]
    return [("torch", "fp32", "exact", True), *rest]


# %% Run -----------------------------------------------------------------------------------------------


def run_benchmark(cfg: BenchConfig) -> BenchResult:
    """Run every combination of ``cfg``; write the outputs (see module docstring) and return the result.

    Raises:
        InputError: bad settings, no frames to read.
    """
    cfg.validate()
    import torch
    from tqdm import tqdm

    from dcpose_trt.export.onnx_export import load_model
    from dcpose_trt.runtime import bundled_model_path

    t_start = time.perf_counter()
    started = dt.datetime.now().isoformat(timespec="seconds")
    info = machine_info()
    out = Path(cfg.out) if cfg.out is not None else default_out(cfg.preset, info)
    out.mkdir(parents=True, exist_ok=True)
    video = Path(cfg.video) if cfg.video is not None else SAMPLE_CLIP
    if not video.exists():
        raise InputError(f"frames to read not found: {video}; pass --video (a folder of jpgs or a video file)")
    frames = _Frames(video)

    bundled = bundled_model_path()
    if cfg.model is not None:
        model_desc = str(cfg.model)
    elif bundled is not None and cfg.preset == "tiny-128x96":
        model_desc = f"bundled {bundled.name}"
    else:
        model_desc = f"random init of {cfg.preset} (timings do not depend on weights)"  # load_model warns
    model = load_model(cfg.model, cfg.preset).eval()
    device = cfg.device if cfg.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
    gpu = info["gpu"] is not None
    flops = count_flops(cfg.preset, model)
    art = Artifacts(model, cfg.preset, out / "cache", cfg)
    result = BenchResult(out, _config_json(cfg, video), info, flops, model_desc, started=started)

    combos = _combos(cfg)
    bar = tqdm(total=len(combos) * len(cfg.persons), desc=f"bench {cfg.preset}", unit="cfg",
               disable=None if cfg.progress else True, dynamic_ncols=True)  # None: off when not a tty
    for backend_name, precision, mode, is_base in combos:
        bar.set_postfix_str(f"{backend_name} {precision} {mode}")
        try:
            backend = open_backend(backend_name, precision, mode, art, cfg, device, gpu)
        except (Skip, DcposeTrtError) as exc:
            for n in cfg.persons:
                result.rows.append(_row(cfg, backend_name, precision, mode, n, status="skipped", reason=str(exc),
                                        baseline=is_base))
            bar.update(len(cfg.persons))
            continue
        except Exception as exc:  # noqa: BLE001 - a bug in one combination's preparation must not lose the others
            log.error("%s %s %s: preparing the backend failed:\n%s", backend_name, precision, mode,
                      traceback.format_exc())
            for n in cfg.persons:
                result.rows.append(_row(cfg, backend_name, precision, mode, n, status="error",
                                        reason=f"{type(exc).__name__}: {exc}", baseline=is_base))
            bar.update(len(cfg.persons))
            continue
        on_gpu = backend_name.startswith("tensorrt") or (backend_name == "torch" and device == "cuda")
        row_device = "cuda" if on_gpu else "cpu"
        for n in cfg.persons:
            try:
                t = time_pipeline(backend, mode, n, frames, cfg.iters, cfg.warmup)
            except DcposeTrtError as exc:
                result.rows.append(_row(cfg, backend_name, precision, mode, n, status="skipped", reason=str(exc),
                                        baseline=is_base, device=row_device))
                bar.update(1)
                continue
            except Exception as exc:  # noqa: BLE001 - one broken combination must not lose the others
                log.error("%s %s %s persons=%d failed:\n%s", backend_name, precision, mode, n, traceback.format_exc())
                result.rows.append(_row(cfg, backend_name, precision, mode, n, status="error",
                                        reason=f"{type(exc).__name__}: {exc}", baseline=is_base, device=row_device))
                bar.update(1)
                continue
            e2e50 = _pct(t["e2e"], 50)
            row = _row(cfg, backend_name, precision, mode, n, status="ok", baseline=is_base, device=row_device,
                       **{f"{s}_ms": _pct(t[s], 50) for s in STAGES if s != "e2e"},
                       e2e_p50_ms=e2e50, e2e_p90_ms=_pct(t["e2e"], 90), e2e_p99_ms=_pct(t["e2e"], 99),
                       infer_p90_ms=_pct(t["infer"], 90), infer_p99_ms=_pct(t["infer"], 99),
                       persons_per_s=round(n * 1e3 / e2e50, 2), gflop_per_person=round(flops[mode], 3))
            peak = gpu_peak((info.get("gpu") or {}).get("name"), precision) if on_gpu else None
            if peak:
                floor = flops[mode] * 1e9 * n / peak * 1e3
                row.update(floor_ms=round(floor, 4), floor_share=round(floor / row["infer_ms"], 4))
            result.rows.append(row)
            bar.update(1)
        close = getattr(backend, "close", None)
        if callable(close):
            close()
        del backend
    bar.close()
    _speedups(result.rows)
    result.machine["loadavg_end"] = _loadavg()
    result.seconds = time.perf_counter() - t_start
    write_outputs(result)
    if cfg.update_index:
        update_results_index(RESULTS)
    return result


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


# %% Outputs -------------------------------------------------------------------------------------------


def write_outputs(result: BenchResult) -> None:
    """results.json, results.csv, machine.json, latency.png and README.md in ``result.out``."""
    out = result.out
    atomic_write_text(out / "results.json", json.dumps(result.to_json(), indent=2) + "\n")
    atomic_write_text(out / "machine.json", json.dumps(result.machine, indent=2) + "\n")
    tmp = out / "results.csv.tmp"
    with tmp.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(CSV_COLUMNS))
        w.writeheader()
        for r in result.rows:
            w.writerow({k: ("" if r.get(k) is None else r[k]) for k in CSV_COLUMNS})
    os.replace(tmp, out / "results.csv")
    plot_latency(result.rows, out / "latency.png", title=f"DCPose {result.config['preset']} on "
                 f"{machine_slug(result.machine)}")
    atomic_write_text(out / "README.md", to_markdown(result))


def plot_latency(rows: list[dict[str, Any]], path: Path, title: str = "") -> None:
    """Median end-to-end and infer latency vs persons, one line per backend/precision/mode (matplotlib Agg)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    series: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        if r["status"] == "ok":
            series.setdefault(f"{r['backend']} {r['precision']} {r['mode']}", []).append(r)
    for ax, key, what in ((axes[0], "e2e_p50_ms", "end to end (p50)"), (axes[1], "infer_ms", "infer (p50)")):
        for label, rs in series.items():
            rs = sorted(rs, key=lambda r: r["persons"])
            ax.plot([r["persons"] for r in rs], [r[key] for r in rs], marker="o", label=label)
        ax.set_xlabel("persons per frame")
        ax.set_ylabel("ms per frame")
        ax.set_title(what)
        ax.grid(True, alpha=0.3)
        ax.set_yscale("log")
        xs = sorted({r["persons"] for rs in series.values() for r in rs})
        if xs:
            ax.set_xticks(xs)
    if series:
        axes[0].legend(fontsize=7)
    fig.suptitle(title)
    fig.tight_layout()
    tmp = path.with_name(path.stem + ".tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    os.replace(tmp, path)


def _f(v: Any, fmt: str = ".1f", suffix: str = "") -> str:
    return "–" if v is None or v == "" else f"{v:{fmt}}{suffix}"


def markdown_table(rows: list[dict[str, Any]]) -> str:
    """The measured rows as a markdown table (ms are medians per frame), then the skipped ones with reasons."""
    lines = ["| backend | precision | mode | persons | read | crop | infer | align | decode | e2e p50 | p90 | p99 "
             "| persons/s | speed-up (e2e) | speed-up (infer) | FLOP-floor share |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if r["status"] != "ok":
            continue
        name = r["backend"] + (" (baseline)" if r["baseline"] else "")
        lines.append(
            f"| {name} | {r['precision']} | {r['mode']} | {r['persons']} | {_f(r['read_ms'])} | {_f(r['crop_ms'])} "
            f"| {_f(r['infer_ms'])} | {_f(r['align_ms'])} | {_f(r['decode_ms'])} | {_f(r['e2e_p50_ms'])} "
            f"| {_f(r['e2e_p90_ms'])} | {_f(r['e2e_p99_ms'])} | {_f(r['persons_per_s'])} "
            f"| {_f(r['speedup'], '.2f', '×')} | {_f(r['speedup_infer'], '.2f', '×')} "
            f"| {_f(r['floor_share'] * 100 if r['floor_share'] else None, '.1f', ' %')} |")
    skipped: dict[tuple[str, str, str, str], list[int]] = {}
    for r in rows:
        if r["status"] != "ok":
            skipped.setdefault((r["backend"], r["precision"], r["mode"], f"{r['status']}: {r['reason']}"),
                               []).append(r["persons"])
    if skipped:
        lines += ["", "Not measured:", ""]
        lines += [f"- {b} {p} {m} (persons {', '.join(map(str, ns))}): {why}" for (b, p, m, why), ns in skipped.items()]
    return "\n".join(lines)


def machine_line(m: dict[str, Any]) -> str:
    gpu = m.get("gpu")
    v = m.get("versions", {})
    gpu_text = f"{gpu['name']} (driver CUDA {gpu['driver']})" if gpu else "no GPU"
    ext = ", ".join(m.get("cpu_extensions") or []) or "extensions unknown"
    return (f"{m.get('cpu')} ({ext}), {m.get('usable_cpus')} usable of {m.get('logical_cpus')} logical CPUs, "
            f"{m.get('memory_gb')} GB RAM, {gpu_text}; "
            f"{m.get('os')}; Python {m.get('python')}, torch {v.get('torch')} ({m.get('torch_threads')} threads), "
            f"onnxruntime {v.get('onnxruntime')}, TensorRT {v.get('tensorrt') or '–'}, "
            f"TensorRT-RTX {v.get('tensorrt_rtx') or '–'}, OpenVINO {v.get('openvino') or '–'}; "
            f"load average {m.get('loadavg_start')} → "
            f"{m.get('loadavg_end')}")


def to_markdown(result: BenchResult) -> str:
    c = result.config
    lines = [
        f"# DCPose {c['preset']} benchmark, {result.started[:10]}",
        "",
        f"Machine: {machine_line(result.machine)}.",
        "",
        f"Model: {result.model}. {c['iters']} timed frames after {c['warmup']} warm-up frames per row; frames read "
        f"from `{Path(c['video']).name}`; {result.flops['exact']:.2f} GFLOP per person exact, "
        f"{result.flops['cached']:.2f} cached (torch FlopCounterMode). Times are medians in ms per frame; "
        "e2e = read + crop + infer + align + decode; speed-up is over PyTorch eager FP32 exact at the same "
        "person count. Run: "
        f"`dcpose-trt bench --preset {c['preset']} --backends {','.join(c['backends'])} "
        f"--precisions {','.join(c['precisions'])} --persons {','.join(map(str, c['persons']))} "
        f"--modes {','.join(c['modes'])} --iters {c['iters']} --warmup {c['warmup']}` ({result.seconds:.0f} s).",
        "",
        markdown_table(result.rows),
        "",
    ]
    return "\n".join(lines)


def update_results_index(results: Path = RESULTS) -> Path:
    """Rewrite ``results/README.md``: the latest run of each preset in full, then every run."""
    runs = []
    for f in sorted(results.glob("*/results.json")):
        try:
            runs.append((f.parent, json.loads(f.read_text())))
        except (OSError, ValueError):  # noqa: PERF203 - a half-written run is skipped, not fatal
            continue
    latest: dict[str, tuple[Path, dict[str, Any]]] = {}
    for folder, doc in runs:
        preset = doc["config"]["preset"]
        if preset not in latest or doc["started"] >= latest[preset][1]["started"]:
            latest[preset] = (folder, doc)
    lines = ["# Benchmark results", "",
             "Each folder is one `dcpose-trt bench` run (`<date>-<machine>-<preset>`) with `results.json`, "
             "`results.csv`, `latency.png`, `machine.json` and its own README. Latest run per preset:", ""]
    for preset, (folder, doc) in sorted(latest.items()):
        lines += [f"## {preset}: [{folder.name}]({folder.name}/README.md)", "",
                  f"Machine: {machine_line(doc['machine'])}.", "", markdown_table(doc["rows"]), "",
                  f"![latency]({folder.name}/latency.png)", ""]
    lines += ["## All runs", ""] + [f"- [{f.name}]({f.name}/README.md)" for f, _ in runs]
    path = results / "README.md"
    atomic_write_text(path, "\n".join(lines) + "\n")
    return path
