"""Real TensorRT-RTX builds of the tiny DCPose (gridsample DCN) on a machine without a GPU.

The engine inspector needs a deserialized ``ICudaEngine`` and deserialising needs CUDA, so the layer
checks read the builder's own layer listing, which the sidecar records (``layers``).
"""

from __future__ import annotations

import json
import os
import signal
import threading
from collections import Counter
from pathlib import Path

import pytest

from dcpose_trt.cli import main
from dcpose_trt.engine import BuildConfig, build_engine, read_sidecar, sidecar_path
from dcpose_trt.errors import EngineBuildError, InputError


def _compute_dtypes(meta: dict) -> Counter:
    """Datatypes flowing into convolution layers ("correlation" in Myelin's listing)."""
    convs = [layer for layer in meta["layers"] if layer["type"] in ("correlation", "convolution")]
    return Counter(d for layer in convs for d in layer["inputs"] + layer["constants"])


def _no_plugin_layers(meta: dict) -> None:
    assert meta["layers"], "the builder printed no layer listing"
    plugins = [layer for layer in meta["layers"] if "plugin" in layer["type"].lower()]
    assert not plugins
    assert meta["dcn"] == {"form": "gridsample", "plugins": []}


class TestTinyBuilds:
    def test_fp32(self, tiny_fp32_plan, tiny_fp32_onnx, rtx):
        meta = read_sidecar(tiny_fp32_plan)
        assert tiny_fp32_plan.stat().st_size == meta["plan"]["bytes"] > 1_000_000
        assert meta["backend"] == {"name": "tensorrt-rtx", "version": rtx.__version__}
        assert meta["precision"] == "fp32"
        assert meta["preset"] == "tiny-128x96"
        assert meta["target"]["gpu"] is None and meta["target"]["compute_capabilities"] == ["8.6", "8.9"]
        assert meta["profiles"] == [{"batch": [1, 4, 8], "shapes": {
            "frames": {"min": [1, 9, 128, 96], "opt": [4, 9, 128, 96], "max": [8, 9, 128, 96]},
            "margin": {"min": [1, 2], "opt": [4, 2], "max": [8, 2]}}}]
        assert [(t["name"], t["dtype"], t["shape"]) for t in meta["inputs"]] == [
            ("frames", "float", [-1, 9, 128, 96]), ("margin", "float", [-1, 2])]
        assert [(t["name"], t["shape"]) for t in meta["outputs"]] == [("heatmaps", [-1, 17, 32, 24])]
        assert meta["build"]["strongly_typed"] is True and meta["build"]["flags"] == ["REQUIRE_USER_ALLOCATION"]
        assert meta["command"].startswith(f"dcpose-trt build --onnx {tiny_fp32_onnx} --out {tiny_fp32_plan}")
        dtypes = _compute_dtypes(meta)
        assert dtypes["Float"] > 0 and not dtypes["Half"] and not dtypes["Int8"]
        _no_plugin_layers(meta)

    def test_fp16(self, tiny_fp16_plan):
        meta = read_sidecar(tiny_fp16_plan)
        assert meta["precision"] == "fp16"
        assert [p["batch"] for p in meta["profiles"]] == [[1, 1, 1], [2, 8, 8]]
        # I/O stays FP32 (keep_io_types), the convolutions run in half precision.
        assert {t["dtype"] for t in meta["inputs"] + meta["outputs"]} == {"float"}
        dtypes = _compute_dtypes(meta)
        assert dtypes["Half"] > 100 and not dtypes["Int8"]
        _no_plugin_layers(meta)

    def test_int8(self, tiny_int8_plan):
        meta = read_sidecar(tiny_int8_plan)
        assert meta["precision"] == "int8"
        assert meta["onnx"]["ops"]["QuantizeLinear"] > 0
        dtypes = _compute_dtypes(meta)
        assert dtypes["Int8"] > 100
        _no_plugin_layers(meta)


def test_cli_build(rtx, tmp_path, capsys):
    onnx_path = _tiny_graph(tmp_path / "relu.onnx")
    out = tmp_path / "cli.plan"
    rc = main(["build", "--onnx", str(onnx_path), "--out", str(out), "--backend", "tensorrt-rtx",
               "--persons", "1,2,4", "--profile-per-bucket", "--no-progress"])
    assert rc == 0
    assert f"wrote {out}" in capsys.readouterr().out
    meta = json.loads(sidecar_path(out).read_text())
    assert [p["batch"] for p in meta["profiles"]] == [[1, 1, 1], [2, 2, 2], [3, 4, 4]]
    assert meta["profiles"][2]["shapes"] == {"x": {"min": [3, 4], "opt": [4, 4], "max": [4, 4]}}
    assert meta["dcn"]["form"] == "none" and meta["preset"] is None
    assert "--batch 3,4,4" in meta["command"]


