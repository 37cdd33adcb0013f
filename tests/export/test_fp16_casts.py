"""Issue 23 finding 7: the FP16 ONNX must keep the DCN sampling offsets in FP32 end to end.

ONNX Runtime's ``convert_float_to_float16`` puts a Cast(FLOAT16) after every blocked (FP32) node and a
Cast(FLOAT) before every blocked node, so between two blocked nodes - the offset Conv and the DCN - the
offsets were rounded to FP16 and back, contradicting "FP32 sampling coordinates". Failed before the fix
(a Cast(FLOAT16) -> Cast(FLOAT) pair on every DCN's offset input), for both DCN forms.
"""

from __future__ import annotations

import pytest

from dcpose_trt.export import QuantizeConfig, quantize_onnx

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
FLOAT, FLOAT16 = onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16


def _cast_to(node) -> int:
    return next(a.i for a in node.attribute if a.name == "to")


def _path_casts(model, tensor: str) -> list[int]:
    """The Cast targets on the way from ``tensor`` back to the Conv that produces the offsets."""
    producer = {o: n for n in model.graph.node for o in n.output}
    casts, seen, stack = [], set(), [tensor]
    while stack:
        t = stack.pop()
        node = producer.get(t)
        if node is None or t in seen:
            continue
        seen.add(t)
        if node.op_type == "Cast":
            casts.append(_cast_to(node))
        if node.op_type in ("Conv", "Shape", "Constant"):
            continue
        stack.extend(node.input)
    return casts


@pytest.mark.parametrize("form", ["deformconv", "gridsample"])
def test_no_fp16_round_trip_on_the_sampling_path(exports, tmp_path, form):
    m = onnx.load(str(quantize_onnx(exports(form), tmp_path / f"{form}.fp16.onnx", QuantizeConfig("fp16"))))
    producer = {o: n for n in m.graph.node for o in n.output}
    pairs = [n.name for n in m.graph.node if n.op_type == "Cast" and _cast_to(n) == FLOAT
             and (p := producer.get(n.input[0])) is not None and p.op_type == "Cast" and _cast_to(p) == FLOAT16]
    assert not pairs, f"Cast(FLOAT16)->Cast(FLOAT) round trips: {pairs[:5]}"
    dcn = [n for n in m.graph.node if n.op_type in ("DeformConv", "GridSample")]
    assert dcn
    for n in dcn:
        coord = n.input[2] if n.op_type == "DeformConv" else n.input[1]
        assert FLOAT16 not in _path_casts(m, coord), f"{n.name}: its sampling coordinates pass through FP16"
