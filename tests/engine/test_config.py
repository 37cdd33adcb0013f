"""BuildConfig, person-bucket profiles and ONNX inspection (no TensorRT needed)."""

from __future__ import annotations

import shlex
import subprocess
import sys

import pytest

from dcpose_trt.cli import build_parser
from dcpose_trt.engine import BuildConfig, inspect_onnx, profiles_from_persons
from dcpose_trt.engine.cli import _config
from dcpose_trt.errors import InputError


class TestProfiles:
    def test_one_profile_spans_the_buckets(self):
        assert profiles_from_persons([1, 8, 32]) == ((1, 8, 32),)
        assert profiles_from_persons([4]) == ((4, 4, 4),)
        assert profiles_from_persons([32, 1, 8, 8]) == ((1, 8, 32),)

    def test_one_profile_per_bucket(self):
        assert profiles_from_persons([1, 8, 32], per_bucket=True) == ((1, 1, 1), (2, 8, 8), (9, 32, 32))

    def test_bad(self):
        with pytest.raises(InputError, match="positive"):
            profiles_from_persons([0, 4])


class TestBuildConfig:
    @pytest.mark.parametrize("kwargs, match", [
        ({"profiles": ((4, 2, 8),)}, "1 <= MIN <= OPT <= MAX"),
        ({"profiles": ()}, "at least one"),
        ({"hardware_compat": "turing+"}, "--hardware-compat"),
        ({"opt_level": 7}, "--opt-level"),
        ({"workspace_mb": 0}, "--workspace"),
        ({"compute_capabilities": ("sm89",)}, "8.9"),
    ])
    def test_validation(self, kwargs, match):
        with pytest.raises(InputError, match=match):
            BuildConfig(**kwargs)

    def test_cli_round_trip(self, tmp_path):
        """The sidecar's rebuild command parses back into the same config."""
        cfg = BuildConfig(backend="tensorrt-rtx", profiles=((1, 1, 1), (2, 8, 8)), workspace_mb=512,
                          timing_cache=tmp_path / "t.cache", opt_level=5, version_compatible=True,
                          hardware_compat="same-cc", compute_capabilities=("8.9", "12.0"), progress=False)
        argv = shlex.split(cfg.command("m.onnx", "m.plan"))
        assert argv[:2] == ["dcpose-trt", "build"]
        args = build_parser().parse_args(argv[1:] + ["--no-progress"])
        assert _config(args) == cfg

    def test_persons_flag(self):
        args = build_parser().parse_args(["build", "--onnx", "m.onnx", "--out", "m.plan", "--persons", "1,8,32"])
        assert _config(args).profiles == ((1, 8, 32),)


def _graph(tmp_path, nodes, inits=(), domains=(), meta=None):
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["B", 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["B", 4])],
                              initializer=list(inits))
    opsets = [helper.make_opsetid("", 19)] + [helper.make_opsetid(d, 1) for d in domains]
    model = helper.make_model(graph, opset_imports=opsets)
    if meta:
        helper.set_model_props(model, meta)
    path = tmp_path / "m.onnx"
    onnx.save(model, str(path))
    return path


class TestInspectOnnx:
    def test_fp32_gridsample(self, tmp_path):
        from onnx import helper

        path = _graph(tmp_path, [helper.make_node("GridSample", ["x", "g"], ["y"])],
                      meta={"dcpose_trt.preset": "w32-256x192", "dcpose_trt.deform": "gridsample"})
        info = inspect_onnx(path)
        assert (info.precision, info.dcn_form, info.preset, info.plugins) == ("fp32", "gridsample", "w32-256x192", ())
        assert info.inputs[0].shape == (-1, 4) and info.inputs[0].dim_names == ("B", "")

    def test_fp16_and_int8(self, tmp_path):
        import numpy as np
        from onnx import helper, numpy_helper

        w16 = numpy_helper.from_array(np.ones(4, np.float16), "w")
        assert inspect_onnx(_graph(tmp_path, [helper.make_node("Add", ["x", "w"], ["y"])], [w16])).precision \
            == "fp16"
        qdq = [helper.make_node("QuantizeLinear", ["x", "s"], ["q"]),
               helper.make_node("DequantizeLinear", ["q", "s"], ["y"])]
        assert inspect_onnx(_graph(tmp_path, qdq)).precision == "int8"

    def test_plugin_and_builtin_deformconv(self, tmp_path):
        from onnx import helper

        from dcpose_trt.contract import DCN_OP_TYPE

        ours = helper.make_node(DCN_OP_TYPE, ["x", "w", "o", "b", "m"], ["y"], domain="dcpose_trt",
                                plugin_namespace="dcpose_trt")
        info = inspect_onnx(_graph(tmp_path, [ours], domains=["dcpose_trt"]))
        assert info.dcn_form == "plugin" and info.needs_dcpose_plugin
        assert [p.to_json() for p in info.plugins] == [
            {"op": DCN_OP_TYPE, "namespace": "dcpose_trt", "version": "1", "nodes": 1, "source": "dcpose_trt"}]
        std = helper.make_node("DeformConv", ["x", "w", "o"], ["y"])
        info = inspect_onnx(_graph(tmp_path, [std]))
        assert info.dcn_form == "deformconv" and info.plugins[0].source == "libnvinfer_plugin"

    def test_external_data_is_hashed(self, tmp_path):
        import numpy as np
        import onnx
        from onnx import helper, numpy_helper

        w = numpy_helper.from_array(np.arange(4096, dtype=np.float32), "w")
        path = _graph(tmp_path, [helper.make_node("Add", ["x", "w"], ["y"])], [w])
        model = onnx.load(str(path))
        onnx.save(model, str(path), save_as_external_data=True, location="m.onnx.data", size_threshold=0)
        before = inspect_onnx(path).sha256
        data = (tmp_path / "m.onnx.data").read_bytes()
        (tmp_path / "m.onnx.data").write_bytes(data[:-4] + b"\x00\x00\x80\x3f")
        assert inspect_onnx(path).sha256 != before


def test_import_is_light():
    """`import dcpose_trt.engine` and `dcpose-trt build --help` load neither TensorRT nor onnx."""
    code = ("import sys, dcpose_trt.engine, dcpose_trt.engine.cli; "
            "print(sorted(m for m in ('tensorrt', 'tensorrt_rtx', 'onnx', 'tqdm') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
