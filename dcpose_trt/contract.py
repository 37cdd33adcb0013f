"""The contract between export, engine, plugin and runtime: one place for every name they must agree on.

Import-pure (no torch, onnx or tensorrt), at the bottom of the stack, so every stage may import it.
Changing the plugin domain or op name means editing one line here.

- ``META_*``: keys of the exported ONNX ``metadata_props`` (written by :mod:`dcpose_trt.export`,
  read by the engine builder, the ONNX Runtime backend and the plan sidecar).
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
DEFAULT_DEFORM_FORM = "deformconv"

PRECISIONS = ("fp32", "fp16", "int8")
QUANTIZED_PRECISIONS = ("fp16", "int8")  # what `dcpose-trt quantize --precision` accepts
#: INT8 layouts: ``tensorrt`` (symmetric S8S8 Q/DQ, what strongly typed TensorRT networks need) and
#: ``cpu`` (ONNX Runtime's CPU recipe: U8S8 QOperator, what its x86 integer kernels are built for).
INT8_TARGETS = ("tensorrt", "cpu")

__all__ = [
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
