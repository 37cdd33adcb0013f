"""What one combination runs on: the exported/quantized artifacts (cached per run) and the opened backend.

:func:`open_backend` returns the runtime's backend for a backend × precision × mode, or raises
:class:`Skip` with the reason this machine or backend cannot run it (TensorRT without TensorRT or a GPU,
torch INT8, BF16 outside torch autocast and OpenVINO, ...). :class:`Artifacts` exports and quantizes
on demand into ``<out>/cache`` and remembers failures, so a broken artifact is not rebuilt per row.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from benchmarks.config import DEFORM_FOR, SAMPLE_DATASET, SAMPLE_DETECTIONS, BenchConfig
from dcpose_trt.errors import DcposeTrtError, InputError
from dcpose_trt.runtime.backends.base import Backend, SplitBackend

if TYPE_CHECKING:
    from dcpose_trt.runtime.backends.torch_backend import TorchBackend

log = logging.getLogger(__name__)


class Skip(Exception):
    """A combination this machine or backend cannot run; the message is the reason shown in the results."""


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
        # "int8-cpu": ONNX Runtime's CPU layout (U8S8 QOperator) of the same INT8 rule, for ONNX Runtime rows.
        qc: dict[str, Any] = {"precision": "int8" if precision == "int8-cpu" else precision}
        if precision == "int8-cpu":
            qc["target"] = "cpu"
        if qc["precision"] == "int8":
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
        from dcpose_trt.engine import openvino_ir

        key = ("openvino", "int8" if precision == "int8" else "fp32", True)
        if key in self._done:
            got = self._done[key]
            if isinstance(got, Exception):
                raise Skip(f"OpenVINO {key[1]} IR: {got}") if isinstance(got, DcposeTrtError) else got
            return got
        # The head's form is in the folder names: a rerun into an old --out does not time a stale head.
        form = hashlib.sha256(openvino_ir.head_form().encode()).hexdigest()[:8]
        try:
            fp32 = self.cache / f"{self.preset}.openvino-{form}.fp32"
            if not openvino_ir.is_ir_pair(fp32):
                t0 = time.perf_counter()
                openvino_ir.build_ir(self.model, fp32)
                log.info("converted %s in %.1f s", fp32, time.perf_counter() - t0)
            out = fp32
            if key[1] == "int8":
                out = self.cache / f"{self.preset}.openvino-{form}.int8-{openvino_ir.int8_head_features()}"
                if not openvino_ir.is_ir_pair(out):
                    from dcpose_trt.engine.ov_extension import new_core

                    calib, boxes = self.calibration()
                    core = new_core()
                    parts = {p: core.read_model(str(fp32 / f"{p}.xml")) for p in ("backbone", "head")}
                    openvino_ir.build_ir(self.model, out, "int8", calib, boxes, self.cfg.calib_samples or 256, parts)
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


def _deform_conv2d_fp32(input: Any, offset: Any, weight: Any, bias: Any = None, stride: Any = 1, padding: Any = 0,
                        dilation: Any = 1, mask: Any = None) -> Any:
    """torchvision's deform_conv2d with autocast off and every tensor in FP32 (same signature)."""
    import torch

    from dcpose_trt.model import deform_conv2d_torchvision

    def f(t: Any) -> Any:
        return None if t is None else t.float()

    with torch.autocast(input.device.type, enabled=False):
        return deform_conv2d_torchvision(f(input), f(offset), f(weight), f(bias), stride, padding, dilation, f(mask))


