"""torch → ONNX: the three DCN forms, the split, metadata, and ONNX Runtime parity."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch

from dcpose_trt.contract import read_model_metadata
from dcpose_trt.export import ExportConfig, export_onnx, graph_diff_except_dcn
from dcpose_trt.runtime.backends.ort_backend import OnnxRuntimeBackend

from .conftest import PRESET


def _inputs(b: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    frames = rng.standard_normal((b, 9, 128, 96)).astype(np.float32)
    margin = rng.integers(1, 4, (b, 2)).astype(np.float32)
    return frames, margin


def _torch(model, frames, margin) -> np.ndarray:
    with torch.inference_mode():
        return model(torch.from_numpy(frames), torch.from_numpy(margin)).numpy()


class TestParity:
    @pytest.mark.parametrize("form", ["deformconv", "gridsample"])
    @pytest.mark.parametrize("batch", [1, 3, 8])
    def test_ort_matches_torch(self, exports, tiny_model_lively, form, batch):
        frames, margin = _inputs(batch, seed=batch)
        ref = _torch(tiny_model_lively, frames, margin)
        got = OnnxRuntimeBackend(exports(form)).infer(frames, margin)
        assert got.shape == (batch, 17, 32, 24)
        assert np.abs(ref).max() > 0.1, "the test model must produce non-trivial heatmaps"
        # ORT and torch block conv sums (K <= 9 * 64 terms) differently: ~sqrt(K) * eps32 relative per layer,
        # ~1e-5 of the heatmap scale (O(1)) over the ~60 layers; 1e-4 leaves a 10x margin for any x86 kernel.
        np.testing.assert_allclose(got, ref, rtol=0, atol=1e-4)

    def test_split_equals_full(self, exports, tiny_model_lively):
        frames, margin = _inputs(3, seed=7)
        backend = OnnxRuntimeBackend(exports("split"))
        assert backend.split
        np.testing.assert_allclose(backend.infer(frames, margin), _torch(tiny_model_lively, frames, margin), atol=1e-4)
        full = OnnxRuntimeBackend(exports("deformconv")).infer(frames, margin)
        # Both are within 1e-4 of torch (above); split and full graphs fuse differently, so the bound between
        # them follows from that one, not from this CPU's kernels.
        np.testing.assert_allclose(backend.infer(frames, margin), full, atol=2e-4)


class TestGraphs:
    def test_plugin_differs_only_in_dcn_nodes(self, exports):
        from dcpose_trt.export import plugin_identity

        plugin = onnx.load(str(exports("plugin")))
        std = onnx.load(str(exports("deformconv")))
        assert graph_diff_except_dcn(plugin, std) == []
        op_type, domain, namespace = plugin_identity()
        p_dcn = [n for n in plugin.graph.node if n.op_type == op_type and n.domain == domain]
        s_dcn = [n for n in std.graph.node if n.op_type == "DeformConv" and n.domain == ""]
        assert len(p_dcn) == len(s_dcn) == 5
        for p, s in zip(p_dcn, s_dcn, strict=True):
            attrs = {a.name: onnx.helper.get_attribute_value(a) for a in p.attribute}
            assert attrs.pop("plugin_namespace") == namespace.encode()
            assert attrs == {a.name: onnx.helper.get_attribute_value(a) for a in s.attribute}
            assert list(p.input) == list(s.input)

    def test_gridsample_has_only_standard_ops(self, exports):
        m = onnx.load(str(exports("gridsample")))
        assert {n.domain for n in m.graph.node} <= {"", "ai.onnx"}
        ops = {n.op_type for n in m.graph.node}
        assert "GridSample" in ops and "DeformConv" not in ops

    def test_io_metadata_and_readability(self, exports):
        m = onnx.load(str(exports("deformconv")))
        assert [i.name for i in m.graph.input] == ["frames", "margin"]
        assert [o.name for o in m.graph.output] == ["heatmaps"]
        dims = [d.dim_param or d.dim_value for d in m.graph.input[0].type.tensor_type.shape.dim]
        assert dims == ["persons", 9, 128, 96]
        info = read_model_metadata(m)
        assert info.input_size == (128, 96) and info.heatmap_size == (32, 24) and info.precision == "fp32"
        meta = info.raw  # the keys on disk, as other tools see them
        assert meta["dcpose_trt.preset"] == PRESET and meta["dcpose_trt.deform"] == "deformconv"
        assert meta["dcpose_trt.part"] == "full" and meta["dcpose_trt.input_size"] == "128x96"
        assert "dcpose_trt.version" in meta
        assert not any(n.op_type == "Identity" for n in m.graph.node)
        names = [n.name for n in m.graph.node]
        assert len(set(names)) == len(names)
        assert "rough_pose_estimation_net.conv1/Conv" in names

    def test_split_parts(self, exports):
        d = exports("split")
        bb, hd = onnx.load(str(d / "backbone.onnx")), onnx.load(str(d / "head.onnx"))
        assert [i.name for i in bb.graph.input] == ["image"]
        assert [i.name for i in hd.graph.input] == ["cur", "prev", "next", "margin"]
        assert read_model_metadata(bb).part == "backbone" and read_model_metadata(hd).part == "head"


class TestWrites:
    def test_bad_settings_write_nothing(self, tmp_path, tiny_model_lively):
        from dcpose_trt.errors import InputError

        with pytest.raises(InputError, match="opset >= 19"):
            export_onnx(tiny_model_lively, tmp_path / "m.onnx", ExportConfig(deform="deformconv", opset=17))
        with pytest.raises(InputError, match="folder"):
            export_onnx(tiny_model_lively, tmp_path / "m.onnx", ExportConfig(split=True))
        assert list(tmp_path.iterdir()) == []

    def test_failed_save_leaves_no_file(self, tmp_path, monkeypatch):
        from dcpose_trt.export import atomic_save_onnx

        class Boom:
            def SerializeToString(self):  # noqa: N802 - protobuf API
                raise KeyboardInterrupt

        with pytest.raises(KeyboardInterrupt):
            atomic_save_onnx(Boom(), tmp_path / "m.onnx")
        assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_w48_export(tmp_path):
    from dcpose_trt.model import build_dcpose

    from .conftest import lively

    model = lively(build_dcpose("w48-384x288"))
    out = export_onnx(model, tmp_path / "w48.onnx", ExportConfig(deform="deformconv", check_batch=2))
    frames = np.random.default_rng(0).standard_normal((2, 9, 384, 288)).astype(np.float32)
    margin = np.ones((2, 2), np.float32)
    np.testing.assert_allclose(OnnxRuntimeBackend(out).infer(frames, margin), _torch(model, frames, margin),
                               atol=1e-4)
