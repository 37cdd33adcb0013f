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
checks); the settings are :class:`~dcpose_trt.export.quantize_config.QuantizeConfig`; this module holds the stage
function :func:`quantize_onnx`.
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path

from dcpose_trt._deps import require
from dcpose_trt.contract import read_model_metadata
from dcpose_trt.errors import InputError, QuantizeError
from dcpose_trt.export.fp16 import to_fp16
from dcpose_trt.export.int8 import to_int8
from dcpose_trt.export.onnx_graph import atomic_save_onnx, set_metadata
from dcpose_trt.export.qdq import check_qdq, int8_excluded_nodes
from dcpose_trt.export.quantize_config import QuantizeConfig

log = logging.getLogger(__name__)

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
    if cfg.target == "openvino":
        raise InputError("--target openvino quantizes a checkpoint into an OpenVINO IR, not an ONNX: give "
                         "--model CKPT instead of --onnx")
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
    info = read_model_metadata(model, source=str(src)).require("preset", "input_size")
    if info.precision != "fp32":
        raise InputError(f"{src} is already {info.precision}; convert the FP32 export")
    if cfg.target == "cpu" and info.deform == "plugin":
        raise InputError(f"{src} is a --deform plugin export (TensorRT only); the cpu INT8 layout is for ONNX "
                         "Runtime: export with --deform deformconv")
    t0 = time.perf_counter()
    problems: list[str] = []
    if cfg.precision == "fp16":
        result = to_fp16(model)
    elif info.part == "head":
        # Under INT8 the whole temporal head stays FP32 (INT8_EXCLUDED_SCOPES): the split head's INT8 copy
        # is the FP32 graph, marked int8 so that it pairs with the INT8 backbone.
        log.info("INT8: the temporal head stays FP32 (see INT8_EXCLUDED_SCOPES); copying it unchanged")
        result = model
    else:
        with tempfile.TemporaryDirectory(prefix="dcpose_int8_") as tmp:
            result = to_int8(src, Path(tmp) / "int8.onnx", cfg, info)
        # Only the TensorRT layout must obey TensorRT's Q/DQ rules; the cpu layout is ONNX Runtime's own.
        problems = check_qdq(result, int8_excluded_nodes(model)) if cfg.target == "tensorrt" else []
    if problems:
        raise QuantizeError(f"the INT8 graph breaks the TensorRT Q/DQ rules: {problems[0]} "
                            f"(+{len(problems) - 1} more)")
    written = replace(info, precision=cfg.precision)
    if cfg.precision == "int8":
        written = replace(written, calibration=f"{cfg.calib_method}, {cfg.calib}", int8_target=cfg.target)
    set_metadata(result, written.props())
    atomic_save_onnx(result, out)
    ops = Counter(n.op_type for n in result.graph.node)
    log.info("wrote %s (%s, %.1f MB, %d Q / %d DQ) in %.1f s", out, cfg.precision, out.stat().st_size / 1e6,
             ops.get("QuantizeLinear", 0), ops.get("DequantizeLinear", 0), time.perf_counter() - t0)
    return out
