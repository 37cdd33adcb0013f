"""The ONNX node the exporter writes for ``--deform plugin`` fits what the TensorRT plugin registers.

TensorRT's ONNX parser hands a custom node's inputs to the plugin in node order (= the kernel's pointer
order for the ahead-of-time path) and forwards only the attributes the plugin declares, converted to
their declared types; a missing one breaks the build. Without TensorRT here, this checks that contract
on a real export (:data:`INPUTS`, :data:`ATTRIBUTE_TYPES`) and the attribute decoding of the plugin.
"""

from __future__ import annotations

import pytest

from dcpose_trt.errors import PluginError
from dcpose_trt.plugins.deform_conv import OP_DOMAIN, OP_TYPE, PLUGIN_NAME, PLUGIN_NAMESPACE
from dcpose_trt.plugins.deform_conv.plugin import ATTRIBUTE_TYPES, INPUTS, conv_params
from dcpose_trt.plugins.deform_conv.ptx import INPUT_POINTERS

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxscript")


def test_node_identity(plugin_node):
    model, node = plugin_node
    assert node.op_type == OP_TYPE == PLUGIN_NAME  # parser: op_type = plugin name
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
    assert attrs["plugin_namespace"] == PLUGIN_NAMESPACE.encode()
    assert (OP_DOMAIN, 1) in {(o.domain, o.version) for o in model.opset_import}


def test_node_inputs_match_plugin_and_kernel_order(plugin_node):
    model, node = plugin_node
    assert len(node.input) == len(INPUTS) == len(INPUT_POINTERS) == 5 and all(node.input)
    inits = {i.name: tuple(i.dims) for i in model.graph.initializer}
    graph_inputs = [i.name for i in model.graph.input]
    # X, W, offset, B, mask: the weights (W, B) are initializers, X/offset/mask the graph inputs.
    assert inits.get(node.input[1]) == (17, 17, 3, 3) and inits.get(node.input[3]) == (17,)
    assert [node.input[0], node.input[2], node.input[4]] == graph_inputs


def test_node_attributes_are_the_plugin_fields(plugin_node):
    _, node = plugin_node
    attrs = {a.name: a for a in node.attribute}
    for name, kind in ATTRIBUTE_TYPES.items():
        assert name in attrs, f"the plugin needs attribute '{name}'"
        a = attrs[name]
        if kind == "int":
            assert a.type == onnx.AttributeProto.INT
        else:
            assert a.type == onnx.AttributeProto.INTS and len(a.ints) == int(kind[5:-1])
    values = {n: onnx.helper.get_attribute_value(attrs[n]) for n in ATTRIBUTE_TYPES}
    assert (values["group"], values["offset_group"]) == (1, 17)
    assert conv_params(values["strides"], values["pads"], values["dilations"]) == ((1, 1), (9, 9), (9, 9))


def test_conv_params_rejects_asymmetric_pads():
    with pytest.raises(PluginError, match=r"pads must be symmetric .* got \[1, 2, 1, 3\]"):
        conv_params([1, 1], [1, 2, 1, 3], [1, 1])
