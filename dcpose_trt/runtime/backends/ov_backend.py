"""OpenVINO backend: the :class:`~dcpose_trt.runtime.backends.base.Backend` interface on the CPU through OpenVINO.

Sources, in order of preference:

* a DCPose checkpoint (``.pth``, or None for the bundled model): converted on demand with OpenVINO's
  PyTorch frontend and saved as IR in a cache keyed by the checkpoint's SHA-256, the precision, the
  versions and the head's form. The head is converted in its CPU form
  (:class:`~dcpose_trt.model.cpu_head.CpuHead`: each deformable conv as our ``DcnGemm`` op, compiled on this
  machine by :mod:`dcpose_trt.engine.ov_extension`, or where it cannot be built a GridSample gather + a 1×1
  conv), which OpenVINO runs faster than its own ``DeformableConvolution`` and NNCF can quantize (w32, 8
  persons: the profile in docs/cpu_backends.md).
* an ONNX file of the ``gridsample`` form (OpenVINO has no conversion rule for ONNX ``DeformConv``),
  whole or split (folder with ``backbone.onnx`` + ``head.onnx``), FP32 or our INT8 Q/DQ export;
* OpenVINO IR (``.xml``, or a folder with ``backbone.xml`` + ``head.xml``).

Precisions: ``fp32``; ``bf16`` (OpenVINO's inference-precision hint; only where the CPU reports BF16,
i.e. AVX-512 BF16 or AMX); ``int8`` (NNCF post-training quantization, calibrated on real person crops, of
the backbone and of the head's offset and mask convolutions; the rest of the head, the sampling
coordinates included, runs in FP32; or a Q/DQ INT8 ONNX as exported). Compiled models are cached on disk
(OpenVINO ``CACHE_DIR``) so a second start skips compilation.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from dcpose_trt._deps import require
from dcpose_trt.contract import META_PRESET, OnnxModelInfo, read_model_metadata
from dcpose_trt.engine.openvino_ir import (  # noqa: F401 - re-exported (the conversion step is the engine's)
    build_ir,
    convert_parts,
    cpu_has_bf16,
    default_cache_dir,
    ir_for_checkpoint,
    is_ir_pair,
)
from dcpose_trt.engine.ov_extension import new_core, unsupported_reason
from dcpose_trt.errors import InputError
from dcpose_trt.runtime.backends.base import Backend, OpenOptions, SplitBackend, model_files

log = logging.getLogger(__name__)

NAME = "openvino"
PRECISIONS = ("fp32", "bf16", "int8")
# Backend names the CLI and open_backend accept: the precision rides on the name, so every verb that takes
# --backend gets BF16/INT8 without a new flag.
BACKEND_NAMES = ("openvino", "openvino-bf16", "openvino-int8")
# int8: what is not quantized runs in FP32 (the head's sampling coordinates among it). A BF16 remainder was
# measured too: no e2e gain at w32 8 persons cached (422 vs 425 ms), so the coordinates keep FP32.
_HINT = {"fp32": "f32", "bf16": "bf16", "int8": "f32"}


def precision_of(backend: str) -> str:
    """``"openvino-bf16"`` → ``"bf16"``; ``"openvino"`` → ``"fp32"``."""
    if backend not in BACKEND_NAMES:
        raise InputError(f"unknown OpenVINO backend {backend!r}; choose one of: {', '.join(BACKEND_NAMES)}")
    return backend.split("-", 1)[1] if "-" in backend else "fp32"


def _ov() -> Any:
    return require("openvino", "openvino", "the OpenVINO backend")


def _check_precision(precision: str) -> None:
    if precision not in PRECISIONS:
        raise InputError(f"unknown OpenVINO precision {precision!r}; choose one of: {', '.join(PRECISIONS)}")
    if precision == "bf16" and not cpu_has_bf16():
        raise InputError("OpenVINO BF16 needs a CPU with AVX-512 BF16 or AMX; this CPU has neither "
                         "(use fp32 or int8)")


def from_checkpoint(path: str | os.PathLike | None, precision: str = "fp32", cache_dir: str | os.PathLike | None = None,
                    calib: str | os.PathLike | None = None, calib_boxes: str | os.PathLike | None = None,
                    calib_samples: int = 256, threads: int | None = None, calib_split: str = "val") -> OpenVINOBackend:
    """The OpenVINO backend of a checkpoint (None: the bundled model), converted once and cached as IR
    (:func:`dcpose_trt.engine.openvino_ir.ir_for_checkpoint`)."""
    _check_precision(precision)
    folder, cache = ir_for_checkpoint(path, precision, cache_dir, calib, calib_boxes, calib_samples, calib_split)
    return OpenVINOBackend(folder, precision=precision, threads=threads, cache_dir=cache)


# %% Backend -------------------------------------------------------------------------------------------


class _Compiled:
    """One compiled OpenVINO model with one infer request (the runtime serves one call at a time)."""

    def __init__(self, core: Any, path: Path, config: dict[str, Any]):
        ov = _ov()
        try:
            model = core.read_model(str(path))
        except Exception as exc:  # noqa: BLE001 - OpenVINO raises RuntimeError/OpConversionFailure
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            hint = (" (OpenVINO cannot read ONNX DeformConv: export with --deform gridsample, or give the "
                    "checkpoint)") if "DeformConv" in str(exc) else ""
            if "DcnGemm" in str(exc):  # an IR converted where our op builds, read where it does not
                hint = (" (this IR uses dcpose-trt's DcnGemm op, which is not built here: "
                        f"{unsupported_reason() or 'disabled by $DCPOSE_TRT_OV_DCN'}; convert the checkpoint here)")
            raise InputError(f"OpenVINO cannot read {path}: {first[:200]}{hint}") from None
        self.path = path
        self.meta = _metadata(model, path)
        self.inputs = [p.get_any_name() for p in model.inputs]
        self.input_shapes = [p.get_partial_shape() for p in model.inputs]
        # Compiling from the path (not the ov.Model) lets the CPU plugin's CACHE_DIR skip the compilation.
        self.compiled = core.compile_model(str(path), "CPU", config)
        self.request = self.compiled.create_infer_request()
        del ov

    def run(self, *arrays: np.ndarray) -> np.ndarray:
        self.request.infer(list(arrays))
        return self.request.get_output_tensor(0).data.copy()


def _metadata(model: Any, path: Path) -> OnnxModelInfo:
    """Preset and precision: ONNX metadata_props for ONNX files, rt_info for our IR."""
    if path.suffix == ".onnx":
        meta = read_model_metadata(path)
    else:
        rt = {META_PRESET: model.get_rt_info(["framework", META_PRESET]).astype(str)} \
            if model.has_rt_info(["framework", META_PRESET]) else {}
        meta = read_model_metadata(rt, source=str(path))
    if any("FakeQuantize" in op.get_type_name() or "FakeConvert" in op.get_type_name() for op in model.get_ops()):
        meta = replace(meta, precision="int8")
    return meta


class OpenVINOBackend(Backend):
    """DCPose on OpenVINO's CPU plugin.

    Constructing it with a split pair gives an :class:`OpenVINOSplitBackend` (its subclass that also
    implements :class:`~dcpose_trt.runtime.backends.base.SplitBackend`).

    Args:
        path: an IR or ONNX file of the whole model (``frames``, ``margin`` inputs), or a split pair: a
            folder with ``backbone.xml`` + ``head.xml`` (or ``.onnx``), or a ``(backbone, head)`` pair.
            For a checkpoint use :func:`from_checkpoint`.
        precision: ``fp32``, ``bf16`` (inference-precision hint) or ``int8`` (the file must be quantized:
            an NNCF IR from :func:`from_checkpoint` or a Q/DQ ONNX).
        preset: expected preset; a file of another preset raises :class:`InputError`.
        threads: CPU inference threads (default: OpenVINO's, all usable cores).
        cache_dir: OpenVINO compiled-model cache is ``<cache_dir>/compiled`` (default :func:`default_cache_dir`).

    Attributes: name ``"openvino"``, ``"openvino-bf16"`` or ``"openvino-int8"`` (the ``--backend`` name of
    the precision), preset_name, input_size (crop H, W), precision, split,
    last_inference_time (s, last ``infer``), compile_seconds (reading + compiling all parts).
    """

    name = NAME

    def __new__(cls, path: str | os.PathLike | Sequence[str | os.PathLike], *args: Any, **kwargs: Any
                ) -> OpenVINOBackend:
        if cls is OpenVINOBackend and not isinstance(cls._resolve(path), Path):
            cls = OpenVINOSplitBackend  # a backbone/head pair
        return super().__new__(cls)

    def __init__(self, path: str | os.PathLike | Sequence[str | os.PathLike], precision: str = "fp32",
                 preset: str | None = None, threads: int | None = None, cache_dir: str | os.PathLike | None = None):
        _ov()  # the install hint first
        _check_precision(precision)
        pair = self._resolve(path)
        cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        core = new_core()  # reads heads converted with our DcnGemm op
        try:
            (cache / "compiled").mkdir(parents=True, exist_ok=True)
            core.set_property({"CACHE_DIR": str(cache / "compiled")})
        except OSError as exc:  # a read-only home only costs a recompilation per start
            log.info("no OpenVINO model cache in %s: %s", cache, exc)
        config: dict[str, Any] = {"INFERENCE_PRECISION_HINT": _HINT[precision], "PERFORMANCE_HINT": "LATENCY"}
        if threads:
            config["INFERENCE_NUM_THREADS"] = int(threads)
        t0 = time.perf_counter()
        self._full: _Compiled | None = None
        self._backbone: _Compiled | None = None
        self._head: _Compiled | None = None
        if isinstance(pair, Path):
            self._full = _Compiled(core, pair, config)
            parts = [self._full]
            if len(self._full.inputs) != 2:
                raise InputError(f"{pair} is not a whole DCPose model (inputs {self._full.inputs}); "
                                 "for a split export give its folder")
        else:
            self._backbone = _Compiled(core, pair[0], config)
            self._head = _Compiled(core, pair[1], config)
            parts = [self._backbone, self._head]
            if len(self._backbone.inputs) != 1 or len(self._head.inputs) != 4:
                raise InputError(f"{pair[0]} / {pair[1]} are not a DCPose backbone/head pair")
        self.compile_seconds = time.perf_counter() - t0
        presets = {p.meta.preset for p in parts}
        if len(presets) != 1 or None in presets:
            raise InputError(f"{', '.join(str(p.path) for p in parts)}: missing or inconsistent preset metadata "
                             f"({presets}); convert with from_checkpoint or re-export with 'dcpose-trt export'")
        self.preset_name: str = presets.pop()  # type: ignore[assignment]
        if preset is not None and preset != self.preset_name:
            raise InputError(f"{parts[0].path} was exported for preset {self.preset_name}, not {preset}")
        shape = parts[0].input_shapes[0]
        if shape.rank.get_length() != 4 or not (shape[2].is_static and shape[3].is_static):
            raise InputError(f"{parts[0].path}: the crop size must be static, got input shape {shape}")
        self.input_size: tuple[int, int] = (shape[2].get_length(), shape[3].get_length())
        quantized = any(p.meta.precision == "int8" for p in parts)
        if precision == "int8" and not quantized:
            raise InputError(f"{parts[0].path} is not quantized; for INT8 give a Q/DQ ONNX or use from_checkpoint "
                             "with calibration data")
        self.precision = precision if precision != "fp32" or not quantized else "int8"
        # The registry name of this precision, so run summaries and logs say openvino-bf16, not openvino.
        self.name = NAME if self.precision == "fp32" else f"{NAME}-{self.precision}"
        self.split = self._full is None
        self.threads = threads

    @staticmethod
    def _resolve(path: str | os.PathLike | Sequence[str | os.PathLike]) -> Path | tuple[Path, Path]:
        files = model_files(path, (".xml", ".onnx"), "model")
        if isinstance(files, Path) and files.suffix not in (".xml", ".onnx"):
            raise InputError(f"the OpenVINO backend reads IR (.xml), ONNX or a checkpoint, got {files}")
        return files

    def _infer_impl(self, frames: np.ndarray, margin: np.ndarray) -> np.ndarray:
        if self._full is not None:
            return self._full.run(frames, margin)
        assert isinstance(self, OpenVINOSplitBackend)
        return self.infer_by_parts(frames, margin)

    def __repr__(self) -> str:
        files = (self._full.path,) if self._full else (self._backbone.path, self._head.path)  # type: ignore[union-attr]
        return f"OpenVINOBackend({', '.join(map(str, files))}, preset={self.preset_name}, precision={self.precision})"


class OpenVINOSplitBackend(OpenVINOBackend, SplitBackend):
    """A backbone/head pair on OpenVINO (a converted checkpoint, an IR pair or a split export)."""

    def _backbone_impl(self, x: np.ndarray) -> np.ndarray:
        assert self._backbone is not None  # a split pair (see __new__)
        return self._backbone.run(x)

    def _head_impl(self, cur: np.ndarray, prev: np.ndarray, nxt: np.ndarray, margin: np.ndarray) -> np.ndarray:
        assert self._head is not None
        return self._head.run(cur, prev, nxt, margin)


def open_openvino(path: Path | None, name: str, options: OpenOptions) -> OpenVINOBackend:
    """Opener of ``--backend openvino`` / ``openvino-bf16`` / ``openvino-int8`` (the registry's entry): a
    checkpoint (or None: the bundled one) is converted on demand, IR/ONNX files are read."""
    precision = precision_of(name)
    if path is None or (path.is_file() and path.suffix.lower() in (".pth", ".pt", ".tar")):
        be = from_checkpoint(path, precision, threads=options.threads)
    else:
        be = OpenVINOBackend(path, precision, options.preset, options.threads)
    if options.preset is not None and options.preset != be.preset_name:
        raise InputError(f"{path} holds preset {be.preset_name}, not {options.preset}")
    return be
