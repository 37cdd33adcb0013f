"""Defect 1 of [trt-contact]: our plugin node must reach the plugin registry on every supported TensorRT.

onnx-tensorrt dispatches a node to a built-in importer by op type alone (domain ignored), so the plugin's
op type must be neither an ONNX operator nor a built-in importer name of any supported release
(:mod:`dcpose_trt.engine.trt_parser_ops` keeps those lists with their sources). On the old code the op
type was ``DeformConv``: in ``onnx.defs`` and in every importer list since 10.1.
"""

from __future__ import annotations

import pytest

from dcpose_trt import contract
from dcpose_trt.engine import trt_parser_ops
from dcpose_trt.plugins import deform_conv


def test_plugin_op_type_is_not_an_onnx_operator():
    onnx = pytest.importorskip("onnx")
    assert not onnx.defs.has(contract.DCN_OP_TYPE), contract.DCN_OP_TYPE
    # ...in any domain onnx knows (ai.onnx.ml, ai.onnx.preview.training, ...).
    assert contract.DCN_OP_TYPE not in {s.name for s in onnx.defs.get_all_schemas_with_history()}


@pytest.mark.parametrize("release", trt_parser_ops.SUPPORTED_RELEASES)
def test_plugin_op_type_has_no_builtin_importer(release):
    assert not trt_parser_ops.shadows_builtin(contract.DCN_OP_TYPE, release)


def test_exporter_and_plugin_share_the_identity():
    from dcpose_trt.export.deform_ops import plugin_identity

    assert plugin_identity() == (contract.DCN_OP_TYPE, contract.DCN_DOMAIN, contract.PLUGIN_NAMESPACE)
    assert deform_conv.PLUGIN_NAME == deform_conv.OP_TYPE == contract.DCN_OP_TYPE  # parser: op type = name
    assert deform_conv.PLUGIN_ID == f"{contract.PLUGIN_NAMESPACE}::{contract.DCN_OP_TYPE}"


def test_importer_lists_reflect_their_sources():
    # The list is only useful if it would have caught the old name: DeformConv has a built-in importer
    # since 10.1 (onnx-tensorrt changelog), Attention since 10.14, RMSNormalization since 10.15.
    for release in trt_parser_ops.SUPPORTED_RELEASES:
        assert trt_parser_ops.shadows_builtin("DeformConv", release)
        assert trt_parser_ops.shadows_builtin("GridSample", release)
        assert trt_parser_ops.shadows_builtin("TRT_SomeFutureQuantOp", release)
    assert not trt_parser_ops.shadows_builtin("Attention", "10.13")
    assert trt_parser_ops.shadows_builtin("Attention", "10.14")
    assert trt_parser_ops.shadows_builtin("RMSNormalization", "11.4")
    assert len(trt_parser_ops.builtin_importers("10.3")) == 171  # as at release/10.1-GA
    assert len(trt_parser_ops.builtin_importers("10.9")) == 175  # + 3 windows (10.4) + STFT (10.5)
    assert trt_parser_ops.has_plugin_override("10.15") and not trt_parser_ops.has_plugin_override("10.14")
    with pytest.raises(ValueError):
        trt_parser_ops.builtin_importers("8.6")


def test_module_is_import_pure():
    import subprocess
    import sys

    code = ("import sys, dcpose_trt.contract, dcpose_trt.engine.trt_parser_ops; "
            "bad = [m for m in ('torch', 'onnx', 'tensorrt', 'numpy') if m in sys.modules]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True)
