"""FP16 ONNX from an FP32 export, with ONNX Runtime's ``float16.convert_float_to_float16``.

Weights and activations become FP16; network I/O, the margin normalisation and the deformable sampling
path (DCN node, GridSample grid arithmetic and the offset convs that produce the sampling coordinates)
stay FP32, with Casts at the borders (the regions are :mod:`dcpose_trt.export.qdq`'s graph walks).
Between two FP32 nodes the converter still writes a Cast(FLOAT16) -> Cast(FLOAT) pair (it casts every
blocked node's output to FP16 and every blocked node's input to FP32), which rounded the DCN offsets to
FP16 on their way from the offset Conv to the DCN: :func:`drop_cast_round_trips` removes such pairs.
"""

from __future__ import annotations

import logging
import warnings
from typing import Any

from dcpose_trt._deps import require
from dcpose_trt.export.qdq import dcn_coordinate_nodes, margin_nodes

log = logging.getLogger(__name__)


def to_fp16(model: Any) -> Any:
    """FP16 copy of an FP32 model; I/O, margin normalisation and DCN coordinates stay FP32."""
    # ONNX Runtime's maintained copy of onnxconverter-common's converter (same API); the standalone
    # package's 1.16 release writes Casts with stale types around Resize, which ORT refuses to load.
    fp16 = require("onnxruntime.transformers.float16", "onnx", "FP16 conversion")
    block = sorted({*dcn_coordinate_nodes(model), *margin_nodes(model)})
    log.info("FP16: keeping %d nodes in FP32 (DCN sampling path, margin normalisation)", len(block))
    with warnings.catch_warnings():
        # Weights below FP16's range are flushed to ±1e-7 with one warning each; that is expected.
        warnings.simplefilter("ignore", UserWarning)
        out = fp16.convert_float_to_float16(model, keep_io_types=True, node_block_list=block,
                                            disable_shape_infer=False)
    dropped = drop_cast_round_trips(out)
    log.info("FP16: removed %d Cast(FLOAT16)->Cast(FLOAT) round trips between FP32 nodes", dropped)
    return out


def _float32_tensors(model: Any) -> set[str]:
    """Names of the tensors the graph declares FP32 (inputs, value_info, outputs, initializers)."""
    onnx = require("onnx", "onnx", "FP16 conversion")
    g = model.graph
    out = {v.name for v in (*g.input, *g.value_info, *g.output)
           if v.type.tensor_type.elem_type == onnx.TensorProto.FLOAT}
    out |= {t.name for t in g.initializer if t.data_type == onnx.TensorProto.FLOAT}
    return out


def drop_cast_round_trips(model: Any) -> int:
    """Remove ``x(FP32) -> Cast(FLOAT16) -> Cast(FLOAT) -> consumers`` round trips in place: the consumers
    read ``x``; the FP16 Cast stays only if something else reads it. Returns how many pairs were removed.

    Only pairs whose input ``x`` is declared FP32 and whose output is not a graph output are touched, so
    types and graph I/O are unchanged; what goes away is exactly the rounding to FP16.
    """
    onnx = require("onnx", "onnx", "FP16 conversion")
    g = model.graph
    fp32 = _float32_tensors(model)
    graph_outputs = {o.name for o in g.output}

    def cast_to(node: Any) -> int | None:
        return next((a.i for a in node.attribute if a.name == "to"), None) if node.op_type == "Cast" else None

    producer = {o: n for n in g.node for o in n.output}
    rename: dict[str, str] = {}
    dead: set[int] = set()
    for n in g.node:
        if cast_to(n) != onnx.TensorProto.FLOAT or n.output[0] in graph_outputs:
            continue
        first = producer.get(n.input[0])
        if first is None or cast_to(first) != onnx.TensorProto.FLOAT16 or first.input[0] not in fp32:
            continue
        rename[n.output[0]] = first.input[0]
        dead.add(id(n))
    if not rename:
        return 0
    for n in g.node:
        for i, name in enumerate(n.input):
            if name in rename:
                n.input[i] = rename[name]
    used = {name for n in g.node if id(n) not in dead for name in n.input} | graph_outputs
    for n in g.node:  # FP16 Casts that nothing reads any more
        if cast_to(n) == onnx.TensorProto.FLOAT16 and n.output[0] not in used:
            dead.add(id(n))
    keep = [n for n in g.node if id(n) not in dead]
    del g.node[:]
    g.node.extend(keep)
    removed = set(rename)
    kept_vi = [v for v in g.value_info if v.name not in removed]
    del g.value_info[:]
    g.value_info.extend(kept_vi)
    return len(rename)
