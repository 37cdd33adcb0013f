"""The contract between export, engine, plugin and runtime: one place for every name they must agree on.

Import-pure (no torch, onnx or tensorrt), at the bottom of the stack, so every stage may import it.
Changing the plugin domain or op name means editing one line here.

- ``META_*``: keys of the exported ONNX ``metadata_props``, written by :mod:`dcpose_trt.export` and read
  by everyone else through :func:`read_model_metadata` (a typed, checked :class:`OnnxModelInfo`).
- ``DCN_*`` / ``PLUGIN_*``: the ONNX node the ``--deform plugin`` export writes and the TensorRT plugin
  it resolves to. TensorRT's ONNX parser looks a node up by op type among its *built-in importers first,
  ignoring the domain* (onnx-tensorrt ``ModelImporter::parseNode``), and only then in the plugin
  registry by ``op_type == plugin name`` and ``plugin_namespace`` attribute (or, since 10.10, the node
  domain). So the op type must be a name that neither ONNX nor any onnx-tensorrt release imports
  natively: ``DeformConv`` went to the built-in importer (libnvinfer_plugin's ``ModulatedDeformConv2d``)
  on TensorRT 10.9-10.14. The lists of built-in importers per release are in
  :mod:`dcpose_trt.engine.trt_parser_ops`.
- ``DEFORM_FORMS``: the three ways the deformable convolution is exported.
- ``PRECISIONS`` / ``QUANTIZED_PRECISIONS`` / ``INT8_TARGETS``: precision names of exports and plans, and
  the two INT8 layouts.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from dcpose_trt._deps import require
from dcpose_trt.errors import InputError

# ModelProto.metadata_props keys written by the export and the quantize steps.
META_PRESET = "dcpose_trt.preset"
META_DEFORM = "dcpose_trt.deform"
META_PART = "dcpose_trt.part"
META_VERSION = "dcpose_trt.version"
META_INPUT_SIZE = "dcpose_trt.input_size"  # "HxW" of the crop
META_HEATMAP_SIZE = "dcpose_trt.heatmap_size"  # "hxw"
META_PRECISION = "dcpose_trt.precision"  # fp32 at export; the quantize step rewrites it
META_MEAN = "dcpose_trt.mean"
META_STD = "dcpose_trt.std"
META_CALIBRATION = "dcpose_trt.calibration"
META_INT8_TARGET = "dcpose_trt.int8_target"  # INT8 only: which runtime the Q/DQ layout was made for

# The standard ONNX operator (opset >= 19) of the ``deformconv`` form.
ONNX_DEFORM_OP = "DeformConv"
ONNX_DEFORM_OPSET = 19

# Our plugin node (``plugin`` form) and the TensorRT plugin it resolves to. The op type is also the
# plugin name (the parser's registry lookup key): it must stay out of onnx.defs and out of every
# onnx-tensorrt built-in importer list (tests/engine/test_parser_ops.py checks both).
DCN_OP_TYPE = "DcposeModulatedDeformConv2d"
DCN_DOMAIN = "dcpose_trt"
DCN_DOMAIN_VERSION = 1
PLUGIN_NAMESPACE = DCN_DOMAIN
PLUGIN_NAME = DCN_OP_TYPE
PLUGIN_ID = f"{PLUGIN_NAMESPACE}::{PLUGIN_NAME}"
PLUGIN_VERSION = "1"  # tensorrt.plugin registers every Quickly Deployable Plugin at version "1"

# Both node types that carry a deformable convolution (standard and plugin form).
DCN_OP_TYPES = frozenset({ONNX_DEFORM_OP, DCN_OP_TYPE})

# TensorRT's own plugin behind the standard ONNX DeformConv (libnvinfer_plugin).
BUILTIN_DCN_PLUGIN = "ModulatedDeformConv2d"
BUILTIN_PLUGIN_LIBRARY = "libnvinfer_plugin"

# Lowest GPU architecture of each hardware-compatibility level (TensorRT's HardwareCompatibilityLevel):
# our plugin's PTX is compiled for it, so it JITs on every GPU of the level (PTX runs on >= its target).
HARDWARE_COMPAT_MIN_ARCH = {"ampere+": 80}

DEFORM_FORMS = ("plugin", "deformconv", "gridsample")
#: The graphs an export writes: the whole model, or the backbone/head pair of ``--split``.
PARTS = ("full", "backbone", "head")
DEFAULT_DEFORM_FORM = "deformconv"

PRECISIONS = ("fp32", "fp16", "int8")
QUANTIZED_PRECISIONS = ("fp16", "int8")  # what `dcpose-trt quantize --precision` accepts
#: INT8 layouts: ``tensorrt`` (symmetric S8S8 Q/DQ, what strongly typed TensorRT networks need) and
#: ``cpu`` (ONNX Runtime's CPU recipe: U8S8 QOperator, what its x86 integer kernels are built for);
#: ``openvino`` is not an ONNX layout: an NNCF INT8 OpenVINO IR pair of a checkpoint (``quantize --target openvino``).
INT8_TARGETS = ("tensorrt", "cpu", "openvino")

__all__ = [
    "OnnxModelInfo",
    "PARTS",
    "read_model_metadata",
    "BUILTIN_DCN_PLUGIN",
    "BUILTIN_PLUGIN_LIBRARY",
    "DCN_DOMAIN",
    "DCN_DOMAIN_VERSION",
    "DCN_OP_TYPE",
    "DCN_OP_TYPES",
    "DEFAULT_DEFORM_FORM",
    "DEFORM_FORMS",
    "HARDWARE_COMPAT_MIN_ARCH",
    "INT8_TARGETS",
    "META_CALIBRATION",
    "META_DEFORM",
    "META_HEATMAP_SIZE",
    "META_INPUT_SIZE",
    "META_INT8_TARGET",
    "META_MEAN",
    "META_PART",
    "META_PRECISION",
    "META_PRESET",
    "META_STD",
    "META_VERSION",
    "ONNX_DEFORM_OP",
    "ONNX_DEFORM_OPSET",
    "PLUGIN_ID",
    "PLUGIN_NAME",
    "PLUGIN_NAMESPACE",
    "PLUGIN_VERSION",
    "PRECISIONS",
    "QUANTIZED_PRECISIONS",
]


# %% The typed reader of the ONNX metadata ---------------------------------------------------------------

# OnnxModelInfo field -> metadata key; the fields' order is the order the export writes them in.
_KEYS = {"preset": META_PRESET, "deform": META_DEFORM, "part": META_PART, "version": META_VERSION,
         "input_size": META_INPUT_SIZE, "heatmap_size": META_HEATMAP_SIZE, "precision": META_PRECISION,
         "mean": META_MEAN, "std": META_STD, "calibration": META_CALIBRATION, "int8_target": META_INT8_TARGET}
_CHOICES = {"deform": DEFORM_FORMS, "part": PARTS, "precision": PRECISIONS, "int8_target": INT8_TARGETS}


@dataclass(frozen=True)
class OnnxModelInfo:
    """The ``dcpose_trt.*`` metadata of an exported ONNX, typed and checked (:func:`read_model_metadata`).

    A field is None where the file does not carry its key (a foreign ONNX carries none); ``precision`` is
    ``"fp32"`` then, as the export writes. ``raw`` keeps every ``metadata_props`` entry, ours and others'.

    Attributes:
        preset: model preset name (``"tiny-128x96"``).
        deform: DCN form, one of :data:`DEFORM_FORMS`.
        part: one of :data:`PARTS`.
        version: the dcpose-trt version that exported it.
        input_size: crop ``(H, W)`` in pixels.
        heatmap_size: heatmap ``(h, w)``.
        precision: one of :data:`PRECISIONS` (the quantize step rewrites it).
        mean, std: per-channel RGB normalisation of the crops (3 floats each).
        calibration: INT8 only: ``"<method>, <source>"``.
        int8_target: INT8 only: one of :data:`INT8_TARGETS`.
    """

    preset: str | None = None
    deform: str | None = None
    part: str | None = None
    version: str | None = None
    input_size: tuple[int, int] | None = None
    heatmap_size: tuple[int, int] | None = None
    precision: str = "fp32"
    mean: tuple[float, float, float] | None = None
    std: tuple[float, float, float] | None = None
    calibration: str | None = None
    int8_target: str | None = None
    raw: Mapping[str, str] = field(default_factory=dict, compare=False)
    source: str = field(default="the model", compare=False)

    def require(self, *names: str) -> OnnxModelInfo:
        """``self`` when every field in ``names`` is set, else :class:`~dcpose_trt.errors.InputError`."""
        missing = [_KEYS[n] for n in names if getattr(self, n) is None]
        if missing:
            raise InputError(f"{self.source} has no {', '.join(missing)} metadata; export it with "
                             "'dcpose-trt export'")
        return self

    def props(self) -> dict[str, str]:
        """``metadata_props`` as the export writes them: ``raw`` updated with every field that is set."""
        out = dict(self.raw)
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name not in _KEYS or value is None:
                continue
            if f.name in ("input_size", "heatmap_size"):
                value = "x".join(str(v) for v in value)
            elif f.name in ("mean", "std"):
                value = ",".join(f"{v:g}" for v in value)
            out[_KEYS[f.name]] = str(value)
        return out


def read_model_metadata(model: Any, *, source: str | None = None) -> OnnxModelInfo:
    """The ``dcpose_trt.*`` metadata of ``model``, typed and checked.

    Args:
        model: an ``onnx.ModelProto`` (anything with ``metadata_props``), the path of an ``.onnx`` file
            (read without its external data; needs the ``onnx`` extra), or a ``{key: value}`` mapping
            (metadata kept elsewhere, e.g. an OpenVINO IR's ``rt_info``).
        source: how messages name the model; defaults to the path, else "the model".

    Raises:
        InputError: the file cannot be read as ONNX, or a value is malformed (an unknown precision, a size
            that is not ``HxW``, ...). Missing keys are not an error here: see :meth:`OnnxModelInfo.require`.
    """
    if isinstance(model, str | os.PathLike):
        source = source or str(model)
        raw = _read_props(model)
    elif isinstance(model, Mapping):
        raw = {str(k): str(v) for k, v in model.items()}
    elif hasattr(model, "metadata_props"):
        raw = {p.key: p.value for p in model.metadata_props}
    else:
        raise InputError(f"cannot read ONNX metadata from a {type(model).__name__}")
    source = source or "the model"
    values: dict[str, Any] = {}
    for name, key in _KEYS.items():
        text = raw.get(key)
        if text is None:
            continue
        if name in _CHOICES and text not in _CHOICES[name]:
            raise InputError(f"{source}: {key} is {text!r}, not one of {', '.join(_CHOICES[name])}; "
                             "re-export it with 'dcpose-trt export'")
        if name in ("input_size", "heatmap_size"):
            values[name] = _numbers(text, "x", int, 2, key, source)
        elif name in ("mean", "std"):
            values[name] = _numbers(text, ",", float, 3, key, source)
        else:
            values[name] = text
    return OnnxModelInfo(**values, raw=raw, source=source)


def _numbers(text: str, sep: str, kind: type, count: int, key: str, source: str) -> tuple[Any, ...]:
    """``"256x192"`` -> ``(256, 192)``, ``"0.485,0.456,0.406"`` -> floats; positive sizes only."""
    try:
        out = tuple(kind(v) for v in text.split(sep))
    except ValueError:
        out = ()
    if len(out) != count or (kind is int and min(out) < 1):
        shape = "HxW" if sep == "x" else ",".join(["v"] * count)
        raise InputError(f"{source}: {key} is {text!r}, expected {shape}; re-export it with 'dcpose-trt export'")
    return out


def _read_props(path: str | os.PathLike[str]) -> dict[str, str]:
    """``metadata_props`` of an ``.onnx`` file (the graph is parsed; external weights are not loaded)."""
    onnx = require("onnx", "onnx", "reading ONNX metadata")
    if not os.path.isfile(path):
        raise InputError(f"ONNX file not found: {path}")
    try:
        proto = onnx.load(os.fspath(path), load_external_data=False)
    except Exception as exc:  # noqa: BLE001 - protobuf decode errors have many types
        raise InputError(f"{path} is not an ONNX model ({type(exc).__name__})") from None
    return {p.key: p.value for p in proto.metadata_props}