class TorchAutocastBackend(SplitBackend):
    """A :class:`~dcpose_trt.runtime.backends.base.TorchBackend` under ``torch.autocast(dtype=bfloat16)``.

    What a PyTorch user tries first for BF16; outputs come back as FP32 numpy arrays.
    """

    name = "torch"

    def __init__(self, inner: TorchBackend):
        self.inner = inner
        self.preset_name = inner.preset_name
        self.input_size = inner.input_size
        self.single_frame = inner.single_frame

    def close(self) -> None:
        self.inner.close()

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

    def _infer_impl(self, frames: np.ndarray, margin: np.ndarray) -> np.ndarray:
        """frames float32[B, 9, H, W], margin float32[B, 2] → heatmaps float32[B, 17, H/4, W/4]."""
        with self._autocast():
            return self.inner.infer(frames, margin)

    def _backbone_impl(self, x: np.ndarray) -> np.ndarray:
        """crops float32[B, 3, H, W] → heatmaps float32[B, 17, H/4, W/4]."""
        with self._autocast():
            return self.inner.backbone(x)

    def _head_impl(self, cur: np.ndarray, prev: np.ndarray, nxt: np.ndarray, margin: np.ndarray) -> np.ndarray:
        """three float32[B, 17, h, w] heatmaps + margin float32[B, 2] → refined heatmaps."""
        with self._autocast():
            return self.inner.head(cur, prev, nxt, margin)


def open_backend(name: str, precision: str, mode: str, art: Artifacts, cfg: BenchConfig, device: str,
                 gpu: bool) -> Backend:
    """The backend for one combination, or :class:`Skip` with the reason it cannot run here."""
    from dcpose_trt._deps import available
    from dcpose_trt._env import TRT_FLAVOURS, install_hint
    from dcpose_trt.runtime.backends.opener import open_backend as runtime_open  # the runtime's one opener

    split = mode == "cached"
    if name == "torch":
        if precision not in ("fp32", "bf16"):
            raise Skip("the torch backend runs FP32 eager and BF16 autocast; FP16/INT8 run on onnxruntime, "
                       "OpenVINO or TensorRT")
        from dcpose_trt.runtime.backends.torch_backend import TorchBackend

        if precision == "bf16":
            return TorchAutocastBackend(TorchBackend(art.model, device))
        return TorchBackend(art.model, device)
    if name == "openvino":
        if not available("openvino"):
            raise Skip(f"openvino is not installed: {install_hint('openvino')}")
        if precision not in ("fp32", "bf16", "int8"):
            raise Skip("OpenVINO runs fp32, bf16 and int8 on the CPU")
        from dcpose_trt.runtime.backends import ov_backend

        if precision == "bf16" and not ov_backend.cpu_has_bf16():
            raise Skip("this CPU has neither AVX-512 BF16 nor AMX (OpenVINO reports no BF16)")
        name = "openvino" if precision == "fp32" else f"openvino-{precision}"
        return runtime_open(art.openvino_ir(precision), name, threads=cfg.threads, progress=False)
    if precision == "bf16":
        raise Skip(f"{name}: BF16 rows are torch autocast and OpenVINO only")
    if name == "onnxruntime":
        if not available("onnxruntime"):
            raise Skip(f"onnxruntime is not installed: {install_hint('onnxruntime')}")
        # ONNX Runtime runs on its CPU provider here: INT8 rows use its own CPU layout (U8S8 QOperator), which
        # is faster than FP32 there; the TensorRT layout (symmetric Q/DQ) is slower than FP32 on it (README).
        onnx_precision = "int8-cpu" if precision == "int8" else precision
        return runtime_open(art.onnx(DEFORM_FOR[name], onnx_precision, split), name, mode=mode, threads=cfg.threads,
                            progress=False)
    # tensorrt / tensorrt-rtx
    module = TRT_FLAVOURS[name].module
    if split:
        raise Skip(f"the {name} backend runs whole-model plans only (no split backbone/head plans yet)")
    if not available(module):
        raise Skip(f"{module} is not installed (or does not import): {install_hint(module)}")
    if not gpu:
        raise Skip(f"no CUDA GPU: {name} plans run only on an NVIDIA GPU")
    return runtime_open(art.plan(name, precision, cfg.persons), name, progress=False)


