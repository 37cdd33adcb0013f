"""torch → ONNX export (three deformable-conv forms, split backbone/head) and FP16/INT8 ONNX.

``export_onnx(model, out, ExportConfig(...))`` writes the graph; ``quantize_onnx(onnx, out,
QuantizeConfig(...))`` lowers its precision (:mod:`.fp16`, :mod:`.int8`, with the graph walks and Q/DQ
checks of :mod:`.qdq`). onnx, onnxscript and onnxruntime are imported when used.
"""

from __future__ import annotations

from dcpose_trt.export.deform_ops import (
    DEFORM_FORMS,
    make_deform_translation,
    plugin_identity,
    plugin_op_schema,
    translation_table,
)
from dcpose_trt.export.onnx_export import ExportConfig, export_graph, export_onnx
from dcpose_trt.export.onnx_graph import atomic_save_onnx, graph_diff_except_dcn
from dcpose_trt.export.precision import quantize_onnx
from dcpose_trt.export.qdq import check_qdq, int8_excluded_nodes
from dcpose_trt.export.quantize_config import QuantizeConfig

__all__ = [
    "DEFORM_FORMS",
    "ExportConfig",
    "QuantizeConfig",
    "atomic_save_onnx",
    "check_qdq",
    "export_graph",
    "export_onnx",
    "graph_diff_except_dcn",
    "int8_excluded_nodes",
    "make_deform_translation",
    "plugin_identity",
    "plugin_op_schema",
    "quantize_onnx",
    "translation_table",
]
