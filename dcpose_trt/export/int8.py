"""INT8 (Q/DQ) ONNX from an FP32 export: calibration on real person crops and ``quantize_static``.

``onnxruntime.quantization.quantize_static`` in QDQ format writes symmetric INT8 Q/DQ (zero point 0) with
per-channel weights on the HRNet backbone's convolutions, calibrated on person crops cut by the inference
crop code (:func:`~dcpose_trt.data.transforms.make_inputs`) from frames read by :mod:`dcpose_trt.data.video`.
The convs of :func:`~dcpose_trt.export.qdq.int8_excluded_nodes` stay FP32.

A ``plugin`` export (which ONNX Runtime cannot run) is calibrated as the equivalent standard-``DeformConv``
graph (the plugin node has ``DeformConv``'s inputs and attributes plus ``plugin_namespace``); the DCN
nodes stay FP32, so the Q/DQ graph only needs its DCN nodes turned back into plugin nodes.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from dcpose_trt._deps import require
from dcpose_trt.contract import (
    DCN_DOMAIN,
    DCN_DOMAIN_VERSION,
    DCN_OP_TYPE,
    ONNX_DEFORM_OP,
    ONNX_DEFORM_OPSET,
    PLUGIN_NAMESPACE,
    OnnxModelInfo,
)
from dcpose_trt.errors import InputError, QuantizeError
from dcpose_trt.export.qdq import BACKBONE_SCOPE, int8_excluded_nodes

if TYPE_CHECKING:
    from dcpose_trt.export.quantize_config import QuantizeConfig

log = logging.getLogger(__name__)


# ----------------------------------------------------------------------------------------------------
# Plugin form <-> standard DeformConv (the plugin node has ONNX DeformConv's inputs and attributes)
# ----------------------------------------------------------------------------------------------------


def has_plugin_nodes(model: Any) -> bool:
    """Whether ``model`` has a ``dcpose_trt`` plugin DCN node (``--deform plugin`` export)."""
    return any(n.op_type == DCN_OP_TYPE and n.domain == DCN_DOMAIN for n in model.graph.node)


def plugin_to_standard(model: Any) -> tuple[Any, list[str]]:
    """A copy of a plugin-form model whose plugin nodes are standard ONNX ``DeformConv`` (opset >= 19).

    The plugin node has ONNX ``DeformConv``'s inputs and attributes plus ``plugin_namespace``
    (:mod:`~dcpose_trt.export.deform_ops`), so the copy is the ``--deform deformconv`` graph of the same
    weights, which ONNX Runtime runs.
    Returns (copy, names of the rewritten nodes).
    """
    onnx = require("onnx", "onnx", "plugin-form conversion")
    out = onnx.ModelProto()
    out.CopyFrom(model)
    names = []
    for n in out.graph.node:
        if n.op_type == DCN_OP_TYPE and n.domain == DCN_DOMAIN:
            n.domain = ""
            n.op_type = ONNX_DEFORM_OP
            keep = [a for a in n.attribute if a.name != "plugin_namespace"]
            del n.attribute[:]
            n.attribute.extend(keep)
            names.append(n.name)
    if len(set(names)) != len(names) or "" in names:
        raise QuantizeError("the plugin nodes need unique names to be restored after quantization")
    imports = [o for o in out.opset_import if o.domain != DCN_DOMAIN]
    for o in imports:
        if o.domain in ("", "ai.onnx") and o.version < ONNX_DEFORM_OPSET:
            o.version = ONNX_DEFORM_OPSET
    del out.opset_import[:]
    out.opset_import.extend(imports)
    return out, names


def standard_to_plugin(model: Any, names: Iterable[str]) -> Any:
    """Turn the standard ``DeformConv`` nodes called ``names`` back into plugin nodes, in place."""
    onnx = require("onnx", "onnx", "plugin-form conversion")
    wanted = set(names)
    found = set()
    for n in model.graph.node:
        if n.name in wanted and n.op_type == ONNX_DEFORM_OP and n.domain in ("", "ai.onnx"):
            n.op_type, n.domain = DCN_OP_TYPE, DCN_DOMAIN
            n.attribute.append(onnx.helper.make_attribute("plugin_namespace", PLUGIN_NAMESPACE))
            found.add(n.name)
    if found != wanted:
        raise QuantizeError(f"quantization lost plugin nodes: {sorted(wanted - found)[:3]}")
    if not any(o.domain == DCN_DOMAIN for o in model.opset_import):
        model.opset_import.append(onnx.helper.make_opsetid(DCN_DOMAIN, DCN_DOMAIN_VERSION))
    return model


# ----------------------------------------------------------------------------------------------------
# Calibration data: real person crops through the inference crop code
# ----------------------------------------------------------------------------------------------------


def calibration_crops(cfg: QuantizeConfig, image_size: tuple[int, int], mean: tuple[float, ...],
                      std: tuple[float, ...]) -> np.ndarray:
    """Up to ``cfg.calib_samples`` real person crops ``float32[N, 9, H, W]`` (never random data).

    Windows come from a PoseTrack-layout folder (``annotations/<split>/*.json``, GT boxes unless
    ``calib_boxes``) or a video / frames folder with ``calib_boxes``; each is cut by
    :func:`~dcpose_trt.data.transforms.make_inputs`, exactly as at inference.
    """
    from dcpose_trt.data.posetrack import load_split
    from dcpose_trt.data.transforms import clean_boxes, make_inputs
    from dcpose_trt.data.video import Window, posetrack_windows, video_windows

    src = Path(cfg.calib)  # type: ignore[arg-type]
    windows: Iterable[Window]
    if src.is_dir() and (src / "annotations" / cfg.calib_split).is_dir():
        index = load_split(src, cfg.calib_split)
        windows = ((frames, boxes) for _, _, frames, boxes in posetrack_windows(index, cfg.calib_boxes))
    elif cfg.calib_boxes is None:
        raise InputError(f"{src} is not a PoseTrack-layout dataset (no annotations/{cfg.calib_split}); "
                         "give its person boxes with --calib-boxes FILE")
    else:
        windows = video_windows(src, cfg.calib_boxes)
    chunks, n = [], 0
    for window, boxes in windows:
        frames, _, _ = make_inputs(window, clean_boxes(boxes), image_size, mean, std)
        chunks.append(frames[: cfg.calib_samples - n])
        n += len(chunks[-1])
        if n >= cfg.calib_samples:
            break
    if n == 0:
        raise QuantizeError(f"no person crops found in {src}; check the boxes file and the split")
    if n < cfg.calib_samples:
        log.warning("only %d person crops in %s (asked for %d); calibrating on those", n, src, cfg.calib_samples)
    return np.concatenate(chunks, axis=0)


#: Pixels of the person crops in one calibration run (8 persons of 256x192). ONNX Runtime's calibration
#: session adds a ReduceMin/ReduceMax pair on every tensor, so a run's activations all stay alive: the whole
#: w48 model (384x288) at 8 persons per run peaked at ~20 GB here and the next calibration was OOM-killed at
#: 24 GB. Larger crops get fewer persons per run; the ranges (min/max over every run) do not depend on it.
_CALIB_PIXELS_PER_RUN = 8 * 256 * 192


def calib_batch(persons: int, image_size: tuple[int, int]) -> int:
    """Persons per calibration run: at most ``persons``, and at most :data:`_CALIB_PIXELS_PER_RUN` of crops."""
    h, w = image_size
    return max(1, min(persons, _CALIB_PIXELS_PER_RUN // (h * w)))


class _CropReader:
    """``onnxruntime.quantization.CalibrationDataReader`` over crops, ``calib_batch`` persons per run."""

    def __init__(self, crops: np.ndarray, batch: int, input_names: list[str]):
        self.crops, self.batch, self.names = crops, batch, input_names
        self.pos = 0

    def get_next(self) -> dict[str, np.ndarray] | None:
        if self.pos >= len(self.crops):
            return None
        f = self.crops[self.pos : self.pos + self.batch]
        self.pos += self.batch
        if self.names == ["image"]:  # a split backbone: the three frames' crops are three backbone inputs
            return {"image": np.ascontiguousarray(f.reshape(-1, 3, *f.shape[2:]))}
        return {"frames": f, "margin": np.ones((len(f), 2), np.float32)}

    def rewind(self) -> None:
        self.pos = 0


class _DropPreprocessAdvice(logging.Filter):
    """Drops ONNX Runtime's "Please consider (to run) pre-processing before quantization" warnings."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "pre-processing before quantization" not in record.getMessage()


@contextlib.contextmanager
def _no_preprocess_advice() -> Iterator[None]:
    """Silence ORT's advice to run ``quant_pre_process`` (printed twice per model, on the root logger).

    Its pre-processing is shape inference plus ORT graph optimisation; our export already ran onnxslim
    (constant folding, shape inference), and ORT-specific fusions would put ops TensorRT cannot parse
    into the graph, so the advice does not apply here.
    """
    filt = _DropPreprocessAdvice()
    root = logging.getLogger()
    targets = [root, *root.handlers]
    for t in targets:
        t.addFilter(filt)
    try:
        yield
    finally:
        for t in targets:
            t.removeFilter(filt)


def _layout(q: Any, target: str) -> dict[str, Any]:
    """``quantize_static`` arguments of the two INT8 layouts (``cfg.target``).

    ``tensorrt``: symmetric INT8 activations and weights (zero point 0) as explicit Q/DQ around convs only,
    bias float; what a strongly typed TensorRT network fuses into INT8 kernels (:func:`check_qdq`).

    ``cpu``: ONNX Runtime's own CPU recipe (its quantization docs, "Quantization on CPU"): asymmetric uint8
    activations x symmetric int8 per-channel weights (U8S8), QOperator format (``QLinearConv``,
    ``QLinearAdd``, ... with ReLU folded into the output range), every op type. Measured on the tiny
    backbone (README, "INT8 on ONNX Runtime's CPU provider"): the TensorRT layout runs 34 of 59 convs as
    FP32 behind runtime dequantisation and is slower than FP32; this one runs every conv on the integer
    kernels. Weights are 7-bit (``reduce_range``): on AVX2 without VNNI, ONNX Runtime's U8S8 kernels sum
    u8 x s8 pairs into 16 bits (``vpmaddubsw``), which saturates above 32767 (the quantization docs' FAQ);
    7-bit weights (|w| <= 64) keep a pair at most 2 * 255 * 64 = 32640, so every x86 kernel (AVX2, AVX-512,
    VNNI) computes the same integers and the fidelity measured on one CPU holds on the others. Measured
    (bundled model, 150 synthetic val frames): 98.95 % of joints within one heatmap cell of PyTorch FP32 with
    7-bit weights, 99.06 % with 8-bit.
    """
    if target == "cpu":
        return {"quant_format": q.QuantFormat.QOperator, "activation_type": q.QuantType.QUInt8,
                "weight_type": q.QuantType.QInt8, "reduce_range": True}
    return {
        "quant_format": q.QuantFormat.QDQ,
        "op_types_to_quantize": ["Conv"],
        "reduce_range": False,
        "activation_type": q.QuantType.QInt8,  # symmetric int8 activations: what TensorRT's Q/DQ needs
        "weight_type": q.QuantType.QInt8,
        "extra_options": {
            "ActivationSymmetric": True,
            "WeightSymmetric": True,
            # Bias stays float: TensorRT folds it into the INT8 conv itself.
            "QuantizeBias": False,
            # No "CalibMaxIntermediateOutputs": ORT 1.32's MinMax calibrator *drops* the collected batches
            # when that limit is reached instead of folding them into the ranges, so with it calibration
            # saw only the last few crops (or none: "No data is collected").
        },
    }


def to_int8(model_path: Path, out_path: Path, cfg: QuantizeConfig, info: OnnxModelInfo) -> Any:
    """INT8 Q/DQ model via ``onnxruntime.quantization.quantize_static``; returns the ``onnx.ModelProto``.

    ``info``: the FP32 model's metadata (its crop size and normalisation make the calibration crops).
    """
    onnx = require("onnx", "onnx", "INT8 quantization")
    q = require("onnxruntime.quantization", "onnx", "INT8 quantization")
    model = onnx.load(str(model_path))
    names = [i.name for i in model.graph.input]
    if names not in (["frames", "margin"], ["image"]):
        raise QuantizeError(f"INT8 calibration needs a whole DCPose model (inputs frames, margin) or a split "
                            f"backbone (input image); {model_path} has {names}")
    plugin_nodes: list[str] = []
    if has_plugin_nodes(model):
        # ONNX Runtime cannot run the plugin node: calibrate and quantize the equivalent standard-DeformConv
        # graph (same weights, same node names), then turn its DCN nodes back into plugin nodes.
        model, plugin_nodes = plugin_to_standard(model)
        model_path = out_path.with_name("standard_dcn.onnx")
        onnx.save(model, str(model_path))
        log.info("INT8: calibrating the plugin graph as its standard DeformConv equivalent (%d nodes)",
                 len(plugin_nodes))
    h, w = info.require("input_size").input_size  # type: ignore[misc]
    mean = info.mean or (0.485, 0.456, 0.406)  # ImageNet's, as every preset uses
    std = info.std or (0.229, 0.224, 0.225)
    t0 = time.perf_counter()
    crops = calibration_crops(cfg, (h, w), mean, std)
    log.info("calibration: %d person crops read in %.1f s", len(crops), time.perf_counter() - t0)
    exclude = int8_excluded_nodes(model)
    if cfg.target == "cpu":
        # The QOperator quantizer rewrites every op type it knows (Add, Relu, Resize, Concat, Mul, ...), not
        # only convs: everything outside the HRNet backbone (the temporal head and the unnamed glue between
        # them, e.g. the heatmap differences) stays FP32, like the TensorRT layout's head.
        exclude = sorted({*exclude, *(n.name for n in model.graph.node if not n.name.startswith(BACKBONE_SCOPE))})
    log.info("INT8 (%s layout): %d nodes stay FP32 (the first conv, the backbone's heatmap conv, the temporal "
             "head; -vv lists them)", cfg.target, len(exclude))
    log.debug("INT8: nodes kept FP32: %s", ", ".join(exclude))
    method = {"minmax": q.CalibrationMethod.MinMax, "percentile": q.CalibrationMethod.Percentile,
              "entropy": q.CalibrationMethod.Entropy}[cfg.calib_method]
    t0 = time.perf_counter()
    with _no_preprocess_advice():
        batch = calib_batch(cfg.calib_batch, (h, w))
        if batch < cfg.calib_batch:
            log.info("INT8: %d persons per calibration run (crops of %dx%d; bounds the calibration memory)",
                     batch, h, w)
        q.quantize_static(str(model_path), str(out_path), _CropReader(crops, batch, names),
                          nodes_to_exclude=exclude, calibrate_method=method, per_channel=True,
                          **_layout(q, cfg.target))
    gc.collect()  # the calibration session (and its arena) goes now, not when the next part's calibration starts
    log.info("quantize_static done in %.1f s", time.perf_counter() - t0)
    result = onnx.load(str(out_path))
    if plugin_nodes:
        standard_to_plugin(result, plugin_nodes)
    return result
