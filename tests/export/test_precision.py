"""FP16 and INT8 ONNX: they run in ONNX Runtime, and Q/DQ sits only where the precision rules allow."""

from __future__ import annotations

import logging

import numpy as np
import onnx
import pytest

from dcpose_trt.errors import InputError
from dcpose_trt.export import QuantizeConfig, check_qdq, get_metadata, int8_excluded_nodes, quantize_onnx
from dcpose_trt.runtime.ort_backend import OnnxRuntimeBackend


@pytest.fixture(scope="module")
def int8(exports, sample_clip, tmp_path_factory):
    out = tmp_path_factory.mktemp("int8") / "model.int8.onnx"
    cfg = QuantizeConfig("int8", calib=sample_clip, calib_boxes=sample_clip / "boxes.json", calib_samples=16)
    return quantize_onnx(exports("deformconv"), out, cfg)


def _inputs():
    rng = np.random.default_rng(0)
    return rng.standard_normal((3, 9, 128, 96)).astype(np.float32), np.ones((3, 2), np.float32)


def test_fp16_runs_and_keeps_fp32_where_required(exports, tmp_path):
    out = quantize_onnx(exports("deformconv"), tmp_path / "m.fp16.onnx", QuantizeConfig("fp16"))
    m = onnx.load(str(out))
    assert get_metadata(m)["dcpose_trt.precision"] == "fp16"
    assert all(v.type.tensor_type.elem_type == onnx.TensorProto.FLOAT for v in [*m.graph.input, *m.graph.output])
    inits = {t.name: t.data_type for t in m.graph.initializer}
    convs = [n for n in m.graph.node if n.op_type == "Conv"]
    # Backbone convs are FP16; the offset convs (sampling coordinates) stay FP32.
    assert inits[next(n for n in convs if n.name.startswith("rough_pose_estimation_net.stage2")).input[1]] == \
        onnx.TensorProto.FLOAT16
    assert all(inits[n.input[1]] == onnx.TensorProto.FLOAT for n in convs if n.name.startswith("offsets_list."))
    frames, margin = _inputs()
    ref = OnnxRuntimeBackend(exports("deformconv")).infer(frames, margin)
    got = OnnxRuntimeBackend(out).infer(frames, margin)
    assert got.dtype == np.float32 and np.isfinite(got).all()
    assert np.abs(got - ref).max() < 0.05 * np.abs(ref).max()


def test_int8_runs(exports, int8):
    frames, margin = _inputs()
    got = OnnxRuntimeBackend(int8).infer(frames, margin)
    assert got.shape == (3, 17, 32, 24) and np.isfinite(got).all()


def test_int8_qdq_placement(exports, int8):
    src, q = onnx.load(str(exports("deformconv"))), onnx.load(str(int8))
    excluded = int8_excluded_nodes(src)
    for prefix in ("rough_pose_estimation_net.conv1/", "rough_pose_estimation_net.final_layer/",
                   "offsets_list.0.0/", "masks_list.4.0/"):
        assert any(n.startswith(prefix) for n in excluded)
    # Only the backbone is INT8: every head conv stays FP32, every other backbone conv is quantized.
    convs = [n.name for n in src.graph.node if n.op_type == "Conv"]
    head = [c for c in convs if not c.startswith("rough_pose_estimation_net.")]
    assert head and set(head) <= set(excluded)
    assert len([c for c in convs if c not in excluded]) == len(convs) - len(head) - 2
    assert check_qdq(q, excluded) == []
    # Walk the graph: every DQ output goes to a quantized Conv or follows a quantized Conv's output Q.
    producer = {o: n for n in q.graph.node for o in n.output}
    for n in q.graph.node:
        if n.op_type in ("DeformConv",) or n.name in excluded:
            assert all(producer.get(i) is None or producer[i].op_type != "DequantizeLinear" for i in n.input), n.name
    zps = [t for t in q.graph.initializer if t.name.endswith("_zero_point")]
    assert zps and all(t.data_type == onnx.TensorProto.INT8 for t in zps)
    n_q = sum(n.op_type == "QuantizeLinear" for n in q.graph.node)
    assert n_q > 50


def test_int8_refuses_without_real_data(exports, tmp_path):
    with pytest.raises(InputError, match="real person crops"):
        quantize_onnx(exports("deformconv"), tmp_path / "x.onnx", QuantizeConfig("int8"))
    assert not (tmp_path / "x.onnx").exists()


