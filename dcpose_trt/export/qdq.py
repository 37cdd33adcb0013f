"""Graph walks over an exported DCPose ONNX and the TensorRT Q/DQ rules (architecture.md, "Precision").

Regions are found by structure (DCN nodes and their inputs) and by the node names our exporter writes
(``<module path>/<OpType>``): :func:`dcn_coordinate_nodes` and :func:`margin_nodes` stay FP32 under FP16,
:func:`int8_excluded_nodes` stay FP32 under INT8, and :func:`check_qdq` tells whether an INT8 graph is
buildable as a strongly typed TensorRT network.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

import numpy as np

from dcpose_trt._deps import require
from dcpose_trt.contract import DCN_OP_TYPES, read_model_metadata

log = logging.getLogger(__name__)

# Modules that stay high precision under INT8 (node-name prefixes written by our exporter).
# Only the HRNet backbone (minus its first and last conv) is quantized. The temporal head stays FP32:
# measured on the bundled model (synthetic val, first 120 frames, MinMax calibration on 256 train crops),
# quantizing it too left only 85.4% of joints within one heatmap cell of FP32 (-1.5 AP); keeping just
# offset_mask_combine_conv (the features the DCN offsets are predicted from) in FP32 gave 96.7%; keeping
# the whole head in FP32 gave 98.2% (+0.06 AP). The head refines heatmaps and predicts sampling
# coordinates, both of which need more than 8 bits; the backbone is most of the compute of W32/W48.
#: Node-name prefix of the HRNet backbone (the only part INT8 quantizes).
BACKBONE_SCOPE = "rough_pose_estimation_net."

INT8_EXCLUDED_SCOPES = (
    "rough_pose_estimation_net.conv1/",  # first conv: sees raw pixels
    "rough_pose_estimation_net.final_layer/",  # backbone heatmap conv
    "support_temporal_fuse.",  # Pose Temporal Merger: convs over heatmaps
    "diff_temporal_fuse.",  # Pose Residual Fusion: convs over heatmap differences
    "offset_mask_combine_conv.",  # the features the DCN offsets and masks are predicted from
    "offsets_list.",  # DCN sampling offsets
    "masks_list.",  # DCN modulation
    "modulated_deform_conv_list.",  # the DCN itself (gridsample form: its strided aggregation conv)
)



class _Graph:
    """Producer/consumer maps and value types of an ``onnx.ModelProto``."""

    def __init__(self, model: Any):
        onnx = require("onnx", "onnx", "precision conversion")
        self.model = model
        self.nodes = list(model.graph.node)
        self.producer = {o: n for n in self.nodes for o in n.output}
        self.consumers: dict[str, list[Any]] = {}
        for n in self.nodes:
            for i in n.input:
                self.consumers.setdefault(i, []).append(n)
        self.inits = {t.name for t in model.graph.initializer}
        self.inputs = {v.name for v in model.graph.input}
        try:
            inferred = onnx.shape_inference.infer_shapes(model)
        except Exception:  # noqa: BLE001 - custom domains may stop inference; types are a refinement only
            inferred = model
        self.elem_type = {v.name: v.type.tensor_type.elem_type
                          for v in [*inferred.graph.value_info, *inferred.graph.input, *inferred.graph.output]}
        for t in model.graph.initializer:
            self.elem_type[t.name] = t.data_type

    def is_float(self, name: str) -> bool:
        return self.elem_type.get(name, 1) in (1, 10, 11)  # FLOAT, FLOAT16, DOUBLE; unknown → float


def dcn_coordinate_nodes(model: Any) -> list[str]:
    """Names of the nodes that compute deformable sampling coordinates, plus the DCN nodes themselves.

    DCN nodes are ``DeformConv`` (any domain) and ``GridSample``. From the offset input
    (``DeformConv`` input 2) or the grid (``GridSample`` input 1) we walk up float edges through the
    coordinate arithmetic and stop at (and include) the Conv that produces the offsets. ``Shape``
    nodes are not crossed: they only read sizes.
    """
    g = _Graph(model)
    keep: set[str] = set()
    stack: list[str] = []
    for n in g.nodes:
        if n.op_type in DCN_OP_TYPES:
            keep.add(n.name)
            stack.append(n.input[2])
        elif n.op_type == "GridSample":
            keep.add(n.name)
            stack.append(n.input[1])
    seen: set[str] = set()
    while stack:
        t = stack.pop()
        if t in seen or t in g.inits or t in g.inputs or not g.is_float(t):
            continue
        seen.add(t)
        node = g.producer.get(t)
        if node is None or node.op_type in ("Shape", "Constant"):
            continue
        keep.add(node.name)
        if node.op_type == "Conv":
            continue  # the offset conv: its own input is ordinary features
        stack.extend(node.input)
    return sorted(keep)


def margin_nodes(model: Any) -> list[str]:
    """Names of the nodes that only transform ``margin`` (its normalisation into frame weights).

    A node belongs when one of its float inputs comes from ``margin`` and every other float input is a
    constant; the first node that mixes in a feature map (``prev * wp``) ends the region.
    """
    g = _Graph(model)
    if "margin" not in g.inputs:
        return []
    derived = {"margin"}
    keep: list[str] = []
    for n in g.nodes:  # graph order is topological
        floats = [i for i in n.input if i and g.is_float(i)]
        from_margin = [i for i in floats if i in derived]
        others = [i for i in floats if i not in derived and i not in g.inits
                  and not (i in g.producer and g.producer[i].op_type == "Constant")]
        if from_margin and not others:
            keep.append(n.name)
            derived.update(n.output)
    return keep


def int8_excluded_nodes(model: Any) -> list[str]:
    """Conv nodes that stay high precision under INT8 (see ``INT8_EXCLUDED_SCOPES``).

    By name (our exporter's ``<module path>/<OpType>``), and by structure: the convs that produce a
    DCN's offsets or mask, and the convs that read graph inputs through no other conv (the first conv).
    """
    g = _Graph(model)
    out = {n.name for n in g.nodes if n.op_type == "Conv" and n.name.startswith(INT8_EXCLUDED_SCOPES)}
    for n in g.nodes:
        if n.op_type in DCN_OP_TYPES:
            for t in n.input[2:5:2]:  # offset, mask
                p = g.producer.get(t)
                if p is not None and p.op_type == "Conv":
                    out.add(p.name)
    if g.inputs & {"frames", "image"}:
        # Convs reached from a pixel input without crossing another conv.
        stack = [i for i in g.inputs if i in ("frames", "image")]
        seen: set[str] = set()
        while stack:
            t = stack.pop()
            for c in g.consumers.get(t, []):
                if c.name in seen:
                    continue
                seen.add(c.name)
                if c.op_type == "Conv":
                    out.add(c.name)
                elif c.op_type != "Shape":
                    stack.extend(c.output)
    missing = [p for p in ("rough_pose_estimation_net.final_layer/",)
               if read_model_metadata(model).part in ("full", "backbone")
               and not any(n.name.startswith(p) for n in g.nodes)]
    if missing:
        log.warning("no node named %s* (not exported by dcpose-trt?); the final heatmap conv may get quantized",
                    missing[0])
    return sorted(out)


def check_qdq(model: Any, excluded: Iterable[str] = ()) -> list[str]:
    """Violations of the TensorRT strongly-typed Q/DQ rules (empty list: fine).

    Rules: zero points are int8 and 0 (symmetric); no uint8 tensor anywhere; Q/DQ only on the inputs
    and outputs of Convs that are not ``excluded``; every quantized weight is per-channel (axis 0).
    """
    onnx = require("onnx", "onnx", "Q/DQ check")
    from onnx import numpy_helper

    g = _Graph(model)
    init = {t.name: t for t in model.graph.initializer}
    excluded = set(excluded)
    problems = [f"uint8 initializer {t.name}" for t in model.graph.initializer
                if t.data_type == onnx.TensorProto.UINT8]
    for name, et in g.elem_type.items():
        if et == onnx.TensorProto.UINT8:
            problems.append(f"uint8 tensor {name}")
    allowed_convs = {n.name for n in g.nodes if n.op_type == "Conv" and n.name not in excluded}
    for n in g.nodes:
        if n.op_type not in ("QuantizeLinear", "DequantizeLinear"):
            continue
        if len(n.input) < 3 or n.input[2] not in init:
            problems.append(f"{n.name}: no constant zero point")
        else:
            zp = init[n.input[2]]
            if zp.data_type != onnx.TensorProto.INT8 or np.any(numpy_helper.to_array(zp) != 0):
                problems.append(f"{n.name}: zero point is not int8 0")
        if n.op_type == "DequantizeLinear":
            users = g.consumers.get(n.output[0], [])
            src = g.producer.get(n.input[0])
            # A DQ feeds an allowed conv (input side), or follows the Q of an allowed conv's output.
            feeds_conv = any(u.name in allowed_convs for u in users)
            after_conv_q = src is not None and src.op_type == "QuantizeLinear" and \
                (g.producer.get(src.input[0]) is not None and g.producer[src.input[0]].name in allowed_convs)
            if not (feeds_conv or after_conv_q):
                problems.append(f"{n.name}: Q/DQ outside an INT8 conv (feeds {[u.name for u in users]})")
            if n.input[0] in init:  # weight DQ: per-channel along the output channels
                scale = init.get(n.input[1])
                axis = next((a.i for a in n.attribute if a.name == "axis"), 1)
                if scale is None or len(scale.dims) != 1 or axis != 0:
                    problems.append(f"{n.name}: weight not quantized per channel on axis 0")
    for n in g.nodes:
        if n.name in excluded or (n.op_type in DCN_OP_TYPES or n.op_type == "GridSample"):
            for i in n.input:
                p = g.producer.get(i)
                if p is not None and p.op_type == "DequantizeLinear":
                    problems.append(f"{n.name}: must stay high precision but reads a DequantizeLinear")
    return problems