def test_cli_reports_errors_in_one_line(rtx, tmp_path, capsys):
    onnx_path = _tiny_graph(tmp_path / "bad.onnx", "NoSuchOp", domain="acme")
    rc = main(["build", "--onnx", str(onnx_path), "--out", str(tmp_path / "bad.plan"), "--backend",
               "tensorrt-rtx", "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 2 and "dcpose-trt build: error: " in err and "node 'the_node' (op NoSuchOp" in err


def _tiny_graph(path: Path, op_type: str = "Relu", domain: str = "", shape: list[int] | None = None) -> Path:
    import onnx
    from onnx import TensorProto, helper

    dims = ["b", *(shape or [4])]
    node = helper.make_node(op_type, ["x"], ["y"], name="the_node", domain=domain)
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, dims)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, dims)])
    opsets = [helper.make_opsetid("", 19)] + ([helper.make_opsetid(domain, 1)] if domain else [])
    onnx.save(helper.make_model(graph, opset_imports=opsets), str(path))
    return path


class TestErrors:
    def test_parse_error_names_node_and_op(self, rtx, tmp_path):
        onnx_path = _tiny_graph(tmp_path / "bad.onnx", "NoSuchOp", domain="acme")
        out = tmp_path / "bad.plan"
        with pytest.raises(EngineBuildError, match=r"node 'the_node' \(op NoSuchOp"):
            build_engine(onnx_path, out, BuildConfig(backend="tensorrt-rtx", progress=False))
        assert list(tmp_path.iterdir()) == [onnx_path]  # nothing half-written

    def test_fp16_flag_refused_where_removed(self, rtx, tmp_path):
        onnx_path = _tiny_graph(tmp_path / "relu.onnx")
        with pytest.raises(EngineBuildError, match="no BuilderFlag.FP16"):
            build_engine(onnx_path, tmp_path / "x.plan",
                         BuildConfig(backend="tensorrt-rtx", fp16_flag=True, progress=False))

    def test_unknown_compute_capability(self, rtx, tmp_path):
        onnx_path = _tiny_graph(tmp_path / "relu.onnx")
        with pytest.raises(InputError, match="cannot target compute capability 9.0"):
            build_engine(onnx_path, tmp_path / "x.plan",
                         BuildConfig(backend="tensorrt-rtx", compute_capabilities=("9.0",), progress=False))

    def test_standard_deformconv_needs_builtin_plugins(self, rtx, tmp_path):
        import onnx
        from onnx import TensorProto, helper

        vi = helper.make_tensor_value_info
        node = helper.make_node("DeformConv", ["x", "w", "off"], ["y"], name="dcn")
        graph = helper.make_graph(
            [node], "g", [vi("x", TensorProto.FLOAT, [1, 1, 4, 4]), vi("w", TensorProto.FLOAT, [1, 1, 3, 3]),
                          vi("off", TensorProto.FLOAT, [1, 18, 2, 2])], [vi("y", TensorProto.FLOAT, None)])
        path = tmp_path / "dcn.onnx"
        onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 19)]), str(path))
        with pytest.raises(EngineBuildError, match="TensorRT-RTX has no built-in plugins"):
            build_engine(path, tmp_path / "x.plan", BuildConfig(backend="tensorrt-rtx", progress=False))

    def test_ctrl_c_cancels_cleanly(self, rtx, tiny_int8_onnx, tmp_path):
        """SIGINT during the build: TensorRT is asked to stop (progress monitor), nothing is written."""
        out = tmp_path / "cancelled.plan"
        timer = threading.Timer(1.0, os.kill, (os.getpid(), signal.SIGINT))
        timer.start()
        try:
            with pytest.raises(KeyboardInterrupt):
                build_engine(tiny_int8_onnx, out, BuildConfig(backend="tensorrt-rtx", progress=False))
        finally:
            timer.cancel()
        assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_w48_fp32(rtx, onnx_exporter, tmp_path):
    onnx_path = onnx_exporter(tmp_path / "w48.onnx", "w48-384x288")
    plan = build_engine(onnx_path, tmp_path / "w48.plan",
                        BuildConfig(backend="tensorrt-rtx", profiles=((1, 8, 32),), progress=False))
    meta = read_sidecar(plan)
    assert meta["preset"] == "w48-384x288" and meta["precision"] == "fp32"
    assert [t["shape"] for t in meta["inputs"]] == [[-1, 9, 384, 288], [-1, 2]]
    _no_plugin_layers(meta)


def test_rtx_ignores_timing_cache(rtx, tmp_path):
    """TensorRT-RTX's timing-cache calls are no-ops (deprecated in 1.2): the flag is accepted, not used."""
    onnx_path = _tiny_graph(tmp_path / "relu.onnx")
    cache = tmp_path / "timing.cache"
    plan = build_engine(onnx_path, tmp_path / "relu.plan",
                        BuildConfig(backend="tensorrt-rtx", timing_cache=cache, progress=False))
    assert read_sidecar(plan)["build"]["timing_cache"] is None
    assert not cache.exists()


