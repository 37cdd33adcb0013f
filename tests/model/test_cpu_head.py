"""The CPU form of the head (GridSample + 1×1 conv per DCN) against the model's own head (torchvision DCN)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dcpose_trt.model import build_dcpose
from dcpose_trt.model.cpu_head import INT8_KEEP_FLOAT, CpuHead


def _inputs(model, b: int, scale: float, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    hh, hw = model.preset.heatmap_size
    hm = [torch.rand(b, 17, hh, hw, generator=gen) * scale for _ in range(3)]
    margin = torch.tensor([[1.0, 1.0], [2.0, 1.0], [1.0, 3.0]][:b])
    return (*hm, margin)


@pytest.fixture(scope="module")
def wild():
    """``tiny-128x96`` whose offsets reach several cells (so samples leave the map on every side) and whose
    masks and DCN weights are far from the identity init."""
    model = build_dcpose("tiny-128x96")
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=gen) * 0.05)
        for m in model.offsets_list:
            m[0].weight.normal_(0.0, 0.5, generator=gen)
        for m in model.modulated_deform_conv_list:
            m.deform_conv.weight.normal_(0.0, 0.3, generator=gen)
    return model.eval()


def test_equals_the_torchvision_head(wild):
    x = _inputs(wild, 3, 3.0)
    with torch.no_grad():
        sup, feat = wild.head_features(*x)
        offsets = wild.offsets_list[0][0](feat)
        ref = wild.head(*x)
        got = CpuHead(wild).eval()(*x)
    # Offsets of several cells, on top of taps up to 15 cells off (dilation 15): many samples fall outside the
    # map or straddle its edge, so the zero padding is compared too.
    assert offsets.abs().max() > 3
    assert ref.abs().max() > 1e-2
    torch.testing.assert_close(got, ref, rtol=1e-4, atol=1e-5 * float(ref.abs().max()))


def test_bundled_model_and_one_person(tiny_model_perturbed):
    x = _inputs(tiny_model_perturbed, 1, 0.5)
    with torch.no_grad():
        ref = tiny_model_perturbed.head(*x)
        got = CpuHead(tiny_model_perturbed).eval()(*x)
    torch.testing.assert_close(got, ref, rtol=1e-4, atol=1e-5 * float(ref.abs().max()))


def test_int8_scopes_name_real_nodes():
    """Every scope's pattern keeps some nodes in float and lets some through (a typo would do neither)."""
    import re

    names = [n for n, _ in CpuHead(build_dcpose("tiny-128x96")).named_modules() if n]
    for scope, pattern in INT8_KEEP_FLOAT.items():
        traced = [f"__module.{n}/aten::_convolution/Convolution" for n in names]
        kept = [n for n in traced if re.match(pattern, n)]
        assert 0 < len(kept) < len(traced), scope


def test_fused_op_reference_equals_the_graph_form(wild):
    """``fused_dcn=True`` routes each DCN through the ``dcpose_trt::dcn_gemm`` op, whose PyTorch reference is
    the graph form: the same numbers (what OpenVINO's DcnGemm kernel is then checked against)."""
    x = _inputs(wild, 3, 3.0)
    with torch.no_grad():
        graph = CpuHead(wild).eval()(*x)
        fused = CpuHead(wild, fused_dcn=True).eval()(*x)
    torch.testing.assert_close(fused, graph, rtol=1e-6, atol=1e-6 * float(graph.abs().max()))


@pytest.mark.parametrize("dcn", ["graph", "fused"])
def test_openvino_conversion_equals_torch(wild, dcn):
    ov = pytest.importorskip("openvino")
    from dcpose_trt.engine.openvino_ir import convert_parts
    from dcpose_trt.engine.ov_extension import unsupported_reason

    if dcn == "fused" and unsupported_reason():
        pytest.skip(unsupported_reason())
    wild.preset_name = "tiny-128x96"
    head = convert_parts(wild, ("head",), dcn=dcn)["head"]
    types = {op.get_type_name() for op in head.get_ops()}
    assert "DeformableConvolution" not in types
    assert ("DcnGemm" in types) == (dcn == "fused") and ("GridSample" in types) == (dcn == "graph")
    x = _inputs(wild, 3, 3.0)
    with torch.no_grad():
        ref = wild.head(*x).numpy()
    got = ov.Core().compile_model(head, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})([t.numpy() for t in x])[0]
    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-5 * float(np.abs(ref).max()))


def test_bf16_features_copy_only_the_fusion_convs(wild):
    """``features_dtype=bfloat16``: PRF/PTM/combine run on BF16 copies, the DCN branches (coordinates) stay
    FP32, the model itself is untouched, and the result is the FP32 head to BF16 rounding."""
    head = CpuHead(wild, torch.bfloat16).eval()
    assert {p.dtype for p in head.features.parameters()} == {torch.bfloat16}
    assert {p.dtype for p in head.branches.parameters()} == {torch.float32}
    assert {p.dtype for p in wild.parameters()} == {torch.float32}
    x = _inputs(wild, 3, 3.0)
    with torch.no_grad():
        ref = wild.head(*x)
        got = head(*x)
    assert got.dtype == torch.float32
    err = float((got - ref).abs().max()) / float(ref.abs().max())
    # BF16 keeps 8 mantissa bits: a few 1/256 relative through 20+ convs; a lost cast would be exact (0).
    assert 0 < err < 0.1, err
