"""FP16 and INT8 ONNX: they run in ONNX Runtime, and Q/DQ sits only where the precision rules allow."""

from __future__ import annotations

import logging

import numpy as np
import onnx
import pytest

from dcpose_trt.contract import read_model_metadata
from dcpose_trt.data.synth import SynthConfig, generate
from dcpose_trt.errors import InputError
from dcpose_trt.eval.fidelity import fidelity
from dcpose_trt.export import (
    ExportConfig,
    QuantizeConfig,
    check_qdq,
    export_onnx,
    int8_excluded_nodes,
    quantize_onnx,
)
from dcpose_trt.model.presets import BUNDLED_MODEL
from dcpose_trt.runtime.backends.ort_backend import OnnxRuntimeBackend


@pytest.fixture(scope="module")
def int8(exports, sample_clip, tmp_path_factory):
    out = tmp_path_factory.mktemp("int8") / "model.int8.onnx"
    cfg = QuantizeConfig("int8", calib=sample_clip, calib_boxes=sample_clip / "boxes.json", calib_samples=16)
    return quantize_onnx(exports("deformconv"), out, cfg)


@pytest.fixture(scope="module")
def synth_data(tmp_path_factory):
    """Synthetic videos like the ones the bundled model was trained on: one train, one val video of 8 frames."""
    root = tmp_path_factory.mktemp("synth")
    generate(SynthConfig(out=root, videos=2, frames=8, seed=0, split_ratio=0.5, workers=1))
    return root


def _inputs():
    rng = np.random.default_rng(0)
    return rng.standard_normal((3, 9, 128, 96)).astype(np.float32), np.ones((3, 2), np.float32)


def test_fp16_runs_and_keeps_fp32_where_required(exports, tmp_path):
    out = quantize_onnx(exports("deformconv"), tmp_path / "m.fp16.onnx", QuantizeConfig("fp16"))
    m = onnx.load(str(out))
    assert read_model_metadata(m).precision == "fp16"
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
    # FP16 weights and activations round to 2^-11 (4.9e-4) relative at every conv; linear growth over the
    # tiny model's depth stays ~3 % of the peak with fp32 accumulation (MLAS on x86; casts where no FP16 kernel).
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


def test_int8_split_quantizes_backbone_and_keeps_head(exports, sample_clip, synth_data, tmp_path):
    """A split export of the trained bundled model: the backbone is calibrated on single-frame crops, the head
    stays FP32 (the rules), and INT8 keeps the keypoints of FP32."""
    cfg = QuantizeConfig("int8", calib=sample_clip, calib_boxes=sample_clip / "boxes.json", calib_samples=8)
    with pytest.raises(InputError, match="folder for its two parts"):
        quantize_onnx(exports("split"), tmp_path / "x.onnx", cfg)
    fp32 = export_onnx(BUNDLED_MODEL, tmp_path / "fp32", ExportConfig(deform="deformconv", split=True, check=False))
    # Calibrate on the training distribution of the bundled model (synthetic train), evaluate on synthetic val.
    cfg = QuantizeConfig("int8", calib=synth_data, calib_split="train", calib_samples=32)
    out = quantize_onnx(fp32, tmp_path / "int8", cfg)
    bb, head = onnx.load(str(out / "backbone.onnx")), onnx.load(str(out / "head.onnx"))
    assert read_model_metadata(bb).precision == read_model_metadata(head).precision == "int8"
    assert sum(n.op_type == "QuantizeLinear" for n in bb.graph.node) > 50
    assert check_qdq(bb, int8_excluded_nodes(onnx.load(str(fp32 / "backbone.onnx")))) == []
    assert not any(n.op_type in ("QuantizeLinear", "DequantizeLinear") for n in head.graph.node)
    # The pair runs as a cached-mode backend and keeps FP32's keypoints (the trained model, so peaks are real).
    report = fidelity(BUNDLED_MODEL, out, synth_data, split="val")
    assert report.n_persons >= 12
    # The reference finds joints (41 mean AP on this hard synthetic val; a model without real peaks gets ~0).
    assert report.ap_reference is not None and report.ap_reference["Mean"] > 20, report.ap_reference
    # Kernel-independent bound: INT8 noise (activation step = range / 127 per layer) moves a heatmap peak to
    # another cell only where two cells nearly tie; 98 % of joints stay within one cell on the full synthetic
    # val (precision.py), 100 % on this set on AVX-512 VNNI. Any x86 INT8 kernel (VNNI or AVX2 u8s8 with its
    # 16-bit pair sums) is within that noise; mis-scaled or saturated layers move most joints.
    assert report.overall["within_cell"] >= 0.9, report.format_table()


