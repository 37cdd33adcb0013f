"""FP16 and INT8 ONNX from an FP32 export (architecture.md, "Precision").

TensorRT 11 takes precision from the ONNX itself (strongly typed networks), so this is an
ONNX-to-ONNX step that ONNX Runtime can check on a CPU:

- **FP16** (ONNX Runtime's ``float16.convert_float_to_float16``): weights and activations FP16; network
  I/O, the margin normalisation and the deformable sampling path (DCN node, GridSample grid arithmetic
  and the offset convs that produce the sampling coordinates) stay FP32, with Casts at the borders.
- **INT8** (``onnxruntime.quantization.quantize_static``, QDQ format): symmetric INT8 Q/DQ (zero point 0)
  with per-channel weights on the HRNet backbone's convolutions, calibrated on real person crops cut by
  the inference crop code (:func:`~dcpose_trt.data.transforms.make_inputs`). The first conv, the
  backbone's final heatmap conv and the whole temporal head (heatmap fusion, offset/mask prediction, DCN)
  stay FP32 (see ``INT8_EXCLUDED_SCOPES`` for the measurement behind that). The result is checked to be
  buildable as a strongly typed TensorRT network (int8 zero points of 0, no uint8). A ``plugin`` export
  (which ONNX Runtime cannot run) is calibrated as the equivalent standard-``DeformConv`` graph (the
  plugin node has ``DeformConv``'s inputs and attributes plus ``plugin_namespace``); the DCN nodes stay
  FP32, so the Q/DQ graph only needs its DCN nodes turned back into plugin nodes.
  ``target="cpu"`` writes ONNX Runtime's CPU layout instead (U8S8 QOperator over the same backbone
  region, every op type): faster than FP32 on ONNX Runtime's CPU provider, not for TensorRT.

One concern per module: :mod:`~dcpose_trt.export.fp16`, :mod:`~dcpose_trt.export.int8` (calibration,
``quantize_static``, the plugin-form round trip) and :mod:`~dcpose_trt.export.qdq` (graph regions, Q/DQ
checks); this module holds the settings and the stage function :func:`quantize_onnx`.
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from dcpose_trt._deps import require
from dcpose_trt.contract import (
    INT8_TARGETS,
    META_CALIBRATION,
    META_DEFORM,
    META_INPUT_SIZE,
    META_INT8_TARGET,
    META_PART,
    META_PRECISION,
    META_PRESET,
    QUANTIZED_PRECISIONS,
)
from dcpose_trt.errors import InputError, QuantizeError
from dcpose_trt.export.fp16 import to_fp16
from dcpose_trt.export.int8 import to_int8
from dcpose_trt.export.onnx_export import atomic_save_onnx, get_metadata, set_metadata
from dcpose_trt.export.qdq import check_qdq, int8_excluded_nodes

log = logging.getLogger(__name__)

PRECISIONS = QUANTIZED_PRECISIONS
CALIB_METHODS = ("minmax", "percentile", "entropy")


@dataclass(frozen=True)
class QuantizeConfig:
    """How to lower precision.

    Attributes:
        precision: ``fp16`` or ``int8``.
        calib: calibration source for INT8: a PoseTrack-layout dataset folder (GT boxes of ``calib_split``),
            a video file, or a folder of frames (both with ``calib_boxes``).
        calib_boxes: person boxes for a video/frames folder (``boxes.json`` or a COCO detection list).
        calib_samples: person crops to calibrate on. Defaults to 256.
        calib_split: dataset split for a PoseTrack-layout source. Defaults to ``val``.
        calib_method: ``minmax`` (default), ``percentile`` or ``entropy``.
        calib_batch: persons per calibration run. Defaults to 8 (fewer for crops above 256x192, see
            :func:`dcpose_trt.export.int8.calib_batch`: calibration memory grows with it).
        target: INT8 layout: ``tensorrt`` (default; symmetric Q/DQ around convs for strongly typed TensorRT
            networks) or ``cpu`` (ONNX Runtime's CPU recipe, U8S8 QOperator: faster than FP32 on ONNX
            Runtime's CPU provider, not buildable by TensorRT). See :func:`dcpose_trt.export.int8._layout`.
    """

    precision: str = "int8"
    calib: Path | None = None
    calib_boxes: Path | None = None
    calib_samples: int = 256
    calib_split: str = "val"
    calib_method: str = "minmax"
    calib_batch: int = 8
    target: str = "tensorrt"

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise InputError(f"unknown --precision {self.precision!r}; choose one of: {', '.join(PRECISIONS)}")
        if self.calib_method not in CALIB_METHODS:
            raise InputError(f"unknown calibration method {self.calib_method!r}; choose one of: "
                             f"{', '.join(CALIB_METHODS)}")
        if self.target not in INT8_TARGETS:
            raise InputError(f"unknown INT8 --target {self.target!r}; choose one of: {', '.join(INT8_TARGETS)}")
        if self.target != "tensorrt" and self.precision != "int8":
            raise InputError("--target is an INT8 layout; FP16 has one form")
        if self.precision == "int8":
            if self.calib is None:
                raise InputError("INT8 needs calibration on real person crops: give --calib VIDEO_OR_DIR "
                                 "(with --calib-boxes FILE unless it is a PoseTrack-layout dataset)")
            if not Path(self.calib).exists():
                raise InputError(f"calibration source not found: {self.calib}")
            if self.calib_boxes is not None and not Path(self.calib_boxes).is_file():
                raise InputError(f"boxes file not found: {self.calib_boxes}")
            if self.calib_samples < 1 or self.calib_batch < 1:
                raise InputError("--calib-samples and the calibration batch must be >= 1")


def quantize_onnx(onnx_in: str | os.PathLike, out: str | os.PathLike, cfg: QuantizeConfig) -> Path:
    """Write an FP16 or INT8 copy of an exported FP32 ONNX.

    Args:
        onnx_in: FP32 ONNX from :func:`~dcpose_trt.export.export_onnx` in any DCN form (INT8 calibrates
            a ``plugin`` export as its standard-``DeformConv`` equivalent, which ONNX Runtime runs, and
            writes the plugin nodes back), or one part of a ``--split`` export (INT8: the backbone is
            calibrated on single-frame crops, the head is kept FP32).
        out: the output ``.onnx``.
        cfg: precision and calibration settings.

    Returns:
        ``out``. Inputs and outputs keep their names and FP32 types, so every backend runs it as before.
        For a split-export folder, ``out`` is a folder that receives both converted parts.

    Raises:
        InputError: bad paths or settings. QuantizeError: calibration or conversion failed.
    """
    onnx = require("onnx", "onnx", "precision conversion")
    src, out = Path(onnx_in), Path(out)
    if src.is_dir():
        parts = [src / "backbone.onnx", src / "head.onnx"]
        if not all(p.is_file() for p in parts):
            raise InputError(f"{src} is a folder without backbone.onnx and head.onnx (a --split export)")
        if out.suffix == ".onnx":
            raise InputError(f"{src} is a split export: --out is a folder for its two parts, not {out}")
        out.mkdir(parents=True, exist_ok=True)
        for part in parts:  # each part is written atomically
            quantize_onnx(part, out / part.name, cfg)
        return out
    if not src.is_file():
        raise InputError(f"ONNX file not found: {src}")
    try:
        model = onnx.load(str(src))
    except Exception as exc:  # noqa: BLE001 - protobuf decode errors
        raise InputError(f"{src} is not an ONNX model ({type(exc).__name__})") from None
    meta = get_metadata(model)
    if META_PRESET not in meta or META_INPUT_SIZE not in meta:
        raise InputError(f"{src} has no dcpose_trt metadata; export it with 'dcpose-trt export'")
    if meta.get(META_PRECISION, "fp32") != "fp32":
        raise InputError(f"{src} is already {meta[META_PRECISION]}; convert the FP32 export")
    if cfg.target == "cpu" and meta.get(META_DEFORM) == "plugin":
        raise InputError(f"{src} is a --deform plugin export (TensorRT only); the cpu INT8 layout is for ONNX "
                         "Runtime: export with --deform deformconv")
    t0 = time.perf_counter()
    problems: list[str] = []
    if cfg.precision == "fp16":
        result = to_fp16(model)
    elif meta.get(META_PART) == "head":
        # Under INT8 the whole temporal head stays FP32 (INT8_EXCLUDED_SCOPES): the split head's INT8 copy
        # is the FP32 graph, marked int8 so that it pairs with the INT8 backbone.
        log.info("INT8: the temporal head stays FP32 (see INT8_EXCLUDED_SCOPES); copying it unchanged")
        result = model
    else:
        with tempfile.TemporaryDirectory(prefix="dcpose_int8_") as tmp:
            result = to_int8(src, Path(tmp) / "int8.onnx", cfg, meta)
        # Only the TensorRT layout must obey TensorRT's Q/DQ rules; the cpu layout is ONNX Runtime's own.
        problems = check_qdq(result, int8_excluded_nodes(model)) if cfg.target == "tensorrt" else []
    if problems:
        raise QuantizeError(f"the INT8 graph breaks the TensorRT Q/DQ rules: {problems[0]} "
                            f"(+{len(problems) - 1} more)")
    set_metadata(result, {**meta, META_PRECISION: cfg.precision})
    if cfg.precision == "int8":
        set_metadata(result, {META_CALIBRATION: f"{cfg.calib_method}, {cfg.calib}", META_INT8_TARGET: cfg.target})
    atomic_save_onnx(result, out)
    ops = Counter(n.op_type for n in result.graph.node)
    log.info("wrote %s (%s, %.1f MB, %d Q / %d DQ) in %.1f s", out, cfg.precision, out.stat().st_size / 1e6,
             ops.get("QuantizeLinear", 0), ops.get("DequantizeLinear", 0), time.perf_counter() - t0)
    return out
