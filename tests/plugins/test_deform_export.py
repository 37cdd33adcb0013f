"""The ONNX node the exporter writes for ``--deform plugin`` fits what the TensorRT plugin registers.

TensorRT's ONNX parser hands a custom node's inputs to the plugin in node order (= the kernel's pointer
order for the ahead-of-time path) and forwards only the attributes the plugin declares, converted to
their declared types; a missing one breaks the build. Without TensorRT here, this checks that contract
on a real export (:data:`INPUTS`, :data:`ATTRIBUTE_TYPES`) and the attribute decoding of the plugin.
"""

from __future__ import annotations

import pytest
import torch

from dcpose_trt.errors import PluginError
from dcpose_trt.plugins.deform_conv import OP_DOMAIN, OP_TYPE, PLUGIN_NAME, PLUGIN_NAMESPACE
from dcpose_trt.plugins.deform_conv.aot import INPUT_POINTERS
from dcpose_trt.plugins.deform_conv.plugin import ATTRIBUTE_TYPES, INPUTS, conv_params

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxscript")
deform_ops = pytest.importorskip("dcpose_trt.export.deform_ops")


class _DCN(torch.nn.Module):
    """One DCPose PCN layer: 17 -> 17, 3x3, 17 offset groups, dilation = padding, raw mask, bias."""

    def __init__(self, d: int):
        super().__init__()
        self.d = d
        self.weight = torch.nn.Parameter(torch.randn(17, 17, 3, 3))
        self.bias = torch.nn.Parameter(torch.randn(17))

    def forward(self, x, offset, mask):
        from torchvision.ops import deform_conv2d

        return deform_conv2d(x, offset, self.weight, self.bias, padding=self.d, dilation=self.d, mask=mask)


@pytest.fixture(scope="module")
def plugin_node():
    g = torch.Generator().manual_seed(0)
    args = (torch.randn(2, 17, 8, 6, generator=g), torch.randn(2, 306, 8, 6, generator=g),
            torch.randn(2, 153, 8, 6, generator=g))  # fmt: skip
    batch = torch.export.Dim("batch", min=1, max=64)
    prog = torch.onnx.export(_DCN(9).eval(), args, dynamo=True, opset_version=19,
                             custom_translation_table=deform_ops.translation_table("plugin"),
                             dynamic_shapes=({0: batch}, {0: batch}, {0: batch}))  # fmt: skip
    model = prog.model_proto
    nodes = [n for n in model.graph.node if n.domain == OP_DOMAIN]
    assert len(nodes) == 1
    return model, nodes[0]


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