def test_int8_plugin_form_calibrates_as_deformconv(exports, int8, sample_clip, tmp_path, caplog):
    """README recipe: ``export --deform plugin`` then ``quantize --precision int8`` (issue 12, §2.2).

    The plugin graph is calibrated as its standard-DeformConv twin: the result keeps the plugin nodes
    and carries exactly the Q/DQ (same tensors, same scales) of the INT8 deformconv export.
    """
    from dcpose_trt.export.deform_ops import plugin_identity
    from dcpose_trt.export.int8 import has_plugin_nodes, plugin_to_standard
    from dcpose_trt.export.onnx_graph import graph_diff_except_dcn

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


def test_int8_cpu_layout_is_onnxruntime_integer_and_keeps_keypoints(exports, synth_data, tmp_path):
    """``--target cpu``: ONNX Runtime's U8S8 QOperator recipe over the same backbone region (issue 15, §3).

    Every backbone conv but the first and the heatmap conv becomes ``QLinearConv`` (the TensorRT layout left
    34 of 59 as FP32 convs behind runtime dequantisation on ONNX Runtime's CPU provider), the head stays FP32,
    TensorRT refuses the file with a hint, and the keypoints stay those of FP32.
    """
    from dcpose_trt.engine import BuildConfig, build_engine

    fp32 = export_onnx(BUNDLED_MODEL, tmp_path / "fp32", ExportConfig(deform="deformconv", split=True, check=False))
    cfg = QuantizeConfig("int8", calib=synth_data, calib_split="train", calib_samples=32, target="cpu")
    out = quantize_onnx(fp32, tmp_path / "int8cpu", cfg)
    src, bb, head = (onnx.load(str(p)) for p in (fp32 / "backbone.onnx", out / "backbone.onnx", out / "head.onnx"))
    assert read_model_metadata(bb).int8_target == "cpu"
    n_convs = sum(n.op_type == "Conv" for n in src.graph.node)
    ops = [n.op_type for n in bb.graph.node]
    assert ops.count("QLinearConv") == n_convs - 2 and ops.count("Conv") == 2, sorted(set(ops))
    # One Q after the FP32 first conv, one DQ before the FP32 heatmap conv: the backbone runs in integers between.
    assert ops.count("QuantizeLinear") == 1 and ops.count("DequantizeLinear") == 1
    assert {n.op_type for n in head.graph.node}.isdisjoint({"QuantizeLinear", "QLinearConv"})
    report = fidelity(BUNDLED_MODEL, out, synth_data, split="val")
    assert report.ap_reference is not None and report.ap_reference["Mean"] > 20, report.ap_reference
    # Same bound and reasoning as the TensorRT layout above; 7-bit weights (reduce_range) make the u8 x s8 pair
    # sums fit 16 bits, so AVX2's vpmaddubsw cannot saturate and every x86 kernel computes the same integers.
    assert report.overall["within_cell"] >= 0.9, report.format_table()
    with pytest.raises(InputError, match="--target tensorrt"):
        build_engine(out / "backbone.onnx", tmp_path / "x.plan", BuildConfig(backend="tensorrt-rtx"))
    assert not (tmp_path / "x.plan").exists()


def test_int8_cpu_layout_refusals(exports, synth_data, tmp_path):
    with pytest.raises(InputError, match="deform plugin"):
        quantize_onnx(exports("plugin"), tmp_path / "p.onnx",
                      QuantizeConfig("int8", calib=synth_data, calib_split="train", target="cpu"))
    with pytest.raises(InputError, match="INT8 layout"):
        QuantizeConfig("fp16", target="cpu")
    with pytest.raises(InputError, match="choose one of"):
        QuantizeConfig("int8", calib=synth_data, target="gpu")
    assert not list(tmp_path.iterdir())


def test_calibration_batch_shrinks_for_large_crops():
    """Calibration keeps a run's activations alive: w48 crops get fewer persons per run (OOM at 24 GB with 8)."""
    from dcpose_trt.export.int8 import calib_batch

    assert calib_batch(8, (128, 96)) == 8 and calib_batch(8, (256, 192)) == 8
    assert calib_batch(8, (384, 288)) == 3 and calib_batch(2, (384, 288)) == 2 and calib_batch(8, (2048, 2048)) == 1
