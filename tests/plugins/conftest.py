"""Plugin tests run the Triton kernel in Triton's CPU interpreter when there is no GPU.

``TRITON_INTERPRET`` is read when a ``@triton.jit`` kernel is defined, so it is set here, at collection
time, before any test imports :mod:`dcpose_trt.plugins.deform_conv.kernels`.
"""

from __future__ import annotations

import os

import pytest
import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")


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


@pytest.fixture(scope="session")
def plugin_node():
    """(model, node): one DCN layer exported by the product's exporter in the ``plugin`` form."""
    pytest.importorskip("onnx")
    pytest.importorskip("onnxscript")
    from dcpose_trt.export import deform_ops
    from dcpose_trt.plugins.deform_conv import OP_DOMAIN

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