# Issue 12 §2.10-12: bad inputs are one-line errors before any build; no progress bars off a terminal.


@pytest.mark.parametrize("content", [b"hello, not a model\n", b""])
def test_cli_not_onnx(tmp_path, capsys, content):
    src = tmp_path / "m.onnx"
    src.write_bytes(content)
    rc = main(["build", "--onnx", str(src), "--out", str(tmp_path / "m.plan"), "--backend", "tensorrt-rtx"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "\n" not in err and "is not an ONNX model" in err
    assert not (tmp_path / "m.plan").exists()


def test_cli_refuses_batches_over_tensorrt_limits(rtx, tmp_path, capsys):
    # The tiny model's frames input: 9 x 128 x 96 = 110592 elements per person.
    onnx_path = _tiny_graph(tmp_path / "frames.onnx", shape=[9, 128, 96])
    rc = main(["build", "--onnx", str(onnx_path), "--out", str(tmp_path / "m.plan"), "--backend", "tensorrt-rtx",
               "--persons", "1,8,100000000"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "\n" not in err and "limit of 2**31" in err and "largest batch is 19418" in err
    assert not (tmp_path / "m.plan").exists()


def test_batch_limits_memory():
    from dcpose_trt.engine.config import check_batch_limits
    from dcpose_trt.errors import InputError

    tensors = [("frames", "float32", [-1, 9, 128, 96]), ("margin", "float32", [-1, 2]),
               ("heatmaps", "float32", [-1, 17, 32, 24])]
    per_person = (9 * 128 * 96 + 2 + 17 * 32 * 24) * 4
    check_batch_limits([(1, 8, 32)], tensors, memory_bytes=32 * per_person)
    with pytest.raises(InputError, match=r"largest batch that fits is 31$"):
        check_batch_limits([(1, 8, 32)], tensors, memory_bytes=32 * per_person - 1)
    check_batch_limits([(1, 8, 19418)], tensors, memory_bytes=1 << 60)
    with pytest.raises(InputError, match="largest batch is 19418"):
        check_batch_limits([(1, 1, 1), (2, 8, 19419)], tensors, memory_bytes=1 << 60)


def test_cli_build_no_progress_bars_off_a_terminal(rtx, tmp_path, capfd):
    onnx_path = _tiny_graph(tmp_path / "relu.onnx")
    # No --no-progress: stderr is captured (not a terminal), so tqdm must stay silent on its own.
    rc = main(["build", "--onnx", str(onnx_path), "--out", str(tmp_path / "m.plan"), "--backend", "tensorrt-rtx"])
    captured = capfd.readouterr()
    assert rc == 0
    assert "it/s" not in captured.err and "Cloning" not in captured.err and "%|" not in captured.err


def _deformconv_graph(path: Path) -> Path:
    """A standard ONNX DeformConv node: the ``deformconv`` form (TensorRT's built-in plugin)."""
    import onnx
    from onnx import TensorProto, helper

    vi = helper.make_tensor_value_info
    node = helper.make_node("DeformConv", ["x", "w", "off"], ["y"], name="dcn")
    graph = helper.make_graph(
        [node], "g", [vi("x", TensorProto.FLOAT, [1, 1, 4, 4]), vi("w", TensorProto.FLOAT, [1, 1, 3, 3]),
                      vi("off", TensorProto.FLOAT, [1, 18, 2, 2])], [vi("y", TensorProto.FLOAT, None)])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 19)]), str(path))
    return path


@pytest.mark.parametrize("backend", ["tensorrt", "tensorrt-rtx"])
def test_version_compatible_deformconv_is_refused_before_building(backend, tmp_path):
    """Issue 23 finding 6: such a plan passed the lean-runtime check and failed at deserialize; now the build
    refuses it with the reason, before TensorRT is even imported (before: MissingDependencyError here for
    tensorrt, TensorRT-RTX's "no built-in plugins" for tensorrt-rtx - never the real reason)."""
    pytest.importorskip("onnx")
    path = _deformconv_graph(tmp_path / "dcn.onnx")
    with pytest.raises(InputError, match=r"deformconv form .* version-compatible plan cannot carry"):
        build_engine(path, tmp_path / "x.plan", BuildConfig(backend=backend, version_compatible=True,
                                                            progress=False))
    assert not (tmp_path / "x.plan").exists()


def test_plugin_form_with_compatibility_is_unverified():
    from dcpose_trt.engine.network import check_forms
    from dcpose_trt.engine.onnx_info import OnnxInfo

    info = OnnxInfo(path=Path("m.onnx"), sha256="0", opset=19, precision="fp32", dcn_form="plugin", plugins=(),
                    preset=None, metadata={}, inputs=(), outputs=(), op_counts={})
    assert check_forms(info, BuildConfig()) == []
    notes = check_forms(info, BuildConfig(version_compatible=True, hardware_compat="ampere+"))
    assert len(notes) == 2 and all(n.startswith("unverified: ") for n in notes)