def test_check_qdq_flags_asymmetric():
    from onnx import TensorProto, helper, numpy_helper

    zp = numpy_helper.from_array(np.array(3, np.uint8), "zp")
    sc = numpy_helper.from_array(np.array(0.1, np.float32), "sc")
    g = helper.make_graph([helper.make_node("QuantizeLinear", ["x", "sc", "zp"], ["q"], name="q"),
                           helper.make_node("DequantizeLinear", ["q", "sc", "zp"], ["y"], name="dq")],
                          "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])], [zp, sc])
    problems = check_qdq(helper.make_model(g))
    assert any("uint8" in p for p in problems) and any("zero point" in p for p in problems)


def test_int8_split_quantizes_backbone_and_keeps_head(exports, sample_clip, tmp_path):
    """A split export: the backbone is calibrated on single-frame crops, the head stays FP32 (the rules)."""
    cfg = QuantizeConfig("int8", calib=sample_clip, calib_boxes=sample_clip / "boxes.json", calib_samples=8)
    with pytest.raises(InputError, match="folder for its two parts"):
        quantize_onnx(exports("split"), tmp_path / "x.onnx", cfg)
    out = quantize_onnx(exports("split"), tmp_path / "int8", cfg)
    bb, head = onnx.load(str(out / "backbone.onnx")), onnx.load(str(out / "head.onnx"))
    assert get_metadata(bb)["dcpose_trt.precision"] == get_metadata(head)["dcpose_trt.precision"] == "int8"
    assert sum(n.op_type == "QuantizeLinear" for n in bb.graph.node) > 50
    assert check_qdq(bb, int8_excluded_nodes(onnx.load(str(exports("split") / "backbone.onnx")))) == []
    assert not any(n.op_type in ("QuantizeLinear", "DequantizeLinear") for n in head.graph.node)
    # The pair runs as a cached-mode backend, close to FP32.
    x = np.random.default_rng(1).random((2, 3, 128, 96), np.float32)
    ref, got = OnnxRuntimeBackend(exports("split")).backbone(x), OnnxRuntimeBackend(out).backbone(x)
    assert got.shape == ref.shape and np.isfinite(got).all()
    assert np.abs(got - ref).max() < 0.1 * np.abs(ref).max()


def test_int8_plugin_form_calibrates_as_deformconv(exports, int8, sample_clip, tmp_path, caplog):
    """README recipe: ``export --deform plugin`` then ``quantize --precision int8`` (issue 12, §2.2).

    The plugin graph is calibrated as its standard-DeformConv twin: the result keeps the plugin nodes
    and carries exactly the Q/DQ (same tensors, same scales) of the INT8 deformconv export.
    """
    from dcpose_trt.export.deform_ops import plugin_identity
    from dcpose_trt.export.int8 import has_plugin_nodes, plugin_to_standard
    from dcpose_trt.export.onnx_export import graph_diff_except_dcn

    cfg = QuantizeConfig("int8", calib=sample_clip, calib_boxes=sample_clip / "boxes.json", calib_samples=16)
    with caplog.at_level(logging.DEBUG):
        out = quantize_onnx(exports("plugin"), tmp_path / "plugin.int8.onnx", cfg)
    # Logs (§2.16): no ONNX Runtime pre-processing advice; the FP32 conv names only at DEBUG.
    assert not [r for r in caplog.records if "pre-processing" in r.getMessage()]
    assert all(len(r.getMessage()) < 300 for r in caplog.records if r.levelno >= logging.INFO)
    q, ref = onnx.load(str(out)), onnx.load(str(int8))
    op_type, domain, namespace = plugin_identity()
    dcn = [n for n in q.graph.node if n.op_type == op_type and n.domain == domain]
    assert len(dcn) == 5 and has_plugin_nodes(q)
    assert all(any(a.name == "plugin_namespace" and a.s.decode() == namespace for a in n.attribute) for n in dcn)
    assert any(o.domain == domain for o in q.opset_import)
    assert check_qdq(q, int8_excluded_nodes(q)) == []
    # Same graph as the INT8 deformconv export except the DCN nodes, and the same calibration ranges.
    assert graph_diff_except_dcn(q, ref) == []
    scales = {t.name: onnx.numpy_helper.to_array(t) for t in ref.graph.initializer if t.name.endswith("_scale")}
    got = {t.name: onnx.numpy_helper.to_array(t) for t in q.graph.initializer if t.name.endswith("_scale")}
    assert scales.keys() == got.keys() and len(scales) > 50
    for k, v in scales.items():
        np.testing.assert_allclose(got[k], v, rtol=1e-6, err_msg=k)
    # Its standard twin runs in ONNX Runtime like the INT8 deformconv export (same ops, same weights).
    standard, names = plugin_to_standard(q)
    assert len(names) == 5 and not has_plugin_nodes(standard)
    frames, margin = _inputs()
    a = OnnxRuntimeBackend(int8).infer(frames, margin)
    path = tmp_path / "standard.onnx"
    onnx.save(standard, str(path))
    b = OnnxRuntimeBackend(path).infer(frames, margin)
    np.testing.assert_array_equal(a, b)
