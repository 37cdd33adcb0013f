"""Our OpenVINO op ``DcnGemm`` (dcpose_trt/engine/ov_dcn/dcn_gemm.cpp), compiled here: its kernel against the
PyTorch reference (GridSample + 1×1 conv), the build's failure modes, the form switch and its cache keys."""

from __future__ import annotations

import numpy as np
import pytest
import torch

ov = pytest.importorskip("openvino")

from dcpose_trt.engine import ov_extension  # noqa: E402
from dcpose_trt.errors import InputError, PluginError  # noqa: E402
from dcpose_trt.model.cpu_head import dcn_gemm  # noqa: E402

needs_op = pytest.mark.skipif(ov_extension.unsupported_reason() is not None,
                              reason=str(ov_extension.unsupported_reason()))


def _op_model(b, j, k, h, w, o, dilation, pad):
    import openvino.opset13 as ops
    from openvino.utils.node_factory import NodeFactory

    f = NodeFactory()
    f.add_extension(str(ov_extension.build_library()))
    params = [ops.parameter(s, np.float32) for s in ([b, j * k * 2, h, w], [b, j * k, h, w], [b, j, h, w], [o, j * k],
                                                      [o])]
    node = f.create("DcnGemm", [p.output(0) for p in params],
                    {"kernel_h": 3, "kernel_w": 3, "dilation": dilation, "pad": pad})
    return ov.Model([node.output(0)], params)


@needs_op
@pytest.mark.parametrize(("b", "h", "w", "dilation"), [(3, 13, 11, 1), (2, 64, 48, 9), (1, 5, 21, 15)])
def test_kernel_equals_the_torch_reference(b, h, w, dilation):
    """Maps whose width is not a multiple of the 8-lane loop and whose height is not a multiple of the row
    block, 17 outputs (not a whole register group), offsets of several cells (samples leave the map on every
    side), dilations 1 to 15 (taps far outside): the kernel gives the reference to float rounding."""
    j, k, o = 17, 9, 17
    rng = np.random.default_rng(dilation)
    off = (rng.standard_normal((b, j * k * 2, h, w)) * 4.0 / max(h, w)).astype(np.float32)  # ~2 cells
    mask = rng.random((b, j * k, h, w), dtype=np.float32)
    sup = rng.standard_normal((b, j, h, w)).astype(np.float32)
    weight = (rng.standard_normal((o, j * k)) * 0.1).astype(np.float32)
    bias = rng.standard_normal(o).astype(np.float32)
    compiled = ov.Core().compile_model(_op_model(b, j, k, h, w, o, dilation, dilation), "CPU",
                                       {"INFERENCE_PRECISION_HINT": "f32"})
    got = compiled([off, mask, sup, weight, bias])[0]
    with torch.no_grad():
        ref = dcn_gemm(*(torch.from_numpy(a) for a in (off, mask, sup, weight, bias)), 3, 3, dilation,
                       dilation).numpy()
    assert got.shape == ref.shape == (b, o, h, w)
    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-5 * float(np.abs(ref).max()))


@needs_op
def test_ir_with_the_op_reads_only_where_it_is_built(tmp_path, monkeypatch, tiny_model_perturbed):
    """An IR pair converted with the op runs through our backend; where the op is switched off the same IR
    is a one-line InputError naming DcnGemm (not a raw OpenVINO error)."""
    from dcpose_trt.engine.openvino_ir import build_ir
    from dcpose_trt.runtime.backends.ov_backend import OpenVINOBackend

    model = tiny_model_perturbed
    model.preset_name = "tiny-128x96"
    folder = build_ir(model, tmp_path / "ir")
    assert "DcnGemm" in (folder / "head.xml").read_text()
    OpenVINOBackend(folder, cache_dir=tmp_path / "cache")
    monkeypatch.setenv(ov_extension.FORM_ENV, "graph")
    with pytest.raises(InputError, match="DcnGemm"):
        OpenVINOBackend(folder, cache_dir=tmp_path / "cache2")


def test_form_switch_and_cache_key(monkeypatch, tmp_path):
    """``$DCPOSE_TRT_OV_DCN`` picks the form, the form is in the IR cache key, a typo is a clear error."""
    from dcpose_trt.engine import openvino_ir

    ckpt = tmp_path / "m.pth"
    ckpt.write_bytes(b"weights")
    monkeypatch.setenv(ov_extension.FORM_ENV, "graph")
    assert ov_extension.dcn_form() == "graph"
    graph_name, key = openvino_ir.ir_cache_key(ckpt, "2026.4.1")
    assert key["head_form"].endswith("/dcn-graph")
    if ov_extension.unsupported_reason() is None:
        monkeypatch.setenv(ov_extension.FORM_ENV, "fused")
        assert ov_extension.dcn_form() == "fused"
        assert openvino_ir.ir_cache_key(ckpt, "2026.4.1")[0] != graph_name
    monkeypatch.setenv(ov_extension.FORM_ENV, "fast")
    with pytest.raises(InputError, match="DCPOSE_TRT_OV_DCN"):
        ov_extension.dcn_form()


def test_build_failures_are_one_line_errors(monkeypatch, tmp_path):
    """No compiler, or a compiler that fails: PluginError with the reason, no library left behind; with
    ``fused`` requested the form check raises it, with ``auto`` the head falls back to the graph form."""
    monkeypatch.setenv("CXX", str(tmp_path / "no-such-compiler"))
    with pytest.raises(PluginError, match="compiler|Linux x86-64|AVX2"):
        ov_extension.build_library(tmp_path / "ext")
    monkeypatch.setenv(ov_extension.FORM_ENV, "fused")
    with pytest.raises(PluginError):
        ov_extension.dcn_form()
    if ov_extension.unsupported_reason() is not None and "compiler" not in str(ov_extension.unsupported_reason()):
        return  # not an x86-64 AVX2 machine: the compile step below is never reached here
    monkeypatch.delenv("CXX")
    bad = tmp_path / "bad.cpp"
    bad.write_text("this is not C++\n")
    monkeypatch.setattr(ov_extension, "SOURCE", bad)
    with pytest.raises(PluginError, match="failed") as err:
        ov_extension.build_library(tmp_path / "ext")
    assert "\n" not in str(err.value)
    assert not [p for p in (tmp_path / "ext").rglob("*") if p.is_file()]


@needs_op
def test_unwritable_cache_is_a_plugin_error(tmp_path):
    """A cache the library cannot be written into (here: a file where its folder would go, which stops root
    too): PluginError, so ``auto`` falls back to the graph form, not a raw OSError."""
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    with pytest.raises(PluginError, match="cannot write"):
        ov_extension.build_library(blocker / "ext")
